// Beredt web console: plain JavaScript, no framework, no outside requests. Everything the server sends is
// inserted as text (never as HTML), so a message body can never run script in the console.
// The server sends codes and numbers; every word a person reads comes from i18n/<lang>.json.
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

// ---- staff: status board ----------------------------------------------------------------------------------

function contactCell(row) {
  const c = row.contact;
  const heard = c.last_heard === null ? t("never_heard")
    : t("last_heard", { ago: ago(c.silent_for), link: c.last_link_kind || c.last_link || "?" });
  const alarms = c.alarms.map((a) => {
    const vars = { hops: [...new Set(c.paths.map((p) => p.hop_name))].join(", "), interval: ago(c.expected_interval),
      n: c.unconfirmed.length, ago: c.unconfirmed.length ? ago(now() - c.unconfirmed[0].at) : "" };
    return el("span", { class: "pill escalated", "data-alarm": a }, t(`alarm_${a}`, vars));
  });
  const paths = c.paths.map((p) => `${p.hop_name} (${p.link_kind}): ${t(`link_${p.state}`)}`).join("; ");
  return el("td", { class: c.alarms.length ? "stale" : "", "data-label": t("col_contact") },
    alarms.length ? el("div", {}, ...alarms) : el("span", { class: "pill answered" }, t("contact_ok")),
    el("div", {}, heard), paths ? el("div", { class: "meta" }, `${t("route")}: ${paths}`) : null,
    intervalControl(row));
}

// How often this institution must be heard from: a coordinator picks it from a list (a list, not a typed
// number, so a live refresh of the board can never eat half a keystroke).
const INTERVALS = [15, 30, 60, 120, 240, 480, 720, 1440];

function intervalText(minutes) { return minutes < 60 ? t("unit_min", { n: minutes }) : t("unit_hours", { n: minutes / 60 }); }

function intervalControl(row) {
  const c = row.contact;
  const minutes = Math.round(c.expected_interval / 60);
  const label = t("interval_now", { interval: intervalText(minutes), source: t(`interval_${c.interval_source}`) });
  if (state.me.role !== "coordinator") return el("div", { class: "meta" }, label);
  const chosen = c.interval_source === "console" ? minutes : "";
  const values = [...new Set([...INTERVALS, ...(chosen ? [chosen] : [])])].sort((a, b) => a - b);
  const select = el("select", { name: "interval", "data-focus": "interval", "aria-label": t("interval_label", { name: row.name }) },
    el("option", { value: "" }, t("interval_standard")),
    ...values.map((m) => el("option", { value: String(m) }, intervalText(m))));
  select.value = String(chosen);
  const error = el("span", { class: "error" });
  select.addEventListener("change", async () => {
    try {
      await api("contact-interval", { method: "POST", body: { node: row.node, minutes: select.value ? Number(select.value) : null } });
      error.replaceChildren("");
      refreshTopic("board");
    } catch (failure) { error.replaceChildren(errorNode(failure)); }
  });
  return el("div", { class: "interval meta" }, label, " ", select, error);
}

async function renderBoard() {
  const data = await api("board");
  state.boardRows = new Map(data.institutions.map((row) => [row.node, row]));
  drawBoard(data.institutions);
  state.drawn.add("board");
}

// the hub's order: concern, out of contact first, longest silent first, then by name
const CONCERNS = ["critical", "help", "unknown", "ok"];
function boardOrder(a, b) {
  const heard = (row) => (row.last_heard === null ? -Infinity : row.last_heard);
  return CONCERNS.indexOf(a.concern) - CONCERNS.indexOf(b.concern)
    || (b.contact.alarms.length > 0) - (a.contact.alarms.length > 0)
    || heard(a) - heard(b) || a.name.localeCompare(b.name);
}

function patchBoard(rows) {
  for (const row of rows) state.boardRows.set(row.node, row);
  drawBoard([...state.boardRows.values()].sort(boardOrder));
  return true;
}

