/* The run page's signal form: a signal for a pending wait (as `rqdag signal`). */
"use strict";

(() => {
  function setupSignal() {
    const form = document.getElementById("signal-form");
    if (!form) return;
    rqdag.outcomeForm(
      form,
      (fields) => `/api${rqdag.taskUrl(form.dataset.run, String(fields.get("task")))}/signal`,
      (fields) => rqdag.toast(`Signal sent to ${fields.get("task")}`),
    );
  }

  document.addEventListener("DOMContentLoaded", setupSignal);
})();
