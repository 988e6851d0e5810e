/* A run's page: draws its live state from the run document and follows its event stream. */
"use strict";

(() => {
  const { el, badge, duration, time, clock, setStatusClass } = rqdag;
  const ORDER = ["success", "failure", "running", "queued", "retry_wait", "handed_back", "lost", "skipped",
    "cancelled", "pending"];
  const FINISHED = new Set(["succeeded", "failed", "cancelled", "error"]);
  const MAX_ROWS = 1000; // rows of the tasks table; the API has them all
  const $ = (id) => document.getElementById(id);

  let doc = JSON.parse($("run-doc").textContent);
  let skew = 0; // server clock minus ours, in seconds
  const runId = doc.run.run_id;
  const nodes = new Map();
  for (const node of document.querySelectorAll("#dag g.node")) nodes.set(node.dataset.task, node);

  const now = () => Date.now() / 1000 + skew;
  const short = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

  function nodeLine(task) {
    if (task.status === "running") return `running${task.worker ? ` · ${task.worker}` : ""}`;
    if (task.status === "pending") return "pending";
    if (task.duration_s !== null && task.duration_s !== undefined) {
      return `${task.status} · ${duration(task.duration_s)}${task.attempt > 1 ? ` · try ${task.attempt}` : ""}`;
    }
    return task.attempt > 1 ? `${task.status} · try ${task.attempt}` : task.status;
  }

  function renderDag(tasks, mapped) {
    for (const task of tasks) {
      const node = nodes.get(task.task);
      if (!node) continue;
      const group = mapped ? mapped[task.task] : undefined; // a mapped task: one node for its children
      const status = group ? group.status : task.status;
      node.setAttribute("class", `node st-${status}`);
      node.dataset.status = status;
      const sub = node.querySelector("text.sub");
      if (sub) sub.textContent = short(group ? group.line || status : nodeLine(task), 27);
      if (group) {
        node.dataset.mapped = group.counts;
        const name = node.querySelector("text.name");
        if (name) name.textContent = short(group.counts ? `${task.task} ${group.counts}` : task.task, 22);
      }
    }
  }

  function renderBar(counts, total) {
    const svg = $("run-bar").querySelector("svg");
    const rects = [];
    let x = 0;
    for (const status of ORDER) {
      if (status === "pending" || !counts[status]) continue;
      const w = (counts[status] * 1000) / Math.max(total, 1);
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      rect.setAttribute("class", `seg st-${status}`);
      rect.setAttribute("x", x.toFixed(2));
      rect.setAttribute("width", w.toFixed(2));
      rect.setAttribute("height", "10");
      rects.push(rect);
      x += w;
    }
    svg.replaceChildren(...rects);
  }

  function renderSummary(d) {
    const run = d.run;
    const status = $("run-status");
    status.textContent = run.status;
    setStatusClass(status, run.status);
    document.body.dataset.runStatus = run.status;
    $("run-epoch").textContent = run.epoch;
    $("run-done").textContent = d.done;
    $("run-total").textContent = d.total;
    $("run-eta").textContent = FINISHED.has(run.status) ? "finished" : (d.eta_s === null ? "eta ?" : `eta ${duration(d.eta_s)}`);
    renderBar(d.counts, d.total);
    $("run-counts").replaceChildren(el("div", { class: "chips" }, ORDER.filter((s) => d.counts[s]).map((s) =>
      el("span", { class: `chip st-${s}` }, el("i"), el("b", {}, d.counts[s]), ` ${s}`))));
    $("run-cancel").hidden = !run.cancel;
    $("run-cancel-reason").textContent = run.cancel || "";
    $("run-blocked").hidden = run.status !== "blocked";
    const cancel = $("cancel-run");
    if (cancel) cancel.disabled = FINISHED.has(run.status) || Boolean(run.cancel);
    const resume = $("resume-run");
    if (resume) resume.disabled = !(FINISHED.has(run.status) || run.status === "blocked");
  }

  function renderTasks(tasks) {
    $("count-tasks").textContent = tasks.length;
    const more = tasks.length > MAX_ROWS
      ? [el("tr", {}, el("td", { colspan: 7, class: "empty" },
        `… and ${tasks.length - MAX_ROWS} more tasks: GET /api/runs/${runId} lists them all.`))]
      : [];
    $("tasks-rows").replaceChildren(...tasks.slice(0, MAX_ROWS).map((t) => el("tr", { "data-task": t.task },
      el("td", {}, el("a", { class: "mono", href: rqdag.taskUrl(runId, t.task) }, t.task)),
      el("td", {}, badge(t.status), t.in_doubt ? [" ", el("span", { class: "badge st-blocked" }, "in doubt")] : null),
      el("td", { class: "num" }, t.attempt || "-"),
      el("td", { class: "mono" }, t.worker || "-"),
      el("td", { class: "mono" }, t.queue || "-"),
      el("td", { class: "num" }, duration(t.duration_s)),
      el("td", { class: "msg", title: t.message || "" }, t.message || ""))), ...more);
  }

  function renderTimeline(attempts) {
    const body = $("timeline-rows");
    if (!attempts.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "No attempt has started yet.")));
      $("timeline-span").textContent = "";
      return;
    }
    const start = Math.min(...attempts.map((a) => a.started_at));
    const end = Math.max(...attempts.map((a) => a.finished_at ?? now()));
    const span = Math.max(end - start, 0.001);
    $("timeline-span").textContent = `${clock(start)} → ${duration(span)}`;
    body.replaceChildren(...attempts.map((a) => {
      const stop = a.finished_at ?? now();
      const bar = el("span", { class: `gbar st-${a.status}`, title: `${a.task}: ${duration(stop - a.started_at)}` });
      bar.style.left = `${((a.started_at - start) / span) * 100}%`;
      bar.style.width = `${Math.max(((stop - a.started_at) / span) * 100, 0.4)}%`;
      return el("tr", { "data-task": a.task },
        el("td", {}, el("a", { class: "mono", href: rqdag.taskUrl(runId, a.task) }, a.task)),
        el("td", { class: "num" }, a.attempt ?? "?"),
        el("td", { class: "mono" }, a.worker || "-"),
        el("td", { class: "nowrap" }, time(a.started_at)),
        el("td", { class: "nowrap" }, a.finished_at ? time(a.finished_at) : "…"),
        el("td", { class: "num" }, duration(stop - a.started_at)),
        el("td", { class: "nowrap" }, badge(a.status),
          a.outcome === "retry" ? el("span", { class: "muted" }, " → retry") : null),
        el("td", { class: "track" }, el("div", { class: "track-line" }, bar)));
    }));
  }

  function renderEpochs(epochs) {
    $("count-epochs").textContent = epochs.length;
    $("epochs-rows").replaceChildren(...epochs.map((e) => el("tr", {},
      el("td", {}, e.epoch), el("td", {}, clock(e.started_at)),
      el("td", { class: "mono" }, e.epoch === 1 ? "(first)" : (e.rerun.join(", ") || "-")))));
  }

  function auditDetail(e) {
    if (e.kind === "resolve") return `resolved as ${e.status}${e.reason ? `: ${e.reason}` : ""}`;
    if (e.kind === "resume") return `result set aside (${e.result ? e.result.status : "?"}) from epoch ${e.epoch}`;
    if (e.kind === "resumed") return `resumed: epoch ${e.epoch}${e.rerun ? `, ${e.rerun.length} to run again` : ""}`;
    if (e.kind === "cancel") return `cancel requested: ${e.reason || ""}`;
    return e.reason || "";
  }

  function renderAudit(audit) {
    $("count-audit").textContent = audit.length;
    const rows = [...audit].reverse().map((e) => el("tr", { "data-kind": e.kind },
      el("td", { class: "nowrap" }, clock(e.at)), el("td", {}, e.kind), el("td", { class: "mono" }, e.who || "-"),
      el("td", { class: "mono" }, e.task || ""), el("td", {}, auditDetail(e))));
    $("audit-rows").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "Nothing recorded: no cancel, resume or resolve yet."))]));
  }

  function tick() {
    const run = doc.run;
    const end = run.finished_at ?? now();
    $("run-duration").textContent = duration(end - run.created_at);
  }

  function render(d) {
    doc = d;
    skew = d.at - Date.now() / 1000;
    renderSummary(d);
    renderDag(d.tasks, d.mapped);
    renderTasks(d.tasks);
    renderTimeline(d.timeline);
    renderEpochs(d.epochs);
    renderAudit(d.audit);
    tick();
  }

  function setupTabs() {
    const buttons = document.querySelectorAll(".tabs button[data-tab]");
    for (const button of buttons) {
      button.addEventListener("click", () => {
        for (const other of buttons) other.classList.toggle("active", other === button);
        for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== button.dataset.tab;
      });
    }
  }

  function setupZoom() {
    const svg = $("dag");
    if (!svg) return;
    const wrap = $("dag-wrap");
    const width = Number(svg.dataset.width);
    const height = Number(svg.dataset.height);
    let scale = 1;
    const apply = () => {
      svg.setAttribute("width", Math.round(width * scale));
      svg.setAttribute("height", Math.round(height * scale));
    };
    const fit = () => {
      scale = Math.min(1, Math.max((wrap.clientWidth - 20) / width, 0.55));
      apply();
    };
    for (const button of document.querySelectorAll("[data-zoom]")) {
      button.addEventListener("click", () => {
        if (button.dataset.zoom === "fit") fit();
        else scale = Math.min(Math.max(scale * (button.dataset.zoom === "in" ? 1.25 : 0.8), 0.25), 2.5);
        apply();
      });
    }
    fit();
  }

  async function act(path, body, done) {
    const data = await rqdag.postAction(`/api/runs/${encodeURIComponent(runId)}/${path}`, body);
    if (data !== null) rqdag.toast(done);
    return data;
  }

  function setupActions() {
    const cancel = $("cancel-run");
    if (cancel) {
      cancel.addEventListener("click", async () => {
        const reason = el("input", { id: "cancel-reason", placeholder: "why (kept with the run)", value: "cancelled from the dashboard" });
        const ok = await rqdag.confirmDialog(`Cancel run ${runId}?`, [
          el("p", {}, "Tasks not started yet become cancelled; running tasks see ctx.cancelled and finish on their own."),
          el("label", {}, "Reason", reason)], "Cancel the run");
        if (ok) await act("cancel", { reason: reason.value }, "Cancel requested: the coordinator stops the run.");
      });
    }
    const resume = $("resume-run");
    if (resume) {
      resume.addEventListener("click", async () => {
        const plan = await act("resume", { plan: true }, "Here is what a resume would do.");
        if (!plan) return;
        const keep = el("input", { type: "checkbox", id: "keep-changed" });
        const list = (names) => (names.length ? names.join(", ") : "-");
        const ok = await rqdag.confirmDialog(`Resume run ${runId}?`, [
          el("p", {}, "A new epoch starts: successes stay, everything else runs again."),
          el("dl", { class: "plan" }, el("dt", {}, "keep"), el("dd", {}, list(plan.keep)),
            el("dt", {}, "run again"), el("dd", {}, list(plan.rerun)),
            el("dt", {}, "changed"), el("dd", {}, list(plan.changed))),
          el("label", {}, el("span", {}, keep, " keep successes whose definition changed"))], "Resume");
        if (ok) await act("resume", { plan: false, keep_changed: keep.checked }, "Resumed: a coordinator drives the new epoch.");
      });
    }
  }

  function follow() {
    const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
    source.addEventListener("update", (event) => {
      render(JSON.parse(event.data));
      document.body.dataset.live = "yes";
    });
    source.addEventListener("problem", (event) => {
      document.body.dataset.live = "problem";
      rqdag.toast(JSON.parse(event.data).error, true);
    });
    source.addEventListener("gone", (event) => {
      source.close();
      document.body.dataset.live = "gone";
      rqdag.toast(`${JSON.parse(event.data).error}: the run was deleted`, true);
    });
    source.addEventListener("error", () => { document.body.dataset.live = "reconnecting"; });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupTabs();
    setupZoom();
    setupActions();
    render(doc);
    follow();
    setInterval(() => {
      tick();
      if (!FINISHED.has(doc.run.status) && doc.timeline.some((a) => !a.finished_at)) renderTimeline(doc.timeline);
    }, 1000);
  });
})();
