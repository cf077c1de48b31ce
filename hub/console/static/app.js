// Beredt web console: plain JavaScript, no framework, no outside requests. Everything the server sends is
// inserted as text (never as HTML), so a message body can never run script in the console.
"use strict";

const API = "/console/api/";
const state = { me: null, lang: localStorage.getItem("beredt-lang") || "da", t: {}, tab: "board", events: null };

// ---- helpers ------------------------------------------------------------------------------------------

function $(selector, root = document) { return root.querySelector(selector); }
function $all(selector, root = document) { return Array.from(root.querySelectorAll(selector)); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function t(key, vars = {}) {
  const text = state.t[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : ""));
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
  if (!response.ok) throw new Error((data && data.error) || response.statusText);
  return data;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return null;
  if (seconds < 60) return t("unit_now");
  if (seconds < 3600) return t("unit_min", { n: Math.floor(seconds / 60) });
  if (seconds < 86400) return t("unit_hours", { n: Math.floor(seconds / 3600) });
  return t("unit_days", { n: Math.floor(seconds / 86400) });
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleString(state.lang === "da" ? "da-DK" : "en-GB",
    { dateStyle: "short", timeStyle: "short" });
}

function showError(form, error) { const p = $(".error", form); if (p) p.textContent = error ? error.message : ""; }

// ---- language ---------------------------------------------------------------------------------------------

