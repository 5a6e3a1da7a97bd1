// Small helpers shared by the page's self-contained sections (static/audit.js, static/silences.js).
// Loaded by index.html before them; it only defines window.crisiswatch.el and window.crisiswatch.request.
"use strict";

window.crisiswatch = (() => {
  // A DOM element: attrs.text becomes textContent (never HTML); true sets an empty attribute, null/false none.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  // A JSON call to the page's API with the session cookie; csrf (when given) goes in X-CSRF-Token.
  // A response that is not ok throws an Error with the server's "error" text and the HTTP status.
  async function request(method, path, body, csrf) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (csrf) options.headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, options);
    let data = {};
    try { data = await response.json(); } catch (_) { /* empty body */ }
    if (!response.ok) {
      const error = new Error(data.error || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  return { el, request };
})();
