// Drives headless Chromium against a running viewer (started by
// tests/viewer_browser.rs) and checks what a person would: the overview
// without a click, one click to chart a row, limits and requests, event
// markers, the row's processes, the time zone switch, studies, export, comparison, shareable
// URLs, search, presets and zoom, with no console error. Every wait is on a
// condition of the page, never a fixed time. Saves a screenshot of the
// overview.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const env = (name) => process.env[name];
const url = env("FGM_URL");
const executablePath = env("FGM_CHROMIUM") || "/usr/bin/chromium";
const screenshot = env("FGM_SCREENSHOT");
const downloads = env("FGM_DOWNLOADS");
const total = Number(env("FGM_CONTAINERS"));
const [pick, hot, cron, disk] = ["FGM_PICK", "FGM_HOT", "FGM_CRON", "FGM_DISK"].map(env);
const start = Number(env("FGM_START"));
const oomAt = Number(env("FGM_OOM_AT"));
// The picked container's processes, by CPU used (the last one recurs, a recycled pid).
const pickProcesses = (env("FGM_PICK_PROCESSES") || "").split("\n").filter(Boolean);
assert.equal(pickProcesses.length, 3, "FGM_PICK_PROCESSES");
assert.ok(url && screenshot && downloads && total && pick && hot && cron && disk && start && oomAt,
  "FGM_URL, FGM_SCREENSHOT, FGM_DOWNLOADS, FGM_CONTAINERS, FGM_PICK, FGM_HOT, FGM_CRON, FGM_DISK, FGM_START, FGM_OOM_AT");
const MiB = 1 << 20;
const end = start + 1199e3; // newest sample

