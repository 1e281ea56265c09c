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

  // A microphone recorder behind a start and a stop button: `say(key, detail)` reports
  // "recording" / "no-mic" in the page's words; `done(blob, fileName)` gets the recording.
  function recorder(startButton, stopButton, say, done) {
    var active = null;
    async function start() {
      if (!navigator.mediaDevices || !window.MediaRecorder) { say("no-mic"); return; }
      var stream;
      try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
      catch (e) { say("no-mic", e.message); return; }
      var chunks = [];
      var current = active = new MediaRecorder(stream);
      current.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
      current.onstop = function () {
        stream.getTracks().forEach(function (t) { t.stop(); });
        var type = current.mimeType || "audio/webm";
        done(new Blob(chunks, { type: type }), type.indexOf("ogg") >= 0 ? "recording.ogg" : "recording.webm");
      };
      current.start();
      startButton.disabled = true;
      stopButton.disabled = false;
      say("recording");
    }
    function stop() {
      if (active && active.state !== "inactive") active.stop();
      startButton.disabled = false;
      stopButton.disabled = true;
    }
    startButton.addEventListener("click", start);
    stopButton.addEventListener("click", stop);
  }

  window.MegaCity = { csrf: csrf, api: api, el: el, text: text, recorder: recorder };
})();
