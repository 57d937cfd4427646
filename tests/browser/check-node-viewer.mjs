// Drives headless Chromium against a node's viewer reached through `kubectl port-forward`
// (started by tests/real_node.rs): search a pod by name, chart it, check the CPU chart drew
// real per-second data, keep a screenshot.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const url = process.env.FGM_URL;
const search = process.env.FGM_SEARCH;
const pod = process.env.FGM_POD;
const screenshot = process.env.FGM_SCREENSHOT;
const executablePath = process.env.FGM_CHROMIUM || "/usr/bin/chromium";
assert.ok(url && search && pod && screenshot, "FGM_URL, FGM_SEARCH, FGM_POD, FGM_SCREENSHOT");

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => window.fgm && window.fgm.ready, null, { timeout: 60000 });
  await page.fill("#search", search);
  const item = page.locator("#containers li", { hasText: pod }).first();
  await item.waitFor({ timeout: 30000 });
  const id = await item.getAttribute("data-id");
  await item.click();
  // Live data: wait until the CPU chart holds several per-second points.
  await page.waitForFunction(() => {
    const u = window.fgm.charts && window.fgm.charts.cpu_usage_usec;
    return u && u.data[1].filter((v) => v !== null && v !== undefined).length >= 5;
  }, null, { timeout: 90000 });
  const values = await page.evaluate(() =>
    window.fgm.charts.cpu_usage_usec.data[1].filter((v) => v !== null && v !== undefined));
  const max = Math.max(...values);
  // The pod spins 0.3 cores: its chart shows it (in cores), never the machine's whole CPU.
  assert.ok(max > 0.02 && max < 2, "cpu of " + pod + " in cores: " + values.join(","));
  // Live to the second: each new sample is appended as the agent writes it. Take the newest
  // sample on screen and when it was drawn, over several live appends (issue #24).
  const lags = [];
  let newest = 0;
  for (let i = 0; i < 5; i++) {
    const before = await page.evaluate(() => window.fgm.liveAppends);
    await page.waitForFunction((n) => window.fgm.liveAppends > n, before, { timeout: 15000 });
    const drawn = await page.evaluate(() => window.fgm.drawn);
    assert.ok(drawn.newest > newest, "each live append brings newer samples");
    newest = drawn.newest;
    lags.push(drawn.at - drawn.newest);
  }
  lags.sort((a, b) => a - b);
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ container: id, points: values.length, max_cores: max }));
  console.log("figure: sample taken -> drawn in Chromium (live, port-forward): median " + lags[2] + " ms, max " +
    lags[4] + " ms over 5 live appends");

} finally {
  await browser.close();
}