async function loadLanguage(lang) {
  const response = await fetch(`/console/static/i18n/${lang}.json`, { credentials: "same-origin" });
  state.t = await response.json();
  state.lang = lang;
  localStorage.setItem("beredt-lang", lang);
  document.documentElement.lang = lang;
  for (const node of $all("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of $all("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  $("#lang").textContent = lang === "da" ? "English" : "Dansk";
  if (state.me) refreshAll();
}

// ---- login ------------------------------------------------------------------------------------------------

function showView(name) {
  for (const view of $all(".view")) view.hidden = view.id !== `view-${name}`;
}

function showLogin() {
  state.me = null;
  if (state.events) { state.events.close(); state.events = null; }
  $("#who").textContent = "";
  $("#logout").hidden = true;
  showView("login");
}

async function start() {
  try {
    state.me = await api("me");
  } catch {
    showLogin();
    return;
  }
  $("#node-name").textContent = state.me.node_name;
  $("#who").textContent = state.me.display_name;
  $("#logout").hidden = false;
  showView(state.me.role === "institution" ? "institution" : "staff");
  for (const node of $all("[data-staff-only]")) node.hidden = state.me.role !== "coordinator";
  fillRecipients();
  connectEvents();
  refreshAll();
}

function connectEvents() {
  if (state.events) state.events.close();
  const source = new EventSource(API + "events");
  const live = $("#live");
  source.onopen = () => { live.className = "live on"; live.textContent = t("live_on"); refreshAll(); };
  source.onerror = () => { live.className = "live off"; live.textContent = t("live_off"); };
  for (const topic of ["message", "rollcall", "board", "link"]) {
    source.addEventListener(topic, () => refreshTopic(topic));
  }
  source.addEventListener("logbook", (event) => {
    if (state.me && state.me.role !== "institution") appendLogbook(JSON.parse(event.data));
  });
  state.events = source;
}

// ---- refreshing -------------------------------------------------------------------------------------------

const refreshers = {
  board: () => state.me.role !== "institution" && renderBoard(),
  rollcall: () => (state.me.role === "institution" ? renderInstitution() : renderRollcalls()),
  message: () => (state.me.role === "institution" ? renderInstitution() : renderMessages()),
  link: () => state.me.role !== "institution" && renderLinks(),
  logbook: () => state.me.role !== "institution" && renderLogbook(),
};

function refreshTopic(topic) {
  const run = refreshers[topic];
  if (run && state.me) Promise.resolve(run()).catch((error) => console.warn(topic, error));
}

function refreshAll() { for (const topic of Object.keys(refreshers)) refreshTopic(topic); }

// ---- staff: status board ----------------------------------------------------------------------------------

function statusSummary(status) {
  if (!status) return t("no_status");
  const parts = [t(`facility_${status.facility}`)];
  if (status.power) parts.push(t(`power_${status.power}`) + (status.fuel_hours !== undefined ? ` (${t("fuel_left", { n: status.fuel_hours })})` : ""));
  if (status.residents && status.residents.needing_help) parts.push(t("needing_help_n", { n: status.residents.needing_help }));
  if (status.needs && status.needs.length) parts.push(t("needs") + ": " + status.needs.map((n) => t(`need_${n}`)).join(", "));
  if (status.text) parts.push(`“${status.text}”`);
  return parts.join(" · ");
}

async function renderBoard() {
  const data = await api("board");
  const body = $("#board tbody");
  body.replaceChildren(...data.institutions.map((row) => {
    const heard = row.last_heard === null ? t("never_heard")
      : t("last_heard", { ago: ago(row.silent_for), link: row.last_link_kind || "?" });
    const stale = row.silent_for === null || row.silent_for > 3 * 3600;
    return el("tr", { class: row.concern, "data-node": row.node },
      el("td", {}, el("strong", {}, row.name)),
      el("td", { class: "concern" }, t(`concern_${row.concern}`) + (row.rollcall ? ` · ${t(`rc_${row.rollcall}`)}` : "")),
      el("td", {}, row.status_priority === "life-safety" ? el("strong", {}, `${t("life_safety")} · `) : null,
        statusSummary(row.status),
        row.radio ? el("div", { class: "meta" }, t("radio_status", { status: row.radio.status || `0x${row.radio.value.toString(16).toUpperCase()}`, time: clock(row.radio.at) })) : null),
      el("td", { class: stale ? "stale" : "" }, heard));
  }));
  $("#print-stamp").textContent = t("printed_at", { time: clock(Date.now() / 1000), node: state.me.node_name });
}

// ---- staff: roll-call -------------------------------------------------------------------------------------

async function renderRollcalls() {
  const data = await api("rollcalls");
  $("#rollcalls").replaceChildren(...data.rollcalls.map((call) => {
    const counts = Object.entries(call.counts).filter(([, n]) => n > 0)
      .map(([s, n]) => el("span", { class: `pill ${s}` }, `${t(`rc_${s}`)}: ${n}`));
    return el("div", { class: "rollcall", "data-request": call.request },
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

// ---- staff: messages --------------------------------------------------------------------------------------

function bodyText(message) {
  const body = message.body;
  if (typeof body === "string") return body;
  if (message.kind === "status") return statusSummary(body);
  if (message.kind === "rollcall") return `${body.question || t("rollcall_default_question")} (${t("deadline")} ${clock(body.deadline)})`;
  if (message.kind === "alert") return [body.headline || body.event, body.description, body.instruction].filter(Boolean).join("\n");
  if (message.kind === "sitrep") return `#${body.number} ${body.phase}: ${body.summary}`;
  if (message.kind === "read_receipt") return t("read_by", { by: body.by || message.from_name, time: clock(body.read_at || message.received) });
  if (message.kind === "resource_request" || message.kind === "commitment") {
    return [`${body.quantity} ${body.unit || ""} ${t(`resource_${body.resource}`)}`, body.text].filter(Boolean).join("\n");
  }
  return JSON.stringify(body);
}

function messageItem(message, extra = null) {
  return el("li", { class: message.priority, "data-id": message.id, "data-kind": message.kind },
    message.status !== "actual" ? el("span", { class: "exercise" }, t(`status_${message.status}`)) : null,
    el("div", { class: "meta" }, `${t(`kind_${message.kind}`)} · ${message.from_name} · ${clock(message.received)} · ${t("via")} ${message.via_kind || "?"}`),
    message.priority === "life-safety" ? el("strong", { class: "error" }, t("life_safety")) : null,
    el("pre", { class: "body" }, bodyText(message)), extra);
}

async function renderMessages() {
  const data = await api("messages");
  $("#messages").replaceChildren(...data.messages.map((m) => messageItem(m,
    ["alert", "read_receipt"].includes(m.kind) ? el("a", { href: `${API}cap/${m.id}`, download: "" }, t("cap_download")) : null)));
}

async function importCap(event) {
  event.preventDefault();
  const form = event.target;
  const file = form.elements.file.files[0];
  try {
    const response = await fetch(API + "cap", { method: "POST", credentials: "same-origin", body: await file.text(),
      headers: { "Content-Type": "application/xml", "X-CSRF-Token": state.me.csrf } });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error);
    form.reset();
    showError(form, null);
  } catch (error) { showError(form, error); }
}

// ---- staff: sitrep composer -------------------------------------------------------------------------------

function fillRecipients() {
  const select = $("#sitrep-to");
  if (!select) return;
  select.replaceChildren(el("option", { value: "*" }, t("to_all")),
    ...(state.me.institutions || []).map((i) => el("option", { value: i.node }, i.name)));
}

function numberOrNull(value) { return value === "" || value === null ? null : Number(value); }

async function sendSitrep(event) {
  event.preventDefault();
  const form = event.target;
  const f = new FormData(form);
  const casualties = {};
  for (const key of ["fatalities", "hospitalised", "injured", "missing", "evacuated", "sheltering"]) {
    const n = numberOrNull(f.get(key));
    if (n !== null) casualties[key] = n;
  }
  const now = Math.floor(Date.now() / 1000);
  const body = {
    number: Number(f.get("number")), phase: f.get("phase"), summary: f.get("summary"), severity: f.get("severity"),
    period_to: now, next_contact: now + 3600 * Number(f.get("next_hours") || 0),
    actions: String(f.get("actions") || "").split("\n").map((s) => s.trim()).filter(Boolean),
  };
  if (f.get("incident")) body.incident = f.get("incident");
  if (Object.keys(casualties).length) body.casualties = casualties;
  try {
    await api("messages", { method: "POST", body: { to: f.get("to"), kind: "sitrep", body, priority: "urgent" } });
    showError(form, null);
    form.elements.number.value = Number(f.get("number")) + 1;
    form.elements.summary.value = "";
  } catch (error) { showError(form, error); }
}

// ---- staff: log book and links ----------------------------------------------------------------------------

// The log book is read a page at a time, newest first; live events carry the new entries themselves, so an
// open console costs the hub the same after three days as after three minutes.
const LOGBOOK_SHOWN = 500;

function logbookRow(e) {
  return el("tr", { "data-seq": e.seq },
    el("td", {}, e.seq), el("td", {}, clock(e.time)), el("td", {}, t(`type_${e.type}`)), el("td", {}, e.author),
    el("td", {}, e.text));
}

async function renderLogbook() {
  const data = await api("logbook");
  const verdict = $("#logbook-verdict");
  verdict.textContent = data.broken === null ? t("logbook_intact") : t("logbook_broken", { seq: data.broken });
  verdict.className = data.broken === null ? "confirmation" : "error";
  $("#logbook tbody").replaceChildren(...data.entries.map(logbookRow));
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
  $("#links tbody").replaceChildren(...data.links.map((l) => el("tr", { class: l.state },
    el("td", {}, `${l.link} (${l.kind})`), el("td", {}, l.peer_name || l.peer || "—"),
    el("td", {}, t(`link_${l.state}`)), el("td", {}, l.queue_depth), el("td", {}, l.reason || ""))));
}

// ---- institution view -------------------------------------------------------------------------------------

async function renderInstitution() {
  const data = await api("messages");
  const banner = $("#open-rollcall");
  const open = data.open_rollcall;
  banner.hidden = !open;
  if (open) banner.textContent = t("rollcall_banner", { question: open.body.question || t("rollcall_default_question"), deadline: clock(open.body.deadline) });
  const instructions = data.messages.filter((m) => ["alert", "text", "sitrep"].includes(m.kind));
  $("#instructions").replaceChildren(...instructions.map((m) => messageItem(m, m.read
    ? el("p", { class: "read-done" }, t("read_done"))
    : el("button", { type: "button", class: "primary", onclick: () => confirmRead(m.id) }, t("read_confirm")))));
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

async function sendStatus(preset) {
  const error = $("#institution-error");
  const confirmation = $("#sent-confirmation");
  confirmation.textContent = "";
  try {
    await api("status", { method: "POST", body: { preset, ...statusFields() } });
    error.textContent = "";
    confirmation.textContent = t(`sent_${preset}`, { time: clock(Date.now() / 1000) });
    renderInstitution();
  } catch (e) { error.textContent = e.message; }
}

async function confirmRead(id) {
  try {
    await api(`read/${id}`, { method: "POST" });
    renderInstitution();
  } catch (e) { $("#institution-error").textContent = e.message; }
}

// ---- wiring -----------------------------------------------------------------------------------------------

function selectTab(name) {
  state.tab = name;
  for (const button of $all(".tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const tab of $all(".tab")) tab.hidden = tab.id !== `tab-${name}`;
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      state.me = await api("login", { method: "POST", body: { username: form.elements.username.value, password: form.elements.password.value } });
      form.reset();
      $("#login-error").textContent = "";
      start();
    } catch (error) { $("#login-error").textContent = error.message; }
  });
  $("#logout").addEventListener("click", async () => { await api("logout", { method: "POST" }).catch(() => null); showLogin(); });
  $("#lang").addEventListener("click", () => loadLanguage(state.lang === "da" ? "en" : "da"));
  for (const button of $all(".tabs button")) button.addEventListener("click", () => selectTab(button.dataset.tab));
  $("#print-board").addEventListener("click", () => { selectTab("board"); window.print(); });
  $("#rollcall-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api("rollcalls", { method: "POST", body: { question: form.elements.question.value || t("rollcall_default_question"), minutes: Number(form.elements.minutes.value) } });
      showError(form, null);
      renderRollcalls();
    } catch (error) { showError(form, error); }
  });
  $("#sitrep-form").addEventListener("submit", sendSitrep);
  $("#logbook-form").addEventListener("submit", addLogEntry);
  $("#logbook-older").addEventListener("click", () => olderLogbook().catch((error) => console.warn("logbook", error)));
  $("#cap-form").addEventListener("submit", importCap);
  for (const button of $all("[data-preset]")) button.addEventListener("click", () => sendStatus(button.dataset.preset));
  await loadLanguage(state.lang);
  start();
});
