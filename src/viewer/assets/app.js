// fine-grained-monitor viewer page: opens on the node's overview; picking a
// container (from the overview or the list) charts it. Presets, zoom, one
// time zone for everything (local or UTC), comparison with an earlier range,
// studies, export, and live refresh. Every view is in the URL, so it can be
// shared. State is exposed as window.fgm so the browser tests can read what
// was drawn.
(function () {
  "use strict";
  const { el, getJSON, fmtTime, zoneName, label, matches, COLORS } = window.fgmUtil;

  const PRESETS = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
  const COMPARE = { prev: "previous period", "1d": "1 day earlier", "7d": "1 week earlier" };
  const MAX_SELECTED = 20;
  const MAX_LISTED = 400;
  // Live: the status every second, then charts of raw points append what is
  // new (the server reads only the open interval's new frames); the overview
  // and downsampled charts are asked again (the server's per-file summaries
  // and columns are cached, so it reads only what is new too). A refresh
  // still running skips a tick.
  const LIVE_MS = 1000;
  const DEFAULT_METRICS = ["cpu_usage_usec", "memory_working_set_bytes"];

  const fgm = window.fgm = {
    status: null, containers: [], metrics: [], selected: [], metricsSelected: [], view: "overview",
    preset: "15m", zoom: null, range: null, tz: "local", compare: "off", studies: {}, charts: {},
    events: [], overview: null, renders: 0, overviewRenders: 0, errors: [], exports: [],
    // The charts' answers and what drawing them took, for the live refresh and the tests:
    // drawn = { newest: time of the newest sample on screen, at: when it was drawn }.
    answers: {}, drawn: null, liveAppends: 0,
    // The processes of the one selected container (GET /api/processes) and their memory chart.
    processes: null, processesChart: null, processRenders: 0,
    // Its IO per device and its pod's network per interface (GET /api/breakdown).
    breakdown: null, breakdownCharts: [], breakdownRenders: 0,
  };

  const $ = (id) => document.getElementById(id);
  const byId = (id) => fgm.containers.find((c) => c.id === id);
  const labelOf = (id) => { const c = byId(id); return c ? label(c) : id; };
  const colorOf = (id) => { const i = fgm.selected.indexOf(id); return COLORS[(i < 0 ? 0 : i) % COLORS.length]; };
  const metricOf = (name) => fgm.metrics.find((m) => m.name === name) || { name, title: name };

  // ---- status and lists -------------------------------------------------
  async function loadStatus() {
    const s = await getJSON("/api/status");
    fgm.status = s;
    renderStatus();
    const bad = s.corrupt_files || [];
    const sk = $("skipped");
    sk.hidden = bad.length === 0;
    if (bad.length) {
      sk.querySelector("summary").textContent = bad.length + " unreadable data file(s) skipped";
      sk.querySelector("ul").replaceChildren(...bad.map((b) => el("li", {}, b.path + ": " + b.error)));
    }
    return s;
  }

  function renderStatus() {
    const s = fgm.status;
    const st = $("status");
    if (!s) return;
    st.textContent = "";
    // The cluster view (kubectl fgm view): its nodes, and those not answering.
    const missing = s.not_answering || [];
    const notAnswering = () => {
      if (!missing.length) return;
      st.append(el("span", { class: "bad", title: missing.map((n) => n.node + ": " + n.reason).join("\n") },
        " · " + missing.length + " node(s) not answering: " + missing.map((n) => n.node).join(", ")));
    };
    if (s.state !== "ready") {
      st.append(el("span", { class: "bad" }, s.message));
      notAnswering();
      return;
    }
    const r = s.data_range || {};
    if (s.nodes) st.append(s.nodes.length + " nodes · ");
    st.append(s.containers + " containers · data " + (r.earliest ? fmtTime(Date.parse(r.earliest), fgm.tz) : "?") +
      " → " + (r.latest ? fmtTime(Date.parse(r.latest), fgm.tz, true) : "?"));
    if (s.index_source === "rebuilt_from_files") st.append(el("span", { class: "bad" }, " · index rebuilt from files"));
    notAnswering();
  }

  async function loadContainers() {
    const sandbox = $("show-sandbox").checked;
    const list = await getJSON("/api/containers" + (sandbox ? "?include_sandbox=true" : ""));
    fgm.containers = list.containers.sort((a, b) => label(a).localeCompare(label(b)));
    renderContainers();
  }

  function rank(c) {
    const i = fgm.selected.indexOf(c.id);
    return i < 0 ? MAX_SELECTED : i;
  }

  function renderContainers() {
    const q = $("search").value;
    // Selected containers stay on top, in selection order, so they are easy to find among hundreds.
    const shown = fgm.containers.filter((c) => matches(c, q)).sort((a, b) => rank(a) - rank(b));
    $("count").textContent = shown.length + " of " + fgm.containers.length + " · " + fgm.selected.length + " selected";
    const items = shown.slice(0, MAX_LISTED).map((c) => {
      const sel = fgm.selected.includes(c.id);
      const chips = Object.entries(c.labels || {}).slice(0, 4).map(([k, v]) => el("span", { class: "chip" }, k + "=" + v));
      return el("li", { class: sel ? "selected" : "", "data-id": c.id, title: c.full_id || c.id, onclick: () => toggle(c.id) },
        el("input", { type: "checkbox", checked: sel, tabindex: -1 }),
        el("span", { class: "swatch", style: "background:" + (sel ? colorOf(c.id) : "transparent") }),
        el("div", {}, el("div", { class: "name" }, label(c)),
          el("div", { class: "meta" }, c.id + (c.qos_class ? " · " + c.qos_class : "") + (c.sandbox ? " · pause" : "")),
          el("div", {}, ...chips)));
    });
    if (shown.length > MAX_LISTED) items.push(el("li", { class: "more" }, (shown.length - MAX_LISTED) + " more: refine the search"));
    $("containers").replaceChildren(...items);
  }

  function toggle(id) {
    const i = fgm.selected.indexOf(id);
    if (i >= 0) fgm.selected.splice(i, 1);
    else if (fgm.selected.length < MAX_SELECTED) fgm.selected.push(id);
    renderContainers();
    setView("charts");
  }

  async function loadMetrics() {
    const m = await getJSON("/api/metrics");
    fgm.metrics = m.metrics;
    const names = fgm.metrics.map((x) => x.name);
    fgm.metricsSelected = fgm.metricsSelected.filter((n) => names.includes(n));
    if (!fgm.metricsSelected.length) {
      fgm.metricsSelected = DEFAULT_METRICS.filter((n) => names.includes(n));
      if (!fgm.metricsSelected.length && names.length) fgm.metricsSelected = [names[0]];
    }
    // Grouped by resource as the catalogue says, file order within a group.
    const groups = new Map();
    for (const x of fgm.metrics) {
      if (!groups.has(x.group)) groups.set(x.group, { title: x.group_title, list: [] });
      groups.get(x.group).list.push(x);
    }
    const rows = [];
    for (const [key, g] of groups) {
      rows.push(el("div", { class: "metric-group", "data-group": key }, g.title));
      for (const x of g.list) rows.push(metricCheckbox(x));
    }
    $("metrics").replaceChildren(...rows);
  }

  function metricCheckbox(x) {
    return el("label", { title: (x.help || "") + " (" + x.name + ")" },
      el("input", { type: "checkbox", value: x.name, checked: fgm.metricsSelected.includes(x.name),
        onchange: (e) => {
          if (e.target.checked) fgm.metricsSelected.push(x.name);
          else fgm.metricsSelected = fgm.metricsSelected.filter((n) => n !== x.name);
          refresh();
        } }),
      x.title, el("span", { class: "unit" }, x.display_unit));
  }

  function syncMetricBoxes() {
    for (const box of document.querySelectorAll("#metrics input")) box.checked = fgm.metricsSelected.includes(box.value);
  }

  // ---- range, view, zone --------------------------------------------------
  function currentRange() {
    if (fgm.zoom) return fgm.zoom;
    const r = (fgm.status && fgm.status.data_range) || {};
    const latest = r.latest ? Date.parse(r.latest) : Date.now();
    const earliest = r.earliest ? Date.parse(r.earliest) : latest - 3600e3;
    if (fgm.preset === "all") return { from: Math.min(earliest, latest - 60e3), to: latest };
    return { from: latest - PRESETS[fgm.preset], to: latest };
  }

  function setPreset(p) {
    fgm.preset = p;
    fgm.zoom = null;
    markButtons();
    refresh();
  }

  function setView(v) {
    fgm.view = v;
    markButtons();
    refresh();
  }

  function setZone(tz) {
    fgm.tz = tz;
    markButtons();
    renderStatus();
    renderEvents();
    refresh();
  }

  function markButtons() {
    for (const b of document.querySelectorAll("#presets button")) b.classList.toggle("active", !fgm.zoom && b.dataset.preset === fgm.preset);
    for (const b of document.querySelectorAll("#views button")) b.classList.toggle("active", b.dataset.view === fgm.view);
    for (const b of document.querySelectorAll("#tz button")) b.classList.toggle("active", b.dataset.tz === fgm.tz);
    $("overview").hidden = fgm.view !== "overview";
    $("charts-view").hidden = fgm.view !== "charts";
    $("compare").value = fgm.compare;
  }

  // ---- refresh ------------------------------------------------------------
  let pending = 0;
  async function refresh() {
    const token = ++pending;
    const range = currentRange();
    fgm.range = range;
    saveHash();
    $("range").textContent = fmtTime(range.from, fgm.tz) + " → " + fmtTime(range.to, fgm.tz) + " " + zoneName(fgm.tz) +
      (fgm.zoom ? " (zoomed, double-click a chart to reset)" : " (" + fgm.preset + ")");
    try {
      if (fgm.view === "overview") await refreshOverview(token, range);
      else await refreshCharts(token, range);
    } catch (e) {
      if (token !== pending) return;
      fgm.errors.push(String(e));
      $("range").textContent += " — " + e.message;
    }
  }

  async function refreshOverview(token, range) {
    const json = await getJSON("/api/overview?from=" + range.from + "&to=" + range.to + "&top=8");
    if (token !== pending) return;
    fgm.overview = json;
    window.fgmOverview.render($("overview"), json, { tz: fgm.tz, onPick: pick });
    fgm.overviewRenders++;
  }

  // From the overview: chart this container with the card's metrics.
  function pick(id, metrics) {
    const names = fgm.metrics.map((m) => m.name);
    fgm.selected = [id];
    const chosen = metrics.filter((m) => names.includes(m));
    if (chosen.length) fgm.metricsSelected = chosen;
    fgm.studies = {};
    syncMetricBoxes();
    renderContainers();
    setView("charts");
  }

  function compareOffset(range) {
    if (fgm.compare === "prev") return range.to - range.from;
    if (fgm.compare === "1d") return 86400e3;
    if (fgm.compare === "7d") return 7 * 86400e3;
    return 0;
  }

  async function loadStudy(metric, study, range) {
    const q = "kind=" + study.kind + "&container=" + study.container + "&metric=" + metric + "&from=" + range.from + "&to=" + range.to;
    try {
      return { ...study, result: await getJSON("/api/study?" + q), error: null };
    } catch (e) {
      return { ...study, result: null, error: e.message };
    }
  }

  async function refreshCharts(token, range) {
    const ids = fgm.selected.slice();
    $("hint").hidden = ids.length > 0;
    $("chart-tools").hidden = ids.length === 0;
    if (!ids.length || !fgm.metricsSelected.length) {
      for (const u of Object.values(fgm.charts)) u.destroy();
      fgm.charts = {};
      $("charts").replaceChildren();
      $("events-panel").hidden = true;
      renderProcesses(null, range);
      renderBreakdown(null, range);
      fgm.renders++;
      return;
    }
    const width = Math.max(300, $("charts").clientWidth);
    const points = Math.min(4000, Math.max(200, Math.round(width * 1.5)));
    const q = (from, to) => "containers=" + ids.join(",") + "&from=" + from + "&to=" + to;
    const offset = compareOffset(range);
    const metrics = fgm.metricsSelected.slice();
    // One container: its processes too (an error is shown in their panel, not thrown).
    const processes = ids.length === 1
      ? getJSON("/api/processes?container=" + ids[0] + "&from=" + range.from + "&to=" + range.to)
        .catch((e) => ({ error: e.message, processes: [] }))
      : null;
    const breakdown = ids.length === 1 ? Promise.all(["devices", "network"].map((d) => getJSON("/api/breakdown?dataset=" + d +
      "&container=" + ids[0] + "&from=" + range.from + "&to=" + range.to + "&points=" + Math.min(2000, points))
      .catch((e) => ({ dataset: d, error: e.message, keys: [] })))) : null;
    const [events, answers, compared, studies, procs, parts] = await Promise.all([
      getJSON("/api/events?" + q(range.from, range.to)),
      Promise.all(metrics.map((m) => getJSON("/api/timeseries?" + q(range.from, range.to) + "&metric=" + m + "&points=" + points))),
      Promise.all(metrics.map((m) => (offset
        ? getJSON("/api/timeseries?" + q(range.from - offset, range.to - offset) + "&metric=" + m + "&points=" + points)
        : null))),
      Promise.all(metrics.map((m) => {
        const s = fgm.studies[m];
        return s && ids.includes(s.container) ? loadStudy(m, s, range) : null;
      })),
      processes,
      breakdown,
    ]);
    if (token !== pending) return;
    fgm.events = events.events;
    renderEvents();
    for (const [name, u] of Object.entries(fgm.charts)) { u.destroy(); delete fgm.charts[name]; }
    fgm.answers = {};
    const boxes = metrics.map((name, i) => {
      const metric = metricOf(name);
      const study = studies[i];
      if (study) fgm.studies[name] = study;
      const box = el("div", { class: "chart", "data-metric": name });
      const ctx = {
        tz: fgm.tz, range, width: width - 18, events: fgm.events, labelOf, colorOf, study,
        compare: compared[i] ? { answer: compared[i], offsetMs: offset, label: COMPARE[fgm.compare] } : null,
        onZoom: (from, to) => { fgm.zoom = { from, to }; markButtons(); refresh(); },
        onReset: () => { fgm.zoom = null; markButtons(); refresh(); },
        onStudy: (kind, container) => {
          if (kind) fgm.studies[name] = { kind, container };
          else delete fgm.studies[name];
          refresh();
        },
      };
      box.append(window.fgmCharts.heading(metric, answers[i], ctx));
      const drawn = answers[i].series.some((s) => s.v.some((v) => v !== null));
      if (!drawn) {
        box.append(el("div", { class: "empty" }, "No data for the selected containers in this range."));
        return { box };
      }
      return { box, draw: () => {
        fgm.charts[name] = window.fgmCharts.draw(box, metric, answers[i], ctx);
        fgm.answers[name] = { answer: answers[i], ctx, box, metric };
      } };
    });
    $("charts").replaceChildren(...boxes.map((b) => b.box));
    for (const b of boxes) if (b.draw) b.draw();
    renderProcesses(procs, range);
    renderBreakdown(parts, range);
    noteDrawn();
    fgm.renders++;
  }

  // The newest sample on screen and when it got there.
  function noteDrawn() {
    let newest = null;
    for (const { answer } of Object.values(fgm.answers)) {
      for (const s of answer.series) for (let i = s.t.length - 1; i >= 0; i--) {
        if (s.v[i] !== null) { newest = Math.max(newest || 0, s.t[i]); break; }
      }
    }
    if (newest !== null) fgm.drawn = { newest, at: Date.now() };
  }

  // Live charts of raw points: ask only for what came after the newest point
  // of each chart and append it; false when a whole refresh is needed.
  async function appendLive(range) {
    const entries = Object.entries(fgm.answers);
    if (!entries.length || fgm.compare !== "off") return false;
    if (entries.some(([, e]) => e.ctx.study || e.answer.series.some((s) => s.downsampled))) return false;
    const ids = fgm.selected.slice();
    const token = pending;
    const fresh = await Promise.all(entries.map(([name, e]) => {
      const last = Math.max(e.answer.from ? Date.parse(e.answer.from) : range.from,
        ...e.answer.series.map((s) => (s.t.length ? s.t[s.t.length - 1] : range.from)));
      return getJSON("/api/timeseries?containers=" + ids.join(",") + "&metric=" + name + "&from=" + last + "&to=" + range.to +
        "&points=" + e.answer.max_points);
    }));
    if (token !== pending) return true;
    entries.forEach(([name, e], i) => {
      const add = fresh[i];
      const answer = e.answer;
      for (const s of answer.series) {
        const n = add.series.find((x) => x.container === s.container);
        const last = s.t.length ? s.t[s.t.length - 1] : -Infinity;
        if (n) for (let k = 0; k < n.t.length; k++) if (n.t[k] > last) { s.t.push(n.t[k]); s.v.push(n.v[k]); }
        // Points that left the window go.
        let drop = 0;
        while (drop < s.t.length && s.t[drop] < range.from) drop++;
        if (drop) { s.t.splice(0, drop); s.v.splice(0, drop); }
        s.raw_points = s.t.length;
        if (n && n.limits) {
          for (const l of n.limits) {
            const known = (s.limits || []).find((x) => x.label === l.label);
            if (known) { known.t.push(...l.t); known.v.push(...l.v); } else (s.limits = s.limits || []).push(l);
          }
        }
      }
      answer.to = add.to;
      e.ctx.range = range;
      fgm.charts[name].destroy();
      e.box.querySelector(".uplot") && e.box.querySelector(".uplot").remove();
      fgm.charts[name] = window.fgmCharts.draw(e.box, e.metric, answer, e.ctx);
    });
    fgm.range = range;
    fgm.liveAppends++;
    noteDrawn();
    return true;
  }

  // The processes panel: shown when exactly one container is selected.
  function renderProcesses(answer, range) {
    if (fgm.processesChart) fgm.processesChart.destroy();
    fgm.processesChart = null;
    fgm.processes = answer;
    $("processes-panel").hidden = !answer;
    if (!answer) return;
    const width = Math.max(300, $("charts").clientWidth) - 40;
    fgm.processesChart = window.fgmProcesses.render($("processes"), answer, { tz: fgm.tz, range, width });
    fgm.processRenders++;
  }

  function renderBreakdown(answers, range) {
    fgm.breakdown = answers;
    const width = Math.max(300, $("charts").clientWidth) - 40;
    fgm.breakdownCharts = window.fgmBreakdown.panel(answers, fgm.breakdownCharts, { tz: fgm.tz, range, width });
    if (answers) fgm.breakdownRenders++;
  }

  function renderEvents() {
    const panel = $("events-panel");
    panel.hidden = fgm.view !== "charts" || fgm.events.length === 0;
    $("events").replaceChildren(...fgm.events.slice(-200).reverse().map((ev) =>
      el("tr", {}, el("td", {}, fmtTime(Date.parse(ev.time), fgm.tz)), el("td", { class: ev.kind }, ev.kind.replace(/_/g, " ")),
        el("td", {}, ev.namespace + "/" + ev.pod + " › " + ev.container),
        el("td", {}, [ev.reason, ev.exit_code !== undefined && ev.exit_code !== null ? "exit " + ev.exit_code : null, ev.message]
          .filter(Boolean).join(" · ")))));
  }

  // ---- URL state ----------------------------------------------------------
  function saveHash() {
    const p = new URLSearchParams();
    p.set("v", fgm.view);
    if (fgm.selected.length) p.set("c", fgm.selected.join(","));
    if (fgm.metricsSelected.length) p.set("m", fgm.metricsSelected.join(","));
    p.set("r", fgm.preset);
    if (fgm.zoom) p.set("z", fgm.zoom.from + "~" + fgm.zoom.to);
    if (fgm.tz !== "local") p.set("tz", fgm.tz);
    if (fgm.compare !== "off") p.set("cmp", fgm.compare);
    const st = Object.entries(fgm.studies).map(([m, s]) => m + "~" + s.kind + "~" + s.container);
    if (st.length) p.set("st", st.join("!"));
    history.replaceState(null, "", "#" + p.toString());
  }

  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.get("c")) fgm.selected = p.get("c").split(",").slice(0, MAX_SELECTED);
    if (p.get("m")) fgm.metricsSelected = p.get("m").split(",");
    if (p.get("r") && (p.get("r") in PRESETS || p.get("r") === "all")) fgm.preset = p.get("r");
    const z = (p.get("z") || "").split("~").map(Number);
    if (z.length === 2 && z.every(Number.isFinite) && z[0] < z[1]) fgm.zoom = { from: z[0], to: z[1] };
    if (p.get("tz") === "utc") fgm.tz = "utc";
    if (p.get("cmp") in COMPARE) fgm.compare = p.get("cmp");
    for (const s of (p.get("st") || "").split("!").filter(Boolean)) {
      const [m, kind, container] = s.split("~");
      if (m && (kind === "periodicity" || kind === "changepoints") && container) fgm.studies[m] = { kind, container };
    }
    fgm.view = p.get("v") === "charts" || (!p.get("v") && fgm.selected.length) ? "charts" : "overview";
  }

  // ---- start --------------------------------------------------------------
  async function start() {
    loadHash();
    for (const b of document.querySelectorAll("#presets button")) b.addEventListener("click", () => setPreset(b.dataset.preset));
    for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => setView(b.dataset.view));
    for (const b of document.querySelectorAll("#tz button")) b.addEventListener("click", () => setZone(b.dataset.tz));
    $("compare").addEventListener("change", (e) => { fgm.compare = e.target.value; refresh(); });
    $("export-csv").addEventListener("click", () => window.fgmExport(fgm, fgm.range || currentRange(), "csv"));
    $("export-parquet").addEventListener("click", () => window.fgmExport(fgm, fgm.range || currentRange(), "parquet"));
    $("search").addEventListener("input", renderContainers);
    $("show-sandbox").addEventListener("change", loadContainers);
    $("clear").addEventListener("click", () => { fgm.selected = []; fgm.studies = {}; renderContainers(); setView("overview"); });
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(refresh, 200); });
    markButtons();
    try {
      await loadStatus();
      await Promise.all([loadContainers(), loadMetrics()]);
      await refresh();
    } catch (e) {
      fgm.errors.push(String(e));
      $("status").textContent = "Cannot reach the viewer API: " + e.message;
    }
    fgm.ready = true;
    let busy = false;
    setInterval(async () => {
      if (!$("live").checked || document.hidden || busy) return;
      busy = true;
      try {
        const before = fgm.status;
        const s = await loadStatus();
        const moved = !before || JSON.stringify(s.data_range) !== JSON.stringify(before.data_range);
        if (!before || s.containers !== before.containers) await loadContainers();
        if (moved && !fgm.zoom) {
          const appended = fgm.view === "charts" && (await appendLive(currentRange()));
          if (!appended) await refresh();
        }
      } catch (e) {
        $("status").textContent = "Viewer not reachable: " + e.message;
      } finally {
        busy = false;
      }
    }, LIVE_MS);
  }
  start();
})();
