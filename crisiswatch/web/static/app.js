// crisiswatch page: state of every scope, one big "Pause all" button, a chart per brand, alerts a PR person
// reads in ten seconds (plain headline, trend, the evidence once, statistics behind <details>), schedules,
// and a resume dialog that shows the held posts and asks what to do with them.
// Everything the server sends is rendered with textContent (mentions are attacker-controlled text).
"use strict";

const REFRESH_MS = 2500;
const TIMELINE_MS = 10000;
const session = { user: null, csrf: null, timer: null, globalPaused: null };
const view = {
  state: null,
  alerts: [],
  timelines: new Map(), // brand -> timeline JSON (api/timelines)
  timelinesAt: 0,
  hours: 6,
  brandCharts: new Map(), // brand -> {node, chart}
  cards: new Map(), // alert_id -> {node, chart, signature}
  held: null, // api/held (null: not asked yet; {missing: true}: 404)
  resumeScope: null,
};

class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
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
    const retry = parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(response.status, (data && data.error) || response.statusText, Number.isFinite(retry) ? retry : null);
  }
  return data;
}

async function withBusy(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    flash(explain(error), true);
  } finally {
    button.disabled = false;
  }
}

function explain(error) {
  if (error.status === 429 && error.retryAfter) return `Too many changes in a minute. Try again in ${waitWords(error.retryAfter)}.`;
  return error.message || String(error);
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
    $("login-error").textContent = error.status === 429 ? tooMany(error.retryAfter) : error.message;
  } finally {
    button.disabled = false;
  }
}

// The wait the server asks for (Retry-After, seconds) in words.
function waitWords(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  return `${Math.round(seconds / 3600)} hours`;
}

function tooMany(seconds) {
  if (!seconds) return "Too many attempts. Wait a little before trying again.";
  return `Too many attempts. Try again in ${waitWords(seconds)}.`;
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
  if (session.globalPaused !== global.paused && view.resumeScope === "global") closeResume();
  session.globalPaused = global.paused;

  const notes = resolvedButPaused(state, alerts);
  $("hero-resume-note").hidden = notes.length === 0;
  $("hero-resume-note").textContent = notes.join(" ");

  const firing = alerts.filter((a) => a.status === "firing");
  const heroAlerts = $("hero-alerts");
  heroAlerts.hidden = firing.length === 0;
  heroAlerts.textContent = firing.length
    ? `${firing.length} alert${firing.length > 1 ? "s" : ""} firing: ` +
      firing.map((a) => `${a.name || a.brand} (${a.peak_severity})`).join(", ")
    : "";
}

// "The crisis is over but publishing stays paused": for each paused scope whose alert episode has resolved.
function resolvedButPaused(state, alerts) {
  const byId = new Map(alerts.map((a) => [a.alert_id, a]));
  const firing = alerts.some((a) => a.status === "firing");
  const notes = [];
  for (const scope of state.scopes) {
    if (!scope.paused) continue;
    const alert = byId.get(scope.alert_id) || byId.get(scope.episode);
    const where = scope.scope === "global" ? "everywhere" : `for ${scope.name}`;
    if (alert && alert.status === "resolved") {
      notes.push(`The ${alert.name || alert.brand} alert has resolved, but publishing stays paused ${where} until a person resumes it.`);
    } else if (!alert && scope.alert_id && !firing) {
      notes.push(`No alert is firing any more, but publishing stays paused ${where} until a person resumes it.`);
    }
  }
  return notes;
}

