// Gantry web UI: live updates of the run page and the buttons. Plain
// JavaScript, no dependencies. The server renders every page; this script
// only swaps in fresh server-rendered parts when an event arrives, tails
// the selected action's log, and sends commands to the JSON API.
"use strict";

(function () {
  function cookie(name) {
    const m = document.cookie.split("; ").find(function (c) { return c.startsWith(name + "="); });
    return m ? decodeURIComponent(m.slice(name.length + 1)) : "";
  }

  function flash(text, isError) {
    const f = document.getElementById("flash");
    if (!f) return;
    f.textContent = text;
    f.className = isError ? "error" : "";
  }

  // api sends a command with the session cookie and the CSRF header
  // (double submit: the header must equal the gantry_csrf cookie).
  async function api(path, body) {
    const res = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Gantry-CSRF": cookie("gantry_csrf") },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* empty or not JSON */ }
    if (!res.ok) {
      let msg = (data && data.error) || res.status + " " + res.statusText;
      if (data && data.hint) msg += " (" + data.hint + ")";
      throw new Error(msg);
    }
    return data;
  }

  // Durations of what is still running tick every second.
  function fmtDur(ms) {
    const s = Math.max(0, ms / 1000);
    if (s < 60) return s.toFixed(1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function tick() {
    document.querySelectorAll(".dur[data-start]").forEach(function (el) {
      if (!el.dataset.start || el.dataset.end) return;
      el.textContent = fmtDur(Date.now() - Date.parse(el.dataset.start));
    });
  }
  setInterval(tick, 1000);

  // A deployment in progress: reload its page every few seconds, so each
  // host's lifecycle events appear as the agents report them.
  const dep = document.getElementById("deployment");
  if (dep && dep.dataset.phase === "InProgress") {
    setTimeout(function () { location.reload(); }, 3000);
  }

  // A pipeline's page: disable the transition into a stage (a reason is
  // required, as on the CLI) or enable it again.
  const stagesBox = document.getElementById("stages");
  if (stagesBox) {
    stagesBox.addEventListener("click", async function (ev) {
      const b = ev.target.closest("button[data-act]");
      if (!b) return;
      const stage = b.dataset.stage;
      const path = "/api/v1/pipelines/" + encodeURIComponent(stagesBox.dataset.pipeline) +
        "/stages/" + encodeURIComponent(stage) + "/" + b.dataset.act;
      const body = {};
      if (b.dataset.act === "disable") {
        const r = document.getElementById("reason-" + stage);
        body.reason = r ? r.value.trim() : "";
        if (!body.reason) { flash("Say why the transition into " + stage + " is disabled.", true); return; }
      }
      b.disabled = true;
      try {
        await api(path, body);
        location.reload();
      } catch (e) {
        flash(b.textContent.trim() + " failed: " + e.message, true);
        b.disabled = false;
      }
    });
  }

  const root = document.getElementById("run");
  if (!root) return;
  const runID = root.dataset.run;
  const pipeline = root.dataset.pipeline;
  const runPath = "/api/v1/runs/" + encodeURIComponent(runID);
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  let selected = null; // {stage, action}

  // --- the graph's arrows -------------------------------------------------
  function drawEdges() {
    const graph = document.getElementById("graph");
    if (!graph) return;
    const svg = graph.querySelector("svg.edges");
    const box = graph.getBoundingClientRect();
    svg.setAttribute("width", graph.scrollWidth);
    svg.setAttribute("height", graph.scrollHeight);
    const ns = "http://www.w3.org/2000/svg";
    svg.innerHTML = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>';
    const stages = Array.from(graph.querySelectorAll("section.stage"));
    const byName = new Map(stages.map(function (s) { return [s.dataset.stage, s]; }));
    const graphMode = stages.some(function (s) { return s.dataset.depends; });
    stages.forEach(function (to, i) {
      const froms = graphMode
        ? (to.dataset.depends ? to.dataset.depends.split(" ") : [])
        : (i > 0 ? [stages[i - 1].dataset.stage] : []);
      froms.forEach(function (name) {
        const from = byName.get(name);
        if (!from) return;
        const a = from.getBoundingClientRect(), b = to.getBoundingClientRect();
        const x1 = a.right - box.left + graph.scrollLeft, y1 = a.top - box.top + 24;
        const x2 = b.left - box.left + graph.scrollLeft - 2, y2 = b.top - box.top + 24;
        const mid = (x1 + x2) / 2;
        const p = document.createElementNS(ns, "path");
        p.setAttribute("d", "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2);
        p.setAttribute("marker-end", "url(#arrow)");
        svg.appendChild(p);
      });
    });
  }
  window.addEventListener("resize", drawEdges);

  // --- live refresh: one request in flight, one more queued at most ------
  // A swap while a mouse button is down on the live part would replace the
  // button being clicked: the click would land on a detached element and
  // be lost. Swaps wait until the button is released and its click handled.
  let inflight = false, again = false, lastHTML = null, pressed = false, held = false;
  live.addEventListener("pointerdown", function () { pressed = true; });
  document.addEventListener("pointerup", function () {
    if (!pressed) return;
    setTimeout(function () {
      pressed = false;
      if (held) { held = false; refresh(); }
    }, 0);
  });
  async function refresh() {
    if (pressed) { held = true; return; }
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const res = await fetch("/ui/runs/" + encodeURIComponent(runID) + "/live", { credentials: "same-origin", cache: "no-store" });
      if (res.ok) {
        const html = await res.text();
        if (html === lastHTML) return; // nothing visible changed
        if (pressed) { held = true; return; } // swapped once the click is done
        lastHTML = html;
        // Keep what a person is typing across the swap.
        const typed = {};
        live.querySelectorAll("input[id]").forEach(function (i) { if (i.value) typed[i.id] = i.value; });
        const focused = document.activeElement && document.activeElement.id;
        const openDetails = Array.from(live.querySelectorAll("details[open] summary")).map(function (s) { return s.parentElement.querySelector("input") && s.parentElement.querySelector("input").id; });
        live.innerHTML = html;
        Object.keys(typed).forEach(function (id) { const i = document.getElementById(id); if (i) i.value = typed[id]; });
        openDetails.forEach(function (id) { const i = id && document.getElementById(id); if (i) i.closest("details").open = true; });
        if (focused) { const f = document.getElementById(focused); if (f) f.focus(); }
        markSelected();
        drawEdges();
        tick();
        const head = live.querySelector(".run-head");
        root.dataset.phase = head ? head.dataset.phase : "";
      }
    } catch (e) {
      /* the next event or the fallback poll tries again */
    } finally {
      inflight = false;
      if (again) { again = false; refresh(); }
    }
  }

  function runDone() {
    const p = root.dataset.phase || (live.querySelector(".run-head") || {}).dataset.phase;
    return p === "Succeeded" || p === "Failed" || p === "Stopped";
  }

  // --- the run's events over SSE ------------------------------------------
  let poll = null;
  function subscribe() {
    if (!window.EventSource) { startPoll(); return; }
    const es = new EventSource(runPath + "/events", { withCredentials: true });
    const types = (root.dataset.types || "").split(" ").filter(Boolean);
    const onEvent = function () { refresh(); };
    types.forEach(function (t) { es.addEventListener(t, onEvent); });
    es.onmessage = onEvent;
    es.onopen = function () {
      conn.textContent = "Live: following the run's events.";
      root.dataset.live = "sse";
      stopPoll();
      refresh();
    };
    es.onerror = function () {
      root.dataset.live = "";
      if (es.readyState === EventSource.CLOSED) {
        conn.textContent = "Live updates unavailable; checking every 2 seconds.";
        startPoll();
      } else {
        conn.textContent = "Live updates reconnecting…";
      }
    };
  }
  function startPoll() {
    if (poll) return;
    poll = setInterval(function () { if (!runDone()) refresh(); }, 2000);
  }
  function stopPoll() { if (poll) { clearInterval(poll); poll = null; } }

  // --- the log pane ---------------------------------------------------------
  const logBox = document.getElementById("log");
  const logLines = document.getElementById("log-lines");
  const logTitle = document.getElementById("log-title");
  const logState = document.getElementById("log-state");
  let logES = null;

  function markSelected() {
    live.querySelectorAll("li.action.selected").forEach(function (li) { li.classList.remove("selected"); });
    if (!selected) return;
    live.querySelectorAll("li.action").forEach(function (li) {
      if (li.dataset.stage === selected.stage && li.dataset.action === selected.action) li.classList.add("selected");
    });
  }

  function closeLog() {
    if (logES) { logES.close(); logES = null; }
    selected = null;
    logBox.hidden = true;
    markSelected();
  }

  function openLog(stage, action) {
    if (logES) logES.close();
    selected = { stage: stage, action: action };
    markSelected();
    logBox.hidden = false;
    logTitle.textContent = "Log of " + stage + "/" + action;
    logLines.textContent = "";
    logState.textContent = "connecting…";
    const path = runPath + "/actions/" + encodeURIComponent(stage) + "/" + encodeURIComponent(action) + "/logs";
    const es = new EventSource(path, { withCredentials: true });
    logES = es;
    // The stream starts from the first line, also when it reconnects.
    es.onopen = function () { logLines.textContent = ""; logState.textContent = "live"; };
    es.addEventListener("line", function (ev) {
      const atBottom = logLines.scrollTop + logLines.clientHeight >= logLines.scrollHeight - 4;
      logLines.appendChild(document.createTextNode(ev.data + "\n"));
      if (atBottom) logLines.scrollTop = logLines.scrollHeight;
    });
    es.addEventListener("end", function (ev) {
      logState.textContent = "ended" + (ev.data ? ": " + ev.data : "");
      es.close();
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) logState.textContent = "log unavailable";
    };
  }
  document.getElementById("log-close").addEventListener("click", closeLog);

  // --- buttons --------------------------------------------------------------
  document.addEventListener("click", async function (ev) {
    const sel = ev.target.closest("button.select");
    if (sel && live.contains(sel)) {
      openLog(sel.dataset.stage, sel.dataset.action);
      return;
    }
    const b = ev.target.closest("button[data-act]");
    if (!b || !live.contains(b)) return;
    const stage = b.dataset.stage, action = b.dataset.action;
    let path, body, done;
    switch (b.dataset.act) {
      case "approve":
      case "reject": {
        const c = document.getElementById("comment-" + stage + "-" + action);
        path = runPath + "/" + b.dataset.act;
        body = { stage: stage, action: action, comment: c ? c.value : "" };
        done = (b.dataset.act === "approve" ? "Approved " : "Rejected ") + stage + "/" + action + ".";
        break;
      }
      case "stop":
        path = runPath + "/stop"; body = { abandon: false, reason: "stopped from the web UI" }; done = "Stop requested.";
        break;
      case "abandon":
        path = runPath + "/stop"; body = { abandon: true, reason: "stopped and abandoned from the web UI" }; done = "Stop and abandon requested.";
        break;
      case "retry":
        path = runPath + "/retry"; body = { stage: stage }; done = "Retrying " + stage + ".";
        break;
      case "rollback": {
        const to = document.getElementById("to-" + stage);
        path = "/api/v1/pipelines/" + encodeURIComponent(pipeline) + "/rollback";
        body = { stage: stage, to: to ? to.value.trim() : "" };
        done = "Rollback of " + stage + " requested.";
        break;
      }
      default:
        return;
    }
    b.disabled = true;
    try {
      await api(path, body);
      flash(done, false);
      refresh();
    } catch (e) {
      flash(b.textContent.trim() + " failed: " + e.message, true);
      b.disabled = false;
    }
  });

  drawEdges();
  tick();
  subscribe();
})();
