/* A task's page: reload when the task's status changes; the resolve form; the re-run button. */
"use strict";

(() => {
  const info = JSON.parse(document.getElementById("task-doc").textContent);

  let source = null;

  function follow() {
    source = new EventSource(`/api/runs/${encodeURIComponent(info.run_id)}/events`);
    source.addEventListener("update", (event) => {
      const doc = JSON.parse(event.data);
      const row = doc.tasks.find((t) => t.task === info.task);
      if (row && row.status !== info.status) {
        source.close();
        window.location.reload();
      }
    });
  }

  function setupResolve() {
    const form = document.getElementById("resolve-form");
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
      const url = `/api${rqdag.taskUrl(info.run_id, info.task)}/resolve`;
      const res = await rqdag.post(url, body);
      if (!res.ok) {
        rqdag.toast(`Refused (${res.status}): ${res.data.error}`, true);
        return;
      }
      window.location.reload();
    });
  }

  function setupRerun() {
    const button = document.getElementById("rerun-task");
    if (!button) return;
    button.addEventListener("click", async () => {
      const url = `/api${rqdag.taskUrl(info.run_id, info.task)}/rerun`;
      const plan = await rqdag.post(url, { plan: true });
      if (!plan.ok) {
        rqdag.toast(`Refused (${plan.status}): ${plan.data.error}`, true);
        return;
      }
      const names = plan.data.rerun.length ? plan.data.rerun.join(", ") : "-";
      const ok = await rqdag.confirmDialog(`Re-run ${info.task}?`, [
        rqdag.el("p", {}, `A new epoch starts; these run again: ${names}.`)], "Re-run");
      if (!ok) return;
      source.close(); // the re-run changes this task's status: go to the run's page, not a reload
      const res = await rqdag.post(url, { plan: false });
      if (!res.ok) {
        rqdag.toast(`Refused (${res.status}): ${res.data.error}`, true);
        follow();
        return;
      }
      window.location.assign(rqdag.runUrl(info.run_id));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupResolve();
    setupRerun();
    follow();
  });
})();
