"use strict";
// The playground: POST /predict for the label and scores, then POST /explain for the words' attributions, by the
// model chosen among the server's (GET /v1/models; the choice is offered when it serves more than one). The
// optional inputs (a text pair, top k, raw scores) are sent only when filled in: left empty, the requests are
// exactly those of a page without them.

(() => {
  const form = document.getElementById("classify-form");
  const textArea = document.getElementById("text");
  const pairArea = document.getElementById("text-pair");
  const topKInput = document.getElementById("top-k");
  const rawScores = document.getElementById("raw-scores");
  const button = document.getElementById("classify");
  const errorBox = document.getElementById("error");
  const result = document.getElementById("result");
  const labelBox = document.getElementById("label");
  const meta = document.getElementById("meta");
  const scores = document.getElementById("scores");
  const scoresKind = document.getElementById("scores-kind");
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

  // The pair as a request field: none when it is blank (the bridge refuses a blank pair).
  function pairField(pair) {
    return pair.trim() ? { text_pair: pair } : {};
  }

  // top_k and raw_scores as request fields, each only when chosen.
  function scoreOptions() {
    const options = {};
    if (topKInput.value !== "") options.top_k = Number(topKInput.value);
    if (rawScores.checked) options.raw_scores = true;
    return options;
  }

  function signed(value) {
    return `${value >= 0 ? "+" : ""}${value.toFixed(3)}`;
  }

  function windowsRead(prediction) {
    const windows = prediction.windows;
    if (Array.isArray(windows)) return windows.length;
    return typeof windows === "number" ? windows : 0;
  }

  // A bar per class, or per label of `top` (best first) when top_k asked for it; logits when raw_scores did,
  // their bars running from the lowest logit to the highest.
  function showScores(prediction, raw) {
    const all = Object.values(prediction.scores || {});
    const top = Array.isArray(prediction.top) && prediction.top.length ? prediction.top : null;
    const entries = top ? top.map((t) => [t.label, t.score]) : Object.entries(prediction.scores || {});
    const options = { highlight: prediction.label };
    if (raw && all.length) {
      const lowest = Math.min(...all);
      Object.assign(options, { floor: lowest, scale: Math.max(...all) - lowest, format: signed });
    }
    Api.renderBars(scores, entries, options);
    scores.setAttribute("aria-label", top ? "Score of the best classes, best first" : "Score of every class");
    const kind = [];
    if (top) kind.push(`The best ${top.length} of ${all.length} labels, best first.`);
    if (raw) kind.push("Raw scores: the model's logits, not probabilities.");
    scoresKind.textContent = kind.join(" ");
    scoresKind.hidden = !kind.length;
  }

  function showPrediction(prediction, request) {
    labelBox.textContent = prediction.label;
    labelBox.className = `label label-${prediction.label.replace(/[^a-z0-9_-]/gi, "")}`;
    const facts = [`${prediction.num_tokens} tokens${request.text_pair ? " (text and pair)" : ""}`];
    const windows = windowsRead(prediction);
    if (windows > 1) facts.push(`read whole in ${windows} windows`);
    if (prediction.truncated) facts.push("cut at the model's limit: only the start was read");
    meta.textContent = facts.join(" · ");
    showScores(prediction, Boolean(request.raw_scores));
    result.hidden = false;
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  // A segment as it was typed, each explained word wrapped in a <mark> tinted by its attribution.
  function markedPieces(text, words, strongest) {
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
    return pieces;
  }

  // The text's words, and with a pair each segment on a line of its own (a word's `segment`: 0 text, 1 pair; its
  // offsets are into its own segment). The colours share one scale across both.
  function renderHighlights(text, pair, words) {
    const strongest = Math.max(1e-12, ...words.map((w) => Math.abs(w.attribution)));
    if (!pair) {
      highlights.replaceChildren(...markedPieces(text, words, strongest));
    } else {
      highlights.replaceChildren(...[text, pair].map((segmentText, segment) => {
        const block = document.createElement("span");
        block.className = "segment";
        block.dataset.segment = String(segment);
        const name = document.createElement("span");
        name.className = "segment-name";
        name.textContent = segment ? "Pair" : "Text";
        const own = words.filter((w) => (w.segment || 0) === segment);
        block.append(name, ...markedPieces(segmentText, own, strongest));
        return block;
      }));
    }
    highlights.hidden = false;
  }

  async function explain(text, pair, prediction, mine) {
    highlights.hidden = true;
    legend.hidden = true;
    showNote("Working out which words mattered…");
    let answer;
    try {
      const body = { text, label: prediction.label, ...chosenModel(), ...pairField(pair) };
      answer = await Api.call("POST", "explain", body);
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
    renderHighlights(text, pair.trim() ? pair : "", answer.words || []);
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
    const pair = pairArea.value;
    const request = { text, ...pairField(pair), truncation: form.elements.truncation.value, ...chosenModel(),
                      ...scoreOptions() };
    const mine = ++generation;
    Api.hideError(errorBox);
    button.disabled = true;
    button.textContent = "Classifying…";
    let prediction;
    try {
      prediction = await Api.call("POST", "predict", request);
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
    showPrediction(prediction, request);
    explain(text, pair, prediction, mine);
  }

  form.addEventListener("submit", classify);
  listModels();
  for (const area of [textArea, pairArea]) {
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
  }
})();
