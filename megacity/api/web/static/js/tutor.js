// Multimodal tutor: POST /api/v1/ai/multimodal (multipart, stream=true) with the session
// cookie, read the server-sent events from the response body (EventSource cannot POST):
// each stage's progress, each engine's outcome, the answer as it is written, then the
// structured result. A long video answers 202 with a job: poll it for the same document.
"use strict";
(function () {
  var M = window.MegaCity;
  var $ = function (id) { return document.getElementById(id); };
  var PATH = "/api/v1/ai/multimodal";
  var recording = null;  // the recorded audio, as a Blob
  var controller = null;
  var loadedRefs = {};   // "dance" / "voice" → true once the list is in the select
  var timeline = null;
  var preview = { summary: "", strengths: [], fixes: [], next_exercise: "" };

  function i18n(key) { return $("tutor-i18n").getAttribute("data-" + key) || key; }
  function status(message) { M.text($("tutor-status"), message); }
  function say(key, detail) { status(i18n(key) + (detail ? " " + detail : "")); }

  function showError(message) {
    var box = $("tutor-error");
    M.text(box, message);
    box.hidden = !message;
  }

  // ---- inputs ---------------------------------------------------------------------------

  function zoneChanged() {
    var option = $("tutor-zone").selectedOptions[0];
    M.text($("tutor-engines"), option ? i18n("engines") + ": " + option.getAttribute("data-engines") : "");
  }

  // The stored references the scenario can use, fetched the first time it is chosen.
  async function loadReferences() {
    var scenario = $("tutor-scenario").value;
    var kinds = { dance_coach: ["dance"], drama_coach: ["voice"], auto: ["dance", "voice"] }[scenario] || [];
    for (var i = 0; i < kinds.length; i++) {
      var kind = kinds[i];
      if (loadedRefs[kind]) continue;
      loadedRefs[kind] = true;
      try {
        var response = await M.api("/api/v1/kzone/" + kind + "/references?limit=100", {
          headers: { "X-Zone": $("tutor-zone").value },
        });
        var body = await response.json();
        if (!body.data.length) continue;
        var group = document.createElement("optgroup");
        group.label = i18n(kind);
        body.data.forEach(function (ref) {
          var title = ref.title || ref.text || ref.id;
          var option = M.el("option", null, title + (ref.duration_s ? " · " + ref.duration_s.toFixed(1) + " s" : ""));
          option.value = ref.id;
          group.appendChild(option);
        });
        $("tutor-reference").appendChild(group);
      } catch (e) {
        loadedRefs[kind] = false;
        status(e.message);
      }
    }
  }

  function form() {
    var data = new FormData();
    var text = $("tutor-text").value.trim();
    if (text) data.append("text", text);
    Array.prototype.forEach.call($("tutor-image").files, function (f) { data.append("image", f, f.name); });
    var video = $("tutor-video").files[0];
    if (video) data.append("video", video, video.name);
    var audio = $("tutor-audio").files[0];
    if (audio) data.append("audio", audio, audio.name);
    else if (recording) data.append("audio", recording, recording.type.indexOf("ogg") >= 0 ? "recording.ogg" : "recording.webm");
    if (!text && !video && !audio && !recording && !$("tutor-image").files.length) return null;
    data.append("scenario", $("tutor-scenario").value);
    ["script", "reference", "language", "locale", "level"].forEach(function (name) {
      var value = $("tutor-" + name).value.trim();
      if (value) data.append(name === "reference" ? "reference_id" : name, value);
    });
    if ($("tutor-voice").checked) data.append("voice", "true");
    data.append("stream", "true");
    return data;
  }

  // ---- progress and the answer as it is written --------------------------------------------

  function reset() {
    showError("");
    preview = { summary: "", strengths: [], fixes: [], next_exercise: "" };
    document.querySelectorAll("#tutor-stages li").forEach(function (li) {
      li.setAttribute("data-status", "pending");
      M.text(li.querySelector(".state"), "");
    });
    $("tutor-features").textContent = "";
    ["tutor-summary", "tutor-next"].forEach(function (id) { M.text($(id), ""); });
    ["tutor-strengths", "tutor-fixes"].forEach(function (id) { $(id).textContent = ""; });
    $("tutor-result").hidden = true;
    $("tutor-answer").hidden = true;
    $("tutor-progress").hidden = false;
    if (timeline) { timeline.destroy(); timeline = null; }
  }

  function onStage(data) {
    var li = $("stage-" + data.stage);
    if (!li) return;
    li.setAttribute("data-status", data.status);
    M.text(li.querySelector(".state"), data.status === "start" ? i18n("running") : (data.ms == null ? "✓" : data.ms.toFixed(0) + " ms"));
  }

  function onFeatures(data) {
    var item = M.el("li", "engine " + data.status);
    item.id = "engine-" + data.engine;
    item.setAttribute("data-status", data.status);
    var detail = data.status === "degraded" ? (data.reason || "") + (data.detail ? ": " + data.detail : "") : (data.ms == null ? "" : data.ms.toFixed(0) + " ms");
    item.appendChild(M.el("b", null, data.engine));
    item.appendChild(document.createTextNode(" " + data.status + (detail ? " · " + detail : "")));
    var old = $(item.id);
    if (old) old.replaceWith(item); else $("tutor-features").appendChild(item);
  }

  function onDelta(data) {
    if (data.field === "summary" || data.field === "next_exercise") {
      preview[data.field] += data.text;
    } else if (data.field === "strengths" || data.field === "fixes") {
      var list = preview[data.field];
      var i = data.index || 0;
      list[i] = (list[i] || "") + data.text;
    }
    $("tutor-answer").hidden = false;
    M.text($("tutor-summary"), preview.summary);
    M.text($("tutor-next"), preview.next_exercise);
    fill($("tutor-strengths"), preview.strengths.map(function (s) { return M.el("li", null, s); }));
    fill($("tutor-fixes"), preview.fixes.map(function (s) { return M.el("li", null, s); }));
  }

  function fill(list, items) {
    list.textContent = "";
    items.forEach(function (item) { if (item) list.appendChild(item); });
  }

  // ---- the structured result ----------------------------------------------------------------

  function clock(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds - m * 60;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }

  function fixItem(fix) {
    var item = M.el("li", "fix");
    var anchors = [];
    if (fix.time_s != null) anchors.push(clock(fix.time_s) + (fix.end_s != null ? "–" + clock(fix.end_s) : ""));
    if (fix.part) anchors.push(i18n("part-" + fix.part.replace("_", "-")));
    if (fix.word) anchors.push(i18n("word") + " “" + fix.word + "”");
    if (anchors.length) item.appendChild(M.el("span", "anchor", anchors.join(" · ")));
    item.appendChild(document.createTextNode(fix.text));
    return item;
  }

  function number(value) { return typeof value === "number" ? (Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2)) : String(value); }

  // Top-level numbers as score boxes; nested objects (body parts, timing, prosody …) as rows.
  function renderScores(scores) {
    var boxes = $("tutor-scores");
    var rows = $("tutor-score-table").querySelector("tbody");
    boxes.textContent = "";
    rows.textContent = "";
    Object.keys(scores || {}).forEach(function (name) {
      var value = scores[name];
      if (typeof value === "number") {
        var box = M.el("div", "score");
        box.id = "tutor-score-" + name;
        box.appendChild(M.el("span", null, number(value)));
        box.appendChild(M.el("small", null, name.replace(/_/g, " ")));
        boxes.appendChild(box);
      } else if (value && typeof value === "object") {
        var row = M.el("tr");
        row.appendChild(M.el("th", null, name.replace(/_/g, " ")));
        var cells = Object.keys(value).filter(function (k) { return value[k] != null && typeof value[k] !== "object"; })
          .map(function (k) { return k.replace(/_/g, " ") + " " + number(value[k]); });
        row.appendChild(M.el("td", null, cells.join(" · ")));
        rows.appendChild(row);
      }
    });
  }

  function renderTimeline(points) {
    var box = $("tutor-timeline");
    box.textContent = "";
    $("tutor-timeline-box").hidden = !points.length;
    if (typeof uPlot === "undefined" || !points.length) return;
    timeline = new uPlot({
      width: Math.max(300, box.clientWidth || 600),
      height: 180,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: "s" }, { label: i18n("score"), stroke: "#1f4fd1", width: 2, fill: "rgba(31,79,209,0.08)" }],
    }, [points.map(function (p) { return p.start_s; }), points.map(function (p) { return p.score; })], box);
  }

  function render(result) {
    $("tutor-answer").hidden = false;
    document.querySelectorAll('#tutor-stages li[data-status="pending"]').forEach(function (li) {
      li.setAttribute("data-status", "skipped");  // the plan left it out (general: no core)
      M.text(li.querySelector(".state"), i18n("skipped"));
    });
    M.text($("tutor-summary"), result.summary);
    fill($("tutor-strengths"), (result.strengths || []).map(function (s) { return M.el("li", null, s); }));
    fill($("tutor-fixes"), (result.fixes || []).slice().sort(function (a, b) {
      return (a.time_s == null ? 1e9 : a.time_s) - (b.time_s == null ? 1e9 : b.time_s);
    }).map(fixItem));
    M.text($("tutor-next"), result.next_exercise);
    renderScores(result.scores);
    $("tutor-scores-box").hidden = !Object.keys(result.scores || {}).length;
    var pose = result.features && result.features.signals && result.features.signals.pose;
    renderTimeline((pose && pose.timeline) || []);
    var hints = result.hints || {};
    $("tutor-overlay").src = hints.overlay_url || "";
    $("tutor-heatmap").src = hints.heatmap_url || "";
    $("tutor-overlay").hidden = !hints.overlay_url;
    $("tutor-heatmap").hidden = !hints.heatmap_url;
    $("tutor-pictures").hidden = !(hints.overlay_url || hints.heatmap_url);
    fill($("tutor-degraded"), (result.degraded || []).map(function (d) {
      return M.el("li", null, d.engine + ": " + d.reason + (d.detail ? " — " + d.detail : ""));
    }));
    $("tutor-degraded-box").hidden = !(result.degraded || []).length;
    var who = Object.keys(result.sources || {}).map(function (step) {
      var model = result.models && result.models[step];
      var why = result.fallbacks && result.fallbacks[step];
      return step + "=" + result.sources[step] + (model ? " (" + model + ")" : "") + (why ? " [" + why + "]" : "");
    });
    var line = "scenario=" + result.scenario + " · locale=" + result.locale + (who.length ? " · " + i18n("written-by") + ": " + who.join(", ") : "") +
      (result.timings_ms && result.timings_ms.total != null ? " · " + result.timings_ms.total.toFixed(0) + " ms" : "");
    if (hints.voice) line += " · " + i18n("voice-job") + ": " + hints.voice;
    M.text($("tutor-sources"), line);
    $("tutor-result").hidden = false;
    $("tutor-result").setAttribute("data-scenario", result.scenario);
  }

  // ---- the call -----------------------------------------------------------------------------

  // Reads the SSE body; true once a `result` or `error` event came.
  async function readEvents(response) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var pending = "";
    var finished = false;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      pending += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
      var blocks = pending.split("\n\n");
      pending = blocks.pop();
      blocks.forEach(function (block) {
        var kind = "message";
        var data = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) kind = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
        });
        if (!data) return;
        var payload = JSON.parse(data);
        if (kind === "stage") onStage(payload);
        else if (kind === "features") onFeatures(payload);
        else if (kind === "delta") onDelta(payload);
        else if (kind === "result") { render(payload); finished = true; }
        else if (kind === "error") {
          var e = payload.error || {};
          showError((e.message || "error") + " (" + (e.code || payload.status) + ")");
          finished = true;
        }
      });
    }
    return finished;
  }

  async function pollJob(accepted) {
    status(i18n("queued"));
    for (;;) {
      await new Promise(function (resolve) { setTimeout(resolve, 2000); });
      if (controller && controller.signal.aborted) return;
      var response = await M.api(accepted.status_url, { signal: controller.signal });
      var job = await response.json();
      if (job.status === "succeeded") { render(job.result); return; }
      if (job.status === "failed" || job.status === "cancelled") {
        var e = job.error || {};
        showError((e.message || job.status) + (e.code ? " (" + e.code + ")" : ""));
        return;
      }
      status(i18n("queued") + " " + Math.round((job.progress || 0) * 100) + " %");
    }
  }

  async function submit(event) {
    event.preventDefault();
    var data = form();
    if (!data) { showError(i18n("need-input")); return; }
    reset();
    status(i18n("sending"));
    controller = new AbortController();
    $("tutor-submit").disabled = true;
    $("tutor-stop").disabled = false;
    try {
      var response = await M.api(PATH, {
        method: "POST", body: data, signal: controller.signal,
        headers: { "X-Zone": $("tutor-zone").value },
      });
      if (response.status === 202) {
        await pollJob(await response.json());
      } else if (!(await readEvents(response))) {
        showError(i18n("cut"));
      }
      status(i18n("done"));
    } catch (e) {
      if (e.name === "AbortError") status("…");
      else { status(""); showError(e.message); }
    } finally {
      controller = null;
      $("tutor-submit").disabled = false;
      $("tutor-stop").disabled = true;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("tutor-form").addEventListener("submit", submit);
    $("tutor-stop").addEventListener("click", function () { if (controller) controller.abort(); });
    M.recorder($("tutor-record"), $("tutor-record-stop"), say, function (blob) {
      recording = blob;
      var player = $("tutor-recording");
      if (player.src) URL.revokeObjectURL(player.src);
      player.src = URL.createObjectURL(blob);
      player.hidden = false;
      status("");
    });
    $("tutor-audio").addEventListener("change", function () { recording = null; $("tutor-recording").hidden = true; });
    $("tutor-zone").addEventListener("change", function () {
      zoneChanged();
      loadedRefs = {};
      var select = $("tutor-reference");
      select.querySelectorAll("optgroup").forEach(function (g) { g.remove(); });
    });
    $("tutor-scenario").addEventListener("change", loadReferences);
    $("tutor-reference").addEventListener("focus", loadReferences);
    zoneChanged();
  });
})();
