"use strict";
// Wiring, loaded after the console's other scripts: the tabs and every form and button, then the
// language and the login or the session already open.

// ---- wiring -----------------------------------------------------------------------------------------------

function visibleTabs() { return $all(".tabs [role=tab]").filter((b) => !b.hidden); }

function selectTab(name, focus = false) {
  state.tab = name;
  for (const button of $all(".tabs [role=tab]")) {
    const selected = button.dataset.tab === name;
    button.classList.toggle("active", selected);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected && focus) button.focus();
  }
  for (const tab of $all(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  setTitle();
}

function tabKeys(event) {
  const tabs = visibleTabs();
  const index = tabs.indexOf(event.target);
  if (index < 0) return;
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
  selectTab(next.dataset.tab, true);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      state.me = await api("login", { method: "POST", body: { username: form.elements.username.value, password: form.elements.password.value } });
      form.reset();
      $("#login-error").textContent = "";
      start(true);
    } catch (error) { $("#login-error").replaceChildren(errorNode(error)); }
  });
  $("#logout").addEventListener("click", async () => {
    await api("logout", { method: "POST" }).catch(() => null);
    showLogin();
    $("#view-login h1").focus();
  });
  $("#lang").addEventListener("click", () => loadLanguage(state.lang === "da" ? "en" : "da"));
  for (const button of $all(".tabs [role=tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
    button.addEventListener("keydown", tabKeys);
  }
  $("#print-board").addEventListener("click", () => { selectTab("board"); window.print(); });
  $("#rollcall-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api("rollcalls", { method: "POST", body: { question: form.elements.question.value || t("rollcall_default_question"), minutes: Number(form.elements.minutes.value) } });
      showError(form, null);
      refreshTopic("rollcall");
    } catch (error) { showError(form, error); }
  });
  $("#compose-form").addEventListener("submit", (event) => sendComposed(event));
  $("#compose-real").addEventListener("click", (event) => { if (window.confirm(t("confirm_real_compose"))) sendComposed(event, true); });
  $("#status-real").addEventListener("click", armRealStatus);
  $("#compose-kind").addEventListener("change", (event) => showKind(event.target.value));
  $("#logbook-form").addEventListener("submit", addLogEntry);
  $("#logbook-older").addEventListener("click", () => olderLogbook().catch((error) => console.warn("logbook", error)));
  $("#cap-form").addEventListener("submit", importCap);
  for (const input of $all(".file-pick input[type=file]")) {
    input.addEventListener("change", () => showChosenFile(input));
    // a form's reset empties the field after the event: name it once the reset is done
    input.form.addEventListener("reset", () => setTimeout(() => showChosenFile(input)));
  }
  for (const button of $all("[data-preset]")) button.addEventListener("click", () => sendStatus(button.dataset.preset));
  showKind("text");
  selectTab("board");
  // "for how long" grows while nothing happens: re-word the times every half minute
  setInterval(() => { if (state.me) { refreshTopic("delivery"); refreshTopic("board"); refreshTopic("link"); } }, 30_000);
  await loadLanguage(state.lang);
  start();
});
