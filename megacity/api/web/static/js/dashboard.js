// The dashboard's charts (uPlot): drawn from the JSON block each panel refresh brings.
"use strict";
(function () {
  var COLORS = { llm: "#1f4fd1", speech: "#16803c", pose: "#b8590b", image: "#8a2be2", tts: "#c0262d", scoring: "#5b6475" };
  var charts = {};

  function color(engine, i) {
    return COLORS[engine] || ["#0b7285", "#d6336c", "#5f3dc4", "#e67700"][i % 4];
  }

  function seriesData(data, field, scale) {
    var engines = Object.keys(data).sort();
    var times = engines.length ? data[engines[0]].times : [];
    var columns = [times];
    engines.forEach(function (engine) {
      columns.push(data[engine][field].map(function (v) { return v == null ? null : v * scale; }));
    });
    return { engines: engines, columns: columns };
  }

  function draw(id, data, field, scale, unit) {
    var box = document.getElementById(id);
    if (!box) return;
    var prepared = seriesData(data, field, scale);
    var key = prepared.engines.join(",");
    var existing = charts[id];
    if (existing && existing.key === key) {
      existing.plot.setData(prepared.columns);
      return;
    }
    if (existing) existing.plot.destroy();
    box.textContent = "";
    var series = [{}].concat(prepared.engines.map(function (engine, i) {
      return { label: engine, stroke: color(engine, i), width: 2, spanGaps: false, points: { show: true, size: 4 }, value: function (u, v) { return v == null ? "—" : v.toFixed(2) + unit; } };
    }));
    var opts = {
      width: Math.max(300, box.clientWidth || 360),
      height: 200,
      series: series,
      scales: { x: { time: true } },
      axes: [{}, { size: 56 }],
      legend: { live: true },
    };
    charts[id] = { key: key, plot: new uPlot(opts, prepared.columns, box) };
  }

  function refresh() {
    var block = document.getElementById("chart-data");
    if (!block || typeof uPlot === "undefined") return;
    var data = JSON.parse(block.textContent || "{}");
    draw("chart-rate", data, "rate", 1, " req/s");
    draw("chart-p95", data, "p95_ms", 1, " ms");
    draw("chart-errors", data, "error_rate", 100, " %");
  }

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "panels") refresh();
  });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      var box = document.getElementById(id);
      if (box) charts[id].plot.setSize({ width: Math.max(300, box.clientWidth), height: 200 });
    });
  });
})();
