// crisiswatch page: state of every scope, one big "Pause all" button, alerts with evidence, schedules.
// Everything the server sends is rendered with textContent (mentions are attacker-controlled text).
"use strict";

const REFRESH_MS = 2500;
const session = { user: null, csrf: null, timer: null, globalPaused: null };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- tiny helpers ---------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const minutes = Math.round((Date.now() - date.getTime()) / 60000);
  let ago = "";
  if (minutes >= 0 && minutes < 1) ago = "just now";
  else if (minutes >= 1 && minutes < 120) ago = `${minutes} min ago`;
  else if (minutes >= 120 && minutes < 48 * 60) ago = `${Math.round(minutes / 60)} h ago`;
  const time = date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  return ago ? `${time} (${ago})` : time;
}

function flash(text, bad) {
  const node = $("flash");
  node.textContent = text;
  node.classList.toggle("bad", Boolean(bad));
}

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET" && session.csrf) options.headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 401 && path !== "api/login") {
    showLogin();
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || response.statusText);
  }
  return data;
}

async function withBusy(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    flash(error.message || String(error), true);
  } finally {
    button.disabled = false;
  }
}

// --- login ------------------------------------------------------------------------------------------
function showLogin() {
  clearInterval(session.timer);
  session.timer = null;
  session.user = session.csrf = null;
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("username").focus();
}

function showApp(user, csrf) {
  session.user = user;
  session.csrf = csrf;
  $("user").textContent = user;
  $("who").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;
  refresh();
  clearInterval(session.timer);
  session.timer = setInterval(refresh, REFRESH_MS);
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const button = $("login-button");
  button.disabled = true;
  try {
    const data = await api("POST", "api/login", { username: $("username").value, password: $("password").value });
    $("password").value = "";
    showApp(data.user, data.csrf_token);
  } catch (error) {
    $("login-error").textContent = error.status === 429 ? "Too many attempts, wait a minute." : error.message;
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api("POST", "api/logout");
  } finally {
    showLogin();
  }
}

// --- rendering ------------------------------------------------------------------------------------
function renderHero(state, alerts) {
  const hero = $("hero");
  const global = state.global;
  const others = state.scopes.filter((s) => s.paused && s.scope !== "global");
  hero.classList.remove("state-active", "state-partial", "state-paused");
  let label;
  let detail;
  if (global.paused) {
    hero.classList.add("state-paused");
    label = "PAUSED everywhere";
    detail = `Paused by ${global.actor} · ${when(global.since)} · ${global.reason}`;
    if (global.resume_at) detail += ` · resumes by itself ${when(global.resume_at)}`;
  } else if (others.length) {
    hero.classList.add("state-partial");
    label = "LIVE";
    detail = `Except ${others.length} paused: ` + others.map((s) => `${s.name} (${s.scope})`).join(", ");
  } else {
    hero.classList.add("state-active");
    label = "LIVE";
    detail = "Nothing is paused. Posts go out as planned.";
  }
  $("hero-state").textContent = label;
  $("hero-detail").textContent = detail;
  $("pause-all").hidden = global.paused;
  $("resume-box").hidden = !global.paused;
  if (session.globalPaused !== global.paused) $("resume-confirm").hidden = true;
  session.globalPaused = global.paused;

  const firing = alerts.filter((a) => a.status === "firing");
  const heroAlerts = $("hero-alerts");
  heroAlerts.hidden = firing.length === 0;
  heroAlerts.textContent = firing.length
    ? `${firing.length} alert${firing.length > 1 ? "s" : ""} firing: ` +
      firing.map((a) => `${a.brand} (${a.peak_severity})`).join(", ")
    : "";
}

function scopeButton(scope) {
  if (scope.paused) {
    const needs = scope.scope === "global" ? "resume_global|request_resume_global" : "resume"; // audit.js hides
    const button = el("button", { class: "safe small", type: "button", dataset: { scope: scope.scope, needs } }, "Resume");
    button.addEventListener("click", () => confirmThen(button, "Confirm resume", () => change("resume", scope.scope, button)));
    return button;
  }
  const needs = scope.scope === "global" ? "pause_global" : "pause";
  const button = el("button", { class: "danger small", type: "button", dataset: { scope: scope.scope, needs } }, "Pause");
  button.addEventListener("click", () => change("pause", scope.scope, button));
  return button;
}

