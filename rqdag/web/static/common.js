/* rqdag dashboard: helpers every page uses (no external libraries). */
"use strict";

const rqdag = (() => {
  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* POST JSON to an action; resolves to {ok, status, data}. */
  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    let data;
    try {
      data = await res.json();
    } catch (err) {
      data = { error: `${res.status} ${res.statusText}` };
    }
    return { ok: res.ok, status: res.status, data };
  }

  /* POST an action; resolves to the response's data, or to null when refused (said in a toast). */
  async function postAction(url, body) {
    const res = await post(url, body);
    if (!res.ok) {
      toast(`Refused (${res.status}): ${res.data.error}`, true);
      return null;
    }
    return res.data;
  }

  /* A task's outcome form (status, data as JSON, reason): on submit, POST it to urlOf(fields);
     once accepted, sent(fields) (if given), then the page reloads. The run page's signal form
     and the task page's resolve form. */
  function outcomeForm(form, urlOf, sent) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = new FormData(form);
      const body = { status: fields.get("status"), reason: fields.get("reason") || null };
      const raw = String(fields.get("data") || "").trim();
      if (raw) {
        try {
          body.data = JSON.parse(raw);
        } catch (err) {
          toast(`Data is not JSON: ${err.message}`, true);
          return;
        }
      }
      if (await postAction(urlOf(fields), body) === null) return;
      if (sent) sent(fields);
      window.location.reload();
    });
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");

  function clock(ts) {
    if (ts === null || ts === undefined) return "-";
    const d = new Date(ts * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function time(ts) {
    if (ts === null || ts === undefined) return "-";
    const d = new Date(ts * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${Math.floor(d.getMilliseconds() / 100)}`;
  }

  function duration(s) {
    if (s === null || s === undefined) return "-";
    if (s < 10) return `${Math.max(s, 0).toFixed(2)}s`;
    if (s < 60) return `${s.toFixed(1)}s`;
    const t = Math.floor(s);
    if (t < 3600) return `${Math.floor(t / 60)}m${pad(t % 60)}s`;
    if (t < 86400) return `${Math.floor(t / 3600)}h${pad(Math.floor((t % 3600) / 60))}m`;
    return `${Math.floor(t / 86400)}d${pad(Math.floor((t % 86400) / 3600))}h`;
  }

  /* An element with attributes and children (strings become text: never HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const badge = (status) => el("span", { class: `badge st-${status}` }, status);

  function setStatusClass(node, status) {
    for (const name of [...node.classList]) if (name.startsWith("st-")) node.classList.remove(name);
    node.classList.add(`st-${status}`);
  }

  function localizeTimes(root) {
    for (const node of root.querySelectorAll("time[data-ts]")) node.textContent = clock(Number(node.dataset.ts));
  }

  let toastTimer = null;
  function toast(text, bad) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("bad", Boolean(bad));
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, bad ? 9000 : 5000);
  }

  const runUrl = (runId) => `/runs/${encodeURIComponent(runId)}`;
  const taskUrl = (runId, task) => `${runUrl(runId)}/tasks/${encodeURIComponent(task)}`;

  /* Ask before an action: fills the page's confirm dialog; resolves to true on Confirm. */
  function confirmDialog(title, body, confirmLabel) {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-title").textContent = title;
    const content = document.getElementById("confirm-body");
    content.replaceChildren(...body);
    document.getElementById("confirm-yes").textContent = confirmLabel || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    });
  }

  /* Replace a table body with the server's rows every few seconds (runs, workers). */
  function refreshRows(tbodyId, everyMs) {
    const tbody = document.getElementById(tbodyId);
    if (!tbody) return;
    setInterval(async () => {
      if (document.hidden) return;
      const url = new URL(window.location.href);
      url.searchParams.set("fragment", "rows");
      try {
        const res = await fetch(url, { credentials: "same-origin" });
        if (!res.ok) return;
        tbody.innerHTML = await res.text(); // rendered and escaped by the server's templates
        localizeTimes(tbody);
      } catch (err) {
        /* the next tick tries again */
      }
    }, everyMs);
  }

  document.addEventListener("DOMContentLoaded", () => localizeTimes(document));

  return { post, postAction, outcomeForm, clock, time, duration, el, badge, setStatusClass, localizeTimes,
    toast, runUrl, taskUrl, confirmDialog, refreshRows };
})();
