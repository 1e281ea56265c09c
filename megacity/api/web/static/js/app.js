// Shared by every page: the CSRF token on htmx requests, and a fetch helper for the API.
"use strict";
(function () {
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // The page's own call to the public API: the session cookie authenticates it (same
  // origin), the CSRF header proves it comes from this page. Errors become Error objects
  // carrying the API's envelope message.
  async function api(path, options) {
    options = options || {};
    var headers = Object.assign({ "X-CSRF-Token": csrf() }, options.headers || {});
    var response = await fetch(path, Object.assign({}, options, { headers: headers, credentials: "same-origin" }));
    if (!response.ok && !options.raw) {
      var message = response.status + " " + response.statusText;
      try {
        var body = await response.json();
        if (body && body.error) message = body.error.message + " (" + (body.error.code || response.status) + ")";
      } catch (e) { /* not JSON */ }
      var error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  function text(node, value) { node.textContent = value == null ? "" : String(value); return node; }

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content != null) text(node, content);
    return node;
  }

  window.MegaCity = { csrf: csrf, api: api, el: el, text: text };
})();