function drawBoard(rows) {
  for (const row of rows) {
    const before = state.board.get(row.node);
    const signature = `${row.concern}|${row.contact.alarms.join(",")}`;
    if (before !== undefined && before !== signature) {
      const alarms = row.contact.alarms.map((a) => t(`alarm_short_${a}`)).join(", ");
      announce(t("board_changed", { name: row.name, concern: t(`concern_${row.concern}`), alarms }), row.concern === "critical");
    }
    state.board.set(row.node, signature);
  }
  replaceKeepingFocus($("#board tbody"), rows.map((row) => el("tr", { class: row.concern, "data-node": row.node, "data-id": row.node, "data-contact": row.contact.alarms.length ? "lost" : "ok" },
    el("th", { scope: "row", "data-label": t("col_institution") }, row.name),
    el("td", { class: "concern", "data-label": t("col_state") }, t(`concern_${row.concern}`) + (row.rollcall ? ` · ${t(`rc_${row.rollcall}`)}` : "")),
    contactCell(row),
    el("td", { "data-label": t("col_status") }, row.status_priority === "life-safety" ? el("strong", {}, `${t("life_safety")} · `) : null,
      statusSummary(row.status),
      row.status_at ? el("div", { class: "meta" }, clock(row.status_at)) : null,
      row.radio ? el("div", { class: "meta" }, t("radio_status", { status: row.radio.status || `0x${row.radio.value.toString(16).toUpperCase()}`, time: clock(row.radio.at) })) : null))));
  $("#print-stamp").textContent = t("printed_at", { time: clock(now()), node: state.me.node_name });
}

// ---- staff: roll-call -------------------------------------------------------------------------------------

async function renderRollcalls() {
  const data = await api("rollcalls");
  state.rollcalls = data.rollcalls;
  drawRollcalls();
  state.drawn.add("rollcall");
}

// an answered roll-call replaces its own entry; one the view does not show yet needs the whole view
function patchRollcalls(calls) {
  const shown = new Map(state.rollcalls.map((call) => [call.request, call]));
  if (!calls.every((call) => shown.has(call.request))) return false;
  for (const call of calls) shown.set(call.request, call);
  state.rollcalls = [...shown.values()];
  if (calls.length) drawRollcalls();
  return true;
}

function drawRollcalls() {
  replaceKeepingFocus($("#rollcalls"), state.rollcalls.map((call) => {
    const counts = Object.entries(call.counts).filter(([, n]) => n > 0)
      .map(([s, n]) => el("span", { class: `pill ${s}` }, `${t(`rc_${s}`)}: ${n}`));
    return el("div", { class: "rollcall", "data-request": call.request, "data-id": call.request },
      el("h3", {}, `${call.question} `, el("span", { class: "meta" }, `(${call.request}, ${t("deadline")} ${clock(call.deadline)})`)),
      el("p", {}, ...counts),
      el("ul", {}, ...call.targets.map((target) => el("li", { "data-node": target.institution, "data-state": target.state },
        el("span", { class: `pill ${target.state}` }, t(`rc_${target.state}`)), " ",
        el("strong", {}, nameOf(target.institution)), " ",
        target.answer
          ? el("span", {}, `${statusSummary(target.answer.body)} — ${t("via")} ${target.answer.link}, ${clock(target.answer.at)}`)
          : el("span", { class: "meta" }, `${t("tried")}: ${target.attempts.map((a) => a.link).join(" → ")}`)))));
  }));
}

function nameOf(node) {
  const found = (state.me.institutions || []).find((i) => i.node === node);
  return found ? found.name : node;
}

// ---- messages ---------------------------------------------------------------------------------------------

function bodyText(message) {
  const body = message.body;
  if (typeof body === "string") return body;
  if (body && body.undecodable) return t("undecodable");
  if (message.kind === "status") return statusSummary(body);
  if (message.kind === "rollcall") return `${body.question || t("rollcall_default_question")} (${t("deadline")} ${clock(body.deadline)})`;
  if (message.kind === "alert") return [body.headline || body.event, body.description, body.instruction].filter(Boolean).join("\n");
  if (message.kind === "sitrep") return `${t("sitrep_no", { n: body.number })} (${t(`phase_${body.phase}`)}): ${body.summary}`;
  if (message.kind === "read_receipt") {
    const by = body.by || message.from_name;
    const time = clock(body.read_at || message.received);
    if (message.about) return t("read_by_about", { by, time, kind: t(`kind_${message.about.kind}`), what: message.about.summary, sent: clock(message.about.at) });
    return t("read_by", { by, time, id: String(body.message).slice(0, 8) });
  }
  if (message.kind === "resource_request" || message.kind === "commitment") {
    return [`${body.quantity} ${body.unit || ""} ${t(`resource_${body.resource}`)}`, body.text].filter(Boolean).join("\n");
  }
  return JSON.stringify(body);
}

