"use strict";
// File scoring: upload to POST /v1/jobs, poll GET /v1/jobs/<id> for progress, then offer the downloads.

(() => {
  const POLL_MS = 400;
  const form = document.getElementById("upload-form");
  const fileInput = document.getElementById("file");
  const pairInput = document.getElementById("pair-field");
  const uploadButton = document.getElementById("upload");
  const errorBox = document.getElementById("error");
  const jobBox = document.getElementById("job");
  const stateText = document.getElementById("job-state");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const cancelButton = document.getElementById("cancel");
  const downloads = { jsonl: document.getElementById("download-jsonl"), csv: document.getElementById("download-csv") };
  const summary = document.getElementById("summary");
  const distribution = document.getElementById("distribution");
  const rowsBody = document.querySelector("#rows tbody");
  const maxBytes = Number(form.dataset.maxBytes);
  const STATES = { queued: "Waiting to start…", running: "Scoring…", done: "Done", failed: "Stopped" };
  let current = null;
  let timer = null;

  function size(bytes) {
    if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MiB`;
    if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
    return `${bytes} bytes`;
  }

  function stopWatching() {
    clearTimeout(timer);
    timer = null;
    current = null;
  }

  function renderRows(preview) {
    const rows = preview.map((item, index) => {
      const tr = document.createElement("tr");
      const cells = [String(index + 1), item.text ?? "", item.error ? "—" : item.label,
                     item.error ? item.error : Api.percent(item.score)];
      for (const value of cells) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      if (item.pair) { // a job with a pair column: the row's pair after its text
        const pair = document.createElement("span");
        pair.className = "meta row-pair";
        pair.textContent = ` · ${item.pair}`;
        tr.children[1].append(pair);
      }
      if (item.error) tr.className = "row-error";
      return tr;
    });
    rowsBody.replaceChildren(...rows);
  }

  function render(status) {
    const active = status.state === "queued" || status.state === "running";
    stateText.textContent = STATES[status.state] || status.state;
    progress.max = Math.max(1, status.total);
    progress.value = status.done;
    const facts = [`${status.done} of ${status.total} rows`];
    if (status.errors) facts.push(`${status.errors} could not be scored`);
    progressText.textContent = facts.join(" · ");
    const counted = Object.values(status.labels).reduce((a, b) => a + b, 0);
    Api.renderBars(distribution, status.labels, {
      scale: counted,
      format: (n) => `${n} (${counted ? Api.percent(n / counted) : "0%"})`,
    });
    renderRows(status.preview || []);
    summary.hidden = status.done === 0;
    cancelButton.hidden = !active;
    for (const [kind, link] of Object.entries(downloads)) {
      link.hidden = active;
      link.href = `v1/jobs/${status.id}/result?format=${kind}`;
    }
    if (status.state === "failed" && status.error) Api.showError(errorBox, status.error);
  }

  function watch(id) {
    stopWatching();
    current = id;
    history.replaceState(null, "", `#job=${id}`);
    const mine = id;
    const tick = async () => {
      let status;
      try {
        status = await Api.call("GET", `v1/jobs/${id}`);
      } catch (error) {
        if (current !== mine) return;
        Api.showError(errorBox, error);
        if (error.status === 404) {
          jobBox.hidden = true;
          stopWatching();
          return;
        }
        timer = setTimeout(tick, 4 * POLL_MS); // the bridge may be restarting: keep asking, less often
        return;
      }
      if (current !== mine) return;
      jobBox.hidden = false;
      render(status);
      if (status.state === "queued" || status.state === "running") timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  async function upload(event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    Api.hideError(errorBox);
    if (file.size > maxBytes) {
      Api.showError(errorBox, new Api.ApiError(413, "PAYLOAD_TOO_LARGE",
        `the file is ${size(file.size)}, and this bridge takes files up to ${size(maxBytes)}`));
      return;
    }
    stopWatching();
    const body = new FormData();
    body.append("file", file);
    body.append("truncation", form.elements.truncation.value);
    const pairField = pairInput.value.trim(); // empty: every row is a single text
    if (pairField) body.append("pair_field", pairField);
    jobBox.hidden = false;
    summary.hidden = true;
    stateText.textContent = "Uploading…";
    progressText.textContent = file.name;
    progress.removeAttribute("value");
    for (const link of Object.values(downloads)) link.hidden = true;
    uploadButton.disabled = true;
    try {
      const status = await Api.call("POST", "v1/jobs", body);
      watch(status.id);
    } catch (error) {
      jobBox.hidden = true;
      Api.showError(errorBox, error);
    } finally {
      uploadButton.disabled = false;
    }
  }

  async function cancel() {
    const id = current;
    if (!id) return;
    stopWatching();
    try {
      await Api.call("DELETE", `v1/jobs/${id}`);
    } catch (error) {
      if (error.status !== 404) Api.showError(errorBox, error);
    }
    jobBox.hidden = true;
    history.replaceState(null, "", location.pathname);
  }

  // With an API token set, a plain link cannot send it: fetch the file and hand it over as a blob.
  async function download(event) {
    const link = event.currentTarget;
    if (!Object.keys(Api.authHeaders({})).length) return;
    event.preventDefault();
    const response = await fetch(link.href, { headers: Api.authHeaders({}) });
    if (!response.ok) {
      Api.showError(errorBox, new Api.ApiError(response.status, "", response.statusText));
      return;
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const temporary = document.createElement("a");
    temporary.href = url;
    temporary.download = name ? name[1] : "";
    temporary.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  form.addEventListener("submit", upload);
  cancelButton.addEventListener("click", cancel);
  for (const link of Object.values(downloads)) link.addEventListener("click", download);
  const resumed = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  if (resumed) watch(resumed[1]);
})();
