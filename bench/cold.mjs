// Cold start of the shipped package against onnxruntime-web, alone (scripts/bench.sh runs it
// among everything else): page load → first recommendation in bench/pages/cold.html, a fresh
// headless Chromium per load (no HTTP cache, no compiled-wasm cache, no storage), the two
// runtimes alternating. Fails when their top-10 differ. Started by scripts/bench-cold.sh:
//   node bench/cold.mjs [--loads 7]
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const LOADS = Number(args.loads || 7);
const bundles = path.join(root, "tests/fixtures/bundles");
const ortDist = path.join(here, "node_modules/onnxruntime-web/dist");
const npmDist = path.join(root, "npm/dist");
for (const need of [path.join(npmDist, "wasm/foresight_bg.wasm"), ortDist]) {
  if (!fs.existsSync(need)) throw new Error(`${need} is missing: run scripts/bench-cold.sh (it builds the package and installs onnxruntime-web)`);
}
const routes = [
  ["/npm/", npmDist],
  ["/ort/", ortDist],
  ["/bundles/", bundles],
  ["/fixtures/", path.join(root, "tests/fixtures")],
  ["/", path.join(here, "pages")],
];
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = http.createServer((req, res) => {
  const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const hit = routes.find(([prefix]) => urlPath.startsWith(prefix));
  const file = hit && !urlPath.includes("..") ? path.join(hit[1], urlPath.slice(hit[0].length)) : null;
  const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store" };
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404, headers).end();
  res.writeHead(200, { ...headers, "Content-Type": types[path.extname(file)] || "application/octet-stream" }).end(fs.readFileSync(file));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
const key = fs.readFileSync(path.join(bundles, "test-signing.pub"), "utf8").trim();
const launchArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let version = "?";
async function load(rt) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: launchArgs });
  try {
    version = browser.version();
    const page = await browser.newPage();
    await page.goto(`${base}/cold.html?rt=${rt}&key=${encodeURIComponent(key)}`);
    await page.waitForFunction("window.benchResult", null, { timeout: 120_000, polling: 50 });
    const r = await page.evaluate("window.benchResult");
    if (r.error) throw new Error(`${rt}: ${r.error}`);
    return r;
  } finally {
    await browser.close();
  }
}

const runs = { core: [], ort: [] };
for (let i = 0; i < LOADS; i++) {
  for (const rt of ["core", "ort"]) {
    process.stderr.write(`[cold] ${rt} ${i + 1}/${LOADS}\n`);
    runs[rt].push(await load(rt));
  }
}
server.close();

const differ = runs.core.concat(runs.ort).find((r) => JSON.stringify(r.items) !== JSON.stringify(runs.ort[0].items));
if (differ) {
  console.error(`the answers differ: ${differ.rt} ${JSON.stringify(differ.items)} vs onnxruntime-web ${JSON.stringify(runs.ort[0].items)}`);
  process.exit(1);
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const gz = (files) => files.reduce((t, f) => t + zlib.gzipSync(fs.readFileSync(f), { level: 9 }).length, 0);
// As scripts/build-npm.sh counts the core: sources.js is imported only when the config names sources.
const coreFiles = fs.readdirSync(npmDist).filter((f) => f.endsWith(".js") && f !== "sources.js").map((f) => path.join(npmDist, f)).concat([path.join(npmDist, "wasm/foresight.js"), path.join(npmDist, "wasm/foresight_bg.wasm")]);
const ortFiles = [path.join(ortDist, "ort.wasm.min.mjs"), path.join(ortDist, "ort-wasm-simd-threaded.wasm")];
const ortVersion = JSON.parse(fs.readFileSync(path.join(here, "node_modules/onnxruntime-web/package.json"))).version;
let commit = "?";
try {
  commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  if (execFileSync("git", ["status", "--porcelain", "--", "sdk", "npm", "bench"], { cwd: root, encoding: "utf8" }).trim()) commit += " (with uncommitted changes)";
} catch {}
const row = (name, rs, peer) => {
  const m = median(rs.map((r) => r.firstRecommendationMs));
  const tasks = rs.map((r) => r.longTasks.length);
  const longest = Math.max(0, ...rs.flatMap((r) => r.longTasks));
  return `| ${name} | ${m.toFixed(0)} | ${Math.min(...rs.map((r) => r.firstRecommendationMs)).toFixed(0)}–${Math.max(...rs.map((r) => r.firstRecommendationMs)).toFixed(0)} | ${peer ? (m / peer).toFixed(2) + "×" : ""} | ${tasks.join(", ")} (longest ${longest} ms) |`;
};
const ortMedian = median(runs.ort.map((r) => r.firstRecommendationMs));
console.log(`Cold start at ${commit}: Chromium ${version} headless, a fresh browser per load, ${LOADS} loads each, alternating; onnxruntime-web ${ortVersion} (wasm, 1 thread). Both rank the same top-10 for the same one-item session (checked).`);
console.log("");
console.log("| runtime | first recommendation, median ms | range | vs onnxruntime-web | long tasks (> 50 ms) per load |");
console.log("| --- | ---: | ---: | ---: | --- |");
console.log(row("Foresight npm package (core wasm, `gru` bundle on its own kernels)", runs.core, ortMedian));
console.log(row("onnxruntime-web (`session_gru.onnx`, top-10 in JS)", runs.ort));
const step = (k, rt = "core") => median(runs[rt].map((r) => r.steps[k])).toFixed(0);
console.log("");
console.log(`Foresight's medians: the page's script starts at ${step("scriptStartMs")} ms; importing the package takes ${step("importMs")} ms, \`Foresight.init\` (wasm and bundle fetched in parallel, signature checked, model built) ${step("initMs")} ms, the first \`track\` + \`recommend\` ${step("trackAndRecommendMs")} ms. onnxruntime-web's page script starts at ${step("scriptStartMs", "ort")} ms and imports its module in ${step("importMs", "ort")} ms.`);
const attributed = [...new Set(runs.core.flatMap((r) => r.frames.filter((f) => f.ms > 50).flatMap((f) => f.scripts)).map((x) => x.replace(/ \d+ms$/, "")))];
console.log(`Foresight's long animation frames (> 50 ms) ran: ${attributed.length ? attributed.join("; ") : "none"}.`);
console.log("");
console.log(`Bytes a page downloads for the runtime, gzip -9: Foresight core ${gz(coreFiles)} B, onnxruntime-web ${gz(ortFiles)} B (${(gz(coreFiles) / gz(ortFiles)).toFixed(3)}×).`);