function priorityLabel(message) {
  if (message.priority === "life-safety") return el("strong", { class: "flag critical" }, t("life_safety"));
  if (message.priority === "urgent") return el("strong", { class: "flag urgent" }, t("prio_urgent"));
  return null;
}

function messageItem(message, ...extra) {
  return el("li", { class: message.priority, "data-id": message.id, "data-kind": message.kind },
    message.status !== "actual" ? el("span", { class: "exercise" }, t(`status_${message.status}`)) : null,
    el("div", { class: "meta" }, `${t(`kind_${message.kind}`)} · ${message.from_name} · ${clock(message.received)} · ${t("via")} ${message.via_kind || "?"}`),
    priorityLabel(message),
    el("pre", { class: "body" }, bodyText(message)), ...extra);
}

async function renderMessages() {
  const data = await api("messages");
  state.messages = data.messages;
  drawMessages();
  state.drawn.add("message");
}

// new messages go on top, as the hub lists them (newest first, at most as many as it keeps)
function patchMessages(items) {
  const known = new Set(state.messages.map((m) => m.id));
  const fresh = items.filter((m) => !known.has(m.id));
  if (!fresh.length) return true;
  state.messages = [...fresh, ...state.messages].slice(0, MESSAGES_KEPT);
  drawMessages();
  return true;
}

function drawMessages() {
  state.requests = state.messages.filter((m) => m.kind === "resource_request");
  fillRequests();
  replaceKeepingFocus($("#messages"), state.messages.map((m) => messageItem(m,
    ["alert", "read_receipt"].includes(m.kind) ? el("a", { href: `${API}cap/${m.id}`, download: "" }, t("cap_download")) : null,
    m.kind === "resource_request" && state.me.role === "coordinator"
      ? el("button", { type: "button", class: "small", "data-focus": "answer", onclick: () => answerRequest(m) }, t("answer_request")) : null)));
}

async function importCap(event) {
  event.preventDefault();
  const form = event.target;
  const file = form.elements.file.files[0];
  try {
    const response = await fetch(API + "cap", { method: "POST", credentials: "same-origin", body: await file.text(),
      headers: { "Content-Type": "application/xml", "X-CSRF-Token": state.me.csrf } });
    const data = await response.json();
    if (!response.ok) throw new ApiError(response.status, data);
    form.reset();
    showError(form, null);
  } catch (error) { showError(form, error); }
}

// ---- staff: writing ---------------------------------------------------------------------------------------

function fillRecipients() {
  const select = $("#compose-to");
  if (!select || !state.me) return;
  const chosen = select.value;
  const groups = state.me.groups || [];
  select.replaceChildren(el("option", { value: "*" }, t("to_all_institutions")),
    ...(groups.length ? [el("optgroup", { label: t("write_groups") },
      ...groups.map((g) => el("option", { value: `group:${g.name}`, "data-count": g.count },
        t("group_option", { name: g.name, n: g.count }))))] : []),
    ...(state.me.institutions || []).map((i) => el("option", { value: i.node }, i.name)));
  if (chosen) select.value = chosen;
  const number = $("#compose-form input[name=number]");
  if (number && state.me.sitrep_next && Number(number.value) < state.me.sitrep_next) number.value = state.me.sitrep_next;
}

function fillRequests() {
  const select = $("#compose-request");
  select.replaceChildren(...state.requests.map((m) => el("option", { value: m.id },
    `${m.from_name}: ${m.body.quantity} ${m.body.unit || ""} ${t(`resource_${m.body.resource}`)} (${clock(m.received)})`)));
}

