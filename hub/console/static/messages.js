"use strict";
// Messages for staff: the list of what came in, the CAP import, writing (instruction, alert, sitrep,
// answer to a request; to one, a group or all) and the sent view with per-recipient delivery state.
// Uses the helpers of app.js, loaded first.

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
  if (!file) {  // the field is not 'required': the browser would say so in its own language
    $(".error", form).textContent = t("file_missing");
    form.elements.file.focus();
    return;
  }
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
