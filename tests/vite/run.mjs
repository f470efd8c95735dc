// The path a shop takes: `npm pack` the SDK, install the tarball into a fresh Vite app created
// here, `vite build`, serve the built files, and use the package in headless Chromium — a few
// lines of storefront code, real signed bundles, real wasm.
//
// Env: FORESIGHT_TARBALL (the packed foresight-sdk-*.tgz), DEMO_MODEL (folder with
// recommender.fsb, intent.fsb, demo.pub), SCREENSHOT_DIR.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, copyFileSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import { createHash } from "node:crypto";
import { chromium } from "playwright-core";

const tarball = resolve(process.env.FORESIGHT_TARBALL ?? "");
const model = resolve(process.env.DEMO_MODEL ?? "../../target/demo-model");
const shots = resolve(process.env.SCREENSHOT_DIR ?? "../../target/screenshots");
const VITE = "8.3.4";

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

test("the packed package works in a fresh Vite app", async (t) => {
  assert.ok(existsSync(tarball), `FORESIGHT_TARBALL must name the npm pack output, got ${tarball}`);
  const app = mkdtempSync(join(tmpdir(), "foresight-vite-"));
  t.after(() => rmSync(app, { recursive: true, force: true }));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module", scripts: { build: "vite build" } }));
  mkdirSync(join(app, "public/models"), { recursive: true });
  for (const f of ["recommender.fsb", "intent.fsb"]) copyFileSync(join(model, f), join(app, "public/models", f));
  // A graph bundle (tract NNEF, a visitor tower), signed with the fixtures' key: it needs the
  // tract module, which the demo's kernel bundles never fetch.
  const fixtures = fileURLToPath(new URL("../fixtures/bundles", import.meta.url));
  copyFileSync(join(fixtures, "session_tower.fsb"), join(app, "public/models/tower.fsb"));
  const fixtureKey = readFileSync(join(fixtures, "test-signing.pub"), "utf8").trim();
  const publicKey = readFileSync(join(model, "demo.pub"), "utf8").trim();
  const firstItems = JSON.parse(readFileSync(join(model, "catalog.json"), "utf8")).items.slice(0, 3).map((i) => i.id);
  writeFileSync(join(app, "index.html"), `<!doctype html><html><body><ol id="recs"></ol><p id="state">loading</p><script type="module" src="/main.js"></script></body></html>`);
  // The storefront code: what the README promises in about five lines (`?graph`: a graph bundle).
  writeFileSync(join(app, "main.js"), `
import { Foresight, ForesightError } from "foresight-sdk";
if (location.search === "?leave" || location.search === "?back") {
  // Worker mode: a track() not awaited, then the visitor follows a link at once.
  const fs = await Foresight.init({ worker: true, bundleUrls: ["/models/recommender.fsb"], publicKey: ${JSON.stringify(publicKey)}, storageKey: "leave-test" });
  if (location.search === "?leave") {
    fs.track({ type: "product_view", itemId: ${JSON.stringify(firstItems[0])} });
    location.href = "/?back";
  } else {
    document.getElementById("state").textContent = JSON.stringify({ history: (await fs.history()).map((e) => [e.type, e.itemId]), journal: localStorage.getItem("leave-test:journal") });
  }
} else if (location.search === "?ga4") {
  // The shop's GA4 tags push to the dataLayer; the storefront code never calls track().
  window.dataLayer = window.dataLayer || [];
  const fs = await Foresight.init({ bundleUrls: ["/models/recommender.fsb", "/models/intent.fsb"], publicKey: ${JSON.stringify(publicKey)}, sources: ["ga4"], storageKey: "ga4-test" });
  const before = await fs.recommend({ k: 5 });
  function gtag() { window.dataLayer.push(arguments); }
  window.dataLayer.push({ event: "view_item", ecommerce: { items: [{ item_id: ${JSON.stringify(firstItems[0])}, price: 10 }] } });
  gtag("event", "view_item", { items: [{ item_id: ${JSON.stringify(firstItems[1])} }] });
  window.dataLayer.push({ event: "add_to_cart", ecommerce: { items: [{ item_id: ${JSON.stringify(firstItems[2])}, quantity: 1 }] } });
  let status = await fs.status();
  for (let i = 0; i < 100 && status.events < 3; i++) { await new Promise((r) => setTimeout(r, 20)); status = await fs.status(); }
  const after = await fs.recommend({ k: 5 });
  document.getElementById("state").textContent = JSON.stringify({ before: before.source, after: after.source, history: (await fs.history()).map((e) => [e.type, e.itemId]) });
} else if (location.search === "?cache") {
  // The bundle the test's route serves (a new version, a tampered one, or none: offline).
  const fs = await Foresight.init({ bundleUrl: "/models/live.fsb", publicKey: ${JSON.stringify(fixtureKey)}, storageKey: "cache-test" });
  window.fs = fs;
  for (const itemId of ["sku-00003", "sku-00017"]) await fs.track({ type: "product_view", itemId });
  const { items, source } = await fs.recommend({ k: 5 });
  document.getElementById("state").textContent = JSON.stringify({ source, items: items.map((r) => r.itemId) });
} else if (location.search.startsWith("?tower-")) {
  // A visitor tower scored on the path the query names ("gpu" or "cpu").
  const scoring = location.search.slice("?tower-".length);
  const fs = await Foresight.init({ bundleUrl: "/models/tower.fsb", publicKey: ${JSON.stringify(fixtureKey)}, scoring, storageKey: "tower-" + scoring });
  let choice = await fs.scoring();
  for (let i = 0; i < 400 && !choice.ready; i++) { await new Promise((r) => setTimeout(r, 25)); choice = await fs.scoring(); }
  for (const itemId of ["sku-00003", "sku-00017", "sku-00042"]) await fs.track({ type: "product_view", itemId });
  const { items, source } = await fs.recommend({ k: 10 });
  const adapter = Boolean(navigator.gpu && (await navigator.gpu.requestAdapter()));
  document.getElementById("state").textContent = JSON.stringify({ choice, source, adapter, after: await fs.scoring(), items: items.map((r) => [r.itemId, r.score]) });
} else if (location.search === "?graph") {
  const fs = await Foresight.init({ bundleUrl: "/models/tower.fsb", publicKey: ${JSON.stringify(fixtureKey)} });
  for (const itemId of ["sku-00003", "sku-00017"]) await fs.track({ type: "product_view", itemId });
  const { source } = await fs.recommend({ k: 5 });
  document.getElementById("state").textContent = JSON.stringify({ source, status: (await fs.status()).recommender });
} else {
const fs = await Foresight.init({ bundleUrls: ["/models/recommender.fsb", "/models/intent.fsb"], publicKey: ${JSON.stringify(publicKey)} });
for (const itemId of ${JSON.stringify(firstItems)}) await fs.track({ type: "product_view", itemId });
const { items, source } = await fs.recommend({ k: 5 });
document.getElementById("recs").innerHTML = items.map((r) => \`<li data-id="\${r.itemId}">\${r.itemId}</li>\`).join("");
let code = null;
try { await fs.track({ type: "product_view", itemId: "" }); } catch (e) { code = e instanceof ForesightError ? e.code : "not a ForesightError"; }
const intent = await fs.intent();
document.getElementById("state").textContent = JSON.stringify({ source, code, probability: intent.probability });
}
`);
  const npm = (...args) => execFileSync("npm", args, { cwd: app, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  npm("install", "--no-audit", "--no-fund", `vite@${VITE}`, tarball);
  npm("run", "build");
  assert.ok(existsSync(join(app, "dist/index.html")));

  const port = await freePort();
  const server = spawn("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", join(app, "dist"), String(port)], { stdio: "ignore" });
  t.after(() => server.kill());
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => requests.push(r.url()));
  for (let i = 0; i < 50; i++) {
    try { await page.goto(`http://127.0.0.1:${port}/`); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  await page.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 60_000 });
  const state = JSON.parse(await page.textContent("#state"));
  assert.deepEqual(errors, []);
  assert.equal(state.source, "model", "the signed bundle loaded and the model answered");
  assert.equal(state.code, "invalid_event");
  assert.ok(state.probability >= 0 && state.probability <= 1);
  const ids = await page.$$eval("#recs li", (lis) => lis.map((li) => li.dataset.id));
  assert.equal(ids.length, 5);
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "vite-app.png") });
  const tractRequests = (list) => list.filter((u) => /foresight_tract/.test(u));
  assert.deepEqual(tractRequests(requests), [], "kernel bundles (the demo's) never fetch the tract module");
  assert.deepEqual(requests.filter((u) => /foresight_gpu/.test(u)), [], "kernel bundles never fetch the WebGPU module");

  // A graph bundle: the tract module comes from where Vite put it, once.
  const graph = async (block) => {
    const p = await browser.newPage();
    const seen = [];
    p.on("request", (r) => seen.push(r.url()));
    if (block) await p.route(/foresight_tract/, (route) => route.abort("blockedbyclient"));
    await p.goto(`http://127.0.0.1:${port}/?graph`);
    await p.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 60_000 });
    const result = JSON.parse(await p.textContent("#state"));
    await p.close();
    return { result, seen: tractRequests(seen) };
  };
  const loaded = await graph(false);
  assert.equal(loaded.result.source, "model", JSON.stringify(loaded.result));
  assert.ok(loaded.seen.some((u) => u.endsWith(".wasm")), `the tract wasm was fetched: ${loaded.seen}`);
  assert.ok(loaded.seen.some((u) => u.endsWith(".js")), `the tract JS was fetched: ${loaded.seen}`);
  // Blocked (offline, an extension): init still resolves, the status names why, popularity serves.
  const blocked = await graph(true);
  assert.equal(blocked.result.source, "popularity", JSON.stringify(blocked.result));
  assert.equal(blocked.result.status.code, "model_runtime_unavailable", JSON.stringify(blocked.result));
  assert.match(blocked.result.status.error, /tract module could not be loaded/);

  // A page whose only tracking is GA4's dataLayer becomes personalized from it.
  const ga4 = await browser.newPage();
  const ga4Errors = [];
  ga4.on("pageerror", (e) => ga4Errors.push(String(e)));
  await ga4.goto(`http://127.0.0.1:${port}/?ga4`);
  await ga4.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 60_000 });
  const fromGa4 = JSON.parse(await ga4.textContent("#state"));
  await ga4.close();
  assert.deepEqual(ga4Errors, []);
  assert.deepEqual(fromGa4.history, [["product_view", firstItems[0]], ["product_view", firstItems[1]], ["add_to_cart", firstItems[2]]], JSON.stringify(fromGa4));
  assert.deepEqual([fromGa4.before, fromGa4.after], ["popularity", "model"], `personalized from the dataLayer alone: ${JSON.stringify(fromGa4)}`);

  // Worker mode: an event tracked right before the page is left is not lost.
  // The Worker is made slow (a phone under load): it holds the track message for a second, so
  // the page has gone before the Worker's write could reach its localStorage.
  const visitor = await browser.newContext();
  await visitor.route(/\/assets\/worker[^/]*\.js$/, async (route) => {
    const response = await route.fetch();
    const slow = `{ const add = self.addEventListener.bind(self); self.addEventListener = (type, f, o) => add(type, type === "message" ? (e) => { if (e.data?.method === "track") { const t = Date.now(); while (Date.now() - t < 1000); } return f(e); } : f, o); }\n`;
    await route.fulfill({ response, body: slow + (await response.text()) });
  });
  const leave = await visitor.newPage();
  const workers = [];
  leave.on("worker", (w) => workers.push(w.url()));
  await leave.goto(`http://127.0.0.1:${port}/?leave`);
  await leave.waitForURL(/\?back$/, { timeout: 60_000 });
  await leave.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 60_000 });
  const back = JSON.parse(await leave.textContent("#state"));
  await visitor.close();
  assert.ok(workers.some((u) => /\/assets\/worker[^/]*\.js$/.test(u)), `the slowed worker script ran: ${workers}`);
  assert.deepEqual(back, { history: [["product_view", firstItems[0]]], journal: null }, "the event tracked just before leaving is in the next page's history");

  await bundleCache(browser, port);
  await webgpu(port);
});

