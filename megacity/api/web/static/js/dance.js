// Dance Lab: pick (or add) a reference dance, upload an attempt, show the score, body parts,
// the per-second timeline (uPlot), feedback, the heatmap and the overlay picture.
"use strict";
(function () {
  var M = window.MegaCity;
  var $ = function (id) { return document.getElementById(id); };
  var PARTS = ["head", "torso", "left_arm", "right_arm", "left_leg", "right_leg"];
  var timeline = null;

  function i18n(key) { return $("dance-i18n").getAttribute("data-" + key) || key; }
  function zone() { return { "X-Zone": $("dance-zone").value }; }

  async function loadReferences(select) {
    var list = $("dance-reference");
    try {
      var response = await M.api("/api/v1/kzone/dance/references?limit=100", { headers: zone() });
      var body = await response.json();
      list.textContent = "";
      if (!body.data.length) {
        var none = M.el("option", null, i18n("none"));
        none.value = "";
        list.appendChild(none);
      }
      body.data.forEach(function (ref) {
        var option = M.el("option", null, ref.title + " · " + ref.duration_s.toFixed(1) + " s");
        option.value = ref.id;
        list.appendChild(option);
      });
      if (select) list.value = select;
    } catch (e) {
      M.text($("dance-status"), e.message);
    }
  }

  async function addReference(event) {
    event.preventDefault();
    var file = $("dance-ref-file").files[0];
    if (!file) return;
    var form = new FormData();
    form.append("file", file, file.name);
    form.append("title", $("dance-title").value);
    var status = $("dance-add-status");
    M.text(status, i18n("adding"));
    $("dance-add-submit").disabled = true;
    try {
      var response = await M.api("/api/v1/kzone/dance/references", { method: "POST", body: form, headers: zone() });
      var ref = await response.json();
      M.text(status, i18n("added") + ": " + ref.title);
      await loadReferences(ref.id);
    } catch (e) {
      M.text(status, e.message);
    } finally {
      $("dance-add-submit").disabled = false;
    }
  }

  function renderParts(parts) {
    var list = $("dance-parts");
    list.textContent = "";
    PARTS.forEach(function (part) {
      var value = parts[part];
      var item = M.el("li");
      item.id = "part-" + part;
      item.appendChild(M.el("span", null, i18n("part-" + part.replace("_", "-"))));
      var meter = document.createElement("meter");
      meter.min = 0; meter.max = 100; meter.low = 65; meter.high = 90; meter.optimum = 100;
      meter.value = value == null ? 0 : value;
      item.appendChild(meter);
      item.appendChild(M.el("b", null, value == null ? i18n("unseen") : value.toFixed(0)));
      list.appendChild(item);
    });
  }

  function renderTimeline(points) {
    var box = $("dance-timeline");
    if (timeline) { timeline.destroy(); timeline = null; }
    box.textContent = "";
    if (typeof uPlot === "undefined" || !points.length) return;
    var xs = points.map(function (p) { return p.start_s; });
    var ys = points.map(function (p) { return p.score; });
    timeline = new uPlot({
      width: Math.max(300, box.clientWidth || 600),
      height: 180,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: "s" }, { label: i18n("score"), stroke: "#1f4fd1", width: 2, fill: "rgba(31,79,209,0.08)" }],
    }, [xs, ys], box);
  }

  function render(result) {
    var lang = i18n("lang");
    M.text($("dance-score"), result.score == null ? "—" : result.score.toFixed(1));
    renderParts(result.body_parts || {});
    var feedback = $("dance-feedback");
    feedback.textContent = "";
    (result.feedback || []).forEach(function (f) { feedback.appendChild(M.el("li", null, f[lang] || f.en)); });
    var timing = result.timing || {};
    M.text($("dance-timing"), i18n("offset") + " " + (timing.offset_ms == null ? "—" : timing.offset_ms.toFixed(0) + " ms") +
      " · " + i18n("tempo") + " " + (timing.tempo_ratio == null ? "—" : timing.tempo_ratio.toFixed(2)));
    renderTimeline(result.timeline || []);
    $("dance-heatmap").src = result.heatmap_url || "";
    $("dance-overlay").src = result.overlay_url || "";
    $("dance-result").hidden = false;
  }

  async function analyze(event) {
    event.preventDefault();
    var file = $("dance-file").files[0];
    var reference = $("dance-reference").value;
    if (!file || !reference) return;
    var form = new FormData();
    form.append("file", file, file.name);
    form.append("reference_id", reference);
    form.append("mirror", $("dance-mirror").value);
    M.text($("dance-status"), i18n("analyzing"));
    $("dance-submit").disabled = true;
    try {
      var response = await M.api("/api/v1/kzone/dance/analyze", { method: "POST", body: form, headers: zone() });
      render(await response.json());
      M.text($("dance-status"), i18n("done"));
    } catch (e) {
      M.text($("dance-status"), e.message);
    } finally {
      $("dance-submit").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("dance-form").addEventListener("submit", analyze);
    $("dance-add").addEventListener("submit", addReference);
    $("dance-zone").addEventListener("change", function () { loadReferences(); });
    if ($("dance-zone").value) loadReferences();
  });
})();
