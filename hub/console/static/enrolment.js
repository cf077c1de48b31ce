"use strict";
// The enrolment tab, for coordinators on the hub that holds the root key: the cards that asked to be
// enrolled ('beredt enrol --request'), approved with name, role, institution and groups or refused, and the
// enrolled nodes, each of which can be revoked. Uses the helpers of app.js, loaded first.

const enrolForms = new Map();  // code -> what the coordinator typed, kept across redraws

function enrolField(label, control) {
  return el("label", {}, el("span", {}, label), control);
}

function enrolRequest(request, roles) {
  const kept = enrolForms.get(request.code) || {};
  const role = el("select", { name: "role" },
    ...roles.map((r) => el("option", { value: r, selected: (kept.role || request.role) === r }, t(`role_${r}`))));
  const name = el("input", { name: "name", maxLength: 80, value: kept.name ?? request.name });
  const institution = el("input", { name: "institution", maxLength: 80, value: kept.institution || "" });
  const groups = el("input", { name: "groups", value: kept.groups || "" });
  const form = el("form", { class: "card enrol-request", "data-code": request.code },
    el("h4", {}, request.name),
    el("dl", { class: "enrol-facts" },
      el("dt", {}, t("enrol_code")), el("dd", {}, el("strong", { class: "enrol-code" }, request.code)),
      el("dt", {}, t("enrol_asked_role")), el("dd", {}, t(`role_${request.role}`)),
      el("dt", {}, t("enrol_fingerprint")), el("dd", {}, el("code", {}, request.node)),
      el("dt", {}, t("enrol_received")), el("dd", {}, clock(request.received))),
    el("div", { class: "grid" },
      enrolField(t("enrol_name"), name),
      enrolField(t("enrol_role"), role),
      enrolField(t("enrol_institution"), institution),
      enrolField(t("enrol_groups"), groups)),
    el("div", { class: "row" },
      el("button", { type: "submit", class: "primary" }, t("enrol_approve")),
      el("button", { type: "button", class: "danger", onclick: () => {
        if (window.confirm(t("enrol_refuse_confirm", { name: request.name }))) enrolAction("refuse", { code: request.code });
      } }, t("enrol_refuse"))));
  form.addEventListener("input", () => enrolForms.set(request.code,
    { name: name.value, role: role.value, institution: institution.value, groups: groups.value }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    enrolAction("approve",
      { code: request.code, name: name.value, role: role.value, institution: institution.value, groups: groups.value },
      name.value || request.name);
  });
  return form;
}

function enrolNode(node) {
  return el("tr", { "data-node": node.node },
    el("th", { scope: "row", "data-label": t("enrol_col_name") }, node.name),
    el("td", { "data-label": t("enrol_col_role") }, t(`role_${node.role}`)),
    el("td", { "data-label": t("enrol_col_institution") }, node.institution || "—"),
    el("td", { "data-label": t("enrol_col_node") }, el("code", {}, node.node)),
    el("td", { "data-label": t("enrol_col_action") },
      el("button", { type: "button", class: "small danger", onclick: () => {
        if (window.confirm(t("enrol_revoke_confirm", { name: node.name }))) enrolAction("revoke", { node: node.node });
      } }, t("enrol_revoke"))));
}

async function renderEnrolment() {
  const button = $("#tabbtn-enrolment");
  if (state.me.role !== "coordinator") { button.hidden = true; return; }
  const view = await api("enrolment");
  button.hidden = !view.available;
  if (!view.available) return;
  const requests = view.requests.map((r) => enrolRequest(r, view.roles));
  $("#enrol-requests").replaceChildren(...(requests.length ? requests : [el("p", {}, t("enrol_none"))]));
  const rows = view.nodes.map(enrolNode);
  $("#enrol-nodes tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 5 }, t("enrol_no_nodes")))]));
}

async function enrolAction(action, body, name) {
  const error = $("#enrol-error");
  try {
    const view = await api(`enrolment/${action}`, { method: "POST", body });
    error.textContent = "";
    if (body.code) enrolForms.delete(body.code);
    const done = { approve: "enrol_done_approved", refuse: "enrol_done_refused", revoke: "enrol_done_revoked" }[action];
    $("#enrol-done").textContent = t(done, { name, version: view.roster_version });
  } catch (failure) {
    $("#enrol-done").textContent = "";
    error.replaceChildren(errorNode(failure));
  } finally {
    refreshTopic("enrolment");
  }
}

refreshers.enrolment = () => renderEnrolment();

document.addEventListener("DOMContentLoaded", () => {
  $("#enrol-refresh").addEventListener("click", () => refreshTopic("enrolment"));
  $("#tabbtn-enrolment").addEventListener("click", () => refreshTopic("enrolment"));
});
