// The district board: per district affected / seen / needing help / not reached, the soonest run-out first,
// and the personal alarms of citizens' handhelds on top. Live through the console's event stream.
"use strict";

const API = "/console/api/";
const $ = (id) => document.getElementById(id);
const MATCH = {
  registered: "",
  unregistered: "UKENDT håndsender – ikke i registret",
  key_differs: "håndsender med en ANDEN nøgle end registreret",
};
let me = null;
let known = null;
let fetching = null;

const clock = (unix) => new Date(unix * 1000).toLocaleTimeString("da-DK", { hour: "2-digit", minute: "2-digit" });

function left(runsOut, now) {
  const minutes = Math.round((runsOut - now) / 60);
  if (minutes <= 0) return `løbet tør kl. ${clock(runsOut)}`;
  return `kl. ${clock(runsOut)} (om ${Math.floor(minutes / 60)} t ${minutes % 60} min)`;
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
    strong.textContent = !alarm.citizen ? MATCH[alarm.match]
      : alarm.name ? `${alarm.name}, ${alarm.address}` : `Borger ${alarm.citizen}`;
    head.append(strong, ` – ${alarm.port === "alert" ? "alarmknap" : "besked"} kl. ${clock(alarm.heard)}`);
    const text = document.createElement("p");
    text.textContent = alarm.text ? `“${alarm.text}”` : "";
    const how = document.createElement("p");
    how.textContent = `Håndsender ${alarm.handheld}` +
      (alarm.citizen ? (alarm.name ? ` – borger ${alarm.citizen}` : "") : ` (${MATCH[alarm.match]})`);
    li.append(head, text, how);
    if (alarm.acknowledged_at === null) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary";
      button.textContent = "Kvittér: nogen tager sig af det";
      button.addEventListener("click", () => acknowledge(alarm.id));
      li.append(button);
    } else {
      const done = document.createElement("p");
      done.textContent = `Kvitteret af ${alarm.acknowledged_by} kl. ${clock(alarm.acknowledged_at)}`;
      li.append(done);
    }
    return li;
  }));
  if (fresh.length) $("announce").textContent = `Nyt nødkald: ${fresh.map((a) => a.citizen || a.handheld).join(", ")}`;
}

function drawDistricts(rows, now) {
  $("districts").tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const soon = row.first_runs_out !== null && row.first_runs_out - now < 3 * 3600;
    tr.className = [soon ? "urgent" : "", row.alarms ? "alarm" : ""].join(" ").trim();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = row.district || "uden distrikt";
    tr.append(th,
      cell(row.affected, "Berørte", "num"), cell(row.seen, "Besøgt", "num"),
      cell(row.needs_help, "Brug for hjælp", "num"), cell(row.not_seen, "Ikke nået", "num"),
      cell(row.first_runs_out === null ? "alle er besøgt" : left(row.first_runs_out, now), "Første løber tør"));
    return tr;
  }));
}

async function refresh() {
  if (fetching) return fetching;
  fetching = (async () => {
    try {
      const response = await fetch(API + "districts", { credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) { $("login-note").hidden = false; return; }
      const data = await response.json();
      $("no-register").hidden = data.register;
      drawAlarms(data.alarms);
      drawDistricts(data.districts, data.now);
      $("stamp").textContent = `Opdateret kl. ${clock(data.now)}`;
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
  if (!response.ok) $("announce").textContent = "Kunne ikke kvittere – prøv igen";
  await refresh();
}

function listen() {
  const events = new EventSource(API + "events");
  const live = $("live");
  events.onopen = () => { live.textContent = "Direkte"; live.className = "live on"; };
  events.onerror = () => { live.textContent = "Ingen forbindelse til hubben"; live.className = "live off"; };
  for (const topic of ["citizens", "message"]) events.addEventListener(topic, () => refresh());
}

refresh();
listen();
setInterval(refresh, 60000);  // autonomy runs down by itself
