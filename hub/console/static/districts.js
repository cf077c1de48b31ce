// The district board: per district affected / seen / needing help / not reached, the soonest run-out first,
// and the personal alarms of citizens' handhelds on top. Live through the console's event stream.
// Every word a person reads is in TEXT below.
"use strict";

const API = "/console/api/";
const $ = (id) => document.getElementById(id);
const TEXT = {
  da: {
    skip: "Gå til indhold", title: "strømafhængige borgere", back: "Til konsollen",
    login_note: "Log ind i konsollen som koordinator eller hjemmesygeplejerske, og åbn siden igen.",
    login_link: "Til konsollen", alarms: "Nødkald fra håndsendere", no_alarms: "Ingen nødkald.",
    districts: "Distrikter",
    order: "Distriktet hvor den første endnu ikke besøgte borgers udstyr løber tør først, står øverst.",
    no_register: "Borgerregistret kører ikke på denne hub.", col_district: "Distrikt", col_affected: "Berørte",
    col_seen: "Besøgt", col_help: "Brug for hjælp", col_not_seen: "Ikke nået", col_runs_out: "Første løber tør",
    ran_out: "løbet tør kl. {time}", runs_out: "kl. {time} (om {h} t {m} min)", no_district: "uden distrikt",
    all_seen: "alle er besøgt", citizen: "Borger {id}", alert: "alarmknap", text: "besked", at: "{what} kl. {time}",
    handheld: "Håndsender {id}", of_citizen: "borger {id}", acknowledge: "Kvittér: nogen tager sig af det",
    acknowledged: "Kvitteret af {user} kl. {time}", fresh: "Nyt nødkald: {who}",
    ack_failed: "Kunne ikke kvittere – prøv igen", updated: "Opdateret kl. {time}", live: "Direkte",
    no_hub: "Ingen forbindelse til hubben", other: "Dansk",
    match: { registered: "", unregistered: "UKENDT håndsender – ikke i registret",
             key_differs: "håndsender med en ANDEN nøgle end registreret" },
  },
  en: {
    skip: "Skip to content", title: "power-dependent citizens", back: "Back to the console",
    login_note: "Log in to the console as a coordinator or home nurse, and open this page again.",
    login_link: "Back to the console", alarms: "Emergency calls from handhelds", no_alarms: "No emergency calls.",
    districts: "Districts",
    order: "The district where the first not yet visited citizen's equipment runs out soonest is at the top.",
    no_register: "The citizen register is not running on this hub.", col_district: "District",
    col_affected: "Affected", col_seen: "Visited", col_help: "Needs help", col_not_seen: "Not reached",
    col_runs_out: "First runs out", ran_out: "ran out at {time}", runs_out: "at {time} (in {h} h {m} min)",
    no_district: "no district", all_seen: "all visited", citizen: "Citizen {id}", alert: "alarm button",
    text: "message", at: "{what} at {time}", handheld: "Handheld {id}", of_citizen: "citizen {id}",
    acknowledge: "Acknowledge: someone is on it", acknowledged: "Acknowledged by {user} at {time}",
    fresh: "New emergency call: {who}", ack_failed: "Could not acknowledge – try again",
    updated: "Updated at {time}", live: "Live", no_hub: "No connection to the hub", other: "English",
    match: { registered: "", unregistered: "UNKNOWN handheld – not in the register",
             key_differs: "handheld with a DIFFERENT key than registered" },
  },
};
let lang = localStorage.getItem("beredt-lang") === "en" ? "en" : "da";
let board = null;  // the last answer, drawn again when the language changes
let me = null;
let known = null;
let fetching = null;

const t = (key, values = {}) => TEXT[lang][key].replace(/\{(\w+)\}/g, (_, name) => values[name]);
const clock = (unix) => new Date(unix * 1000).toLocaleTimeString(lang === "da" ? "da-DK" : "en-GB",
  { hour: "2-digit", minute: "2-digit" });

function left(runsOut, now) {
  const minutes = Math.round((runsOut - now) / 60);
  if (minutes <= 0) return t("ran_out", { time: clock(runsOut) });
  return t("runs_out", { time: clock(runsOut), h: Math.floor(minutes / 60), m: minutes % 60 });
}

