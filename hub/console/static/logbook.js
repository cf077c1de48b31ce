"use strict";
// The staff's log book (read a page at a time, new entries from live events) and the links table.
// Uses the helpers of app.js, loaded first.

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
  // entries of received messages are held and written together: say so, so nobody takes them for lost
  $("#logbook-held").textContent = data.hold_seconds > 0
    ? t("logbook_held", { minutes: Math.max(1, Math.round(data.hold_seconds / 60)) }) : "";
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