function answerRequest(message) {
  selectTab("write", true);
  const form = $("#compose-form");
  form.elements.kind.value = "commitment";
  showKind("commitment");
  form.elements.request.value = message.id;
  form.elements.to.value = message.from;
  form.elements.resource.value = message.body.resource;
  form.elements.quantity.value = message.body.quantity;
  form.elements.unit.value = message.body.unit || "";
  form.elements.quantity.focus();
}

function showKind(kind) {
  for (const fieldset of $all("#compose-form fieldset[data-kind]")) {
    fieldset.hidden = fieldset.dataset.kind !== kind;
    fieldset.disabled = fieldset.hidden;
  }
}

function numberOrNull(value) { return value === "" || value === null ? null : Number(value); }

function composeBody(kind, f) {
  const text = (name) => String(f.get(name) || "").trim();
  if (kind === "text") {
    if (!text("text")) throw new Error(t("need_field", { field: t("text_body") }));
    return text("text");
  }
  if (kind === "alert") {
    if (!text("event")) throw new Error(t("need_field", { field: t("alert_event") }));
    const body = { event: text("event"), urgency: f.get("urgency"), severity: f.get("severity"), certainty: f.get("certainty") };
    for (const key of ["headline", "description", "instruction", "area"]) if (text(key)) body[key] = text(key);
    return body;
  }
  if (kind === "sitrep") {
    if (!text("summary")) throw new Error(t("need_field", { field: t("sitrep_summary") }));
    const casualties = {};
    for (const key of ["fatalities", "hospitalised", "injured", "missing", "evacuated", "sheltering"]) {
      const n = numberOrNull(f.get(key));
      if (n !== null) casualties[key] = n;
    }
    const at = Math.floor(now());
    const body = {
      number: Number(f.get("number")), phase: f.get("phase"), summary: text("summary"), severity: f.get("sitrep_severity"),
      period_to: at, next_contact: at + 3600 * Number(f.get("next_hours") || 0),
      actions: text("actions").split("\n").map((s) => s.trim()).filter(Boolean),
    };
    if (text("incident")) body.incident = text("incident");
    if (Object.keys(casualties).length) body.casualties = casualties;
    return body;
  }
  const request = state.requests.find((m) => m.id === f.get("request"));
  if (!request) throw new Error(t("need_request"));
  const body = { request: request.body.request, resource: f.get("resource"), quantity: Number(f.get("quantity") || 0) };
  if (text("unit")) body.unit = text("unit");
  if (f.get("arrives_hours")) body.arrives_by = Math.floor(now()) + 3600 * Number(f.get("arrives_hours"));
  if (text("commit_text")) body.text = text("commit_text");
  return body;
}

function inExercise() { return document.body.classList.contains("in-exercise"); }

// real: the person chose "Reel hændelse – ikke øvelse" and confirmed it. Otherwise, during an exercise, no
// status is sent and the hub marks the message Exercise (hub/relay/exercises.py, default_status).
async function sendComposed(event, real = false) {
  event.preventDefault();
  const form = $("#compose-form");
  const f = new FormData(form);
  const status = real ? "actual" : inExercise() ? undefined : f.get("status");
  const kind = f.get("kind");
  const confirmation = $(".confirmation", form);
  confirmation.textContent = "";
  let body;
  try { body = composeBody(kind, f); } catch (error) { $(".error", form).textContent = error.message; return; }
  try {
    const result = await api("messages", { method: "POST", body: { to: f.get("to"), kind, body, priority: f.get("priority"), status } });
    showError(form, null);
    confirmation.textContent = t(real ? "write_done_real" : "write_done", { n: result.ids.length });
    if (kind === "sitrep") { state.me.sitrep_next = body.number + 1; form.elements.number.value = body.number + 1; form.elements.summary.value = ""; }
    if (kind === "text") form.elements.text.value = "";
    refreshTopic("delivery");
  } catch (error) { showError(form, error); }
}

// ---- sent: per-recipient delivery state --------------------------------------------------------------------

