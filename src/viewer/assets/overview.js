// The overview: what happened on this node in the range, before anything is
// picked. Rankings by CPU, memory, throttling, IO, pressure and pod network, each row with
// a sparkline, limits, OOM kills and restarts; one click charts the row.
(function () {
  "use strict";
  const { el, fmt, fmtTime, label, EVENT_LABELS } = window.fgmUtil;

  const CARDS = [
    { key: "cpu", title: "Top CPU", empty: "No CPU use in this range." },
    { key: "memory", title: "Top memory (peak working set)", empty: "No memory data in this range." },
    { key: "throttling", title: "CPU throttling", empty: "Nothing was throttled in this range." },
    { key: "io", title: "Disk IO", empty: "No disk reads or writes in this range." },
    { key: "pressure", title: "Pressure stall (PSI)", empty: "No pressure stall in this range." },
    { key: "network", title: "Network (pods)", empty: "No pod network traffic in this range." },
  ];

  // Metrics charted when a row of a card is clicked.
  const CARD_METRICS = {
    cpu: ["cpu_usage_usec", "cpu_throttled_usec"],
    memory: ["memory_working_set_bytes", "memory_current_bytes"],
    throttling: ["cpu_usage_usec", "cpu_throttled_usec"],
    io: ["io_read_bytes", "io_write_bytes"],
    pressure: ["cpu_pressure_some_usec", "memory_pressure_some_usec", "io_pressure_some_usec"],
    network: ["network_receive_bytes", "network_transmit_bytes"],
    troubled: ["memory_working_set_bytes", "cpu_usage_usec"],
  };

  // A small line of `values` (nulls are gaps), scaled to its own maximum.
  function sparkline(values, color) {
    const w = 120, h = 26;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    const max = Math.max(0, ...values.filter((v) => v !== null));
    const step = values.length > 1 ? w / (values.length - 1) : w;
    let d = "";
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (i * step).toFixed(1);
      const y = (h - 2 - (max > 0 ? (v / max) * (h - 4) : 0)).toFixed(1);
      d += (pen ? "L" : "M") + x + " " + y;
      pen = true;
    });
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", color);
    path.setAttribute("stroke-width", "1.5");
    svg.append(path);
    return svg;
  }

  const pct = (v) => (v === null || v === undefined ? null : fmt(v, "%"));

  // The secondary figures of a row, per card.
  function details(key, s) {
    const parts = [];
    if (key === "cpu") {
      if (s.cpu_pct_of_limit !== null) parts.push(pct(s.cpu_pct_of_limit) + " of " + fmt(s.cpu_limit_cores, "cores") + " limit");
      else parts.push("no limit");
      parts.push("peak " + fmt(s.cpu_peak_cores, "cores"));
    } else if (key === "memory") {
      if (s.memory_pct_of_limit !== null) parts.push(pct(s.memory_pct_of_limit) + " of " + fmt(s.memory_limit_bytes, "bytes") + " limit");
      else parts.push("no limit");
    } else if (key === "throttling") {
      parts.push(fmt(s.throttled_seconds, "s") + " throttled");
      if (s.cpu_limit_cores !== null) parts.push("limit " + fmt(s.cpu_limit_cores, "cores"));
    } else if (key === "io") {
      parts.push("read " + fmt(s.io_read_bytes_per_sec, "bytes/s"), "write " + fmt(s.io_write_bytes_per_sec, "bytes/s"));
    } else if (key === "pressure") {
      ["cpu", "memory", "io"].forEach((r, i) => parts.push(r + " " + fmt(s.pressure_pct[i], "%")));
    } else if (key === "network") {
      parts.push("in " + fmt(s.network_receive_bytes_per_sec, "bytes/s"), "out " + fmt(s.network_transmit_bytes_per_sec, "bytes/s"));
    }
    return parts.join(" · ");
  }

  function badges(row) {
    const out = [];
    if (row.oom_kills > 0) out.push(el("span", { class: "badge bad", title: "OOM kills (kernel count or OOMKilled terminations, the higher)" }, "OOM ×" + row.oom_kills));
    const restarts = row.events.restart;
    if (restarts > 0) out.push(el("span", { class: "badge warn" }, "restart ×" + restarts));
    if (row.events.crash_loop_back_off > 0) out.push(el("span", { class: "badge warn" }, "CrashLoopBackOff"));
    return out;
  }

  function nameCell(row) {
    return el("td", { class: "who" }, el("div", { class: "name" }, label(row)),
      el("div", { class: "meta" }, row.id + (row.qos_class ? " · " + row.qos_class : "")), ...badges(row));
  }

  function card(def, json, rowsById, onPick) {
    const ranking = json.rankings[def.key];
    const box = el("section", { class: "card", "data-category": def.key },
      el("h3", {}, def.title, el("span", { class: "unit" }, " " + ranking.unit)));
    if (!ranking.rows.length) {
      box.append(el("div", { class: "empty" }, def.empty));
      return box;
    }
    const body = el("tbody");
    for (const r of ranking.rows) {
      const row = rowsById.get(r.id);
      if (!row) continue;
      body.append(el("tr", { "data-id": r.id, title: "Chart " + label(row), onclick: () => onPick(r.id, CARD_METRICS[def.key]) },
        nameCell(row),
        el("td", { class: "value" }, el("div", {}, fmt(r.value, ranking.unit)), el("div", { class: "meta" }, details(def.key, row.stats))),
        el("td", { class: "spark-cell" }, sparkline(r.spark, "#2563eb"))));
    }
    box.append(el("table", {}, body));
    return box;
  }

  function troubledCard(json, rowsById, onPick, tz) {
    const box = el("section", { class: "card", "data-category": "troubled" },
      el("h3", {}, "OOM kills, restarts, crash loops"));
    if (!json.troubled.length) {
      box.append(el("div", { class: "empty good" }, "No OOM kill, restart or crash loop in this range."));
    } else {
      const body = el("tbody");
      for (const t of json.troubled) {
        const row = rowsById.get(t.id);
        if (!row) continue;
        const last = json.events.filter((e) => e.containers.includes(t.id)).slice(-1)[0];
        body.append(el("tr", { "data-id": t.id, onclick: () => onPick(t.id, CARD_METRICS.troubled) },
          nameCell(row),
          el("td", { class: "value" }, last ? el("div", { class: "meta" }, "last: " + (EVENT_LABELS[last.kind] || last.kind) + " at " + fmtTime(Date.parse(last.time), tz)) : null)));
      }
      box.append(el("table", {}, body));
    }
    return box;
  }

  // Renders `json` (GET /api/overview) into `root`.
  function render(root, json, ctx) {
    const rowsById = new Map(json.rows.map((r) => [r.id, r]));
    const oom = json.rows.reduce((n, r) => n + r.oom_kills, 0);
    const restarts = json.rows.reduce((n, r) => n + r.events.restart, 0);
    const throttled = json.rankings.throttling.rows.length;
    const top = (k) => {
      const r = json.rankings[k].rows[0];
      const unit = json.rankings[k].unit;
      return r ? label(rowsById.get(r.id)) + " (" + fmt(r.value, unit) + (unit === "cores" ? " cores" : "") + ")" : "–";
    };
    const summary = el("div", { id: "overview-summary", class: "summary" },
      el("span", {}, json.containers + " containers"),
      el("span", { class: oom ? "bad" : "good" }, oom + " OOM kill" + (oom === 1 ? "" : "s")),
      el("span", { class: restarts ? "warn" : "good" }, restarts + " restart" + (restarts === 1 ? "" : "s")),
      el("span", { class: throttled ? "warn" : "good" }, throttled + " throttled"),
      el("span", {}, "top CPU: " + top("cpu")),
      el("span", {}, "top memory: " + top("memory")));
    const grid = el("div", { class: "cards" }, troubledCard(json, rowsById, ctx.onPick, ctx.tz),
      ...CARDS.map((def) => card(def, json, rowsById, ctx.onPick)));
    const skipped = json.skipped_files.length
      ? el("div", { class: "warn" }, json.skipped_files.length + " unreadable data file(s) skipped")
      : null;
    root.replaceChildren(summary, grid, skipped || "");
  }

  window.fgmOverview = { render, CARD_METRICS };
})();
