// The field page: the team's follow-up list, and visits recorded with one tap, online or not.
// Each visit gets a key made here; the queue lives in localStorage until the hub has it, so a reload, a
// lost connection or a lost answer never loses or doubles a visit (the hub records each key once).
// Every word a person reads is in TEXT below; the hub's own refusals stay in its Danish.
"use strict";

const API = "/console/api/";
const STORE = { queue: "beredt.field.queue", list: "beredt.field.list", rejected: "beredt.field.rejected" };
const RETRY_MS = 5000;
const TEXT = {
  da: {
    skip: "Gå til indhold", title: "besøg i marken", login: "Log ind", username: "Brugernavn",
    password: "Adgangskode", heading: "Borgere der skal besøges", district: "Distrikt",
    all_districts: "Alle distrikter", rejected: "Afvist af hubben (gemt her)",
    online: "Forbundet", offline: "Uden forbindelse – besøg gemmes på telefonen",
    waiting: "{n} besøg venter på at blive sendt", all_sent: "Alle besøg er sendt til hubben",
    run_out: "udstyret er løbet tør", left: "{h} t {m} min tilbage", no_list: "Ingen liste endnu.",
    list_from: "Listen er fra kl. {time}.", citizen: "Borger {id}",
    queued: "Registreret: {outcome} (venter på at blive sendt)", latest: "Seneste besøg: {outcome}",
    not_visited: "ikke besøgt", record_at: "Registrér besøg hos {name}",
    recorded: "Besøg hos {name} registreret: {outcome}", error: "fejl {status}",
    hub_answers: "Hubben svarer {status}", wrong_login: "Forkert brugernavn eller adgangskode",
    no_hub: "Ingen forbindelse til hubben", other: "Dansk",
    outcome: {}, equipment: {},  // the hub's list carries the Danish words
  },
  en: {
    skip: "Skip to content", title: "field visits", login: "Log in", username: "User name",
    password: "Password", heading: "Citizens to visit", district: "District",
    all_districts: "All districts", rejected: "Refused by the hub (kept here)",
    online: "Connected", offline: "No connection – visits are kept on the phone",
    waiting: "Visits waiting to be sent: {n}", all_sent: "All visits have reached the hub",
    run_out: "the equipment has run out", left: "{h} h {m} min left", no_list: "No list yet.",
    list_from: "The list is from {time}.", citizen: "Citizen {id}",
    queued: "Recorded: {outcome} (waiting to be sent)", latest: "Last visit: {outcome}",
    not_visited: "not visited", record_at: "Record a visit to {name}",
    recorded: "Visit to {name} recorded: {outcome}", error: "error {status}",
    hub_answers: "The hub answers {status}", wrong_login: "Wrong user name or password",
    no_hub: "No connection to the hub", other: "English",
    outcome: { seen_ok: "seen, OK", needs_power: "needs power", needs_oxygen: "needs oxygen",
               needs_transport: "needs transport", moved_care_home: "moved to a care home",
               moved_hospital: "moved to hospital", not_home: "not at home" },
    equipment: { oxygen: "oxygen", dialysis: "dialysis", ventilator: "ventilator", suction: "suction",
                 other: "other" },
  },
};
let lang = localStorage.getItem("beredt-lang") === "en" ? "en" : "da";
let me = null;
let syncing = false;
const $ = (id) => document.getElementById(id);

function load(name, fallback) {
  try { return JSON.parse(localStorage.getItem(name)) ?? fallback; } catch { return fallback; }
}
function save(name, value) { localStorage.setItem(name, JSON.stringify(value)); }
function announce(text) { $("announce").textContent = text; }
const t = (key, values = {}) => TEXT[lang][key].replace(/\{(\w+)\}/g, (_, name) => values[name]);
const outcomeText = (cached, code) => TEXT[lang].outcome[code] || cached?.outcomes?.[code] || code;
const equipmentText = (cached, code) => TEXT[lang].equipment[code] || cached?.equipment?.[code] || code;

function hubSays(text) {
  const span = document.createElement("span");
  span.lang = "da";  // the hub words its refusals in Danish
  span.textContent = text;
  return span;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = `Beredt – ${t("title")}`;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  const other = lang === "da" ? "en" : "da";
  $("lang").textContent = TEXT[other].other;
  $("lang").lang = other;
  showNet();
  showQueue();
  render();
}

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
  $("net").textContent = t(online ? "online" : "offline");
  $("net").className = "live " + (online ? "on" : "off");
}

