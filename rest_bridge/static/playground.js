"use strict";
// The playground: POST /predict for the label and scores, then POST /explain for the words' attributions, by the
// model chosen among the server's (GET /v1/models; the choice is offered when it serves more than one).

(() => {
  const form = document.getElementById("classify-form");
  const textArea = document.getElementById("text");
  const button = document.getElementById("classify");
  const errorBox = document.getElementById("error");
  const result = document.getElementById("result");
  const labelBox = document.getElementById("label");
  const meta = document.getElementById("meta");
  const scores = document.getElementById("scores");
  const note = document.getElementById("explain-note");
  const highlights = document.getElementById("highlights");
  const legend = document.getElementById("legend");
  const legendTarget = document.getElementById("legend-target");
  const modelChoice = document.getElementById("model-choice");
  const modelSelect = document.getElementById("model-select");
  let generation = 0; // answers to an older click are dropped

  // Each loaded model by name (its unversioned calls), and each other loaded version by name and version.
  async function listModels() {
    let answer;
    try {
      answer = await Api.call("GET", "v1/models");
    } catch (error) {
      return; // an older backend, or none yet: the default model answers
    }
    const options = [];
    for (const m of answer.models || []) {
      const value = JSON.stringify(m.unversioned ? { model: m.name } : { model: m.name, model_version: m.version });
      const option = document.createElement("option");
      option.value = value;
      option.textContent = m.unversioned ? `${m.name} (version ${m.version})` : `${m.name}, version ${m.version} only`;
      options.push(option);
    }
    if (options.length > 1) {
      modelSelect.replaceChildren(...options);
      modelChoice.hidden = false;
    }
  }

  function chosenModel() {
    return modelSelect.value ? JSON.parse(modelSelect.value) : {};
  }

  function windowsRead(prediction) {
    const windows = prediction.windows;
    if (Array.isArray(windows)) return windows.length;
    return typeof windows === "number" ? windows : 0;
  }

  function showPrediction(prediction) {
    labelBox.textContent = prediction.label;
    labelBox.className = `label label-${prediction.label.replace(/[^a-z0-9_-]/gi, "")}`;
    const facts = [`${prediction.num_tokens} tokens`];
    const windows = windowsRead(prediction);
    if (windows > 1) facts.push(`read whole in ${windows} windows`);
    if (prediction.truncated) facts.push("cut at the model's limit: only the start was read");
    meta.textContent = facts.join(" · ");
    Api.renderBars(scores, prediction.scores, { highlight: prediction.label });
    result.hidden = false;
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  // The text as it was typed, each explained word wrapped in a <mark> tinted by its attribution.
  function renderHighlights(text, words) {
    const strongest = Math.max(1e-12, ...words.map((w) => Math.abs(w.attribution)));
    const pieces = [];
    let position = 0;
    for (const word of [...words].sort((a, b) => a.start - b.start)) {
      if (word.start < position) continue;
      if (word.start > position) pieces.push(document.createTextNode(text.slice(position, word.start)));
      const mark = document.createElement("mark");
      mark.className = `word ${word.attribution >= 0 ? "pos" : "neg"}`;
      mark.style.setProperty("--strength", (Math.abs(word.attribution) / strongest).toFixed(3));
      mark.dataset.attribution = String(word.attribution);
      mark.title = `${word.word}: ${word.attribution >= 0 ? "+" : ""}${word.attribution.toFixed(3)}`;
      mark.textContent = text.slice(word.start, word.end);
      pieces.push(mark);
      position = word.end;
    }
    if (position < text.length) pieces.push(document.createTextNode(text.slice(position)));
    highlights.replaceChildren(...pieces);
    highlights.hidden = false;
  }

  async function explain(text, prediction, mine) {
    highlights.hidden = true;
    legend.hidden = true;
    showNote("Working out which words mattered…");
    let answer;
    try {
      answer = await Api.call("POST", "explain", { text, label: prediction.label, ...chosenModel() });
    } catch (error) {
      if (mine !== generation) return;
      if (error.status === 404 || error.status === 501) {
        showNote("This backend cannot explain its predictions (it has no POST /explain). " +
                 "The label and scores above are complete.");
      } else if (error.status === 429) {
        showNote("Explanations are busy right now: the server works out only a few at a time. " +
                 "Classify again in a moment to see which words mattered.");
      } else {
        const { title, detail } = Api.describe(error);
        showNote(`No explanation this time. ${title}. ${detail}`);
      }
      return;
    }
    if (mine !== generation) return;
    renderHighlights(text, answer.words || []);
    legendTarget.textContent = answer.target || prediction.label;
    legend.hidden = false;
    showNote(answer.truncated
      ? `The explanation covers the first ${answer.num_tokens} tokens, as many as the model reads at once.`
      : "");
  }

  async function classify(event) {
    event.preventDefault();
    const text = textArea.value;
    if (!text.trim()) {
      textArea.focus();
      return;
    }
    const truncation = form.elements.truncation.value;
    const mine = ++generation;
    Api.hideError(errorBox);
    button.disabled = true;
    button.textContent = "Classifying…";
    let prediction;
    try {
      prediction = await Api.call("POST", "predict", { text, truncation, ...chosenModel() });
    } catch (error) {
      if (mine === generation) {
        result.hidden = true;
        Api.showError(errorBox, error);
      }
      return;
    } finally {
      if (mine === generation) {
        button.disabled = false;
        button.textContent = "Classify";
      }
    }
    if (mine !== generation) return;
    showPrediction(prediction);
    explain(text, prediction, mine);
  }

  form.addEventListener("submit", classify);
  listModels();
  textArea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
})();
