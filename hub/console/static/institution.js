"use strict";
// The care home's page: the open roll-call, instructions, the big status buttons and what became of
// what it sent. Uses the helpers of app.js, loaded first.

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
