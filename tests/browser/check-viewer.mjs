// Drives headless Chromium against a running viewer (started by
// tests/viewer_browser.rs) and checks what a person would: the container
// list, search, picking a container, charts that drew data, the OOM marker,
// presets, zoom, and no console errors. Saves a screenshot.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const url = process.env.FGM_URL;
const executablePath = process.env.FGM_CHROMIUM || "/usr/bin/chromium";
const screenshot = process.env.FGM_SCREENSHOT;
const total = Number(process.env.FGM_CONTAINERS);
const pick = process.env.FGM_PICK;
const oomAt = Number(process.env.FGM_OOM_AT);
assert.ok(url && screenshot && total && pick && oomAt, "FGM_URL, FGM_SCREENSHOT, FGM_CONTAINERS, FGM_PICK, FGM_OOM_AT");

const step = (msg) => console.log("· " + msg);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("requestfailed", (r) => problems.push("request failed: " + r.url()));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(r.status() + " " + r.url()); });

  await page.goto(url);
  await page.waitForFunction(() => window.fgm && window.fgm.ready, null, { timeout: 30000 });
  const count = await page.textContent("#count");
  assert.match(count, new RegExp("^" + total + " of " + total), "all containers listed: " + count);
  assert.equal(await page.locator("#containers li").count(), total);
  step("lists " + total + " containers");

  // Search narrows the list: by app label value, then by label key=value and namespace.
  await page.fill("#search", "checkout");
  const checkout = await page.locator("#containers li").count();
  assert.ok(checkout > 0 && checkout < total, "search by name filters: " + checkout);
  await page.fill("#search", "tier=batch payments");
  const narrowed = await page.locator("#containers li").count();
  const expected = await page.evaluate(() => window.fgm.containers.filter(
    (c) => c.labels.tier === "batch" && c.namespace === "payments").length);
  assert.ok(narrowed > 0 && narrowed === expected, `label+namespace search: ${narrowed} vs ${expected}`);
  await page.fill("#search", "checkout-0");
  assert.equal(await page.locator("#containers li").count(), 1);
  step("search filters by name, label and namespace");

  // Pick the container; default metrics (CPU and memory) get charted.
  const before = await page.evaluate(() => window.fgm.renders);
  await page.click(`#containers li[data-id="${pick}"]`);
  await page.waitForFunction((n) => window.fgm.renders > n && Object.keys(window.fgm.charts).length > 0, before);
  // Another metric from the list.
  const before2 = await page.evaluate(() => window.fgm.renders);
  await page.check('#metrics input[value="pids_current"]');
  await page.waitForFunction((n) => window.fgm.renders > n, before2);
  const drawn = await page.evaluate(() => Object.fromEntries(Object.entries(window.fgm.charts).map(([name, u]) => [
    name, { series: u.series.length - 1, points: u.data[1].filter((v) => v !== null && v !== undefined).length,
      values: u.data[1].filter((v) => v !== null && v !== undefined) },
  ])));
  for (const name of ["cpu_usage_usec", "memory_working_set_bytes", "pids_current"]) {
    assert.ok(drawn[name], "chart for " + name + ": " + Object.keys(drawn));
    assert.equal(drawn[name].series, 1);
    assert.ok(drawn[name].points > 100, name + " drew " + drawn[name].points + " points");
  }
  // 0.5 cores, from the raw CPU counter turned into a rate.
  assert.ok(drawn.cpu_usage_usec.values.every((v) => Math.abs(v - 0.5) < 1e-9), "cpu rate is 0.5 cores");
  const canvases = await page.locator(".chart canvas").count();
  assert.ok(canvases >= 3, "uPlot canvases: " + canvases);
  step("charts drew " + Object.entries(drawn).map(([n, d]) => n + "=" + d.points).join(", "));

  // The OOM kill is listed and drawn as a marker inside the chart's time range.
  const events = await page.evaluate(() => window.fgm.events.map((e) => [e.kind, Date.parse(e.time)]));
  assert.deepEqual(events, [["oom_killed", oomAt]]);
  assert.match(await page.textContent("#events"), /oom killed/);
  step("OOM kill marked");

  // Presets change the range: 15m is 15 minutes ending at the newest data.
  await page.click('#presets button[data-preset="15m"]');
  await page.waitForFunction(() => window.fgm.range && window.fgm.range.to - window.fgm.range.from === 15 * 60e3);
  const xRange = await page.evaluate(() => {
    const u = window.fgm.charts.cpu_usage_usec;
    return [u.scales.x.min * 1000, u.scales.x.max * 1000, window.fgm.range.from, window.fgm.range.to];
  });
  assert.equal(xRange[1] - xRange[0], 15 * 60e3, "chart axis follows the preset: " + xRange);
  await page.click('#presets button[data-preset="all"]');
  await page.waitForFunction(() => window.fgm.range.to - window.fgm.range.from > 19 * 60e3);
  step("presets change the range");

  // Drag across a chart to zoom in; double-click to go back.
  const over = page.locator('.chart[data-metric="cpu_usage_usec"] .u-over');
  const box = await over.boundingBox();
  const rendersBeforeZoom = await page.evaluate(() => window.fgm.renders);
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction((n) => window.fgm.zoom && window.fgm.renders > n, rendersBeforeZoom);
  const zoomed = await page.evaluate(() => window.fgm.range.to - window.fgm.range.from);
  assert.ok(zoomed < 10 * 60e3 && zoomed > 3 * 60e3, "zoomed to about a third: " + zoomed);
  await page.locator('.chart[data-metric="cpu_usage_usec"] .u-over').dblclick();
  await page.waitForFunction(() => !window.fgm.zoom);
  step("drag zooms, double-click resets");

  // A second container for the screenshot, then the picture for the README.
  await page.fill("#search", "frontend");
  await page.locator("#containers li").nth(0).click();
  await page.waitForFunction(() => Object.values(window.fgm.charts).every((u) => u.series.length === 3));
  await page.fill("#search", "");
  await page.click('#presets button[data-preset="all"]');
  await page.waitForTimeout(300);
  await page.screenshot({ path: screenshot, fullPage: false });
  step("screenshot " + screenshot);

  const errors = await page.evaluate(() => window.fgm.errors);
  assert.deepEqual(errors, [], "page-side errors");
} finally {
  await browser.close();
}
assert.deepEqual(problems, [], "console errors or failed requests");
console.log("browser check passed");
