// The WebGPU scoring benchmark in headless Chromium: bench/pages/gpu.html with and without
// --enable-unsafe-webgpu (SwiftShader's adapter here: a CPU implementation of WebGPU), printed
// as markdown. Started by scripts/bench-gpu.sh:  node bench/gpu.mjs --pkg DIR [--runs 20]
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const pkg = path.resolve(args.pkg);
const runs = Number(args.runs || 20);
const rowsArg = args.rows || "10000,100000,1000000";
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const server = http.createServer((req, res) => {
  const p = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const file = p.startsWith("/pkg-webgpu/") ? path.join(pkg, p.slice(12)) : path.join(here, "pages", p);
  if (p.includes("..") || !fs.existsSync(file)) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" }).end(fs.readFileSync(file));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
const common = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function run(flags, rows) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: [...common, ...flags] });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
    await page.goto(`${base}/gpu.html?runs=${runs}&rows=${rows}`);
    await page.waitForFunction("window.benchResult", null, { timeout: 1_500_000, polling: 250 });
    const r = await page.evaluate("window.benchResult");
    if (r.error) throw new Error(r.error);
    return { ...r, version: browser.version() };
  } finally {
    await browser.close();
  }
}

const f = (x, d = 2) => (x == null ? "—" : x.toFixed(d));
const withGpu = await run(["--enable-unsafe-webgpu"], rowsArg);
const without = await run(["--disable-gpu"], "10000");
server.close();
const out = [];
out.push(`Chromium ${withGpu.version}, headless, \`--enable-unsafe-webgpu\`; top-20 over N items × 64 dims with a bias; median of ${runs} runs after 2 warm-up, each with a new visitor vector; every GPU answer compared with the CPU's.`);
out.push("");
out.push("| items | dtype | matrix MB | CPU-wasm ms | WebGPU ms | WebGPU/CPU | same top-20 | `auto` chose |");
out.push("|---:|---|---:|---:|---:|---:|---|---|");
for (const r of withGpu.rows) {
  out.push(`| ${r.rows.toLocaleString("en")} | ${r.dtype} | ${f(r.bytes / 1e6, 1)} | ${f(r.cpuMs)} | ${f(r.gpuMs)} | ${r.gpuMs == null ? "—" : f(r.gpuMs / r.cpuMs) + "×"} | ${r.same ? "yes" : "**NO**"} | ${r.auto.backend} |`);
}
const a = withGpu.rows[0]?.auto;
out.push("");
out.push(`Adapter: ${a?.adapter ?? "none"}. Calibration's reason at ${withGpu.rows[0]?.rows.toLocaleString("en")} items: "${a?.reason}".`);
out.push(`Without the flag (\`--disable-gpu\`): \`navigator.gpu\` ${without.webgpu ? "present" : "absent"}; the SDK chose **${without.rows[0].auto.backend}**: "${without.rows[0].auto.reason}".`);
console.log(out.join("\n"));
