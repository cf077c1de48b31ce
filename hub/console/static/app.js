// Beredt web console: plain JavaScript, no framework, no outside requests. Everything the server sends is
// inserted as text (never as HTML), so a message body can never run script in the console.
// The server sends codes and numbers; every word a person reads comes from i18n/<lang>.json.
// Classic scripts sharing one scope, loaded in order (index.html): this one holds the state, the helpers,
// the language, the login and live connection, and the refreshing; board.js, messages.js, logbook.js,
// institution.js, exercise.js and enrolment.js draw the views; main.js, last, wires the page.
"use strict";

const API = "/console/api/";
const state = {
  me: null, lang: localStorage.getItem("beredt-lang") || "da", t: {}, tab: "board", events: null,
  socket: "closed", links: [], board: new Map(), announced: new Set(), requests: [],
  boardRows: new Map(), rollcalls: [], messages: [], drawn: new Set(),  // views as drawn, for live patches
};
const MESSAGES_KEPT = 300;  // the hub's HISTORY

// ---- helpers ------------------------------------------------------------------------------------------

function $(selector, root = document) { return root.querySelector(selector); }
function $all(selector, root = document) { return Array.from(root.querySelectorAll(selector)); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "lang") node.setAttribute(key, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function t(key, vars = {}) {
  const text = key in state.t ? state.t[key] : key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : ""));
}

