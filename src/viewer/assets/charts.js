// One chart of one metric: the selected containers' series, the same range
// shifted for comparison, each container's limits (dashed) and request
// (dotted), pod events as markers, and a study's findings drawn on top.
(function () {
  "use strict";
  const { el, fmt, fmtTime, fade, EVENT_COLORS, EVENT_LABELS } = window.fgmUtil;

  // Aligns series on the union of their times: `undefined` where a series has
  // no sample at that time (uPlot draws across it), `null` for real gaps.
  function align(lines) {
    const times = new Set();
    for (const l of lines) for (const t of l.t) times.add(t);
    const xs = Array.from(times).sort((a, b) => a - b);
    const pos = new Map(xs.map((t, i) => [t, i]));
    const data = [xs.map((t) => t / 1000)];
    for (const l of lines) {
      const ys = new Array(xs.length);
      for (let i = 0; i < l.t.length; i++) ys[pos.get(l.t[i])] = l.v[i];
      data.push(ys);
    }
    return data;
  }

  function vline(u, t, color, dash, text) {
    const { ctx, bbox } = u;
    const x = t / 1000;
    if (x < u.scales.x.min || x > u.scales.x.max) return;
    const px = Math.round(u.valToPos(x, "x", true));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash(dash.map((d) => d * devicePixelRatio));
    ctx.beginPath();
    ctx.moveTo(px, bbox.top);
    ctx.lineTo(px, bbox.top + bbox.height);
    ctx.stroke();
    if (text) {
      ctx.fillStyle = color;
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.fillText(text, px + 3 * devicePixelRatio, bbox.top + 11 * devicePixelRatio);
    }
  }

  // Text shown beside the title for a study's result.
  function studySummary(study, unit) {
    if (!study || !study.result) return "";
    const r = study.result.result;
    if (study.kind === "periodicity") {
      if (!r.period_seconds) return "no repeating pattern";
      const text = "period " + fmtPeriod(r.period_seconds) + " · strength " + r.strength.toFixed(2);
      return r.periodic ? text : "no clear period (" + text + ")";
    }
    if (!r.changes.length) return "no level shift";
    return r.changes.length + " level shift" + (r.changes.length > 1 ? "s" : "") + ": " +
      r.changes.map((c) => (c.shift >= 0 ? "+" : "−") + fmt(Math.abs(c.shift), unit)).join(", ");
  }

  function fmtPeriod(s) {
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(2) + " h";
  }

  // Draws `answer` (GET /api/timeseries) into `box`; returns the uPlot.
  function draw(box, metric, answer, ctx) {
    const unit = answer.display_unit;
    const series = answer.series;
    const lines = [];
    const opts = [];
    series.forEach((s) => {
      lines.push({ t: s.t, v: s.v });
      opts.push({ label: ctx.labelOf(s.container), stroke: ctx.colorOf(s.container), width: 1.5, kind: "data", container: s.container });
    });
    if (ctx.compare) {
      ctx.compare.answer.series.forEach((s) => {
        lines.push({ t: s.t.map((t) => t + ctx.compare.offsetMs), v: s.v });
        opts.push({ label: ctx.labelOf(s.container) + " (" + ctx.compare.label + ")", stroke: fade(ctx.colorOf(s.container), 0.55),
          width: 1.5, dash: [8, 4], kind: "compare", container: s.container });
      });
    }
    const allT = lines.flatMap((l) => l.t);
    const [t0, t1] = allT.length ? [Math.min(...allT), Math.max(...allT)] : [ctx.range.from, ctx.range.to];
    series.forEach((s) => {
      for (const limit of s.limits || []) {
        lines.push({ t: limit.t, v: limit.v });
        opts.push({ label: limit.label + " · " + ctx.labelOf(s.container), stroke: ctx.colorOf(s.container), width: 1.2, dash: [6, 4],
          kind: "limit", container: s.container });
      }
      if (s.request !== null && s.request !== undefined) {
        lines.push({ t: [t0, t1], v: [s.request, s.request] });
        opts.push({ label: "request · " + ctx.labelOf(s.container), stroke: ctx.colorOf(s.container), width: 1.2, dash: [2, 3],
          kind: "request", container: s.container });
      }
    });
    const study = ctx.study && ctx.study.result;
    if (study && ctx.study.kind === "changepoints") {
      const t = [], v = [];
      for (const seg of study.result.segments) { t.push(seg.from, seg.to); v.push(seg.mean, seg.mean); }
      lines.push({ t, v });
      opts.push({ label: "levels (changepoints)", stroke: "#111827", width: 2, kind: "levels" });
    }
    const data = align(lines);
    const tz = ctx.tz;
    const uOpts = {
      width: Math.max(300, ctx.width),
      height: 260,
      tzDate: (ts) => (tz === "utc" ? uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC") : new Date(ts * 1e3)),
      scales: { x: { time: true, range: () => [ctx.range.from / 1000, ctx.range.to / 1000] } },
      cursor: { sync: { key: "fgm" }, drag: { x: true, y: false, setScale: false } },
      axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => fmt(v, unit)) }],
      series: [{ value: (u, v) => (v === null ? "–" : fmtTime(v * 1000, tz)) }].concat(opts.map((o) => ({
        label: o.label, stroke: o.stroke, width: o.width, dash: o.dash, spanGaps: o.kind === "request" || o.kind === "levels",
        value: (u, v) => fmt(v, unit), points: { show: false },
      }))),
      hooks: {
        draw: [(u) => {
          u.ctx.save();
          for (const ev of ctx.events) {
            const who = ev.pod + (ev.container ? "/" + ev.container : "");
            vline(u, Date.parse(ev.time), EVENT_COLORS[ev.kind] || "#666", ev.kind === "oom_killed" ? [] : [6, 4],
              (EVENT_LABELS[ev.kind] || ev.kind) + (series.length > 1 ? " " + who : ""));
          }
          if (study && ctx.study.kind === "periodicity" && study.result.periodic) {
            for (const t of study.result.peaks) vline(u, t, "rgba(124,58,237,0.45)", [2, 3], null);
          }
          if (study && ctx.study.kind === "changepoints") {
            for (const c of study.result.changes) {
              vline(u, c.time, "#111827", [4, 2], (c.shift >= 0 ? "+" : "−") + fmt(Math.abs(c.shift), unit));
            }
          }
          u.ctx.restore();
        }],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          ctx.onZoom(Math.round(from), Math.round(to));
        }],
        ready: [(u) => u.over.addEventListener("dblclick", ctx.onReset)],
      },
    };
    const u = new uPlot(uOpts, data, box);
    u.fgmSeries = opts;
    return u;
  }

  // The chart's heading: human title, unit, and the study controls.
  function heading(metric, answer, ctx) {
    const unit = answer.display_unit;
    const kinds = [["", "no study"], ["periodicity", "periodicity"], ["changepoints", "changepoints"]];
    const current = ctx.study || {};
    const kindSelect = el("select", { class: "study-kind", title: "Study a series: periodicity (autocorrelation) or changepoints (level shifts), on the raw per-second data" },
      ...kinds.map(([v, t]) => el("option", { value: v, selected: (current.kind || "") === v }, t)));
    const who = el("select", { class: "study-container", hidden: answer.series.length < 2 },
      ...answer.series.map((s) => el("option", { value: s.container, selected: current.container === s.container }, ctx.labelOf(s.container))));
    const apply = () => ctx.onStudy(kindSelect.value, who.value || (answer.series[0] && answer.series[0].container));
    kindSelect.addEventListener("change", apply);
    who.addEventListener("change", apply);
    return el("div", { class: "chart-head" },
      el("h3", { title: metric.help || metric.name }, metric.title || metric.name, " ",
        el("span", { class: "unit" }, "(" + (unit || "value") + (answer.rate ? ", per second" : "") + ")"),
        el("span", { class: "metric-name" }, " " + metric.name)),
      el("div", { class: "study-tools" }, kindSelect, who,
        el("span", { class: "study-result" + (current.error ? " bad" : "") }, current.error || studySummary(current, unit))));
  }

  window.fgmCharts = { draw, heading, studySummary };
})();

