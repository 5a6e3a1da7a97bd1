// Governance on the page: the audit log, two-person resume requests, and role-aware buttons.
// Self-contained: it fills <section id="audit"> (absent: the log is not shown), reads GET api/session for
// the signed-in person's role and what it allows, GET api/audit and GET api/resume-requests every 15 s, and
// approves or withdraws requests with POST api/resume-requests/{id}/approve|cancel.
// Buttons the person may not press are hidden: any element with data-needs="<capability>[|<capability>]"
// (capabilities: the "can" map of api/session), and the page's fixed controls by id. The server refuses
// them anyway; hiding only spares people a button that cannot work.
// Everything from the server is rendered with textContent.
"use strict";

(() => {
  const REFRESH_MS = 15000;
  const FIXED = {
    "pause-all": "pause_global",
    "resume-all": "resume_global|request_resume_global",
    "scope-form": "pause",
    "schedule-form": "schedule",
  };
  let me = null; // api/session
  let root = null;
  let timer = null;

  const { el, request } = window.crisiswatch; // static/common.js

  function call(method, path, body) {
    return request(method, path, body, method !== "GET" && me ? me.csrf_token : null);
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
  }

  // --- role-aware buttons --------------------------------------------------------------------------
  function allowed(needs) {
    if (!me || !me.can) return true; // not known yet: leave the page as it is
    return needs.split("|").some((capability) => me.can[capability.trim()] === true);
  }

  function apply(node) {
    const hide = !allowed(node.dataset.needs || "");
    if (hide) node.style.setProperty("display", "none", "important");
    else if (node.dataset.roleHidden) node.style.removeProperty("display");
    if (hide) node.dataset.roleHidden = "1";
    else delete node.dataset.roleHidden;
  }

  function applyAll() {
    for (const [id, needs] of Object.entries(FIXED)) {
      const node = document.getElementById(id);
      if (node && !node.dataset.needs) node.dataset.needs = needs;
    }
    document.querySelectorAll("[data-needs]").forEach(apply);
    document.body.dataset.role = (me && me.role) || "";
    const reason = document.getElementById("reason");
    const label = document.querySelector('label[for="reason"]');
    if (me && me.reason_required && reason) {
      reason.required = true;
      if (label) label.textContent = "Reason (required, kept in the audit log)";
    }
  }

  new MutationObserver((changes) => {
    if (!me) return;
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (!(node instanceof Element)) continue;
        if (node.dataset.needs) apply(node);
        node.querySelectorAll("[data-needs]").forEach(apply);
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });

  // --- two-person resume requests ------------------------------------------------------------------
  function requestRow(request) {
    const actions = el("div", { class: "actions" });
    const reason = el("input", { maxlength: "500", placeholder: "Why it is safe to resume", "aria-label": "Reason" });
    if (request.you_may_approve) {
      const approve = el("button", { class: "safe small", type: "button", text: "Approve resume" });
      approve.addEventListener("click", () => decide(approve, request, "approve", reason.value));
      actions.append(reason, approve);
    } else if (me && request.requested_by === me.user) {
      actions.append(el("small", { class: "muted", text: "Waiting for a second person." }));
    }
    if (me && (request.requested_by === me.user || me.role === "admin")) {
      const cancel = el("button", { class: "link small", type: "button", text: "Withdraw" });
      cancel.addEventListener("click", () => decide(cancel, request, "cancel", ""));
      actions.append(cancel);
    }
    const minutes = Math.max(0, Math.round(request.expires_in_seconds / 60));
    return el(
      "li", { class: "resume-request" },
      el("strong", { text: `Resume ${request.scope}` }),
      document.createTextNode(` asked by ${request.requested_by}: `),
      document.createTextNode(request.reason),
      el("br"),
      el("small", { class: "muted", text: `Asked ${when(request.created_at)} · expires in ${minutes} min` }),
      actions,
    );
  }

  async function decide(button, request, action, reason) {
    button.disabled = true;
    try {
      await call("POST", `api/resume-requests/${encodeURIComponent(request.id)}/${action}`, reason ? { reason } : {});
      message(action === "approve" ? `Publishing in ${request.scope} resumed.` : "Request withdrawn.");
    } catch (e) {
      message(e.message);
    }
    button.disabled = false;
    await refresh();
  }

  // --- the audit log -----------------------------------------------------------------------------------
  const ACTIONS = {
    pause: "paused",
    resume: "resumed",
    schedule_add: "planned a pause of",
    schedule_remove: "removed a planned pause of",
    resume_requested: "asked to resume",
    resume_approved: "approved resuming",
    resume_cancelled: "withdrew the resume request for",
    silence_add: "silenced alerts of",
    silence_remove: "removed a silence of",
  };

  function auditRow(record) {
    const verified = record.verified
      ? el("span", { class: "muted", title: "Signature verified", text: "✔ verified" })
      : el("strong", { class: "error", title: record.problem || "", text: "⚠ cannot be verified" });
    const who = record.actor || "?";
    const what = ACTIONS[record.action] || record.action || "?";
    const extra = record.requested_by && record.requested_by !== who ? ` (asked by ${record.requested_by})` : "";
    return el(
      "tr", {},
      el("td", { text: when(record.at || record.logged_at) }),
      el("td", {}, el("strong", { text: who }), document.createTextNode(` ${what} ${record.scope || "?"}${extra}`)),
      el("td", { text: record.reason || "" }),
      el("td", {}, verified),
    );
  }

  function message(text) {
    const p = root && root.querySelector(".audit-message");
    if (p) p.textContent = text || "";
  }

  function build() {
    const since = el("select", { class: "audit-since", "aria-label": "Show the last" });
    for (const [value, label] of [["2h", "2 hours"], ["24h", "24 hours"], ["7d", "7 days"], ["30d", "30 days"]]) {
      since.append(el("option", { value, text: label, selected: value === "24h" }));
    }
    since.addEventListener("change", refresh);
    root.replaceChildren(
      el("h2", { id: "audit-title", text: "Who did what" }),
      el("div", { class: "resume-requests" }),
      el("p", { class: "audit-controls" }, el("label", { text: "Show the last " }), since),
      el("div", { class: "audit-list" }, el("p", { class: "muted", text: "Loading…" })),
      el("p", { class: "audit-message error", role: "status" }),
    );
    root.setAttribute("aria-labelledby", "audit-title");
  }

  function renderRequests(data) {
    const box = root.querySelector(".resume-requests");
    box.replaceChildren();
    if (!data.requests.length) return;
    box.append(
      el("h3", { text: "Waiting for a second person" }),
      el("ul", { class: "plain" }, ...data.requests.map(requestRow)),
    );
  }

  function renderAudit(data) {
    const list = root.querySelector(".audit-list");
    list.replaceChildren();
    const records = data.records.slice().reverse(); // newest first
    if (!records.length) {
      list.append(el("p", { class: "muted", text: "Nothing changed in this period." }));
      return;
    }
    if (data.unverified) {
      list.append(el("p", { class: "error", text: `${data.unverified} record(s) cannot be verified: do not trust them.` }));
    }
    const head = el("tr", {}, ...["When", "Who and what", "Why", ""].map((t) => el("th", { text: t })));
    list.append(el("table", { class: "table" }, el("thead", {}, head), el("tbody", {}, ...records.map(auditRow))));
  }

  async function refresh() {
    try {
      me = await call("GET", "api/session");
    } catch (e) {
      me = null; // signed out: app.js shows the login form
      return;
    }
    applyAll();
    if (!root) return;
    const since = root.querySelector(".audit-since").value;
    try {
      const [requests, audit] = await Promise.all([
        call("GET", "api/resume-requests"),
        call("GET", `api/audit?since=${encodeURIComponent(since)}&limit=100`),
      ]);
      renderRequests(requests);
      renderAudit(audit);
      message("");
    } catch (e) {
      message(e.message);
    }
  }

  function start() {
    root = document.getElementById("audit");
    if (root) build();
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
    // Sign-in happens without a reload: look again soon after any click or submit.
    document.addEventListener("submit", () => setTimeout(refresh, 800), true);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
