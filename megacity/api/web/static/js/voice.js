// Voice practice: record (MediaRecorder) or upload, POST /api/v1/kzone/voice/analyze, colour
// every word (and Korean syllable) by accuracy, and play back a word's time span.
"use strict";
(function () {
  var M = window.MegaCity;
  var $ = function (id) { return document.getElementById(id); };
  var audio = null;      // the recording or uploaded file, as a Blob
  var audioName = "recording.webm";
  var stopAt = null;

  function i18n(key) { return $("voice-i18n").getAttribute("data-" + key) || key; }
  function status(message) { M.text($("voice-status"), message); }
  function say(key, detail) { status(i18n(key) + (detail ? " " + detail : "")); }

  function useAudio(blob, name) {
    audio = blob;
    audioName = name;
    var player = $("voice-audio");
    if (player.src) URL.revokeObjectURL(player.src);
    player.src = URL.createObjectURL(blob);
    player.hidden = false;
  }

  function band(word) {
    if (word.error_type === "omission") return "w-omission";
    if (word.error_type === "insertion") return "w-insertion";
    if (word.error_type === "mispronunciation" || word.accuracy < 60) return "w-bad";
    return word.accuracy >= 85 ? "w-good" : "w-fair";
  }

  function play(word) {
    var player = $("voice-audio");
    if (word.start == null || word.end == null || !player.src) return;
    stopAt = word.end;
    player.currentTime = Math.max(0, word.start - 0.05);
    player.play().catch(function () { /* autoplay refused: nothing to do */ });
  }

  function detail(word) {
    var box = $("voice-detail");
    box.textContent = "";
    var line = M.el("p");
    line.appendChild(M.el("b", null, word.reference || "—"));
    line.appendChild(document.createTextNode(" → " + (word.recognized || "—") + " · " +
      (word.accuracy == null ? "—" : word.accuracy.toFixed(1)) + " · " + word.error_type));
    box.appendChild(line);
    (word.syllables || []).forEach(function (s) {
      var syl = M.el("span", "syl " + band(s), (s.reference || "·") + "→" + (s.recognized || "·"));
      var diffs = (s.differences || []).map(function (d) {
        return (d.position || "") + " " + (d.expected || "∅") + "→" + (d.got || "∅");
      });
      if (diffs.length) syl.title = diffs.join(", ");
      box.appendChild(syl);
    });
  }

  function render(result) {
    var scores = $("voice-scores");
    scores.textContent = "";
    ["accuracy", "completeness", "fluency", "overall"].forEach(function (name) {
      var value = result.scores[name];
      var box = M.el("div", "score");
      box.id = "voice-score-" + name;
      box.appendChild(M.el("span", null, value == null ? "—" : value.toFixed(0)));
      box.appendChild(M.el("small", null, i18n(name)));
      scores.appendChild(box);
    });
    M.text($("voice-transcript"), i18n("heard") + ": " + (result.transcription.text || "—") +
      "  (CER " + (result.cer == null ? "—" : result.cer.toFixed(2)) + ", WER " + (result.wer == null ? "—" : result.wer.toFixed(2)) + ")");
    var words = $("voice-words");
    words.textContent = "";
    result.words.forEach(function (word, i) {
      var button = M.el("button", "word " + band(word));
      button.type = "button";
      if (word.syllables && word.syllables.length) {
        // Korean: each syllable coloured by its own (jamo) accuracy
        word.syllables.forEach(function (s) {
          button.appendChild(M.el("span", "syl-in " + band(s), s.reference || s.recognized || "·"));
        });
      } else {
        M.text(button, word.reference || word.recognized || "·");
      }
      button.setAttribute("data-error-type", word.error_type);
      button.setAttribute("data-index", String(i));
      if (word.accuracy != null) button.title = word.accuracy.toFixed(1);
      button.addEventListener("click", function () {
        document.querySelectorAll(".word.selected").forEach(function (b) { b.classList.remove("selected"); });
        button.classList.add("selected");
        detail(word);
        play(word);
      });
      words.appendChild(button);
    });
    $("voice-result").hidden = false;
  }

  async function analyze(event) {
    event.preventDefault();
    if (!audio) { status(i18n("need-audio")); return; }
    var form = new FormData();
    form.append("file", audio, audioName);
    form.append("reference_text", $("voice-reference").value);
    form.append("language", $("voice-language").value);
    form.append("mode", $("voice-mode").value);
    $("voice-submit").disabled = true;
    status(i18n("analyzing"));
    try {
      var response = await M.api("/api/v1/kzone/voice/analyze", {
        method: "POST", body: form, headers: { "X-Zone": $("voice-zone").value },
      });
      render(await response.json());
      status(i18n("done"));
    } catch (e) {
      status(e.message);
    } finally {
      $("voice-submit").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    M.recorder($("voice-record"), $("voice-stop"), say, function (blob, name) {
      useAudio(blob, name);
      status("");
    });
    $("voice-file").addEventListener("change", function (e) {
      var file = e.target.files[0];
      if (file) useAudio(file, file.name);
    });
    $("voice-audio").addEventListener("timeupdate", function (e) {
      if (stopAt != null && e.target.currentTime >= stopAt) { e.target.pause(); stopAt = null; }
    });
    var reference = $("voice-reference");
    var edited = false;
    reference.addEventListener("input", function () { edited = true; });
    $("voice-language").addEventListener("change", function (e) {
      if (!edited) reference.value = reference.getAttribute("data-sample-" + e.target.value) || "";
    });
    $("voice-form").addEventListener("submit", analyze);
  });
})();