const step = (msg) => console.log("· " + msg);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const problems = [];
// Answers the test provokes on purpose (the export past its cap).
const expected = [];
try {
  // A zone that is not UTC, so "local" and "UTC" differ by five hours.
  const context = await browser.newContext({ viewport: { width: 1500, height: 1100 }, timezoneId: "America/New_York", acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error" && !expected.some((e) => m.text().includes(e))) problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("requestfailed", (r) => problems.push("request failed: " + r.url()));
  page.on("response", (r) => { if (r.status() >= 400 && !expected.some((e) => r.url().includes(e))) problems.push(r.status() + " " + r.url()); });
  const renders = () => page.evaluate(() => window.fgm.renders);
  const overviews = () => page.evaluate(() => window.fgm.overviewRenders);

  // ---- 1. The overview, without a single click -------------------------------
  await page.goto(url);
  await page.waitForFunction(() => window.fgm && window.fgm.ready && window.fgm.overviewRenders > 0, null, { timeout: 60000 });
  const ov = await page.evaluate(() => ({ view: window.fgm.view, range: window.fgm.range, json: window.fgm.overview }));
  assert.equal(ov.view, "overview");
  assert.deepEqual([ov.range.from, ov.range.to], [end - 15 * 60e3, end], "the last 15 minutes of data");
  assert.equal(ov.json.containers, total);
  const first = (card) => page.getAttribute(`#overview .card[data-category="${card}"] tr[data-id]`, "data-id");
  assert.equal(await first("cpu"), hot, "top CPU is the busy container");
  assert.equal(await first("memory"), pick, "top memory is the one that grew");
  assert.equal(await first("throttling"), hot);
  assert.equal(await first("pressure"), hot);
  assert.equal(await first("io"), disk);
  assert.equal(await first("troubled"), pick, "the OOM-killed container is listed");
  const summary = await page.$$eval("#overview-summary span", (spans) => spans.map((s) => s.textContent));
  assert.deepEqual(summary.slice(0, 4), [total + " containers", "1 OOM kill", "1 restart", "1 throttled"]);
  assert.match(summary[4], /^top CPU: monitoring\/cart-7 › cart \(1\.8\d cores\)$/);
  const cpuRow = page.locator(`#overview .card[data-category="cpu"] tr[data-id="${hot}"]`);
  assert.match(await cpuRow.textContent(), /1\.8\d cores?|1\.8\d/);
  assert.match(await cpuRow.textContent(), /9\d% of 2\.00 limit/, "CPU against its limit");
  const memRow = page.locator(`#overview .card[data-category="memory"] tr[data-id="${pick}"]`);
  assert.match(await memRow.textContent(), /OOM ×1/);
  assert.match(await memRow.textContent(), /restart ×1/);
  assert.match(await memRow.textContent(), /8\d% of 1\.0 GiB limit/);
  // Sparklines are drawn for every ranked row.
  const sparks = await page.$$eval("#overview svg.spark path", (ps) => ps.map((p) => p.getAttribute("d").split(/[ML]/).length - 1));
  assert.ok(sparks.length >= 16 && sparks.every((n) => n >= 30), "sparklines: " + sparks.length + " " + sparks.slice(0, 5));
  step("overview: top CPU, memory, throttling, IO, pressure and the OOM kill without a click");
  await page.screenshot({ path: screenshot, fullPage: false });
  step("screenshot " + screenshot);

  // ---- 2. Time zone: header, axes, tooltips ---------------------------------
  const localStatus = await page.textContent("#status");
  assert.match(localStatus, /\(UTC-05:00\)/, "local time by default: " + localStatus);
  assert.match(await page.textContent("#range"), /local time \(UTC-05:00\)/);
  const overviewsBefore = await overviews();
  await page.click('#tz button[data-tz="utc"]');
  await page.waitForFunction((n) => window.fgm.overviewRenders > n, overviewsBefore);
  assert.match(await page.textContent("#status"), /UTC$/);
  assert.ok((await page.textContent("#range")).startsWith("2025-12-30 09:04:59 → 2025-12-30 09:19:59 UTC"), await page.textContent("#range"));
  await page.click('#tz button[data-tz="local"]');
  await page.waitForFunction(() => window.fgm.tz === "local");
  step("one time zone, switchable: local (UTC-05:00) and UTC");

  // ---- 3. One click charts a row: limits, requests, events ------------------
  let before = await renders();
  await memRow.click();
  await page.waitForFunction((n) => window.fgm.view === "charts" && window.fgm.renders > n && window.fgm.charts.memory_working_set_bytes, before);
  const mem = await page.evaluate(() => {
    const u = window.fgm.charts.memory_working_set_bytes;
    return { series: u.fgmSeries.map((s) => [s.kind, s.label]), data: u.data.map((d) => d.filter((v) => v !== null && v !== undefined)) };
  });
  assert.deepEqual(await page.evaluate(() => window.fgm.selected), [pick]);
  assert.equal(mem.series[0][0], "data");
  assert.ok(mem.data[1].length > 500, "per-second points: " + mem.data[1].length);
  const limit = mem.series.findIndex((s) => s[0] === "limit" && s[1].startsWith("memory limit"));
  const request = mem.series.findIndex((s) => s[0] === "request");
  assert.ok(limit > 0 && request > 0, JSON.stringify(mem.series));
  assert.ok(mem.data[limit + 1].every((v) => v === 1024 * MiB), "limit line at 1 GiB");
  assert.ok(mem.data[request + 1].every((v) => v === 512 * MiB), "request line at 512 MiB");
  assert.match(await page.textContent('.chart[data-metric="memory_working_set_bytes"] h3'), /Memory working set \(bytes\)/);
  const events = await page.evaluate(() => window.fgm.events.map((e) => [e.kind, Date.parse(e.time)]));
  assert.deepEqual(events, [["oom_killed", oomAt], ["restart", oomAt + 1000]]);
  // The events table is in the page's zone too: 09:10 UTC is 04:10 in New York.
  assert.match(await page.textContent("#events"), /2025-12-30 04:10:00oom killed/);
  step("one click charts the row: memory with its 1 GiB limit, 512 MiB request and the OOM kill");

  // Its processes under the charts: by CPU, a sparkline each, their memory stacked.
  await page.waitForFunction((id) => window.fgm.processes && window.fgm.processes.container === id &&
    !document.getElementById("processes-panel").hidden, pick);
  const procs = await page.$$eval("#processes table.process-table tbody tr", (trs) => trs.map((tr) => ({
    command: tr.querySelector("td.command").textContent, pid: tr.dataset.pid, lines: tr.querySelectorAll("svg.spark path").length })));
  assert.deepEqual(procs.slice(0, 2).map((p) => p.command), pickProcesses.slice(0, 2), JSON.stringify(procs.slice(0, 3)));
  // A health check every minute of the last 15 under one pid: 15 processes.
  assert.equal(procs.length, 2 + 15, JSON.stringify(procs.map((p) => p.command)));
  assert.ok(procs.slice(2).every((p) => p.command === pickProcesses[2] && p.pid === "4300"));
  assert.ok(procs.every((p) => p.lines === 1), "a sparkline per row");
  assert.deepEqual(await page.$$eval("#processes table.process-table thead th", (ths) => ths.map((th) => th.textContent)),
    ["command", "pid", "nspid", "start", "end", "CPU s", "CPU", "max RSS", "last PSS"]);
  const stacked = await page.evaluate(() => ({ pids: window.fgm.processesChart.fgmProcesses, n: window.fgm.processesChart.series.length }));
  assert.equal(stacked.n, 1 + 5, "the 5 largest processes' RSS");
  assert.equal(stacked.pids[stacked.pids.length - 1], 4100, "the JVM, the largest, drawn last (at the bottom)");
  await page.locator("#processes-panel").screenshot({ path: screenshot.replace(/\.png$/, "") + "-processes.png" });
  await page.evaluate(() => window.scrollTo(0, 0));
  step("its processes: " + procs.length + " by CPU (" + pickProcesses[0] + " first), sparklines, stacked RSS");

  // Its IO per device (3 MB/s written to vda, 1 MB/s read from vdb) and its pod's network
  // (none recorded here: the panel says so).
  await page.waitForFunction((id) => window.fgm.breakdown && window.fgm.breakdown[0].container === id &&
    !document.getElementById("breakdown-panel").hidden, pick);
  const io = await page.evaluate(() => {
    const u = window.fgm.breakdownCharts[0];
    return { labels: u.series.slice(1).map((s) => s.label), vda: u.data[2].filter((v) => v !== null) };
  });
  assert.deepEqual(io.labels, ["/dev/vda read", "/dev/vda write", "/dev/vdb read", "/dev/vdb write"]);
  assert.ok(io.vda.length > 100 && io.vda.every((v) => Math.abs(v - 3e6) < 1), "vda written at 3 MB/s: " + io.vda.slice(0, 5));
  assert.deepEqual(await page.$$eval("#breakdown-devices table.breakdown-totals tbody tr", (trs) => trs.map((tr) => tr.dataset.key)), ["/dev/vda", "/dev/vdb"]);
  assert.match(await page.textContent("#breakdown-network"), /No pod network recorded in this range/);
  await page.locator("#breakdown-panel").screenshot({ path: screenshot.replace(/\.png$/, "") + "-breakdown.png" });
  step("its IO per device: vda written at 3 MB/s, vdb read, totals; no pod network recorded");

  // Tooltip time follows the zone: hover the chart, read the legend.
  const over = page.locator('.chart[data-metric="memory_working_set_bytes"] .u-over');
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const legendTime = () => page.textContent('.chart[data-metric="memory_working_set_bytes"] .u-legend .u-series:first-child .u-value');
  await page.waitForFunction(() => /\d\d:\d\d:\d\d/.test(document.querySelector('.chart[data-metric="memory_working_set_bytes"] .u-legend .u-series:first-child .u-value').textContent));
  const localHour = Number((await legendTime()).slice(11, 13));
  before = await renders();
  await page.click('#tz button[data-tz="utc"]');
  await page.waitForFunction((n) => window.fgm.renders > n, before);
  const over2 = page.locator('.chart[data-metric="memory_working_set_bytes"] .u-over');
  const box2 = await over2.boundingBox();
  await page.mouse.move(box2.x + box2.width / 2 + 1, box2.y + box2.height / 2);
  await page.waitForFunction(() => /\d\d:\d\d:\d\d/.test(document.querySelector('.chart[data-metric="memory_working_set_bytes"] .u-legend .u-series:first-child .u-value').textContent));
  const utcHour = Number((await legendTime()).slice(11, 13));
  assert.equal(localHour, 4, "the chart's tooltip in local time");
  assert.equal(utcHour, 9, "and in UTC after the switch");
  step("tooltips follow the zone: 04:xx local, 09:xx UTC");

  // ---- 4. Studies ------------------------------------------------------------
  before = await renders();
  await page.selectOption('.chart[data-metric="memory_working_set_bytes"] select.study-kind', "changepoints");
  await page.waitForFunction((n) => window.fgm.renders > n && window.fgm.studies.memory_working_set_bytes &&
    window.fgm.studies.memory_working_set_bytes.result, before);
  const change = await page.evaluate(() => window.fgm.studies.memory_working_set_bytes.result.result.changes);
  assert.equal(change.length, 1, JSON.stringify(change));
  assert.equal(change[0].time, start + 700e3, "the step at 09:11:40 UTC");
  assert.ok(Math.abs(change[0].shift - 700 * MiB) < 5 * MiB, "by 700 MiB: " + change[0].shift);
  assert.match(await page.textContent('.chart[data-metric="memory_working_set_bytes"] .study-result'), /1 level shift: \+(69\d|70\d) MiB/);
  assert.ok(await page.evaluate(() => window.fgm.charts.memory_working_set_bytes.fgmSeries.some((s) => s.kind === "levels")));
  step("changepoints: +700 MiB at the step, drawn as levels");

  // Shareable: the same URL shows the same study.
  const shared = page.url();
  assert.match(decodeURIComponent(shared), /st=memory_working_set_bytes~changepoints~/);
  const page2 = await context.newPage();
  page2.on("pageerror", (e) => problems.push("page error: " + e.message));
  await page2.goto(shared);
  await page2.waitForFunction(() => window.fgm && window.fgm.ready && window.fgm.studies.memory_working_set_bytes &&
    window.fgm.studies.memory_working_set_bytes.result && window.fgm.charts.memory_working_set_bytes);
  assert.equal(await page2.evaluate(() => window.fgm.tz), "utc");
  await page2.close();
  step("the URL restores the chart, the zone and the study");

  // Periodicity of the cron container's CPU over the whole range.
  await page.fill("#search", "");
  before = await renders();
  await page.click("#clear");
  await page.waitForFunction(() => window.fgm.view === "overview");
  await page.click('#presets button[data-preset="all"]');
  await page.waitForFunction(() => window.fgm.preset === "all" && window.fgm.overviewRenders > 0);
  before = await renders();
  await page.fill("#search", cron);
  await page.click(`#containers li[data-id="${cron}"]`);
  await page.waitForFunction((n) => window.fgm.renders > n && window.fgm.view === "charts", before);
  // No processes files for it: the panel says why.
  await page.waitForFunction((id) => window.fgm.processes && window.fgm.processes.container === id, cron);
  assert.equal(await page.textContent("#processes"), "No processes recorded (the agent's --processes is off)");
  // CPU only, from the metric list (grouped by resource, human names).
  assert.match(await page.textContent('#metrics .metric-group[data-group="cpu"]'), /CPU/);
  for (const [name, on] of [["cpu_usage_usec", true], ["memory_working_set_bytes", false], ["memory_current_bytes", false]]) {
    before = await renders();
    await (on ? page.check : page.uncheck).call(page, `#metrics input[value="${name}"]`);
    await page.waitForFunction((n) => window.fgm.renders > n, before);
  }
  assert.deepEqual(await page.evaluate(() => window.fgm.metricsSelected), ["cpu_usage_usec"]);
  before = await renders();
  await page.selectOption('.chart[data-metric="cpu_usage_usec"] select.study-kind', "periodicity");
  await page.waitForFunction((n) => window.fgm.renders > n && window.fgm.studies.cpu_usage_usec && window.fgm.studies.cpu_usage_usec.result, before);
  const period = await page.evaluate(() => window.fgm.studies.cpu_usage_usec.result.result);
  assert.equal(period.periodic, true);
  assert.ok(Math.abs(period.period_seconds - 60) < 0.5, "a 60 s cycle: " + period.period_seconds);
  assert.match(await page.textContent('.chart[data-metric="cpu_usage_usec"] .study-result'), /period (59\.\d|60\.\d) s · strength (0\.9\d|1\.00)/);
  step("periodicity: " + period.period_seconds.toFixed(2) + " s, strength " + period.strength.toFixed(2));

  // ---- 5. Export ------------------------------------------------------------
  const saved = async (button) => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
    const path = join(downloads, download.suggestedFilename());
    await download.saveAs(path);
    return { name: download.suggestedFilename(), bytes: readFileSync(path) };
  };
  const csv = await saved("#export-csv");
  const lines = csv.bytes.toString().trim().split("\n");
  assert.equal(lines[0], "timestamp,container_id,cpu_usage_usec");
  assert.equal(lines.length, 1 + 1200, "every second of the cron container");
  assert.ok(lines.slice(1).every((l) => l.split(",")[1] === cron));
  assert.match(csv.name, /^fgm-20251230T\d{6}Z-20251230T091959Z\.csv$/);
  const parquet = await saved("#export-parquet");
  assert.equal(parquet.bytes.subarray(0, 4).toString(), "PAR1");
  assert.equal(parquet.bytes.subarray(-4).toString(), "PAR1");
  // Past the cap (the viewer runs with --export-max-rows 5000): a clear message, no download.
  await page.fill("#search", "payments");
  const more = await page.$$eval("#containers li[data-id]", (lis) => lis.slice(0, 5).map((li) => li.dataset.id));
  for (const id of more) {
    before = await renders();
    await page.click(`#containers li[data-id="${id}"]`);
    await page.waitForFunction((n) => window.fgm.renders > n, before);
  }
  expected.push("/api/export?", "status of 400");
  const exportsBefore = await page.evaluate(() => window.fgm.exports.length);
  await page.click("#export-csv");
  await page.waitForFunction((n) => window.fgm.exports.length > n, exportsBefore);
  const refused = await page.textContent("#export-message");
  assert.match(refused, /holds 7200 rows, more than the export cap of 5000/, refused);
  step("export: CSV (1200 rows) and Parquet downloaded; past the cap, a message");

  // ---- 6. Compare -----------------------------------------------------------
  // Two containers overlaid: six selected now, six data series on every chart.
  const dataSeries = await page.evaluate(() => window.fgm.charts.cpu_usage_usec.fgmSeries.filter((s) => s.kind === "data").length);
  assert.equal(dataSeries, 6);
  await page.click("#clear");
  await page.waitForFunction(() => window.fgm.view === "overview");
  await page.fill("#search", "");
  before = await renders();
  await page.click(`#containers li[data-id="${cron}"]`);
  await page.waitForFunction((n) => window.fgm.renders > n && window.fgm.charts.cpu_usage_usec, before);
  before = await renders();
  await page.click(`#containers li[data-id="${hot}"]`);
  await page.waitForFunction((n) => window.fgm.renders > n, before);
  const two = await page.evaluate(() => window.fgm.charts.cpu_usage_usec.fgmSeries.filter((s) => s.kind === "data").map((s) => s.container));
  assert.deepEqual(two, [cron, hot], "two containers overlaid");
  // The same containers ten minutes earlier, overlaid (10m zoom, previous period).
  before = await renders();
  await page.evaluate(([from, to]) => { window.fgm.zoom = { from, to }; }, [start + 600e3, start + 1200e3]);
  await page.selectOption("#compare", "prev");
  await page.waitForFunction((n) => window.fgm.renders > n, before);
  const cmp = await page.evaluate(() => {
    const u = window.fgm.charts.cpu_usage_usec;
    const i = u.fgmSeries.findIndex((s) => s.kind === "compare");
    const xs = u.data[0].filter((x, j) => u.data[i + 1][j] !== undefined && u.data[i + 1][j] !== null);
    return { labels: u.fgmSeries.filter((s) => s.kind === "compare").map((s) => s.label), min: Math.min(...xs), n: xs.length };
  });
  assert.equal(cmp.labels.length, 2);
  assert.match(cmp.labels[0], /\(previous period\)$/);
  assert.ok(cmp.n > 400, "the earlier ten minutes: " + cmp.n + " points");
  assert.ok(cmp.min * 1000 >= start + 600e3, "shifted onto the chart's range");
  await page.selectOption("#compare", "off");
  await page.waitForFunction(() => window.fgm.compare === "off");
  step("compare: two containers, and the same ones in the previous period");

  // ---- 7. Search, presets, zoom (the list of every container) ------------------
  await page.fill("#search", "");
  const count = await page.textContent("#count");
  assert.match(count, new RegExp("^" + total + " of " + total), "all containers listed: " + count);
  await page.fill("#search", "tier=batch payments");
  const narrowed = await page.locator("#containers li[data-id]").count();
  const wanted = await page.evaluate(() => window.fgm.containers.filter((c) => c.labels.tier === "batch" && c.namespace === "payments").length);
  assert.ok(narrowed > 0 && narrowed === wanted, `label+namespace search: ${narrowed} vs ${wanted}`);
  await page.fill("#search", "");
  before = await renders();
  await page.click('#presets button[data-preset="15m"]');
  await page.waitForFunction((n) => window.fgm.renders > n && window.fgm.range.to - window.fgm.range.from === 15 * 60e3, before);
  const xRange = await page.evaluate(() => { const u = window.fgm.charts.cpu_usage_usec; return (u.scales.x.max - u.scales.x.min) * 1000; });
  assert.equal(xRange, 15 * 60e3, "chart axis follows the preset");
  const zoomOver = page.locator('.chart[data-metric="cpu_usage_usec"] .u-over');
  const zb = await zoomOver.boundingBox();
  before = await renders();
  await page.mouse.move(zb.x + zb.width * 0.3, zb.y + zb.height / 2);
  await page.mouse.down();
  await page.mouse.move(zb.x + zb.width * 0.6, zb.y + zb.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction((n) => window.fgm.zoom && window.fgm.renders > n, before);
  const zoomed = await page.evaluate(() => window.fgm.range.to - window.fgm.range.from);
  assert.ok(zoomed < 6 * 60e3 && zoomed > 3 * 60e3, "zoomed to about a third: " + zoomed);
  await page.locator('.chart[data-metric="cpu_usage_usec"] .u-over').dblclick();
  await page.waitForFunction(() => !window.fgm.zoom);
  step("search, presets, drag to zoom, double-click to reset");

  const errors = await page.evaluate(() => window.fgm.errors);
  assert.deepEqual(errors, [], "page-side errors");
} finally {
  await browser.close();
}
assert.deepEqual(problems, [], "console errors or failed requests");
console.log("browser check passed");