function scopeButton(scope) {
  if (scope.paused) {
    const needs = scope.scope === "global" ? "resume_global|request_resume_global" : "resume"; // audit.js hides
    const button = el("button", { class: "safe small", type: "button", dataset: { scope: scope.scope, needs } }, "Resume");
    button.addEventListener("click", () => openResume(scope.scope));
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

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function percent(value) {
  return value === null || value === undefined ? "?" : `${Math.round(value * 100)}%`;
}

// One window in numbers, for people: "Now (window ending 12:59): 49 mentions/min · 8× usual · 66% negative (usually 15%) · risk 85".
function latestLine(latest, label = "Now") {
  if (!latest) return null;
  const parts = [`${Math.round(latest.per_minute * 10) / 10} mentions/min`];
  if (latest.ratio) parts.push(latest.ratio >= 2 ? `${Math.round(latest.ratio)}× usual` : `${latest.ratio.toFixed(1)}× usual`);
  parts.push(`${percent(latest.negative_share)} negative (usually ${percent(latest.usual_share)})`);
  parts.push(`risk ${Math.round(latest.risk)}`);
  if (latest.trend && label === "Now") parts.push({ rising: "still rising", falling: "falling", steady: "steady" }[latest.trend]);
  return el(
    "p",
    { class: "latest" },
    el("span", { class: "latest-when" }, `${label} (window ending ${clock(latest.end)}): `),
    parts.join(" · "),
  );
}

// --- charts --------------------------------------------------------------------------------------
function chartReady() {
  return typeof window.uPlot === "function" && window.CrisisCharts;
}

function renderBrandCharts() {
  const box = $("brand-charts");
  if (!chartReady()) return;
  const timelines = [...view.timelines.values()];
  if (!timelines.length) {
    for (const { chart } of view.brandCharts.values()) chart.destroy();
    view.brandCharts.clear();
    box.replaceChildren(el("p", { class: "muted" }, "No brand has data yet. Charts appear once the pipeline closes its first windows."));
    return;
  }
  const paused = new Set((view.state ? view.state.paused_scopes : []) || []);
  const wanted = new Set(timelines.map((t) => t.brand));
  for (const [brand, entry] of view.brandCharts) {
    if (!wanted.has(brand)) {
      entry.chart.destroy();
      entry.node.remove();
      view.brandCharts.delete(brand);
    }
  }
  if (box.querySelector("p.muted")) box.replaceChildren();
  for (const timeline of timelines) {
    let entry = view.brandCharts.get(timeline.brand);
    if (!entry) {
      const node = el(
        "article",
        { class: "brand", dataset: { brand: timeline.brand } },
        el("div", { class: "brand-head" }, el("h3", { class: "brand-name" }, timeline.name), el("span", { class: "brand-state" })),
        el("p", { class: "brand-headline" }),
        el("div", { class: "brand-latest" }),
        el("div", { class: "brand-chart" }),
      );
      box.append(node);
      const chart = window.CrisisCharts.create(node.querySelector(".brand-chart"), timeline);
      entry = { node, chart };
      view.brandCharts.set(timeline.brand, entry);
    } else {
      entry.chart.update(timeline);
    }
    const isPaused = paused.has(`brand:${timeline.brand}`) || paused.has("global");
    const state = entry.node.querySelector(".brand-state");
    state.className = `brand-state pill ${isPaused ? "paused" : "active"}`;
    state.textContent = isPaused ? "publishing paused" : "publishing live";
    entry.node.querySelector(".brand-headline").textContent = timeline.headline ? `${timeline.headline}.` : "";
    entry.node.querySelector(".brand-latest").replaceChildren(latestLine(timeline.latest) || "");
  }
}

async function refreshTimelines(force) {
  if (!force && Date.now() - view.timelinesAt < TIMELINE_MS) return;
  view.timelinesAt = Date.now();
  try {
    const data = await api("GET", `api/timelines?hours=${view.hours}`);
    view.timelines = new Map(data.timelines.map((t) => [t.brand, t]));
  } catch (error) {
    if (error.status === 404) {
      $("brand-charts").replaceChildren(el("p", { class: "muted" }, "Charts are not available from this server."));
      return;
    }
    throw error;
  }
  renderBrandCharts();
}

// --- alert cards ---------------------------------------------------------------------------------
function ackBox(alert) {
  if (alert.status !== "firing") return null;
  const note = el("input", { placeholder: "What are you doing? (optional)", maxlength: 500, "aria-label": "note" });
  const button = el("button", { class: "primary small ack", type: "button", dataset: { needs: "ack" } }, "I'm on it");
  button.addEventListener("click", () =>
    withBusy(button, async () => {
      await api("POST", `api/alerts/${encodeURIComponent(alert.alert_id)}/ack`, { note: note.value });
      note.value = "";
      button.blur();
      flash(`Acknowledged the ${alert.name || alert.brand} alert.`);
      await refresh();
    }),
  );
  return el("div", { class: "ack-form" }, button, note);
}

function alertSignature(alert, timeline) {
  const latest = timeline && timeline.latest ? timeline.latest.end : null;
  const marks = timeline ? timeline.marks.length : 0;
  return JSON.stringify([alert.status, alert.peak_severity, alert.severity, alert.headline, alert.acks, alert.updated_at, latest, marks,
    alertSilence(alert), brandPaused(alert.brand)]);
}

// The planned event's silence that covered the alert's newest window, or null. The evidence is typed
// (detectors.evidence.Evidence, alert.v1.json): every alert the API returns carries it, silence null or set.
function alertSilence(alert) {
  return alert.alert.evidence.silence;
}

// Publishing of the brand is paused already (its own scope, or everything).
function brandPaused(brand) {
  const paused = (view.state && view.state.paused_scopes) || [];
  return paused.includes(`brand:${brand}`) || paused.includes("global");
}

// "pause requested" until the brand's publishing is paused (by the policy, a person or a pause of everything).
function pausePill(alert, resolved) {
  if (brandPaused(alert.brand) && (alert.pause || !resolved)) return el("span", { class: "pill paused" }, "publishing paused");
  return alert.pause && !resolved ? el("span", { class: "pill on" }, "pause requested") : null;
}

function silencePill(silence) {
  if (!silence) return null;
  const text = `Silenced: ${silence.reason}, until ${when(silence.end)} — will not pause`;
  return el("span", { class: "pill silenced", title: `Planned by ${silence.by}` }, text);
}

function renderAlert(alert, timeline) {
  const resolved = alert.status === "resolved";
  const name = alert.name || alert.brand;
  const severity = resolved ? "resolved" : alert.peak_severity;
  const acks = alert.acks.map((ack) =>
    el("p", { class: "acks" }, `✔ ${ack.actor} is on it (${when(ack.at)})${ack.note ? ": " + ack.note : ""}`),
  );
  const mentions = alert.top_mentions.slice(0, 3);
  const node = el(
    "article",
    { class: `alert ${alert.status} ${alert.peak_severity}`, id: `alert-${alert.alert_id}`, dataset: { alertId: alert.alert_id } },
    el(
      "div",
      { class: "alert-head" },
      el("span", { class: "alert-brand" }, name),
      el("span", { class: `pill ${severity}` }, resolved ? `resolved (was ${alert.peak_severity})` : alert.peak_severity.toUpperCase()),
      pausePill(alert, resolved),
      silencePill(alertSilence(alert)),
      el("span", { class: "alert-time" }, `started ${when(alert.started_at)}`),
    ),
    ackBox(alert),
    acks,
    el("p", { class: "alert-headline" }, resolved ? `At its peak: ${alert.peak_headline}.` : `${alert.headline}.`),
    resolved ? el("p", { class: "muted resolved-by" }, `Resolved ${when(alert.updated_at)}.`) : null,
    resolved ? latestLine(alert.peak, "At its peak") : null,
    latestLine(alert.latest),
    el("div", { class: "alert-chart" }),
    mentions.length
      ? el(
          "div",
          { class: "evidence" },
          el("h4", {}, "What people are saying"),
          el(
            "ul",
            { class: "mentions" },
            mentions.map((m) =>
              el(
                "li",
                {},
                safeLink(m.url, m.text),
                el("div", { class: "mention-meta" }, `${m.source} · reach ${m.reach.toLocaleString()} · ${m.lang} · ${m.sentiment}`),
              ),
            ),
          ),
        )
      : null,
    el(
      "details",
      { class: "stats" },
      el("summary", {}, "The numbers behind it"),
      el("ul", { class: "reasons" }, alert.reasons.map((r) => el("li", {}, r))),
      el("dl", { class: "facts" }, alert.facts.map((f) => [el("dt", {}, f.label), el("dd", {}, f.value)])),
    ),
  );
  let chart = null;
  if (timeline && timeline.columns.start.length && chartReady()) {
    const from = Date.parse(alert.started_at) / 1000 - 30 * 60;
    chart = { node: node.querySelector(".alert-chart"), timeline, from };
  } else {
    node.querySelector(".alert-chart").remove();
  }
  return { node, chart };
}

function renderAlerts(alerts) {
  const box = $("alerts");
  const active = document.activeElement;
  const typing = active && box.contains(active) && active.tagName === "INPUT" && active.value;
  if (typing) return; // don't wipe a note someone is typing; a later refresh catches up
  if (!alerts.length) {
    for (const card of view.cards.values()) if (card.chart) card.chart.destroy();
    view.cards.clear();
    box.replaceChildren(el("p", { class: "muted" }, "No alerts. Quiet is good."));
    return;
  }
  const nodes = [];
  const seen = new Set();
  for (const alert of alerts) {
    const timeline = view.timelines.get(alert.brand);
    const signature = alertSignature(alert, timeline);
    let card = view.cards.get(alert.alert_id);
    if (!card || card.signature !== signature) {
      if (card && card.chart) card.chart.destroy();
      const opened = card ? card.node.querySelector("details.stats").open : false; // keep what a person opened
      const built = renderAlert(alert, timeline);
      built.node.querySelector("details.stats").open = opened;
      card = { node: built.node, pending: built.chart, chart: null, signature };
      view.cards.set(alert.alert_id, card);
    }
    seen.add(alert.alert_id);
    nodes.push(card.node);
  }
  for (const [id, card] of view.cards) {
    if (!seen.has(id)) {
      if (card.chart) card.chart.destroy();
      view.cards.delete(id);
    }
  }
  box.replaceChildren(...nodes);
  for (const card of view.cards.values()) {
    if (card.pending) {
      const { node, timeline, from } = card.pending;
      card.chart = window.CrisisCharts.create(node, timeline, { compact: true, from });
      card.pending = null;
    }
  }
  const target = decodeURIComponent((location.hash.match(/alert=([^&]+)/) || [])[1] || "");
  if (target) {
    const node = document.getElementById(`alert-${target}`);
    if (node) node.classList.add("focus");
  }
}

// --- resume dialog -------------------------------------------------------------------------------
const CHOICES = ["hold", "skip", "review"];

async function loadHeld() {
  try {
    view.held = await api("GET", "api/held");
  } catch (error) {
    view.held = error.status === 404 ? { missing: true } : { failed: error.message };
  }
  return view.held;
}

function heldText(held, scope) {
  if (!held || held.missing) return "Held posts: unknown (this server does not follow the publishers' counts).";
  if (held.failed) return `Held posts: unknown (${held.failed}).`;
  if (held.known === false) return "Held posts: not known yet (still reading the publishers' reports).";
  const row = (held.scopes || {})[scope];
  if (!row || (!row.held && !row.awaiting_review)) return "Held posts: none. No publisher holds posts for this scope.";
  let text = `Held posts: ${row.held} ${row.held === 1 ? "post is" : "posts are"} waiting`;
  if (row.awaiting_review) text += `, ${row.awaiting_review} awaiting review`;
  text += ` (${row.publishers} publisher${row.publishers === 1 ? "" : "s"}`;
  if (held.as_of) text += `, as of ${new Date(held.as_of).toLocaleTimeString()}`;
  return `${text}).`;
}

function scopeChoice(held, scope) {
  const row = held && held.scopes ? held.scopes[scope] : null;
  if (row && CHOICES.includes(row.on_resume)) return row.on_resume;
  const state = view.state && view.state.scopes.find((s) => s.scope === scope);
  if (state && CHOICES.includes(state.on_resume)) return state.on_resume;
  if (held && CHOICES.includes(held.default_on_resume)) return held.default_on_resume;
  return "hold";
}

async function openResume(scope) {
  view.resumeScope = scope;
  const state = view.state && view.state.scopes.find((s) => s.scope === scope);
  const name = scope === "global" ? "everywhere" : `for ${state ? state.name : scope} (${scope})`;
  $("resume-title").textContent = `Resume publishing ${name}?`;
  $("resume-reason").value = ""; // a new decision: never the previous reason
  $("resume-error").textContent = "";
  const notes = view.state ? resolvedButPaused({ scopes: state ? [state] : [] }, view.alerts) : [];
  $("resume-episode").hidden = notes.length === 0;
  $("resume-episode").textContent = notes.join(" ");
  $("resume-held").textContent = "Held posts: …";
  for (const input of document.querySelectorAll("input[name=on-resume]")) input.checked = input.value === scopeChoice(null, scope);
  $("resume-dialog").hidden = false;
  $("resume-dialog").dataset.scope = scope;
  const held = await loadHeld();
  if (view.resumeScope !== scope) return;
  $("resume-held").textContent = heldText(held, scope);
  const choice = scopeChoice(held, scope);
  for (const input of document.querySelectorAll("input[name=on-resume]")) input.checked = input.value === choice;
  $("resume-dialog").dataset.ready = "1";
  $("resume-yes").focus();
}

function closeResume() {
  view.resumeScope = null;
  $("resume-dialog").hidden = true;
  $("resume-dialog").dataset.ready = "";
}

async function confirmResume() {
  const scope = view.resumeScope;
  if (!scope) return;
  const button = $("resume-yes");
  button.disabled = true;
  $("resume-error").textContent = "";
  try {
    const body = { scope };
    const reason = $("resume-reason").value.trim();
    if (reason) body.reason = reason;
    const choice = document.querySelector("input[name=on-resume]:checked");
    if (choice) body.on_resume = choice.value;
    const result = await api("POST", "api/resume", body);
    const what = scope === "global" ? "all publishing" : scope;
    if (result.approval_required) flash(`${result.note || "A second person must approve this resume."} (see "Who did what")`);
    else flash(result.changed ? `Resumed ${what}.` : `No change: ${result.note}`, !result.changed);
    closeResume();
    await refresh();
  } catch (error) {
    $("resume-error").textContent = explain(error);
  } finally {
    button.disabled = false;
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
    $("reason").value = ""; // each decision gets its own reason
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
    view.state = state;
    view.alerts = alerts.alerts;
    renderHero(state, alerts.alerts);
    renderScopes(state);
    await refreshTimelines(false);
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
  $("resume-all").addEventListener("click", () => openResume("global"));
  $("resume-no").addEventListener("click", closeResume);
  $("resume-yes").addEventListener("click", confirmResume);
  $("resume-dialog").addEventListener("click", (event) => {
    if (event.target === $("resume-dialog")) closeResume(); // a click outside the dialog
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("resume-dialog").hidden) closeResume();
  });
  $("hours").addEventListener("change", async () => {
    view.hours = parseInt($("hours").value, 10) || 6;
    $("chart-hours").textContent = String(view.hours);
    await refreshTimelines(true);
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
