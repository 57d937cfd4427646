// Drives headless Chromium against `kubectl fgm view`'s cluster view (started by
// tests/kubectl_fgm_view.rs over real viewers of two nodes and a third one stopped with
// SIGSTOP, and by tests/two_nodes.rs over the test world's two real nodes): the overview ranks
// containers across nodes, the silent node (if any) is named, and one chart holds containers of
// both nodes.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const url = process.env.FGM_URL;
const hot = process.env.FGM_HOT; // <node>/<id> expected first by CPU
const other = process.env.FGM_OTHER; // <node>/<id> on the other node
const silent = process.env.FGM_SILENT; // the stopped node ("": every node answers)
const screenshot = process.env.FGM_SCREENSHOT;
// Least peak cores of the hot container's and the other's lines.
const hotCores = Number(process.env.FGM_HOT_CORES || "1.2");
const otherCores = Number(process.env.FGM_OTHER_CORES || "0.2");
const executablePath = process.env.FGM_CHROMIUM || "/usr/bin/chromium";
assert.ok(url && hot && other && silent !== undefined && screenshot, "FGM_URL, FGM_HOT, FGM_OTHER, FGM_SILENT, FGM_SCREENSHOT");

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
  page.on("console", (m) => {
    // The stopped node's 502 for a one-node request would be an error here; none is expected.
    if (m.type() === "error") problems.push("console: " + m.text());
  });
  await page.goto(url);
  await page.waitForFunction(() => window.fgm && window.fgm.ready && window.fgm.overviewRenders > 0, null, { timeout: 60000 });

  // The overview ranks across nodes: the hottest container of either node first.
  const first = await page.getAttribute('#overview .card[data-category="cpu"] tr[data-id]', "data-id");
  assert.equal(first, hot, "top CPU across nodes");
  const status = await page.textContent("#status");
  assert.match(status, /2 nodes/, status);
  if (silent) assert.ok(status.includes("1 node(s) not answering: " + silent), status);
  else assert.ok(!status.includes("not answering"), status);

  // One chart, containers of both nodes.
  await page.click(`#overview .card[data-category="cpu"] tr[data-id="${hot}"]`);
  await page.waitForFunction(() => window.fgm.view === "charts");
  await page.locator(`#containers li[data-id="${other}"]`).click();
  await page.waitForFunction((ids) => {
    const u = window.fgm.charts && window.fgm.charts.cpu_usage_usec;
    if (!u || u.series.length < 3) return false;
    // The containers' own lines come first (limits after them).
    return u.data.slice(1, 3).every((d) => d.filter((v) => v !== null && v !== undefined).length >= 10);
  }, [hot, other], { timeout: 30000 });
  const maxes = await page.evaluate(() =>
    window.fgm.charts.cpu_usage_usec.data.slice(1, 3).map((d) => Math.max(...d.filter((v) => v !== null && v !== undefined))));
  const selected = await page.evaluate(() => window.fgm.selected);
  assert.deepEqual([...selected].sort(), [hot, other].sort());
  assert.ok(Math.max(...maxes) > hotCores && Math.min(...maxes) > otherCores, "cores of both nodes: " + maxes);
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ first, selected, max_cores: maxes }));
} finally {
  await browser.close();
}
