// fine-grained-monitor viewer page: search containers, pick metrics, chart
// them with uPlot, zoom by dragging, presets and live refresh, event markers.
// State is exposed as window.fgm so the browser test can read what was drawn.
(function () {
  "use strict";

  const PRESETS = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
  const MAX_SELECTED = 20;
  const MAX_LISTED = 400;
  const LIVE_MS = 5000;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
    "#db2777", "#4f46e5", "#65a30d", "#0d9488", "#b91c1c", "#7c3aed", "#c2410c", "#15803d",
    "#1d4ed8", "#a21caf", "#0369a1", "#854d0e", "#be123c"];
  const EVENT_COLORS = { oom_killed: "#dc2626", restart: "#ea580c", terminated: "#ca8a04", crash_loop_back_off: "#9333ea" };
  const EVENT_LABELS = { oom_killed: "OOM kill", restart: "restart", terminated: "terminated", crash_loop_back_off: "CrashLoopBackOff" };
  const DEFAULT_METRICS = ["cpu_usage_usec", "memory_working_set_bytes", "memory_current_bytes"];

  const fgm = window.fgm = {
    status: null, containers: [], metrics: [], selected: [], metricsSelected: [],
    preset: "1h", zoom: null, range: null, charts: {}, events: [], renders: 0, errors: [],
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };

  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || (r.status + " " + r.statusText));
    return body;
  }

  // ---- formatting -------------------------------------------------------
  const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  function fmt(v, unit) {
    if (v === null || v === undefined) return "–";
    if (unit === "bytes" || unit === "bytes/s") {
      let i = 0, x = Math.abs(v);
      while (x >= 1024 && i < BYTE_UNITS.length - 1) { x /= 1024; i++; }
      const s = (v < 0 ? -x : x).toFixed(x >= 100 || i === 0 ? 0 : 1) + " " + BYTE_UNITS[i];
      return unit === "bytes/s" ? s + "/s" : s;
    }
    if (unit === "cores") return v >= 1 ? v.toFixed(2) : (v * 1000).toFixed(v * 1000 >= 10 ? 0 : 1) + "m";
    if (unit === "% time stalled") return v.toFixed(v >= 10 ? 0 : 2) + "%";
    const a = Math.abs(v);
    const s = a >= 1e6 ? (v / 1e6).toFixed(1) + "M" : a >= 1e3 ? (v / 1e3).toFixed(1) + "k" : (+v.toFixed(2)).toString();
    return unit && unit !== "count" ? s + " " + unit : s;
  }
  const fmtTime = (ms) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

  function label(c) {
    if (c.pod_name) return (c.namespace ? c.namespace + "/" : "") + c.pod_name + " › " + (c.container_name || c.id);
    return c.cgroup_path || c.id;
  }
  const byId = (id) => fgm.containers.find((c) => c.id === id);

  // Same rules as the server's search: every term must match; key=value matches a label.
  function matches(c, query) {
    const terms = query.trim().split(/\s+/).filter(Boolean);
    const fields = [c.id, c.pod_name, c.namespace, c.container_name, c.cgroup_path].filter(Boolean).map((f) => f.toLowerCase());
    const labels = Object.entries(c.labels || {});
    return terms.every((term) => {
      const eq = term.indexOf("=");
      if (eq > 0) return labels.some(([k, v]) => k === term.slice(0, eq) && v === term.slice(eq + 1));
      const t = term.toLowerCase();
      return fields.some((f) => f.includes(t)) || labels.some(([k, v]) => k.toLowerCase().includes(t) || v.toLowerCase().includes(t));
    });
  }

  // ---- status and lists -------------------------------------------------
  async function loadStatus() {
    const s = await getJSON("/api/status");
    fgm.status = s;
    const st = $("status");
    st.textContent = "";
    if (s.state !== "ready") {
      st.append(el("span", { class: "bad" }, s.message));
    } else {
      const r = s.data_range || {};
      st.append(s.containers + " containers · data " + (r.earliest ? fmtTime(Date.parse(r.earliest)) : "?") +
        " → " + (r.latest ? fmtTime(Date.parse(r.latest)) : "?"));
      if (s.index_source === "rebuilt_from_files") st.append(el("span", { class: "bad" }, " · index rebuilt from files"));
    }
    const bad = s.corrupt_files || [];
    const sk = $("skipped");
    sk.hidden = bad.length === 0;
    if (bad.length) {
      sk.querySelector("summary").textContent = bad.length + " unreadable data file(s) skipped";
      sk.querySelector("ul").replaceChildren(...bad.map((b) => el("li", {}, b.path + ": " + b.error)));
    }
    return s;
  }

  async function loadContainers() {
    const sandbox = $("show-sandbox").checked;
    const list = await getJSON("/api/containers" + (sandbox ? "?include_sandbox=true" : ""));
    fgm.containers = list.containers.sort((a, b) => label(a).localeCompare(label(b)));
    const known = new Set(fgm.containers.map((c) => c.id));
    fgm.selected = fgm.selected.filter((id) => known.has(id));
    renderContainers();
  }

  function colorOf(id) {
    const i = fgm.selected.indexOf(id);
    return i < 0 ? null : COLORS[i % COLORS.length];
  }

  function rank(c) {
    const i = fgm.selected.indexOf(c.id);
    return i < 0 ? MAX_SELECTED : i;
  }

  function renderContainers() {
    const q = $("search").value;
    // Selected containers stay on top, in selection order, so they are easy to find among hundreds.
    const shown = fgm.containers.filter((c) => matches(c, q))
      .sort((a, b) => rank(a) - rank(b));
    $("count").textContent = shown.length + " of " + fgm.containers.length + " · " + fgm.selected.length + " selected";
    const items = shown.slice(0, MAX_LISTED).map((c) => {
      const sel = fgm.selected.includes(c.id);
      const chips = Object.entries(c.labels || {}).slice(0, 4).map(([k, v]) => el("span", { class: "chip" }, k + "=" + v));
      return el("li", { class: sel ? "selected" : "", "data-id": c.id, title: c.full_id || c.id, onclick: () => toggle(c.id) },
        el("input", { type: "checkbox", checked: sel, tabindex: -1 }),
        el("span", { class: "swatch", style: "background:" + (colorOf(c.id) || "transparent") }),
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
    saveHash();
    refresh();
  }

  async function loadMetrics() {
    const m = await getJSON("/api/metrics");
    fgm.metrics = m.metrics;
    const names = fgm.metrics.map((x) => x.name);
    fgm.metricsSelected = fgm.metricsSelected.filter((n) => names.includes(n));
    if (!fgm.metricsSelected.length) {
      fgm.metricsSelected = DEFAULT_METRICS.filter((n) => names.includes(n)).slice(0, 2);
      if (!fgm.metricsSelected.length && names.length) fgm.metricsSelected = [names[0]];
    }
    // Grouped by the name's first word (cpu, memory, io, pids), file order within a group.
    const groups = new Map();
    for (const x of fgm.metrics) {
      const g = x.name.split("_")[0];
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(x);
    }
    const rows = [];
    for (const [g, list] of groups) {
      rows.push(el("div", { class: "metric-group" }, g));
      for (const x of list) rows.push(metricCheckbox(x));
    }
    $("metrics").replaceChildren(...rows);
  }

  function metricCheckbox(x) {
    return el("label", { title: x.help || x.name },
      el("input", { type: "checkbox", value: x.name, checked: fgm.metricsSelected.includes(x.name),
        onchange: (e) => {
          if (e.target.checked) fgm.metricsSelected.push(x.name);
          else fgm.metricsSelected = fgm.metricsSelected.filter((n) => n !== x.name);
          saveHash();
          refresh();
        } }),
      x.name, el("span", { class: "unit" }, x.display_unit));
  }

  // ---- range ------------------------------------------------------------
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
    for (const b of document.querySelectorAll("#presets button")) b.classList.toggle("active", b.dataset.preset === p);
    saveHash();
    refresh();
  }

  // ---- charts -----------------------------------------------------------
  // Aligns series on the union of their times: `undefined` where a series has
  // no sample at that time (uPlot draws across it), `null` for real gaps.
  function align(series) {
    const times = new Set();
    for (const s of series) for (const t of s.t) times.add(t);
    const xs = Array.from(times).sort((a, b) => a - b);
    const pos = new Map(xs.map((t, i) => [t, i]));
    const data = [xs.map((t) => t / 1000)];
    for (const s of series) {
      const ys = new Array(xs.length);
      for (let i = 0; i < s.t.length; i++) ys[pos.get(s.t[i])] = s.v[i];
      data.push(ys);
    }
    return data;
  }

  function eventMarkers(u) {
    const { ctx, bbox } = u;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    for (const ev of fgm.events) {
      const x = Date.parse(ev.time) / 1000;
      if (x < min || x > max) continue;
      const px = Math.round(u.valToPos(x, "x", true));
      ctx.strokeStyle = EVENT_COLORS[ev.kind] || "#666";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash(ev.kind === "oom_killed" ? [] : [6, 4]);
      ctx.beginPath();
      ctx.moveTo(px, bbox.top);
      ctx.lineTo(px, bbox.top + bbox.height);
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.fillText(EVENT_LABELS[ev.kind] || ev.kind, px + 3 * devicePixelRatio, bbox.top + 11 * devicePixelRatio);
    }
    ctx.restore();
  }

  function chartFor(metric, json) {
    const wrap = $("charts");
    let box = document.querySelector('.chart[data-metric="' + metric.name + '"]');
    if (!box) {
      box = el("div", { class: "chart", "data-metric": metric.name });
      wrap.append(box);
    }
    const unit = json.display_unit;
    const title = el("h3", {}, metric.name + " ", el("span", { class: "unit" }, "(" + (unit || "value") + (json.rate ? ", rate" : "") + ")"));
    const old = fgm.charts[metric.name];
    if (old) old.destroy();
    const series = json.series;
    const points = series.reduce((n, s) => n + s.v.filter((v) => v !== null).length, 0);
    if (!points) {
      box.replaceChildren(title, el("div", { class: "empty" }, "No data for the selected containers in this range."));
      delete fgm.charts[metric.name];
      return { points: 0 };
    }
    box.replaceChildren(title);
    const range = currentRange();
    const opts = {
      width: Math.max(300, wrap.clientWidth - 18),
      height: 260,
      scales: { x: { time: true, range: () => [range.from / 1000, range.to / 1000] } },
      cursor: { sync: { key: "fgm" }, drag: { x: true, y: false, setScale: false } },
      axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => fmt(v, unit)) }],
      series: [{ value: (u, v) => (v === null ? "–" : fmtTime(v * 1000)) }].concat(series.map((s) => {
        const c = byId(s.container);
        return { label: c ? label(c) : s.container, stroke: colorOf(s.container) || "#888", width: 1.5,
          value: (u, v) => fmt(v, unit), points: { show: false } };
      })),
      hooks: {
        draw: [eventMarkers],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          fgm.zoom = { from: Math.round(from), to: Math.round(to) };
          refresh();
        }],
        ready: [(u) => u.over.addEventListener("dblclick", () => { fgm.zoom = null; refresh(); })],
      },
    };
    const u = new uPlot(opts, align(series), box);
    fgm.charts[metric.name] = u;
    return { points };
  }

  let pending = 0;
  async function refresh() {
    const token = ++pending;
    const range = currentRange();
    fgm.range = range;
    $("range").textContent = fmtTime(range.from) + " → " + fmtTime(range.to) +
      (fgm.zoom ? " (zoomed, double-click a chart to reset)" : " (" + fgm.preset + ")");
    const ids = fgm.selected.slice();
    $("hint").hidden = ids.length > 0;
    if (!ids.length || !fgm.metricsSelected.length) {
      for (const u of Object.values(fgm.charts)) u.destroy();
      fgm.charts = {};
      $("charts").replaceChildren();
      $("events-panel").hidden = true;
      fgm.renders++;
      return;
    }
    const width = Math.max(300, $("charts").clientWidth);
    const points = Math.min(4000, Math.max(200, Math.round(width * 1.5)));
    const q = "containers=" + ids.join(",") + "&from=" + range.from + "&to=" + range.to;
    try {
      const [events, ...answers] = await Promise.all([
        getJSON("/api/events?" + q),
        ...fgm.metricsSelected.map((m) => getJSON("/api/timeseries?" + q + "&metric=" + m + "&points=" + points)),
      ]);
      if (token !== pending) return;
      fgm.events = events.events;
      renderEvents();
      const keep = new Set(fgm.metricsSelected);
      for (const [name, u] of Object.entries(fgm.charts)) if (!keep.has(name)) { u.destroy(); delete fgm.charts[name]; }
      for (const box of document.querySelectorAll(".chart")) if (!keep.has(box.dataset.metric)) box.remove();
      fgm.drawn = {};
      fgm.metricsSelected.forEach((name, i) => {
        const metric = fgm.metrics.find((m) => m.name === name) || { name };
        fgm.drawn[name] = chartFor(metric, answers[i]);
      });
      // Keep chart order equal to the metric order.
      for (const name of fgm.metricsSelected) {
        const box = document.querySelector('.chart[data-metric="' + name + '"]');
        if (box) $("charts").append(box);
      }
      fgm.renders++;
    } catch (e) {
      fgm.errors.push(String(e));
      $("range").textContent += " — " + e.message;
    }
  }

  function renderEvents() {
    const panel = $("events-panel");
    panel.hidden = fgm.events.length === 0;
    $("events").replaceChildren(...fgm.events.slice(-200).reverse().map((ev) =>
      el("tr", {}, el("td", {}, fmtTime(Date.parse(ev.time))), el("td", { class: ev.kind }, ev.kind.replace(/_/g, " ")),
        el("td", {}, ev.namespace + "/" + ev.pod + " › " + ev.container),
        el("td", {}, [ev.reason, ev.exit_code !== undefined && ev.exit_code !== null ? "exit " + ev.exit_code : null, ev.message]
          .filter(Boolean).join(" · ")))));
  }

  // ---- URL state ----------------------------------------------------------
  function saveHash() {
    const p = new URLSearchParams();
    if (fgm.selected.length) p.set("c", fgm.selected.join(","));
    if (fgm.metricsSelected.length) p.set("m", fgm.metricsSelected.join(","));
    p.set("r", fgm.preset);
    history.replaceState(null, "", "#" + p.toString());
  }
  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.get("c")) fgm.selected = p.get("c").split(",").slice(0, MAX_SELECTED);
    if (p.get("m")) fgm.metricsSelected = p.get("m").split(",");
    if (p.get("r") && (p.get("r") in PRESETS || p.get("r") === "all")) fgm.preset = p.get("r");
  }

  // ---- start --------------------------------------------------------------
  async function start() {
    loadHash();
    for (const b of document.querySelectorAll("#presets button")) {
      b.classList.toggle("active", b.dataset.preset === fgm.preset);
      b.addEventListener("click", () => setPreset(b.dataset.preset));
    }
    $("search").addEventListener("input", renderContainers);
    $("show-sandbox").addEventListener("change", loadContainers);
    $("clear").addEventListener("click", () => { fgm.selected = []; renderContainers(); saveHash(); refresh(); });
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(refresh, 200); });
    try {
      await loadStatus();
      await Promise.all([loadContainers(), loadMetrics()]);
      await refresh();
    } catch (e) {
      fgm.errors.push(String(e));
      $("status").textContent = "Cannot reach the viewer API: " + e.message;
    }
    fgm.ready = true;
    setInterval(async () => {
      if (!$("live").checked || document.hidden) return;
      try {
        const before = fgm.status && JSON.stringify(fgm.status.data_range);
        const s = await loadStatus();
        if (JSON.stringify(s.data_range) !== before) {
          await loadContainers();
          if (!fgm.zoom) await refresh();
        }
      } catch (e) {
        $("status").textContent = "Viewer not reachable: " + e.message;
      }
    }, LIVE_MS);
  }
  start();
})();