async function renderSent() {
  const data = await api("sent");
  const groups = new Map();
  for (const item of data.sent) {
    const key = item.batch || item.id;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  replaceKeepingFocus($("#sent"), [...groups.entries()].map(([key, items]) => {
    const first = items[0];
    const done = items.filter(confirmed).length;
    return el("li", { class: first.priority, "data-id": key, "data-kind": first.kind },
      el("div", { class: "meta" }, `${t(`kind_${first.kind}`)} · ${clock(first.at)} · ${first.author === "api" ? t("by_api") : first.author}`),
      priorityLabel(first),
      el("p", { class: "body" }, sentSummary(first)),
      first.group ? el("p", { class: "group-count" }, t("group_received", { group: first.group, done, total: items.length }))
        : el("p", {}, t("confirmed_count", { done, total: items.length })),
      el("ul", { class: "recipients" }, ...items.map((d) => el("li", { "data-node": d.to, "data-state": d.state },
        el("strong", {}, recipientName(d.to, d.to_name)), ": ", deliveryPill(d)))));
  }));
}

// ---- staff: log book and links ----------------------------------------------------------------------------

// The log book is read a page at a time, newest first; live events carry the new entries themselves, so an
// open console costs the hub the same after three days as after three minutes.
const LOGBOOK_SHOWN = 500;

function logbookRow(e) {
  return el("tr", { "data-seq": e.seq, "data-id": e.seq },
    el("td", { "data-label": "#" }, e.seq), el("td", { "data-label": t("col_time") }, clock(e.time)),
    el("td", { "data-label": t("col_type") }, t(`type_${e.type}`)), el("td", { "data-label": t("col_author") }, e.author),
    el("td", { "data-label": t("col_text") }, e.note ? `${e.note} (${e.text})` : e.text));
}

async function renderLogbook() {
  const data = await api("logbook");
  const verdict = $("#logbook-verdict");
  verdict.textContent = data.broken === null ? t("logbook_intact") : t("logbook_broken", { seq: data.broken });
  verdict.className = data.broken === null ? "confirmation" : "error";
  replaceKeepingFocus($("#logbook tbody"), data.entries.map(logbookRow));
  $("#logbook-older").hidden = !data.more;
}

async function olderLogbook() {
  const rows = $all("#logbook tbody tr");
  const oldest = rows.length ? rows[rows.length - 1].dataset.seq : null;
  const data = await api(oldest ? `logbook?before=${oldest}` : "logbook");
  $("#logbook tbody").append(...data.entries.map(logbookRow));
  $("#logbook-older").hidden = !data.more;
}

function appendLogbook(data) {
  if (!data || !data.entries || data.gap) { refreshTopic("logbook"); return; }
  const body = $("#logbook tbody");
  const newest = body.firstElementChild ? Number(body.firstElementChild.dataset.seq) : 0;
  const fresh = data.entries.filter((e) => e.seq > newest);
  if (fresh.length && newest && fresh[0].seq !== newest + 1) { refreshTopic("logbook"); return; }  // missed some
  body.prepend(...fresh.reverse().map(logbookRow));
  while (body.children.length > LOGBOOK_SHOWN) body.lastElementChild.remove();
  if (body.children.length >= LOGBOOK_SHOWN) $("#logbook-older").hidden = false;
}

async function addLogEntry(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api("logbook", { method: "POST", body: { type: form.elements.type.value, text: form.elements.text.value } });
    form.elements.text.value = "";
    showError(form, null);
  } catch (error) { showError(form, error); }
}

async function renderLinks() {
  const data = await api("links");
  state.links = data.links;
  renderLive();
  if (state.me.role === "institution") return;
  replaceKeepingFocus($("#links tbody"), data.links.map((l) => el("tr", { class: l.state },
    el("td", { "data-label": t("col_link") }, `${l.link} (${l.kind})`),
    el("td", { "data-label": t("col_peer") }, l.peer_name || l.peer || t("whole_link")),
    el("td", { "data-label": t("col_link_state") }, el("span", { class: `pill ${l.state === "up" ? "answered" : l.state === "down" ? "escalated" : "overdue"}` }, t(`link_${l.state}`))),
    el("td", { "data-label": t("col_last_success") }, l.last_success ? t("ago", { ago: ago(now() - l.last_success) }) : t("never")),
    el("td", { "data-label": t("col_waiting"), class: "waiting" }, String(l.queue_depth)),
    el("td", { "data-label": t("col_reason") }, linkReason(l)))));
}

