// Subject access and erasure for one person (coordinators only): search, export, erase.
// The search term goes in POST bodies, never in a URL. Every word a person reads is in TEXT below.
"use strict";

const API = "/console/api/data/";
const $ = (id) => document.getElementById(id);
const TEXT = {
  da: {
    skip: "Gå til indhold", title: "persondata", back: "Til konsollen",
    heading: "Indsigt og sletning for én person",
    login_note: "Kun for koordinatorer: log ind i konsollen, og åbn siden igen.", login_link: "Til konsollen",
    intro: "Søg på et navn eller et CPR-nummer. Beredt finder hver besked og hver post i konsollen om personen, også forseglede beskeder denne hub kan åbne.",
    term: "Navn eller CPR-nummer", search: "Søg", found: "Fundet",
    export_json: "Hent som JSON", export_csv: "Hent som CSV", erase: "Slet alt fundet …",
    erase_now: "Slet for altid", cancel: "Fortryd",
    col_place: "Hvor", col_time: "Tid", col_kind: "Slags", col_from: "Fra", col_to: "Til", col_content: "Indhold",
    searching: "Søger …", none: "Intet fundet.", count: "{n} fund.",
    confirm: "Slet {n} fund for altid? Beskederne overskrives, og konsollens tekst erstattes. Logbogen får en post med antallet, ikke søgeordet.",
    erased: "Slettet: {messages} beskeder, {sent} sendte, {board} statusser, {rollcall} svar på statusrunder, {notes} logbogstekster.",
    failed: "Hubben afviste: {error}", exported: "Hentet {n} fund som {format}.",
    place: { message: "besked", sent: "sendt herfra", board: "statustavlen", rollcall: "statusrunde", logbook: "logbogen" },
    kind: { text: "besked", sitrep: "situationsrapport", status: "status", rollcall: "statusrunde", alert: "varsel",
            resource_request: "ressourceanmodning", commitment: "tilsagn", read_receipt: "læst-kvittering",
            citizen_alarm: "nødkald" },
    other: "Dansk", other_code: "da",
  },
  en: {
    skip: "Skip to content", title: "personal data", back: "Back to the console",
    heading: "Access and erasure for one person",
    login_note: "Coordinators only: log in to the console and open this page again.", login_link: "Back to the console",
    intro: "Search for a name or a CPR number. Beredt finds every message and every console record about the person, also sealed messages this hub can open.",
    term: "Name or CPR number", search: "Search", found: "Found",
    export_json: "Download as JSON", export_csv: "Download as CSV", erase: "Erase everything found …",
    erase_now: "Erase for good", cancel: "Cancel",
    col_place: "Where", col_time: "Time", col_kind: "Kind", col_from: "From", col_to: "To", col_content: "Content",
    searching: "Searching …", none: "Nothing found.", count: "{n} found.",
    confirm: "Erase {n} findings for good? The messages are overwritten and the console's text replaced. The log book gets an entry with the counts, not the search term.",
    erased: "Erased: {messages} messages, {sent} sent, {board} statuses, {rollcall} roll-call answers, {notes} log-book texts.",
    failed: "The hub refused: {error}", exported: "Downloaded {n} findings as {format}.",
    place: { message: "message", sent: "sent from here", board: "status board", rollcall: "roll-call", logbook: "log book" },
    kind: {},
    other: "English", other_code: "en",
  },
};
let lang = localStorage.getItem("beredt-lang") === "en" ? "en" : "da";
let me = null;
let findings = [];
let searched = "";

const t = (key, values = {}) => TEXT[lang][key].replace(/\{(\w+)\}/g, (_, name) => values[name]);

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  const other = lang === "da" ? "en" : "da";
  $("lang").textContent = TEXT[other].other;
  $("lang").lang = other;
  draw();
}

function when(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleString(lang === "da" ? "da-DK" : "en-GB",
    { timeZone: "Europe/Copenhagen", dateStyle: "short", timeStyle: "short" });
}

function shown(content) {
  // a message's body is JSON: a text is shown as it is, a structured body as its values
  try {
    const value = JSON.parse(content);
    if (typeof value === "string") return value;
    return Object.values(value).flat().filter((v) => typeof v === "string" || typeof v === "number").join(" · ");
  } catch {
    return content;
  }
}

function cell(text, label, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function draw() {
  $("results").hidden = !searched;
  $("findings").tBodies[0].replaceChildren(...findings.map((f) => {
    const tr = document.createElement("tr");
    tr.dataset.id = f.id;
    const content = cell(shown(f.content), t("col_content"), "content");
    content.lang = "";  // what the person wrote, in whatever language
    tr.append(cell(TEXT[lang].place[f.place] || f.place, t("col_place")), cell(when(f.time), t("col_time")),
      cell(TEXT[lang].kind[f.kind] || f.kind, t("col_kind")), cell(f.sender, t("col_from")),
      cell(f.recipient, t("col_to")), content);
    return tr;
  }));
  for (const id of ["export-json", "export-csv", "erase"]) $(id).disabled = findings.length === 0;
}

async function post(path, body) {
  if (!me) {
    const answer = await fetch("/console/api/me", { credentials: "same-origin" });
    if (!answer.ok) throw Object.assign(new Error("login"), { status: answer.status });
    me = await answer.json();
  }
  const response = await fetch(API + path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw Object.assign(new Error(data.error || response.statusText), { status: response.status });
  }
  return response;
}

function refused(error) {
  if (error.status === 401 || error.status === 403) {
    $("login-note").hidden = false;
    $("status").textContent = "";
  } else {
    $("status").textContent = t("failed", { error: error.message });
  }
}

async function search(term) {
  $("status").textContent = t("searching");
  $("confirm").hidden = true;
  try {
    findings = (await (await post("search", { term })).json()).findings;
    searched = term;
    $("status").textContent = findings.length ? t("count", { n: findings.length }) : t("none");
  } catch (error) {
    refused(error);
  }
  draw();
}

async function download(format) {
  try {
    const response = await post("export", { term: searched, format });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = `persondata.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    $("status").textContent = t("exported", { n: findings.length, format: format.toUpperCase() });
  } catch (error) {
    refused(error);
  }
}

async function erase() {
  $("confirm").hidden = true;
  try {
    const done = await (await post("erase", { term: searched })).json();
    findings = [];
    draw();
    $("status").textContent = t("erased", done);
  } catch (error) {
    refused(error);
  }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  search($("term").value.trim());
});
$("export-json").addEventListener("click", () => download("json"));
$("export-csv").addEventListener("click", () => download("csv"));
$("erase").addEventListener("click", () => {
  $("confirm-text").textContent = t("confirm", { n: findings.length });
  $("confirm").hidden = false;
  $("erase-now").focus();
});
$("erase-now").addEventListener("click", erase);
$("erase-cancel").addEventListener("click", () => { $("confirm").hidden = true; $("erase").focus(); });
$("lang").addEventListener("click", () => {
  lang = lang === "da" ? "en" : "da";
  localStorage.setItem("beredt-lang", lang);
  applyLanguage();
});
applyLanguage();
fetch("/console/api/me", { credentials: "same-origin" }).then((r) => {
  if (!r.ok) { $("login-note").hidden = false; return; }
  return r.json().then((data) => {
    me = data;
    if (data.role !== "coordinator") $("login-note").hidden = false;
  });
});
