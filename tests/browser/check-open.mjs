// `kubectl fgm open POD` to a drawn chart, timed as a user meets it (tests/real_node.rs): with
// Chromium already running, start the plugin, take the URL it prints, open it, and wait until
// the pod's CPU chart holds per-second points. The figure includes the plugin's start, the API
// look-ups and the port-forwards of every request of the page.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import readline from "node:readline";
import assert from "node:assert/strict";

const bin = process.env.FGM_PLUGIN;
const args = JSON.parse(process.env.FGM_PLUGIN_ARGS || "[]");
const executablePath = process.env.FGM_CHROMIUM || "/usr/bin/chromium";
assert.ok(bin && args.length, "FGM_PLUGIN, FGM_PLUGIN_ARGS");

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
let plugin;
try {
  const began = performance.now();
  plugin = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: plugin.stdout });
  const url = await new Promise((resolve, reject) => {
    lines.on("line", (l) => { if (l.startsWith("http://127.0.0.1:")) resolve(l.trim()); });
    plugin.on("exit", (code) => reject(new Error("kubectl-fgm exited " + code + " before printing a URL")));
  });
  const printed = performance.now();
  await page.goto(url);
  await page.waitForFunction(() => {
    const u = window.fgm && window.fgm.charts && window.fgm.charts.cpu_usage_usec;
    return u && u.data.length > 1 && u.data[1].filter((v) => v !== null && v !== undefined).length >= 5;
  }, null, { timeout: 60000 });
  const drawn = performance.now();
  const selected = await page.evaluate(() => window.fgm.selected);
  assert.ok(selected.length >= 1, "the pod's containers are selected: " + selected);
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ url, selected }));
  console.log("figure: kubectl fgm open -> chart drawn in Chromium (port-forwards included): " +
    Math.round(drawn - began) + " ms (URL printed after " + Math.round(printed - began) + " ms)");
} finally {
  if (plugin) plugin.kill("SIGINT");
  await browser.close();
}
