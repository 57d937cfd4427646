// One selected container broken down (GET /api/breakdown): its IO per block
// device, its pod's network per interface; a chart of per-second rates each,
// read and receive solid, write and transmit dashed, with the range's totals.
(function () {
  "use strict";
  const { el, fmt, fmtTime, COLORS } = window.fgmUtil;
  // Per dataset: the title, the two counters drawn (in, out) and their labels.
  const KINDS = {
    devices: { title: "IO per device", counters: ["read_bytes", "write_bytes"], labels: ["read", "write"],
      empty: "No IO per device recorded in this range" },
    network: { title: "Network per interface (the pod's)", counters: ["receive_bytes", "transmit_bytes"],
      labels: ["receive", "transmit"], empty: "No pod network recorded in this range (host-network pods have none)" },
  };

  // Fills `box` with the answer; returns the uPlot (or null).
  function render(box, answer, ctx) {
    box.replaceChildren();
    const kind = KINDS[answer.dataset];
    if (answer.error) {
      box.append(el("div", { class: "empty bad" }, (kind ? kind.title : "Breakdown") + ": " + answer.error));
      return null;
    }
    const skipped = answer.skipped_files || [];
    // Loopback stays in the data, not on the chart: it never leaves the pod.
    const keys = answer.keys.filter((k) => answer.dataset !== "network" || k.key !== "lo");
    const head = el("div", { class: "chart-head" }, el("h3", {}, kind.title + " ", el("span", { class: "unit" }, "(bytes/s)")));
    box.append(head);
    if (!keys.length) {
      box.append(el("div", { class: "empty" }, kind.empty));
      if (skipped.length) box.append(el("div", { class: "note warn" }, skipped.length + " unreadable file(s) skipped"));
      return null;
    }
    if (skipped.length) box.append(el("div", { class: "note warn" }, skipped.length + " unreadable file(s) skipped"));
    const n = keys[0].rates[kind.counters[0]].length;
    const times = Array.from({ length: n }, (_, i) => (answer.start_ms + i * answer.step_ms) / 1000);
    const series = [{ value: (_, v) => (v === null ? "–" : fmtTime(v * 1000, ctx.tz)) }];
    const data = [times];
    keys.forEach((k, i) => {
      kind.counters.forEach((c, j) => {
        series.push({
          label: k.key + " " + kind.labels[j], stroke: COLORS[i % COLORS.length], width: 1.5,
          dash: j ? [6, 4] : undefined, spanGaps: false, points: { show: false },
          value: (_, v) => (v === null || v === undefined ? "–" : fmt(v, "bytes") + "/s"),
        });
        data.push(k.rates[c]);
      });
    });
    const tz = ctx.tz;
    const u = new uPlot({
      width: Math.max(300, ctx.width),
      height: 180,
      tzDate: (ts) => (tz === "utc" ? uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC") : new Date(ts * 1e3)),
      scales: { x: { time: true, range: () => [ctx.range.from / 1000, ctx.range.to / 1000] } },
      cursor: { sync: { key: "fgm" }, drag: { x: false, y: false } },
      axes: [{}, { size: 70, values: (_, vals) => vals.map((v) => fmt(v, "bytes")) }],
      series,
    }, data, box);
    const rows = keys.map((k) => el("tr", { "data-key": k.key },
      el("td", {}, k.key),
      ...kind.counters.map((c) => el("td", { class: "num" }, fmt(k.totals[c], "bytes")))));
    box.append(el("table", { class: "process-table breakdown-totals" },
      el("thead", {}, el("tr", {}, el("th", {}, answer.key_column), ...kind.labels.map((l) => el("th", {}, l + " in range")))),
      el("tbody", {}, ...rows)));
    return u;
  }

  // The panel: `answers` (one per dataset) drawn, or the panel hidden when
  // null; `old` charts destroyed first. Returns the new charts.
  function panel(answers, old, ctx) {
    for (const u of old) u.destroy();
    document.getElementById("breakdown-panel").hidden = !answers;
    if (!answers) return [];
    return answers.map((a) => render(document.getElementById("breakdown-" + a.dataset), a, ctx)).filter(Boolean);
  }

  window.fgmBreakdown = { render, panel, KINDS };
})();