function cell(text, label, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function drawAlarms(alarms) {
  $("no-alarms").hidden = alarms.length > 0;
  const fresh = known === null ? [] : alarms.filter((a) => !known.has(a.id) && a.acknowledged_at === null);
  known = new Set(alarms.map((a) => a.id));
  $("alarms").replaceChildren(...alarms.map((alarm) => {
    const li = document.createElement("li");
    li.dataset.id = alarm.id;
    li.className = alarm.acknowledged_at === null ? "open" : "handled";
    const head = document.createElement("p");
    const strong = document.createElement("strong");
    // an open alarm of a registered handheld carries the name and address from the register
    strong.textContent = !alarm.citizen ? TEXT[lang].match[alarm.match]
      : alarm.name ? `${alarm.name}, ${alarm.address}` : t("citizen", { id: alarm.citizen });
    const what = t(alarm.port === "alert" ? "alert" : "text");
    head.append(strong, ` – ${t("at", { what, time: clock(alarm.heard) })}`);
    const text = document.createElement("p");
    text.textContent = alarm.text ? `“${alarm.text}”` : "";
    text.lang = "";  // what the person sent, in whatever language
    const how = document.createElement("p");
    how.textContent = t("handheld", { id: alarm.handheld }) + (alarm.citizen
      ? (alarm.name ? ` – ${t("of_citizen", { id: alarm.citizen })}` : "") : ` (${TEXT[lang].match[alarm.match]})`);
    li.append(head, text, how);
    if (alarm.acknowledged_at === null) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary";
      button.textContent = t("acknowledge");
      button.addEventListener("click", () => acknowledge(alarm.id));
      li.append(button);
    } else {
      const done = document.createElement("p");
      done.textContent = t("acknowledged", { user: alarm.acknowledged_by, time: clock(alarm.acknowledged_at) });
      li.append(done);
    }
    return li;
  }));
  const who = fresh.map((a) => a.citizen || a.handheld).join(", ");
  if (fresh.length) $("announce").textContent = t("fresh", { who });
}

function drawDistricts(rows, now) {
  $("districts").tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const soon = row.first_runs_out !== null && row.first_runs_out - now < 3 * 3600;
    tr.className = [soon ? "urgent" : "", row.alarms ? "alarm" : ""].join(" ").trim();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = row.district || t("no_district");
    tr.append(th,
      cell(row.affected, t("col_affected"), "num"), cell(row.seen, t("col_seen"), "num"),
      cell(row.needs_help, t("col_help"), "num"), cell(row.not_seen, t("col_not_seen"), "num"),
      cell(row.first_runs_out === null ? t("all_seen") : left(row.first_runs_out, now), t("col_runs_out")));
    return tr;
  }));
}

function draw() {
  if (!board) return;
  $("no-register").hidden = board.register;
  drawAlarms(board.alarms);
  drawDistricts(board.districts, board.now);
  $("stamp").textContent = t("updated", { time: clock(board.now) });
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = `Beredt – ${t("title")}`;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  const other = lang === "da" ? "en" : "da";
  $("lang").textContent = TEXT[other].other;
  $("lang").lang = other;
  showLive();
  draw();
}

async function refresh() {
  if (fetching) return fetching;
  fetching = (async () => {
    try {
      const response = await fetch(API + "districts", { credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) { $("login-note").hidden = false; return; }
      board = await response.json();
      draw();
    } finally {
      fetching = null;
    }
  })();
  return fetching;
}

async function acknowledge(id) {
  if (!me) me = await (await fetch(API + "me", { credentials: "same-origin" })).json();
  const response = await fetch(API + `alarms/${id}/ack`, {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": me.csrf } });
  if (!response.ok) $("announce").textContent = t("ack_failed");
  await refresh();
}

let connected = null;  // null until the event stream has opened or failed once

function showLive() {
  if (connected === null) return;
  $("live").textContent = t(connected ? "live" : "no_hub");
  $("live").className = "live " + (connected ? "on" : "off");
}

function listen() {
  const events = new EventSource(API + "events");
  events.onopen = () => { connected = true; showLive(); };
  events.onerror = () => { connected = false; showLive(); };
  for (const topic of ["citizens", "message"]) events.addEventListener(topic, () => refresh());
}

$("lang").addEventListener("click", () => {
  lang = lang === "da" ? "en" : "da";
  localStorage.setItem("beredt-lang", lang);
  applyLanguage();
});
applyLanguage();
refresh();
listen();
setInterval(refresh, 60000);  // autonomy runs down by itself