function renderScopes(state) {
  const body = $("scopes").querySelector("tbody");
  const rows = state.scopes.map((s) =>
    el(
      "tr",
      { dataset: { scope: s.scope, state: s.state } },
      el("td", {}, el("div", { class: "scope-name" }, s.name), el("div", { class: "scope-id" }, s.scope)),
      el("td", {}, el("span", { class: `pill ${s.paused ? "paused" : "active"}` }, s.paused ? "PAUSED" : "live")),
      el(
        "td",
        {},
        s.actor ? `${s.paused ? "Paused" : "Resumed"} by ${s.actor}, ${when(s.since)}` : "Never paused",
        s.reason ? el("div", { class: "muted" }, s.reason) : null,
        s.resume_at && s.paused ? el("div", { class: "muted" }, `Resumes ${when(s.resume_at)}`) : null,
      ),
      el("td", { class: "actions" }, scopeButton(s)),
    ),
  );
  body.replaceChildren(...rows);
}

function safeLink(url, text) {
  if (typeof url === "string" && /^https?:\/\//i.test(url)) {
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
  }
  return text;
}

function renderAlert(alert) {
  const classes = `alert ${alert.status} ${alert.peak_severity}`;
  const severity = alert.status === "resolved" ? "resolved" : alert.peak_severity;
  const node = el(
    "article",
    { class: classes, id: `alert-${alert.alert_id}`, dataset: { alertId: alert.alert_id } },
    el(
      "div",
      { class: "alert-head" },
      el("span", { class: "alert-brand" }, alert.brand),
      el("span", { class: `pill ${severity}` }, alert.status === "resolved" ? `resolved (${alert.peak_severity})` : alert.peak_severity.toUpperCase()),
      alert.pause && alert.status === "firing" ? el("span", { class: "pill on" }, "pause requested") : null,
      el("span", { class: "alert-time" }, `started ${when(alert.started_at)}`),
    ),
    alert.evidence_of === "peak"
      ? [
          el("p", { class: "alert-summary" }, `At its peak (${when(alert.peak_at)}): ${alert.peak_summary}`),
          el("p", { class: "muted resolved-by" }, `Resolved: ${alert.summary}`),
        ]
      : el("p", { class: "alert-summary" }, alert.summary),
    el("ul", { class: "reasons" }, alert.reasons.filter((r) => r !== alert.peak_summary).map((r) => el("li", {}, r))),
    el("dl", { class: "facts" }, alert.facts.map((f) => [el("dt", {}, f.label), el("dd", {}, f.value)])),
  );
  if (alert.top_mentions.length) {
    node.append(
      el("div", { class: "muted" }, "Top mentions by reach"),
      el(
        "ul",
        { class: "mentions" },
        alert.top_mentions.map((m) =>
          el(
            "li",
            {},
            safeLink(m.url, m.text),
            el("div", { class: "mention-meta" }, `${m.source} · reach ${m.reach.toLocaleString()} · ${m.lang} · ${m.sentiment}`),
          ),
        ),
      ),
    );
  }
  for (const ack of alert.acks) {
    node.append(el("p", { class: "acks" }, `✔ ${ack.actor} is on it (${when(ack.at)})${ack.note ? ": " + ack.note : ""}`));
  }
  if (alert.status === "firing") {
    const note = el("input", { placeholder: "What are you doing about it? (optional)", maxlength: 500, "aria-label": "note" });
    const button = el("button", { class: "primary small ack", type: "button", dataset: { needs: "ack" } }, "I'm on it");
    button.addEventListener("click", () =>
      withBusy(button, async () => {
        await api("POST", `api/alerts/${encodeURIComponent(alert.alert_id)}/ack`, { note: note.value });
        note.value = "";
        button.blur();
        flash(`Acknowledged ${alert.brand} alert.`);
        await refresh();
      }),
    );
    node.append(el("div", { class: "ack-form" }, note, button));
  }
  return node;
}

function renderAlerts(alerts) {
  const box = $("alerts");
  const active = document.activeElement;
  const typing = active && box.contains(active) && active.tagName === "INPUT" && active.value;
  if (typing) return; // don't wipe a note someone is typing; a later refresh catches up
  if (!alerts.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No alerts. Quiet is good."));
    return;
  }
  box.replaceChildren(...alerts.map(renderAlert));
  const target = decodeURIComponent((location.hash.match(/alert=([^&]+)/) || [])[1] || "");
  if (target) {
    const node = document.getElementById(`alert-${target}`);
    if (node) node.classList.add("focus");
  }
}

function describeSchedule(s) {
  if (s.cron) return `cron "${s.cron}" (${s.timezone}), ${(s.duration_seconds / 3600).toFixed(1)} h each`;
  return `${when(s.start)} → ${when(s.end)}`;
}

