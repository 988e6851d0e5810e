/* The run page's signal form: a signal for a pending wait (as `rqdag signal`). */
"use strict";

(() => {
  function setupSignal() {
    const form = document.getElementById("signal-form");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = new FormData(form);
      const body = { status: fields.get("status"), reason: fields.get("reason") || null };
      const raw = String(fields.get("data") || "").trim();
      if (raw) {
        try {
          body.data = JSON.parse(raw);
        } catch (err) {
          rqdag.toast(`Data is not JSON: ${err.message}`, true);
          return;
        }
      }
      const url = `/api${rqdag.taskUrl(form.dataset.run, String(fields.get("task")))}/signal`;
      const res = await rqdag.post(url, body);
      if (!res.ok) {
        rqdag.toast(`Refused (${res.status}): ${res.data.error}`, true);
        return;
      }
      rqdag.toast(`Signal sent to ${fields.get("task")}`);
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", setupSignal);
})();
