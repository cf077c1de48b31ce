"use strict";
// The staff's status board (contact, concern, intervals) and roll-calls. Uses the helpers of app.js,
// loaded first.

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