function renderSchedules(schedules) {
  const box = $("schedules");
  if (!schedules.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No planned pauses."));
    return;
  }
  const rows = schedules.map((s) => {
    const needs = s.scope === "global" ? "schedule_global" : "schedule";
    const remove = el("button", { class: "link small", type: "button", dataset: { needs } }, "Remove");
    remove.addEventListener("click", () =>
      confirmThen(remove, "Confirm remove", () =>
        withBusy(remove, async () => {
          await api("DELETE", `api/schedules/${encodeURIComponent(s.id)}`);
          flash(`Removed planned pause ${s.id}.`);
          await refresh();
        }),
      ),
    );
    return el(
      "tr",
      { dataset: { schedule: s.id } },
      el("td", {}, el("div", { class: "scope-name" }, s.id), el("div", { class: "scope-id" }, s.scope)),
      el("td", {}, describeSchedule(s), el("div", { class: "muted" }, s.reason),
        s.active_now ? el("span", { class: "pill paused" }, "in force now") : null),
      el("td", { class: "actions" }, remove),
    );
  });
  box.replaceChildren(el("table", { class: "table" }, el("tbody", {}, rows)));
}

// --- actions ----------------------------------------------------------------------------------------
function confirmThen(button, label, action) {
  if (button.dataset.armed === "1") {
    button.dataset.armed = "";
    action();
    return;
  }
  const original = button.textContent;
  button.dataset.armed = "1";
  button.textContent = label;
  setTimeout(() => {
    button.dataset.armed = "";
    button.textContent = original;
  }, 5000);
}

async function change(action, scope, button) {
  await withBusy(button, async () => {
    const body = { scope };
    const reason = $("reason").value.trim();
    if (reason) body.reason = reason;
    const result = await api("POST", `api/${action}`, body);
    const what = scope === "global" ? "all publishing" : scope;
    const done = action === "pause" ? `Paused ${what}.` : `Resumed ${what}.`;
    flash(result.changed ? done : `No change: ${result.note}`, !result.changed);
    await refresh();
  });
}

function localToIso(value) {
  return value ? new Date(value).toISOString() : null;
}

async function addSchedule(event) {
  event.preventDefault();
  const button = event.submitter || event.target.querySelector("button");
  const recurring = document.querySelector("input[name=s-kind]:checked").value === "recurring";
  const body = {
    id: $("s-id").value.trim(),
    reason: $("s-reason").value.trim(),
    scope: $("s-scope").value.trim() || "global",
    on_resume: $("s-onresume").value,
  };
  if (recurring) {
    body.cron = $("s-cron").value.trim();
    body.duration_seconds = Math.round(parseFloat($("s-hours").value) * 3600);
    body.timezone = $("s-tz").value.trim() || "UTC";
  } else {
    body.start = localToIso($("s-start").value);
    body.end = localToIso($("s-end").value);
  }
  await withBusy(button, async () => {
    await api("POST", "api/schedules", body);
    flash(`Planned pause ${body.id} added.`);
    event.target.reset();
    toggleKind();
    await refresh();
  });
}

function toggleKind() {
  const recurring = document.querySelector("input[name=s-kind]:checked").value === "recurring";
  $("s-once").hidden = recurring;
  $("s-recurring").hidden = !recurring;
}

// --- refresh loop -----------------------------------------------------------------------------------
let refreshing = false;

async function refresh() {
  if (refreshing || !session.user) return;
  refreshing = true;
  try {
    const [state, alerts, schedules] = await Promise.all([
      api("GET", "api/state"),
      api("GET", "api/alerts?limit=30"),
      api("GET", "api/schedules"),
    ]);
    renderHero(state, alerts.alerts);
    renderScopes(state);
    renderAlerts(alerts.alerts);
    renderSchedules(schedules.schedules);
    $("offline").hidden = true;
    $("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (error) {
    if (error.status !== 401) $("offline").hidden = false;
  } finally {
    refreshing = false;
  }
}

// --- start ------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("pause-all").addEventListener("click", () => change("pause", "global", $("pause-all")));
  $("resume-all").addEventListener("click", () => {
    $("resume-confirm").hidden = false;
    $("resume-yes").focus();
  });
  $("resume-no").addEventListener("click", () => {
    $("resume-confirm").hidden = true;
  });
  $("resume-yes").addEventListener("click", async () => {
    await change("resume", "global", $("resume-yes"));
    $("resume-confirm").hidden = true;
  });
  $("scope-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await change("pause", $("scope-input").value.trim(), event.target.querySelector("button"));
    event.target.reset();
  });
  $("schedule-form").addEventListener("submit", addSchedule);
  for (const radio of document.querySelectorAll("input[name=s-kind]")) radio.addEventListener("change", toggleKind);
  try {
    $("s-tz").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (_) {
    /* keep UTC */
  }
  try {
    const me = await api("GET", "api/session");
    showApp(me.user, me.csrf_token);
  } catch (_) {
    showLogin();
  }
});