// The processes of one selected container (GET /api/processes): a table by
// CPU used, each row with a sparkline of its cores, and the resident memory
// of the largest processes stacked on one chart.
(function () {
  "use strict";
  const { el, fmt, fmtTime, COLORS } = window.fgmUtil;
  const STACKED = 5;
  const EMPTY = "No processes recorded (the agent's --processes is off)";
  const SVG = "http://www.w3.org/2000/svg";

  // `#rrggbb` mixed with white: opaque, so stacked areas do not blend.
  function tint(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    const mix = (c) => Math.round(c * a + 255 * (1 - a));
    return "rgb(" + mix(n >> 16) + "," + mix((n >> 8) & 255) + "," + mix(n & 255) + ")";
  }

  // CPU cores over the range, on the row's own scale (its peak in the title).
  function spark(samples, range) {
    const w = 100, h = 20;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    const pts = samples.filter((s) => s.cpu_cores !== null);
    const max = pts.reduce((m, s) => Math.max(m, s.cpu_cores), 0);
    const span = Math.max(1, range.to - range.from);
    let d = "";
    pts.forEach((s, i) => {
      const x = Math.min(w, Math.max(0, ((s.t - range.from) / span) * w)).toFixed(1);
      const y = (h - 2 - (max > 0 ? (s.cpu_cores / max) * (h - 4) : 0)).toFixed(1);
      d += (i ? "L" : "M") + x + " " + y;
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "#2563eb");
    path.setAttribute("stroke-width", "1.2");
    svg.append(path);
    const title = document.createElementNS(SVG, "title");
    title.textContent = "peak " + fmt(max, "cores") + " cores";
    svg.append(title);
    return svg;
  }

  // RSS of the largest processes, stacked: each is 0 outside its samples and
  // keeps its last value between them. Returns the uPlot, or null.
  function memoryChart(box, answer, ctx) {
    const top = answer.processes.filter((p) => p.max_rss_bytes)
      .sort((a, b) => b.max_rss_bytes - a.max_rss_bytes).slice(0, STACKED);
    if (!top.length) return null;
    const times = Array.from(new Set(top.flatMap((p) => p.samples.filter((s) => s.rss_bytes !== null).map((s) => s.t))))
      .sort((a, b) => a - b);
    const own = top.map((p) => {
      const s = p.samples.filter((x) => x.rss_bytes !== null);
      let k = -1;
      return times.map((t) => {
        while (k + 1 < s.length && s[k + 1].t <= t) k++;
        return k < 0 || t > s[s.length - 1].t ? 0 : s[k].rss_bytes;
      });
    });
    const sums = own.map((_, i) => times.map((_, j) => own.slice(0, i + 1).reduce((a, o) => a + o[j], 0)));
    // Drawn from the highest sum down, each over the one before.
    const order = top.map((_, i) => top.length - 1 - i);
    const name = (p) => p.command.slice(0, 40) + " (" + p.pid + ")";
    const tz = ctx.tz;
    const wrap = el("div", { class: "chart processes-memory" },
      el("div", { class: "chart-head" }, el("h3", {}, "Resident memory of the " + top.length + " largest processes ",
        el("span", { class: "unit" }, "(bytes, stacked)"))));
    box.append(wrap);
    const u = new uPlot({
      width: Math.max(300, ctx.width),
      height: 200,
      tzDate: (ts) => (tz === "utc" ? uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC") : new Date(ts * 1e3)),
      scales: { x: { time: true, range: () => [ctx.range.from / 1000, ctx.range.to / 1000] } },
      cursor: { sync: { key: "fgm" }, drag: { x: false, y: false } },
      axes: [{}, { size: 70, values: (_, vals) => vals.map((v) => fmt(v, "bytes")) }],
      series: [{ value: (_, v) => (v === null ? "–" : fmtTime(v * 1000, tz)) }].concat(order.map((i) => ({
        label: name(top[i]), stroke: COLORS[i % COLORS.length], fill: tint(COLORS[i % COLORS.length], 0.45), width: 1,
        points: { show: false }, value: (_, v, __, j) => (j === null || j === undefined ? "–" : fmt(own[i][j], "bytes")),
      }))),
    }, [times.map((t) => t / 1000)].concat(order.map((i) => sums[i])), wrap);
    u.fgmProcesses = order.map((i) => top[i].pid);
    return u;
  }

  // Fills `box` with the answer; returns the memory chart (or null).
  function render(box, answer, ctx) {
    box.replaceChildren();
    if (answer.error) {
      box.append(el("div", { class: "empty bad" }, "Processes: " + answer.error));
      return null;
    }
    const skipped = answer.skipped_files || [];
    if (!answer.processes.length) {
      box.append(el("div", { class: "empty" }, EMPTY));
      if (skipped.length) box.append(el("div", { class: "note warn" }, skipped.length + " unreadable processes file(s) skipped"));
      return null;
    }
    const notes = [answer.total_processes + " process" + (answer.total_processes === 1 ? "" : "es") + " in this range"];
    if (answer.truncated) notes.push("the " + answer.processes.length + " that used the most CPU are listed");
    if (skipped.length) notes.push(skipped.length + " unreadable processes file(s) skipped");
    box.append(el("div", { class: "note" + (skipped.length ? " warn" : "") }, notes.join(" · ")));
    const chart = memoryChart(box, answer, ctx);
    const when = (ms) => (ms === null || ms === undefined ? "–" : fmtTime(ms, ctx.tz));
    const rows = answer.processes.map((p) => el("tr", { "data-pid": p.pid, "data-start": p.start_ms },
      el("td", { class: "command", title: p.command }, p.command),
      el("td", { class: "num" }, String(p.pid)),
      el("td", { class: "num" }, p.nspid === null ? "–" : String(p.nspid)),
      el("td", {}, when(p.start_ms)),
      el("td", {}, when(p.end_ms)),
      el("td", { class: "num" }, p.cpu_seconds.toFixed(p.cpu_seconds >= 100 ? 0 : 2)),
      el("td", {}, spark(p.samples, ctx.range)),
      el("td", { class: "num" }, fmt(p.max_rss_bytes, "bytes")),
      el("td", { class: "num" }, fmt(p.last_pss_bytes, "bytes"))));
    box.append(el("table", { class: "process-table" },
      el("thead", {}, el("tr", {}, ...["command", "pid", "nspid", "start", "end", "CPU s", "CPU", "max RSS", "last PSS"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows)));
    return chart;
  }

  window.fgmProcesses = { render, EMPTY };
})();
