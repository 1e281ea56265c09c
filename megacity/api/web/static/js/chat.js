// Tutor chat: streams /v1/chat/completions (SSE) with the zone, strategy and locale picked,
// and shows where the router sent the request (X-MegaCity-* headers).
"use strict";
(function () {
  var M = window.MegaCity;
  var $ = function (id) { return document.getElementById(id); };
  var history = [];
  var controller = null;

  function i18n(key) { return $("chat-i18n").getAttribute("data-" + key) || key; }

  function bubble(role, content) {
    var line = M.el("div", "msg " + role);
    line.appendChild(M.el("b", null, role === "user" ? i18n("you") : i18n("tutor")));
    var body = M.el("span", "content", content);
    line.appendChild(body);
    $("chat-log").appendChild(line);
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
    return body;
  }

  function routeLine(headers) {
    var parts = ["model", "version", "tier", "node", "zone", "locale"].map(function (name) {
      var value = headers.get("x-megacity-" + name);
      return value ? name + "=" + value : null;
    }).filter(Boolean);
    var strategy = headers.get("x-megacity-strategy");
    M.text($("chat-route"), i18n("routed") + ": " + parts.join(" · ") + (strategy ? " · strategy=" + strategy : ""));
  }

  async function send(event) {
    event.preventDefault();
    var text = $("chat-input").value.trim();
    if (!text) return;
    history.push({ role: "user", content: text });
    bubble("user", text);
    $("chat-input").value = "";
    var answer = bubble("assistant", "");
    var headers = { "Content-Type": "application/json", "X-Zone": $("chat-zone").value };
    if ($("chat-strategy").value) headers["X-Prompt-Strategy"] = $("chat-strategy").value;
    if ($("chat-locale").value) headers["X-Locale"] = $("chat-locale").value;
    controller = new AbortController();
    $("chat-send").disabled = true;
    $("chat-stop").disabled = false;
    var full = "";
    try {
      var response = await M.api("/v1/chat/completions", {
        method: "POST", headers: headers, signal: controller.signal,
        body: JSON.stringify({ model: $("chat-model").value || "auto", messages: history, stream: true }),
      });
      routeLine(response.headers);
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var pending = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        pending += decoder.decode(chunk.value, { stream: true });
        var events = pending.split("\n\n");
        pending = events.pop();
        events.forEach(function (raw) {
          raw.split("\n").forEach(function (line) {
            if (line.indexOf("data: ") !== 0) return;
            var data = line.slice(6);
            if (data === "[DONE]") return;
            var parsed = JSON.parse(data);
            if (parsed.error) { full += "\n[" + parsed.error.message + "]"; return; }
            var delta = parsed.choices && parsed.choices[0] && parsed.choices[0].delta;
            if (delta && delta.content) full += delta.content;
          });
        });
        M.text(answer, full);
      }
      history.push({ role: "assistant", content: full });
    } catch (e) {
      M.text(answer, full + (e.name === "AbortError" ? " …" : "[" + e.message + "]"));
      history.pop();
    } finally {
      controller = null;
      $("chat-send").disabled = false;
      $("chat-stop").disabled = true;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("chat-form").addEventListener("submit", send);
    $("chat-stop").addEventListener("click", function () { if (controller) controller.abort(); });
    $("chat-clear").addEventListener("click", function () { history = []; $("chat-log").textContent = ""; M.text($("chat-route"), ""); });
  });
})();
