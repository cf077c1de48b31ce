// The field page: the team's follow-up list, and visits recorded with one tap, online or not.
// Each visit gets a key made here; the queue lives in localStorage until the hub has it, so a reload, a
// lost connection or a lost answer never loses or doubles a visit (the hub records each key once).
"use strict";

const API = "/console/api/";
const STORE = { queue: "beredt.field.queue", list: "beredt.field.list", rejected: "beredt.field.rejected" };
const RETRY_MS = 5000;
let me = null;
let syncing = false;
const $ = (id) => document.getElementById(id);

function load(name, fallback) {
  try { return JSON.parse(localStorage.getItem(name)) ?? fallback; } catch { return fallback; }
}
function save(name, value) { localStorage.setItem(name, JSON.stringify(value)); }
function announce(text) { $("announce").textContent = text; }

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function call(path, init = {}) {
  const options = { credentials: "same-origin", headers: {}, ...init };
  if (options.body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.body);
  }
  if (options.method && options.method !== "GET" && me) options.headers["X-CSRF-Token"] = me.csrf;
  const response = await fetch(API + path, options);  // throws when there is no network
  const data = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
  return { status: response.status, data };
}

function showNet() {
  const online = navigator.onLine;
  $("net").textContent = online ? "Forbundet" : "Uden forbindelse – besøg gemmes på telefonen";
  $("net").className = "live " + (online ? "on" : "off");
}

function showQueue() {
  const waiting = load(STORE.queue, []).length;
  const box = $("queue");
  box.textContent = waiting ? `${waiting} besøg venter på at blive sendt` : "Alle besøg er sendt til hubben";
  box.className = "queue" + (waiting ? " waiting" : "");
  const rejected = load(STORE.rejected, []);
  $("rejected-box").hidden = rejected.length === 0;
  $("rejected").replaceChildren(...rejected.map((item) => {
    const li = document.createElement("li");
    const outcome = load(STORE.list, null)?.outcomes?.[item.outcome] || item.outcome;
    li.textContent = `${item.citizen}: ${outcome} – ${item.error}`;
    return li;
  }));
}

function hoursText(hours) {
  if (hours <= 0) return "udstyret er løbet tør";
  const h = Math.floor(hours);
  const m = Math.round((hours - h) * 60);
  return `${h} t ${m} min tilbage`;
}

function render() {
  const cached = load(STORE.list, null);
  const list = $("list");
  if (!cached) { list.replaceChildren(); $("list-note").textContent = "Ingen liste endnu."; return; }
  const waiting = new Map(load(STORE.queue, []).map((v) => [v.citizen, v]));
  const shown = new Date(cached.fetched).toLocaleTimeString("da-DK", { hour: "2-digit", minute: "2-digit" });
  $("list-note").textContent = `Listen er fra kl. ${shown}.`;
  const district = $("district");
  const chosen = district.value;
  district.replaceChildren(new Option("Alle distrikter", ""), ...cached.districts.map((d) => new Option(d, d)));
  district.value = chosen;
  const elapsed = (Date.now() - cached.fetched) / 3600000;
  list.replaceChildren(...cached.rows.filter((row) => !chosen || row.district === chosen).map((row) => {
    const li = document.createElement("li");
    const left = row.hours_left - elapsed;
    li.className = row.seen ? "seen" : (left < 3 ? "urgent" : "");
    li.dataset.citizen = row.id;
    const h2 = document.createElement("h2");
    h2.textContent = row.name || `Borger ${row.id}`;
    const where = document.createElement("p");
    where.textContent = [row.address, row.district].filter(Boolean).join(", ");
    const what = document.createElement("p");
    const equipment = row.equipment.map((code) => cached.equipment?.[code] || code);  // codes are English
    what.textContent = `${equipment.join(", ")}: ${hoursText(left)}`;
    const state = document.createElement("p");
    const queued = waiting.get(row.id);
    state.className = queued ? "pending state" : "state";
    state.textContent = queued ? `Registreret: ${cached.outcomes[queued.outcome]} (venter på at blive sendt)`
      : `Seneste besøg: ${row.outcome_text}`;
    const buttons = document.createElement("div");
    buttons.className = "outcomes";
    buttons.setAttribute("role", "group");
    buttons.setAttribute("aria-label", `Registrér besøg hos ${h2.textContent}`);
    for (const [code, text] of Object.entries(cached.outcomes)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.outcome = code;
      button.textContent = text;
      button.addEventListener("click", () => record(row, code));
      buttons.append(button);
    }
    li.append(h2, where, what, state, buttons);
    return li;
  }));
}

function record(row, outcome) {
  const queue = load(STORE.queue, []);
  queue.push({ key: newKey(), citizen: row.id, outage: row.outage, outcome, at: Math.floor(Date.now() / 1000) });
  save(STORE.queue, queue);
  const cached = load(STORE.list, null);
  announce(`Besøg hos ${row.name || row.id} registreret: ${cached ? cached.outcomes[outcome] : outcome}`);
  render();
  showQueue();
  sync();
}

async function sync() {
  if (syncing) return;
  syncing = true;
  try {
    if (!me) await whoAmI();
    for (const visit of load(STORE.queue, [])) {
      const { status, data } = await call("field/visits", { method: "POST", body: visit });
      if (status === 401 || status === 403) { showLogin(); return; }
      if (status >= 500) return;  // the hub is busy or its register is not running: try again later
      const rest = load(STORE.queue, []).filter((v) => v.key !== visit.key);
      if (status >= 400) {
        // refused for good: kept on the phone, shown with the hub's reason
        save(STORE.rejected, [...load(STORE.rejected, []), { ...visit, error: data?.error || `fejl ${status}` }]);
      }
      save(STORE.queue, rest);
      showQueue();
    }
    await refresh();
  } catch {
    // no network: the queue waits for the next try
  } finally {
    syncing = false;
    showNet();
    showQueue();
  }
}

async function whoAmI() {
  const { status, data } = await call("me");
  if (status === 401) { showLogin(); return false; }
  me = data;
  return true;
}

async function refresh() {
  const { status, data } = await call("field/list");
  if (status === 401 || status === 403) { showLogin(); return; }
  if (status !== 200) { $("list-note").textContent = data?.error || `Hubben svarer ${status}`; return; }
  save(STORE.list, { ...data, fetched: Date.now() });
  render();
}

function showLogin() {
  me = null;
  $("login").hidden = false;
  $("field").hidden = true;
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const { status, data } = await call("login", { method: "POST",
      body: { username: form.username.value, password: form.password.value } });
    if (status !== 200) { $("login-error").textContent = data?.error || "Forkert brugernavn eller adgangskode"; return; }
    me = data;
    form.reset();
    $("login").hidden = true;
    $("field").hidden = false;
    await sync();
  } catch {
    $("login-error").textContent = "Ingen forbindelse til hubben";
  }
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("district").addEventListener("change", render);
  window.addEventListener("online", () => { showNet(); sync(); });
  window.addEventListener("offline", showNet);
  setInterval(() => { if (load(STORE.queue, []).length) sync(); }, RETRY_MS);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/console/field-sw.js", { scope: "/console/" }).catch(() => {});
  }
  showNet();
  $("field").hidden = false;
  render();
  showQueue();
  await sync();
}

start();
