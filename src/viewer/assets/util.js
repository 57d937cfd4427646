// Shared helpers of the viewer page: DOM building, fetching, number and time
// formatting in the chosen time zone, container names. Loaded first; the
// other scripts use window.fgmUtil.
(function () {
  "use strict";

  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false) e.append(kid);
    return e;
  };

  // Fetches JSON; an error answer becomes an Error carrying the server's message.
  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(body.error || (r.status + " " + r.statusText));
      e.status = r.status;
      throw e;
    }
    return body;
  }

  // ---- numbers ------------------------------------------------------------
  const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  function fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (unit === "bytes" || unit === "bytes/s") {
      let i = 0, x = Math.abs(v);
      while (x >= 1024 && i < BYTE_UNITS.length - 1) { x /= 1024; i++; }
      const s = (v < 0 ? -x : x).toFixed(x >= 100 || i === 0 ? 0 : 1) + " " + BYTE_UNITS[i];
      return unit === "bytes/s" ? s + "/s" : s;
    }
    if (unit === "cores") {
      const a = Math.abs(v);
      return a >= 1 || a === 0 ? v.toFixed(2) : (v * 1000).toFixed(a * 1000 >= 10 ? 0 : 1) + "m";
    }
    if (unit === "% time stalled" || unit === "% periods throttled" || unit === "%") {
      return v.toFixed(Math.abs(v) >= 10 ? 0 : 1) + "%";
    }
    const a = Math.abs(v);
    const s = a >= 1e9 ? (v / 1e9).toFixed(1) + "G" : a >= 1e6 ? (v / 1e6).toFixed(1) + "M"
      : a >= 1e3 ? (v / 1e3).toFixed(1) + "k" : (+v.toFixed(2)).toString();
    return unit && unit !== "count" ? s + " " + unit : s;
  }

  // ---- time: one zone for header, axes, tooltips and tables ----------------
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  // Offset of the local zone at `ms`, as +HH:MM.
  function localOffset(ms) {
    const m = -new Date(ms).getTimezoneOffset();
    return (m >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(m) / 60)) + ":" + pad(Math.abs(m) % 60);
  }
  // `2025-12-30 16:00:05` in the zone `tz` ("local" or "utc").
  function fmtTime(ms, tz, withZone) {
    const d = new Date(ms);
    const utc = tz === "utc";
    const p = utc
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
    const s = p[0] + "-" + pad(p[1]) + "-" + pad(p[2]) + " " + pad(p[3]) + ":" + pad(p[4]) + ":" + pad(p[5]);
    if (!withZone) return s;
    return s + (utc ? " UTC" : " (UTC" + localOffset(ms) + ")");
  }
  const zoneName = (tz) => (tz === "utc" ? "UTC" : "local time (UTC" + localOffset(Date.now()) + ")");

  function fmtDuration(ms) {
    const s = Math.round(ms / 1000);
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return (s / 3600).toFixed(s < 36000 ? 1 : 0) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  // ---- containers ---------------------------------------------------------
  function label(c) {
    if (!c) return "?";
    // In the cluster view every container carries its node.
    const node = c.node ? c.node + " · " : "";
    if (c.pod_name) return node + (c.namespace ? c.namespace + "/" : "") + c.pod_name + " › " + (c.container_name || (c.sandbox ? "pod" : c.id));
    return node + (c.cgroup_path || c.container_name || c.id);
  }

  // Same rules as the server's search: every term must match; key=value matches a label.
  function matches(c, query) {
    const terms = query.trim().split(/\s+/).filter(Boolean);
    const fields = [c.id, c.node, c.pod_name, c.namespace, c.container_name, c.cgroup_path].filter(Boolean).map((f) => f.toLowerCase());
    const labels = Object.entries(c.labels || {});
    return terms.every((term) => {
      const eq = term.indexOf("=");
      if (eq > 0) return labels.some(([k, v]) => k === term.slice(0, eq) && v === term.slice(eq + 1));
      const t = term.toLowerCase();
      return fields.some((f) => f.includes(t)) || labels.some(([k, v]) => k.toLowerCase().includes(t) || v.toLowerCase().includes(t));
    });
  }

  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
    "#db2777", "#4f46e5", "#65a30d", "#0d9488", "#b91c1c", "#7c3aed", "#c2410c", "#15803d",
    "#1d4ed8", "#a21caf", "#0369a1", "#854d0e", "#be123c"];
  const EVENT_COLORS = { oom_killed: "#dc2626", restart: "#ea580c", terminated: "#ca8a04", crash_loop_back_off: "#9333ea" };
  const EVENT_LABELS = { oom_killed: "OOM kill", restart: "restart", terminated: "terminated", crash_loop_back_off: "CrashLoopBackOff" };

  // `#rrggbb` at `alpha`.
  function fade(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  window.fgmUtil = { el, getJSON, fmt, fmtTime, fmtDuration, zoneName, label, matches, COLORS, EVENT_COLORS, EVENT_LABELS, fade };
})();
