// Silences for planned events: a small, self-contained section of the page.
// It fills <section id="silences"> (absent: does nothing), reads GET api/silences every 15 s, adds with
// POST api/silences and removes with DELETE api/silences/{id}. During a silence the brand's alerts still
// arrive, marked "silenced", and never pause publishing.
"use strict";

(() => {
  const REFRESH_MS = 15000;
  let csrf = null;
  let root = null;

  const { el, request } = window.crisiswatch; // static/common.js

  async function call(method, path, body) {
    if (method !== "GET" && !csrf) {
      const me = await call("GET", "api/session");
      csrf = me.csrf_token;
    }
    return request(method, path, body, method !== "GET" ? csrf : null);
  }

  function when(iso) {
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function row(s) {
    const state = s.active_now ? "active now" : s.over ? "over" : "planned";
    const remove = el("button", { class: "link small", type: "button", text: "Remove" });
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove the silence of ${s.brand} (${s.reason})?`)) return;
      remove.disabled = true;
      try {
        await call("DELETE", `api/silences/${encodeURIComponent(s.id)}`);
        await refresh();
      } catch (e) {
        message(e.message);
        remove.disabled = false;
      }
    });
    return el(
      "tr", {},
      el("td", {}, el("strong", { text: s.brand }), el("br"), el("small", { class: "muted", text: s.id })),
      el("td", { text: `${when(s.start)} – ${when(s.end)}` }),
      el("td", { text: state }),
      el("td", {}, document.createTextNode(s.reason), el("br"), el("small", { class: "muted", text: `by ${s.created_by}` })),
      el("td", { class: "actions" }, remove),
    );
  }

  function message(text) {
    const p = root.querySelector(".silence-message");
    if (p) p.textContent = text || "";
  }

  function render(silences) {
    const list = root.querySelector(".silence-list");
    list.replaceChildren();
    if (!silences.length) {
      list.append(el("p", { class: "muted", text: "No silences planned." }));
      return;
    }
    const head = el("tr", {}, ...["Brand", "When", "Now", "Reason", ""].map((t) => el("th", { text: t })));
    list.append(el("table", { class: "table" }, el("thead", {}, head), el("tbody", {}, ...silences.map(row))));
  }

  function build() {
    const form = el(
      "form", { class: "stack" },
      el("label", { for: "silence-brand", text: "Brand id" }),
      el("input", { id: "silence-brand", required: true, maxlength: "128", placeholder: "acme" }),
      el("label", { for: "silence-reason", text: "Planned event" }),
      el("input", { id: "silence-reason", required: true, maxlength: "500", placeholder: "product launch" }),
      el("label", { for: "silence-from", text: "From (now, 30m, or a time with zone)" }),
      el("input", { id: "silence-from", value: "now", required: true }),
      el("label", { for: "silence-until", text: "Until (a duration like 2h, or a time with zone)" }),
      el("input", { id: "silence-until", required: true, placeholder: "2h" }),
      el("button", { class: "primary", type: "submit", text: "Add silence" }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = (id) => root.querySelector(`#${id}`).value.trim();
      try {
        await call("POST", "api/silences", {
          brand: value("silence-brand"), reason: value("silence-reason"),
          from: value("silence-from") || "now", until: value("silence-until"),
        });
        form.reset();
        root.querySelector("#silence-from").value = "now";
        message("");
        await refresh();
      } catch (e) {
        message(e.message);
      }
    });
    root.replaceChildren(
      el("h2", { id: "silences-title", text: "Silences (planned events)" }),
      el("p", { class: "muted", text: "During a silence the brand's alerts still arrive, marked silenced, and never pause publishing." }),
      el("div", { class: "silence-list" }, el("p", { class: "muted", text: "Loading…" })),
      el("details", {}, el("summary", { text: "Silence a brand" }), form),
      el("p", { class: "error silence-message", role: "alert" }),
    );
    root.setAttribute("aria-labelledby", "silences-title");
  }

  async function refresh() {
    try {
      const data = await call("GET", "api/silences");
      root.hidden = false;
      render(data.silences || []);
    } catch (e) {
      if (e.status === 401) {
        root.hidden = true;
        csrf = null;
      } else {
        message(e.message);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    root = document.getElementById("silences");
    if (!root) return;
    root.hidden = true;
    build();
    refresh();
    window.setInterval(refresh, REFRESH_MS);
  });
})();