/**
 * WebGPU scoring, a module of its own: in a Chromium with a WebGPU adapter (SwiftShader, as the
 * SDK's wasm GPU tests use), a visitor tower with `scoring: "gpu"` fetches it from where Vite put
 * it and recommends exactly what `scoring: "cpu"` does, which never fetches it.
 */
async function webgpu(port) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const visit = async (scoring) => {
      const page = await browser.newPage();
      const seen = [];
      const errors = [];
      page.on("request", (r) => seen.push(r.url()));
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}/?tower-${scoring}`);
      await page.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 120_000 });
      const result = JSON.parse(await page.textContent("#state"));
      await page.close();
      assert.deepEqual(errors, []);
      return { ...result, fetched: seen.filter((u) => /foresight_gpu/.test(u)) };
    };
    const gpu = await visit("gpu");
    const cpu = await visit("cpu");
    assert.ok(gpu.adapter, "this Chromium has a WebGPU adapter (--enable-unsafe-webgpu)");
    assert.deepEqual([gpu.choice.backend, gpu.after.backend], ["gpu", "gpu"], JSON.stringify(gpu));
    assert.ok(gpu.fetched.some((u) => u.endsWith(".wasm")) && gpu.fetched.some((u) => u.endsWith(".js")), `the WebGPU module was fetched: ${gpu.fetched}`);
    assert.deepEqual(cpu.fetched, [], "scoring: 'cpu' never fetches the WebGPU module");
    assert.equal(cpu.choice.backend, "cpu");
    assert.equal(gpu.source, "model");
    assert.equal(gpu.items.length, 10);
    assert.deepEqual(gpu.items, cpu.items, "the GPU path recommends exactly what the CPU path does");
  } finally {
    await browser.close();
  }
}

/**
 * The bundle cache across visits of one visitor (one browser context): the route below plays
 * the shop's server, serving a version of the bundle with its ETag, a tampered update, or
 * nothing (offline).
 */
async function bundleCache(browser, port) {
  const fixtures = fileURLToPath(new URL("../fixtures/bundles", import.meta.url));
  const v1 = readFileSync(join(fixtures, "session_gru.fsb"));
  const v2 = readFileSync(join(fixtures, "session_tower.fsb"));
  const tampered = Buffer.from(v2);
  tampered[tampered.length - 100] ^= 0x5a;
  const hash = (b) => createHash("sha256").update(b).digest("hex");
  const context = await browser.newContext();
  let serve = "v1";
  const asked = [];
  await context.route(/\/models\/live\.fsb$/, (route) => {
    const etag = route.request().headers()["if-none-match"] ?? null;
    asked.push({ serve, etag });
    if (serve === "offline") return route.abort("internetdisconnected");
    const [body, tag] = { v1: [v1, '"v1"'], tampered: [tampered, '"v2"'], v2: [v2, '"v3"'] }[serve];
    if (etag === tag) return route.fulfill({ status: 304, headers: { etag: tag } });
    return route.fulfill({ status: 200, body, headers: { etag: tag, "content-type": "application/octet-stream" } });
  });
  const visit = async (mode) => {
    serve = mode;
    asked.length = 0;
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/?cache`);
    await page.waitForFunction(() => document.getElementById("state").textContent !== "loading", null, { timeout: 60_000 });
    const first = JSON.parse(await page.textContent("#state"));
    // Until the background work (caching a fresh download, or revalidating) is done.
    let status;
    for (let i = 0; i < 300; i++) {
      status = await page.evaluate(() => window.fs.status());
      const b = status.bundles[0];
      if (!["pending", "checking"].includes(b.revalidation.state) && (b.source !== "network" || b.cached)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const again = await page.evaluate(() => window.fs.recommend({ k: 5 }));
    await page.close();
    assert.deepEqual(errors, [], mode);
    return { first, status, bundle: status.bundles[0], again: again.items.map((r) => r.itemId), asked: [...asked] };
  };

  const fresh = await visit("v1");
  assert.equal(fresh.first.source, "model", JSON.stringify(fresh));
  assert.deepEqual([fresh.bundle.source, fresh.bundle.revalidation.state, fresh.bundle.cached], ["network", "fresh", true], JSON.stringify(fresh.bundle));
  assert.equal(fresh.bundle.sha256, hash(v1));

  const offline = await visit("offline");
  assert.equal(offline.first.source, "model", `an offline revisit recommends from the cached bundle: ${JSON.stringify(offline)}`);
  assert.deepEqual([offline.bundle.source, offline.bundle.sha256, offline.bundle.revalidation.state], ["cache", hash(v1), "unreachable"], JSON.stringify(offline.bundle));

  const unchanged = await visit("v1");
  assert.deepEqual(unchanged.asked, [{ serve: "v1", etag: '"v1"' }], "one conditional request, after the page was ready");
  assert.deepEqual([unchanged.bundle.source, unchanged.bundle.revalidation.state], ["cache", "not_modified"], JSON.stringify(unchanged.bundle));

  const refused = await visit("tampered");
  assert.equal(refused.bundle.revalidation.state, "refused", JSON.stringify(refused.bundle));
  assert.match(refused.bundle.revalidation.code, /^bundle_/);
  assert.equal(refused.bundle.revalidation.sha256, hash(tampered));
  assert.deepEqual([refused.bundle.sha256, refused.bundle.cached, refused.status.recommender.state], [hash(v1), true, "ready"], "the old model stays");
  assert.deepEqual(refused.again, refused.first.items, "the refused update changed nothing");
  const afterRefusal = await visit("offline");
  assert.deepEqual([afterRefusal.first.source, afterRefusal.bundle.sha256], ["model", hash(v1)], "the cache still holds the last good version");

  const updated = await visit("v2");
  assert.equal(updated.first.source, "model");
  assert.deepEqual([updated.bundle.revalidation.state, updated.bundle.sha256, updated.bundle.cached], ["updated", hash(v2), true], JSON.stringify(updated.bundle));
  assert.equal(updated.status.recommender.state, "ready");
  const next = await visit("offline");
  assert.deepEqual([next.first.source, next.bundle.source, next.bundle.sha256], ["model", "cache", hash(v2)], "the next visit starts from the new version, offline too");
  await context.close();
}