function showQueue() {
  const waiting = load(STORE.queue, []).length;
  const box = $("queue");
  box.textContent = waiting ? t("waiting", { n: waiting }) : t("all_sent");
  box.className = "queue" + (waiting ? " waiting" : "");
  const rejected = load(STORE.rejected, []);
  $("rejected-box").hidden = rejected.length === 0;
  $("rejected").replaceChildren(...rejected.map((item) => {
    const li = document.createElement("li");
    li.append(`${item.citizen}: ${outcomeText(load(STORE.list, null), item.outcome)} – `, hubSays(item.error));
    return li;
  }));
}

function hoursText(hours) {
  if (hours <= 0) return t("run_out");
  const h = Math.floor(hours);
  const m = Math.round((hours - h) * 60);
  return t("left", { h, m });
}

function render() {
  const cached = load(STORE.list, null);
  const list = $("list");
  if (!cached) { list.replaceChildren(); $("list-note").textContent = t("no_list"); return; }
  const waiting = new Map(load(STORE.queue, []).map((v) => [v.citizen, v]));
  const shown = new Date(cached.fetched).toLocaleTimeString(lang === "da" ? "da-DK" : "en-GB",
    { hour: "2-digit", minute: "2-digit" });
  $("list-note").textContent = t("list_from", { time: shown });
  const district = $("district");
  const chosen = district.value;
  district.replaceChildren(new Option(t("all_districts"), ""), ...cached.districts.map((d) => new Option(d, d)));
  district.value = chosen;
  const elapsed = (Date.now() - cached.fetched) / 3600000;
  list.replaceChildren(...cached.rows.filter((row) => !chosen || row.district === chosen).map((row) => {
    const li = document.createElement("li");
    const left = row.hours_left - elapsed;
    li.className = row.seen ? "seen" : (left < 3 ? "urgent" : "");
    li.dataset.citizen = row.id;
    const h2 = document.createElement("h2");
    h2.textContent = row.name || t("citizen", { id: row.id });
    const where = document.createElement("p");
    where.textContent = [row.address, row.district].filter(Boolean).join(", ");
    const what = document.createElement("p");
    const equipment = row.equipment.map((code) => equipmentText(cached, code));  // codes are English
    what.textContent = `${equipment.join(", ")}: ${hoursText(left)}`;
    const state = document.createElement("p");
    const queued = waiting.get(row.id);
    state.className = queued ? "pending state" : "state";
    state.textContent = queued ? t("queued", { outcome: outcomeText(cached, queued.outcome) })
      : t("latest", { outcome: row.outcome ? outcomeText(cached, row.outcome) : t("not_visited") });
    const buttons = document.createElement("div");
    buttons.className = "outcomes";
    buttons.setAttribute("role", "group");
    buttons.setAttribute("aria-label", t("record_at", { name: h2.textContent }));
    for (const code of Object.keys(cached.outcomes)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.outcome = code;
      button.textContent = outcomeText(cached, code);
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
  announce(t("recorded", { name: row.name || row.id, outcome: outcomeText(cached, outcome) }));
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
        save(STORE.rejected, [...load(STORE.rejected, []), { ...visit, error: data?.error || t("error", { status }) }]);
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
  if (status !== 200) {
    $("list-note").replaceChildren(data?.error ? hubSays(data.error) : t("hub_answers", { status }));
    return;
  }
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
    if (status !== 200) {
      $("login-error").replaceChildren(data?.error ? hubSays(data.error) : t("wrong_login"));
      return;
    }
    me = data;
    form.reset();
    $("login").hidden = true;
    $("field").hidden = false;
    await sync();
  } catch {
    $("login-error").textContent = t("no_hub");
  }
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("district").addEventListener("change", render);
  $("lang").addEventListener("click", () => {
    lang = lang === "da" ? "en" : "da";
    localStorage.setItem("beredt-lang", lang);
    applyLanguage();
  });
  window.addEventListener("online", () => { showNet(); sync(); });
  window.addEventListener("offline", showNet);
  setInterval(() => { if (load(STORE.queue, []).length) sync(); }, RETRY_MS);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/console/field-sw.js", { scope: "/console/" }).catch(() => {});
  }
  $("field").hidden = false;
  applyLanguage();
  await sync();
}

start();
