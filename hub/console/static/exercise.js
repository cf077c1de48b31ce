"use strict";
// The exercise banner (every page, for as long as this hub takes part in an exercise) and the exercise
// tab: start, pause, resume and end for coordinators, the live timeline, and observers' notes. Uses the
// helpers of app.js, loaded first.

function exerciseBanner(banner) {
  const node = $("#exercise-banner");
  node.hidden = !banner;
  document.body.classList.toggle("in-exercise", Boolean(banner));
  if (!banner) { document.body.classList.remove("real-armed"); node.replaceChildren(); return; }
  const head = t(banner.paused ? "exercise_banner_paused" : "exercise_banner", { name: banner.name });
  node.replaceChildren(head, " ", el("span", { class: "sub" }, t("exercise_banner_until", { time: clock(banner.until) })));
}

function exerciseItem(item) {
  return el("li", { class: `exercise-${item.type}` },
    el("span", { class: "meta" }, `${clock(item.time)} · ${t(`exercise_type_${item.type}`)} · ${item.author}`),
    el("div", {}, item.text));
}

let exerciseShown = null;

async function renderExercise() {
  const view = await api("exercise");
  exerciseBanner(view.banner);
  const coordinator = state.me.role === "coordinator";
  const current = view.current;
  const shown = view.shown;
  exerciseShown = shown ? shown.id : null;
  $("#exercise-state").textContent = shown
    ? t("exercise_state", { name: shown.name, state: t(`exercise_${shown.state}`), time: clock(shown.started),
        by: shown.coordinator, participants: shown.participants.map((p) => p.name).join(", ") })
    : t("exercise_none");
  $("#exercise-pause").hidden = !coordinator || !current || current.state !== "running";
  $("#exercise-resume").hidden = !coordinator || !current || current.state !== "paused";
  $("#exercise-end").hidden = !coordinator || !current;
  // every hub's own account of its links, asked for again (each hub sends one by itself at the end)
  $("#exercise-collect").hidden = !coordinator || !shown;
  $("#exercise-start").hidden = !coordinator || Boolean(current) || Boolean(view.banner);
  $("#exercise-note").hidden = !["coordinator", "viewer"].includes(state.me.role) || !shown;
  // the after-action report of the exercise shown, drawn by the hub when opened (hub/console/exercise_report.py)
  const report = $("#exercise-report");
  report.hidden = !["coordinator", "viewer"].includes(state.me.role) || !shown;
  if (shown) report.href = `/console/api/exercise-report/${encodeURIComponent(shown.id)}/rapport.html`;
  const upcoming = view.upcoming.map((i) => el("li", {}, el("span", { class: "meta" }, clock(i.due)), el("div", {}, i.text)));
  $("#exercise-upcoming").replaceChildren(...(upcoming.length ? upcoming : [el("li", {}, t("exercise_no_upcoming"))]));
  const timeline = view.timeline.map(exerciseItem);
  $("#exercise-timeline").replaceChildren(...(timeline.length ? timeline : [el("li", {}, t("exercise_nothing"))]));
}

function exerciseError(target, error) {
  const node = target.tagName === "FORM" ? $(".error", target) : $("#exercise-error");
  if (!error) { node.textContent = ""; return; }
  if (error.status === 409) node.replaceChildren(`${t("err_conflict")} ${error.message}`);  // the hub words these in Danish
  else node.replaceChildren(errorNode(error));
}

async function exerciseAction(target, action, body) {
  try {
    await api(`exercise/${action}`, { method: "POST", body: body || {} });
    exerciseError(target, null);
    return true;
  } catch (error) {
    exerciseError(target, error);
    return false;
  } finally {
    refreshTopic("exercise");
  }
}

refreshers.exercise = () => renderExercise();

document.addEventListener("DOMContentLoaded", () => {
  $("#exercise-pause").addEventListener("click", (e) => exerciseAction(e.target, "pause"));
  $("#exercise-resume").addEventListener("click", (e) => exerciseAction(e.target, "resume"));
  $("#exercise-end").addEventListener("click", (e) => {
    if (window.confirm(t("exercise_end_confirm"))) exerciseAction(e.target, "end");
  });
  $("#exercise-collect").addEventListener("click", async (e) => {
    const asked = await exerciseAction(e.target, "collect", { exercise: exerciseShown });
    $("#exercise-collected").textContent = asked ? t("exercise_collected") : "";
  });
  $("#exercise-start [name=file]").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) $("#exercise-start [name=scenario]").value = await file.text();
  });
  $("#exercise-start").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const file = form.elements.file.files[0];
    const body = { scenario: form.elements.scenario.value, file: file ? file.name : "scenario" };
    if (await exerciseAction(form, "start", body)) form.reset();
  });
  $("#exercise-note").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (await exerciseAction(form, "note", { text: form.elements.text.value, exercise: exerciseShown })) form.reset();
  });
});
