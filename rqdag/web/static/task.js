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
    rqdag.outcomeForm(form, () => `/api${rqdag.taskUrl(info.run_id, info.task)}/resolve`);
  }

  function setupRerun() {
    const button = document.getElementById("rerun-task");
    if (!button) return;
    button.addEventListener("click", async () => {
      const url = `/api${rqdag.taskUrl(info.run_id, info.task)}/rerun`;
      const plan = await rqdag.postAction(url, { plan: true });
      if (plan === null) return;
      const names = plan.rerun.length ? plan.rerun.join(", ") : "-";
      const ok = await rqdag.confirmDialog(`Re-run ${info.task}?`, [
        rqdag.el("p", {}, `A new epoch starts; these run again: ${names}.`)], "Re-run");
      if (!ok) return;
      source.close(); // the re-run changes this task's status: go to the run's page, not a reload
      if (await rqdag.postAction(url, { plan: false }) === null) {
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