// A link's reason in the reader's words, from its code; the transport's own text stays in the hub's log.
function linkReason(row) {
  const key = `reason_${row.reason_code}`;
  return t(key in state.t ? key : "reason_other", row.reason_params || {});
}

// ---- institution view -------------------------------------------------------------------------------------

async function renderInstitution() {
  const data = await api("messages");
  const banner = $("#open-rollcall");
  const open = data.open_rollcall;
  const wasHidden = banner.hidden;
  banner.hidden = !open;
  if (open) {
    const text = t("rollcall_banner", { question: open.body.question || t("rollcall_default_question"), deadline: clock(open.body.deadline) });
    if (banner.textContent !== text) banner.textContent = text;
  } else if (!wasHidden) banner.textContent = "";
  const instructions = data.messages.filter((m) => ["alert", "text", "sitrep", "commitment"].includes(m.kind));
  for (const m of instructions) {
    if (!state.announced.has(m.id) && !m.read && state.announced.size) announce(t("new_instruction", { from: m.from_name, text: bodyText(m).slice(0, 120) }));
  }
  const first = state.announced.size === 0;
  for (const m of instructions) state.announced.add(m.id);
  if (first) state.announced.add("");
  replaceKeepingFocus($("#instructions"), instructions.map((m) => messageItem(m, m.read
    ? el("p", { class: "read-done", "data-focus": "read", tabIndex: -1 }, t("read_done"))
    : el("button", { type: "button", class: "primary", "data-focus": "read", onclick: () => confirmRead(m.id) }, t("read_confirm")))));
}

async function renderOutbox() {
  const data = await api("sent");
  const mine = data.sent;
  for (const button of $all("[data-preset]")) {
    const last = mine.find((s) => s.preset === button.dataset.preset);
    const label = $(".btn-state", button);
    if (!last) { label.textContent = ""; continue; }
    label.textContent = confirmed(last) ? t("btn_confirmed", { time: timeOnly(last.delivered_at || last.read_at) })
      : t("btn_unconfirmed", { time: timeOnly(last.at) });
  }
  const waiting = mine.filter((s) => !confirmed(s) && s.kind === "status" && s.priority !== "normal" && s.priority !== "routine");
  const warning = $("#unconfirmed");
  warning.hidden = waiting.length === 0;
  if (waiting.length) {
    const w = waiting[0];
    const text = t("unconfirmed_warning", { what: t(`preset_${w.preset || "help"}`), ago: ago(data.now - w.at), state: deliveryText(w) });
    if (warning.textContent !== text) warning.textContent = text;
  } else warning.textContent = "";
  const latest = mine.find((s) => s.preset);
  if (latest) {
    $("#sent-confirmation").textContent = confirmed(latest)
      ? t("sent_confirmed", { what: t(`preset_${latest.preset}`), time: timeOnly(latest.delivered_at || latest.read_at) })
      : t("sent_unconfirmed", { what: t(`preset_${latest.preset}`), time: timeOnly(latest.at), ago: ago(data.now - latest.at) });
    $("#sent-confirmation").className = confirmed(latest) ? "confirmation" : "pending-note";
  }
  replaceKeepingFocus($("#outbox"), mine.slice(0, 20).map((s) => el("li", { class: s.priority, "data-id": s.id, "data-kind": s.kind },
    el("div", { class: "meta" }, `${t(`kind_${s.kind}`)} · ${clock(s.at)} · ${t("to")} ${recipientName(s.to, s.to_name)}`),
    priorityLabel(s),
    el("p", { class: "body" }, sentSummary(s)),
    deliveryPill(s))));
}

function statusFields() {
  const form = $("#status-form");
  const f = new FormData(form);
  const body = {};
  if (f.get("power")) body.power = f.get("power");
  for (const key of ["fuel_hours", "water_days"]) { const n = numberOrNull(f.get(key)); if (n !== null) body[key] = n; }
  const residents = {};
  for (const key of ["total", "needing_help"]) { const n = numberOrNull(f.get(key)); if (n !== null) residents[key] = n; }
  if (Object.keys(residents).length) body.residents = residents;
  const needs = f.getAll("needs");
  if (needs.length) body.needs = needs;
  if (f.get("text")) body.text = f.get("text");
  return body;
}

