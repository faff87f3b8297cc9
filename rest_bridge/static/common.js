"use strict";
// Calls to the bridge's API and readable messages for its errors, shared by the pages.

const Api = (() => {
  const TOKEN_KEY = "sentiment-bridge-token";

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  function authHeaders(headers) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
  }

  // fetch() a path relative to the page (so a bridge behind a path prefix works), answer the JSON body
  // or throw an ApiError carrying the bridge's {"error": {code, message}}.
  async function call(method, path, body) {
    const init = { method, headers: authHeaders({ Accept: "application/json" }) };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "NETWORK", "The bridge could not be reached.");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const detail = (data && data.error) || {};
      throw new ApiError(response.status, detail.code || "", detail.message || response.statusText,
                         response.headers.get("Retry-After"));
    }
    return data;
  }

  const STATUS_OF_CODE = {
    INVALID_ARGUMENT: 400, FAILED_PRECONDITION: 400, OUT_OF_RANGE: 400, UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403, NOT_FOUND: 404, RESOURCE_EXHAUSTED: 429, UNIMPLEMENTED: 501,
    UNAVAILABLE: 503, DEADLINE_EXCEEDED: 504,
  };

  // {title, detail}: what a person should read for an error, never the raw JSON.
  function describe(error) {
    const status = error.status !== undefined ? error.status : (STATUS_OF_CODE[error.code] || 500);
    const said = error.message ? `The service said: ${error.message}.` : "";
    switch (status) {
      case 0:
        return { title: "The bridge cannot be reached", detail: "Check that it is running, then try again." };
      case 400:
        return { title: "The service refused this input", detail: said };
      case 401:
      case 403:
        return { title: "This bridge needs an API token",
                 detail: "Enter it under “API token” at the bottom of the page, then try again." };
      case 413:
        return { title: "Too large", detail: said };
      case 415:
      case 422:
        return { title: "The request was not understood", detail: said };
      case 429: {
        const wait = error.retryAfter ? ` in ${error.retryAfter} s` : " in a moment";
        return { title: "The service is busy",
                 detail: `It is answering as many requests as it can right now. Try again${wait}.` };
      }
      case 501:
        return { title: "This backend does not offer that", detail: said };
      case 503:
        return { title: "The model server is unavailable",
                 detail: "The bridge is up but cannot reach the model server, or the model is still loading. " +
                         "Try again shortly." };
      case 504:
        return { title: "The model server did not answer in time",
                 detail: "It may be overloaded. Try again, or with a shorter text." };
      default:
        return { title: `Something went wrong (HTTP ${status})`, detail: said };
    }
  }

  function showError(element, error) {
    const { title, detail } = describe(error);
    const heading = document.createElement("strong");
    heading.textContent = title;
    const paragraph = document.createElement("p");
    paragraph.textContent = detail;
    element.replaceChildren(heading, paragraph);
    element.dataset.status = String(error.status !== undefined ? error.status : "");
    element.hidden = false;
  }

  function hideError(element) {
    element.hidden = true;
    element.replaceChildren();
  }

  function percent(probability) {
    return `${(100 * probability).toFixed(1)}%`;
  }

  // One row per class (`values`: {name: value}, or [name, value] pairs kept in their order): its name, a bar as
  // long as its share of `scale` above `floor` (0 to 1 for probabilities), the number.
  function renderBars(container, values, { highlight, format, scale = 1, floor = 0 } = {}) {
    const entries = Array.isArray(values) ? values : Object.entries(values);
    const rows = entries.map(([name, value]) => {
      const row = document.createElement("div");
      row.className = "bar-row" + (name === highlight ? " is-top" : "");
      row.dataset.label = name;
      row.dataset.value = String(value);
      const label = document.createElement("span");
      label.className = "bar-name";
      label.textContent = name;
      const track = document.createElement("span");
      track.className = "bar-track";
      const fill = document.createElement("span");
      fill.className = `bar-fill label-${name.replace(/[^a-z0-9_-]/gi, "")}`;
      fill.style.width = `${Math.max(0, Math.min(1, (value - floor) / (scale || 1))) * 100}%`;
      track.append(fill);
      const number = document.createElement("span");
      number.className = "bar-value";
      number.textContent = format ? format(value) : percent(value);
      row.append(label, track, number);
      return row;
    });
    container.replaceChildren(...rows);
  }

  async function showModel() {
    const pill = document.getElementById("model");
    try {
      const info = await call("GET", "v1/model");
      pill.textContent = `${info.model_name} · ${info.device}`;
      pill.classList.remove("down");
    } catch (error) {
      pill.textContent = error.status === 503 ? "model server unavailable" : "model: unknown";
      pill.classList.add("down");
    }
  }

  function setUpToken() {
    const input = document.getElementById("token");
    input.value = sessionStorage.getItem(TOKEN_KEY) || "";
    document.getElementById("token-form").addEventListener("submit", (event) => event.preventDefault());
    input.addEventListener("change", () => {
      if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
      else sessionStorage.removeItem(TOKEN_KEY);
      showModel();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpToken();
    if (document.getElementById("model")) showModel();
  });

  return { call, describe, showError, hideError, renderBars, percent, ApiError, authHeaders };
})();