class ApiError extends Error {
  constructor(status, data) {
    super((data && data.error) || String(status));
    this.status = status;
    this.data = data;
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (init.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  if (init.method && init.method !== "GET" && state.me) init.headers["X-CSRF-Token"] = state.me.csrf;
  const response = await fetch(API + path, init);
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (response.status === 401 && path !== "login") { showLogin(); }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The server's refusal in the reader's language: known reasons are worded here; the hub words the
// details (which field, what it expected) in Danish, so in the English console they are marked as Danish.
function errorNode(error) {
  if (error.status === 401) return t("err_login");
  if (error.status === 403) return t("err_forbidden");
  if (error.status === 429) return t("err_locked");
  const detail = (label) => el("span", {}, `${t(label)} `, el("span", { lang: "da" }, error.message));
  if (error.status === 422) return detail("err_refused");
  if (error.status === 503 || error.status === 507) return detail("err_store");
  if (error.status === 400) return detail("err_invalid");
  return t("err_unreachable");
}

function showError(form, error) {
  const p = $(".error", form);
  if (p) p.replaceChildren(error ? errorNode(error) : "");
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return null;
  if (seconds < 60) return t("unit_now");
  if (seconds < 3600) return t("unit_min", { n: Math.floor(seconds / 60) });
  if (seconds < 86400) return t("unit_hours", { n: Math.floor(seconds / 3600) });
  return t("unit_days", { n: Math.floor(seconds / 86400) });
}

function zone() { return (state.me && state.me.timezone) || "Europe/Copenhagen"; }

function clock(unix) {
  if (unix === null || unix === undefined) return "—";
  return new Date(unix * 1000).toLocaleString(state.lang === "da" ? "da-DK" : "en-GB",
    { dateStyle: "short", timeStyle: "short", timeZone: zone() });
}

function timeOnly(unix) {
  return new Date(unix * 1000).toLocaleTimeString(state.lang === "da" ? "da-DK" : "en-GB",
    { hour: "2-digit", minute: "2-digit", timeZone: zone() });
}

function now() { return Date.now() / 1000; }

function announce(text, urgent = false) {
  const region = $(urgent ? "#announce-assertive" : "#announce-polite");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);  // a change, so it is read even if repeated
}

// Replace a list's children without dropping the reader's place: focus returns to the same item (by
// data-id) or to the list itself, never to <body>.
// A file field names its chosen file in the console's language: the browser's own "No file chosen" is
// hidden with its button (see .file-pick in style.css).
function showChosenFile(input) {
  const name = $(".file-name", input.closest(".file-pick"));
  name.textContent = input.files && input.files.length ? input.files[0].name : t("file_none");
}

function replaceKeepingFocus(container, children) {
  const active = document.activeElement;
  const inside = active && container.contains(active) && active !== container;
  const key = inside ? active.closest("[data-id]")?.dataset.id : null;
  const role = inside ? active.dataset.focus : null;
  container.replaceChildren(...children);
  if (!inside) return;
  const item = key ? container.querySelector(`[data-id="${CSS.escape(key)}"]`) : null;
  const target = (item && role && item.querySelector(`[data-focus="${role}"]`)) || item || container;
  if (!target.hasAttribute("tabindex") && !["BUTTON", "A", "INPUT"].includes(target.tagName)) target.tabIndex = -1;
  target.focus();
}

// ---- language ---------------------------------------------------------------------------------------------

async function loadLanguage(lang) {
  const response = await fetch(`/console/static/i18n/${lang}.json`, { credentials: "same-origin" });
  state.t = await response.json();
  state.lang = lang;
  localStorage.setItem("beredt-lang", lang);
  document.documentElement.lang = lang;
  for (const node of $all("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of $all("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of $all("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  for (const input of $all(".file-pick input[type=file]")) showChosenFile(input);
  const button = $("#lang");
  button.textContent = lang === "da" ? "English" : "Dansk";
  button.lang = lang === "da" ? "en" : "da";
  renderLive();
  setTitle();
  if (state.me) { fillRecipients(); refreshAll(); }
}

function setTitle() {
  let view = t("title_login");
  if (state.me) view = state.me.role === "institution" ? t("institution_title") : t(`tab_${state.tab}`);
  document.title = `${view} – Beredt`;
}

// ---- login ------------------------------------------------------------------------------------------------

function showView(name) {
  for (const view of $all(".view")) view.hidden = view.id !== `view-${name}`;
}

function showLogin() {
  state.me = null;
  state.drawn.clear();
  if (state.events) { state.events.close(); state.events = null; }
  state.socket = "closed";
  $("#who").textContent = "";
  $("#logout").hidden = true;
  for (const link of ["#link-districts", "#link-field", "#link-persondata"]) $(link).hidden = true;
  showView("login");
  renderLive();
  setTitle();
}

async function start(focus = false) {
  try {
    state.me = await api("me");
  } catch {
    showLogin();
    if (focus) $("#login-form input[name=username]").focus();
    return;
  }
  $("#node-name").textContent = state.me.node_name;
  $("#who").textContent = state.me.display_name;
  $("#logout").hidden = false;
  for (const link of ["#link-districts", "#link-field"]) {
    $(link).hidden = !["coordinator", "nurse"].includes(state.me.role);  // roles that may read the register
  }
  const view = state.me.role === "institution" ? "institution" : "staff";
  showView(view);
  for (const node of $all("[data-staff-only]")) node.hidden = state.me.role !== "coordinator";
  fillRecipients();
  setTitle();
  connectEvents();
  refreshAll();
  if (focus) $(`#view-${view} h1`).focus();
}

function connectEvents() {
  if (state.events) state.events.close();
  const source = new EventSource(API + "events");
  source.onopen = () => { state.socket = "open"; renderLive(); refreshAll(); };
  source.onerror = () => {
    if (state.socket === "open") announce(t("live_lost"), true);
    state.socket = "lost";
    renderLive();
  };
  for (const topic of ["message", "rollcall", "board", "link", "delivery", "exercise"]) {
    source.addEventListener(topic, (event) => onTopic(topic, event.data ? JSON.parse(event.data) : {}));
  }
  source.addEventListener("logbook", (event) => {
    if (state.me && ["coordinator", "viewer"].includes(state.me.role)) appendLogbook(JSON.parse(event.data));
  });
  state.events = source;
}

// The badge tells the truth about the hub's own links, not just about this browser's connection.
function renderLive() {
  const live = $("#live");
  if (!live) return;
  live.hidden = !state.me;
  if (!state.me) return;
  if (state.socket !== "open") {
    live.className = "live off";
    live.textContent = t("live_no_hub");
    return;
  }
  // a link counts as up when it reaches at least one neighbour (or, before any is known, by its own state)
  const byLink = new Map();
  const rank = (row) => ({ up: 2, degraded: 1, down: 0 }[row.state] ?? 0);
  for (const row of state.links) {
    const peers = state.links.filter((r) => r.link === row.link && r.peer);
    const whole = state.links.find((r) => r.link === row.link && !r.peer);
    let best = peers.length ? Math.max(...peers.map(rank)) : rank(row);
    if (whole && rank(whole) === 0) best = 0;
    byLink.set(row.link, best);
  }
  const total = byLink.size;
  const down = [...byLink.values()].filter((r) => r === 0).length;
  const weak = [...byLink.values()].filter((r) => r === 1).length;
  if (total === 0 || down === total) { live.className = "live off"; live.textContent = t("live_links_none"); }
  else if (down || weak) { live.className = "live partial"; live.textContent = t("live_links_some", { up: total - down, total }); }
  else { live.className = "live on"; live.textContent = t("live_links_all", { total }); }
}

// ---- refreshing -------------------------------------------------------------------------------------------

const refreshers = {
  board: () => state.me.role !== "institution" && renderBoard(),
  // the care-home page draws roll-calls and messages from one fetch: one topic, so one fetch at a time
  rollcall: () => (state.me.role === "institution" ? refreshTopic("message") : renderRollcalls()),
  message: () => (state.me.role === "institution" ? renderInstitution() : renderMessages()),
  link: () => renderLinks(),
  logbook: () => state.me.role !== "institution" && renderLogbook(),
  delivery: () => (state.me.role === "institution" ? renderOutbox() : renderSent()),
};

// Every refetch goes through here, one per topic at a time, and once more if news came meanwhile: an
// answer fetched before an event can then never be drawn over one fetched after it.
const pending = new Map();
function refreshTopic(topic) {
  const run = refreshers[topic];
  if (!run || !state.me) return Promise.resolve();
  const current = pending.get(topic);
  if (current) { current.again = true; return current.done; }
  const entry = { again: true, done: null };
  pending.set(topic, entry);
  entry.done = (async () => {
    while (entry.again && state.me) {
      entry.again = false;
      try { await run(); } catch (error) { console.warn(topic, error); }
    }
    pending.delete(topic);
  })();
  return entry.done;
}

function refreshAll() { for (const topic of Object.keys(refreshers)) refreshTopic(topic); }

// An event that carries the changed rows is patched into the view as it is drawn, with no fetch; one that
// names only its topic (or comes while a fetch of that topic is under way) fetches the view again.
const patchers = {
  board: (data) => data.rows && patchBoard(data.rows),
  message: (data) => data.items && patchMessages(data.items),
  rollcall: (data) => data.calls && patchRollcalls(data.calls),
};
function onTopic(topic, data) {
  const patch = patchers[topic];
  const staffView = state.me && state.me.role !== "institution";
  if (patch && staffView && !pending.has(topic) && state.drawn.has(topic) && patch(data)) return;
  refreshTopic(topic);
}

// ---- wording of shared things -----------------------------------------------------------------------------

function statusSummary(status) {
  if (!status) return t("no_status");
  const parts = [t(`facility_${status.facility}`)];
  if (status.power) parts.push(t(`power_${status.power}`) + (status.fuel_hours !== undefined ? ` (${t("fuel_left", { n: status.fuel_hours })})` : ""));
  if (status.residents && status.residents.needing_help) parts.push(t("needing_help_n", { n: status.residents.needing_help }));
  if (status.needs && status.needs.length) parts.push(t("needs") + ": " + status.needs.map((n) => t(`need_${n}`)).join(", "));
  if (status.text) parts.push(`“${status.text}”`);
  return parts.join(" · ");
}

function recipientName(node, name) { return node === "ffffffffffffffff" || name === "*" ? t("to_all") : name; }

// One sentence per delivery state (see hub/console/outbox.py for what each means).
function deliveryText(d) {
  const hop = d.hop_name || "?";
  const link = d.link_kind || d.link || "?";
  switch (d.state) {
    case "read": return t("d_read", { by: d.read_by, time: timeOnly(d.read_at) });
    case "delivered": return t("d_delivered", { time: timeOnly(d.delivered_at) });
    case "carried": return t("d_carried", { hop, link });
    case "sent": return t("d_sent", { hop, link });
    case "failed": return t(`d_failed_${d.why}`);
    case "unknown": return t("d_unknown");
    default: {
      const why = d.why ? t(`why_${d.why}`, { hop, link }) : t("why_waiting");
      const next = d.next_try ? t("d_next_try", { time: timeOnly(d.next_try) }) : "";
      return `${t("d_queued")}: ${why}${next}`;
    }
  }
}

function confirmed(d) { return d.state === "delivered" || d.state === "read"; }

function deliveryPill(d) {
  const cls = confirmed(d) ? "answered" : d.state === "failed" ? "escalated" : "pending";
  return el("span", { class: `pill ${cls}`, "data-state": d.state }, deliveryText(d));
}

// the hub's own one-line summary (Danish, as the log book has it); a care home's button names itself
function sentSummary(s) { return s.preset ? t(`preset_${s.preset}`) : s.summary || ""; }