// "Reel hændelse – ikke øvelse", confirmed: the next status goes as real; without it the hub marks a status
// sent during an exercise Exercise
function armRealStatus() {
  if (window.confirm(t("confirm_real_status"))) document.body.classList.add("real-armed");
}

async function sendStatus(preset) {
  const error = $("#institution-error");
  const confirmation = $("#sent-confirmation");
  confirmation.textContent = "";
  const real = document.body.classList.contains("real-armed");
  try {
    await api("status", { method: "POST", body: { preset, ...statusFields(), ...(real ? { status: "actual" } : {}) } });
    // only a status that went as real disarms: "Reel hændelse" chosen while an exercise status was on its way
    // holds for the next one
    if (real) document.body.classList.remove("real-armed");
    error.textContent = "";
    confirmation.className = "pending-note";
    confirmation.textContent = t("sent_unconfirmed", { what: t(`preset_${preset}`), time: timeOnly(now()), ago: ago(0) });
    refreshTopic("message");
    refreshTopic("delivery");
  } catch (e) { error.replaceChildren(errorNode(e)); }
}

async function confirmRead(id) {
  try {
    await api(`read/${id}`, { method: "POST" });
    await refreshTopic("message");
    const done = $(`#instructions [data-id="${CSS.escape(id)}"] [data-focus=read]`);
    if (done) done.focus();
  } catch (e) { $("#institution-error").replaceChildren(errorNode(e)); }
}

// ---- wiring -----------------------------------------------------------------------------------------------

function visibleTabs() { return $all(".tabs [role=tab]").filter((b) => !b.hidden); }

function selectTab(name, focus = false) {
  state.tab = name;
  for (const button of $all(".tabs [role=tab]")) {
    const selected = button.dataset.tab === name;
    button.classList.toggle("active", selected);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected && focus) button.focus();
  }
  for (const tab of $all(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  setTitle();
}

function tabKeys(event) {
  const tabs = visibleTabs();
  const index = tabs.indexOf(event.target);
  if (index < 0) return;
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
  selectTab(next.dataset.tab, true);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      state.me = await api("login", { method: "POST", body: { username: form.elements.username.value, password: form.elements.password.value } });
      form.reset();
      $("#login-error").textContent = "";
      start(true);
    } catch (error) { $("#login-error").replaceChildren(errorNode(error)); }
  });
  $("#logout").addEventListener("click", async () => {
    await api("logout", { method: "POST" }).catch(() => null);
    showLogin();
    $("#view-login h1").focus();
  });
  $("#lang").addEventListener("click", () => loadLanguage(state.lang === "da" ? "en" : "da"));
  for (const button of $all(".tabs [role=tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
    button.addEventListener("keydown", tabKeys);
  }
  $("#print-board").addEventListener("click", () => { selectTab("board"); window.print(); });
  $("#rollcall-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api("rollcalls", { method: "POST", body: { question: form.elements.question.value || t("rollcall_default_question"), minutes: Number(form.elements.minutes.value) } });
      showError(form, null);
      refreshTopic("rollcall");
    } catch (error) { showError(form, error); }
  });
  $("#compose-form").addEventListener("submit", (event) => sendComposed(event));
  $("#compose-real").addEventListener("click", (event) => { if (window.confirm(t("confirm_real_compose"))) sendComposed(event, true); });
  $("#status-real").addEventListener("click", armRealStatus);
  $("#compose-kind").addEventListener("change", (event) => showKind(event.target.value));
  $("#logbook-form").addEventListener("submit", addLogEntry);
  $("#logbook-older").addEventListener("click", () => olderLogbook().catch((error) => console.warn("logbook", error)));
  $("#cap-form").addEventListener("submit", importCap);
  for (const button of $all("[data-preset]")) button.addEventListener("click", () => sendStatus(button.dataset.preset));
  showKind("text");
  selectTab("board");
  // "for how long" grows while nothing happens: re-word the times every half minute
  setInterval(() => { if (state.me) { refreshTopic("delivery"); refreshTopic("board"); refreshTopic("link"); } }, 30_000);
  await loadLanguage(state.lang);
  start();
});
