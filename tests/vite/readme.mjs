// The code of npm/README.md, run as written: the React hook `useRecommendations` and its
// components in a fresh Vite + React app, and the plain `<script>` page with no bundler, in
// headless Chromium on the packed package and the demo's signed bundle.
//
// The code is not copied here: each block is read from the README, where a marker names it
//   <!-- tested: tests/vite/readme.mjs <part> <file> -->
// right before its fence, and written to <file> of the app. The README's placeholders are the
// only substitutions: `publicKey: '…'` (the demo's key) and the item `'sku-1'` (an id of the
// demo's catalog).
//
// Env: FORESIGHT_TARBALL (the packed foresight-sdk-*.tgz), DEMO_MODEL (folder with
// recommender.fsb, catalog.json, demo.pub), SCREENSHOT_DIR.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, copyFileSync, readFileSync, existsSync, rmSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

const tarball = resolve(process.env.FORESIGHT_TARBALL ?? "");
const model = resolve(process.env.DEMO_MODEL ?? "../../target/demo-model");
const shots = resolve(process.env.SCREENSHOT_DIR ?? "../../target/screenshots");
const README = fileURLToPath(new URL("../../npm/README.md", import.meta.url));
const VITE = "8.3.4";
const REACT = "19.3.1";
/** How long the test's server holds the bundle: the page is visibly "still loading" meanwhile. */
const BUNDLE_DELAY_MS = 1500;

/** `"<part> <file>"` → the code of the README block marked for it. */
function readmeBlocks() {
  const text = readFileSync(README, "utf8");
  const blocks = new Map();
  const marker = /<!-- tested: tests\/vite\/readme\.mjs (\S+) (\S+) -->\n(`{3,})[\w-]*\n([\s\S]*?)\n\3[ \t]*(?:\n|$)/g;
  for (const [, part, file, , code] of text.matchAll(marker)) {
    assert.ok(!blocks.has(`${part} ${file}`), `two README blocks are marked "${part} ${file}"`);
    blocks.set(`${part} ${file}`, code);
  }
  // A marker whose fence did not parse would silently test nothing.
  const markers = text.match(/<!-- tested: tests\/vite\/readme\.mjs [^>]*-->/g) ?? [];
  assert.equal(blocks.size, markers.length, `every marker is followed by a fenced block: ${markers.join(", ")}`);
  return { text, blocks };
}

/** The block for `part file`, with each placeholder replaced (each must be there). */
function block(blocks, name, replacements = {}) {
  let code = blocks.get(name);
  assert.ok(code !== undefined, `npm/README.md has no block marked <!-- tested: tests/vite/readme.mjs ${name} -->`);
  for (const [from, to] of Object.entries(replacements)) {
    assert.ok(code.includes(from), `the README block "${name}" no longer contains the placeholder ${from}`);
    code = code.replaceAll(from, to);
  }
  return code;
}

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function serve(dir, t) {
  const port = await freePort();
  const server = spawn("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, String(port)], { stdio: "ignore" });
  t.after(() => server.kill());
  return `http://127.0.0.1:${port}/`;
}

/** A page that records its errors, its SDK warnings, and every state of the lists it shows. */
async function open(url, { lists }) {
  const context = await browser.newContext();
  // The bundle is held back for a while, as on a slow network: the lists first come from the
  // catalog's popularity.
  await context.route(/\/models\/recommender\.fsb$/, async (route) => {
    await new Promise((r) => setTimeout(r, BUNDLE_DELAY_MS));
    await route.continue();
  });
  await context.addInitScript((lists) => {
    window.__states = Object.fromEntries(Object.keys(lists).map((name) => [name, []]));
    const record = () => {
      for (const [name, selector] of Object.entries(lists)) {
        const list = document.querySelector(selector);
        if (!list) continue;
        const state = {
          source: list.dataset.source || null,
          busy: list.getAttribute("aria-busy"),
          ids: [...list.querySelectorAll("li")].map((li) => li.dataset.id),
        };
        const seen = window.__states[name];
        if (JSON.stringify(seen.at(-1)) !== JSON.stringify(state)) seen.push(state);
      }
    };
    new MutationObserver(record).observe(document, { subtree: true, childList: true, attributes: true });
  }, lists);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" || (m.type() === "warning" && /foresight/i.test(m.text()))) errors.push(`console.${m.type()}: ${m.text()}`);
  });
  for (let i = 0; i < 50; i++) {
    try {
      await page.goto(url);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { context, page, errors };
}

/** Waits for `predicate` in the page; false after `timeout` (the assertions after it say what is wrong). */
const until = (page, predicate, arg, timeout = 30_000) => page.waitForFunction(predicate, arg, { timeout }).then(() => true, () => false);
const states = (page, name) => page.evaluate((name) => window.__states[name], name);
const history = (page, handle) => page.evaluate(async (handle) => (await window[handle].history()).map((e) => [e.type, e.itemId]), handle);

let app;
let browser;
let catalog;
let publicKey;
let blocks;
let readme;

before(() => {
  assert.ok(existsSync(tarball), `FORESIGHT_TARBALL must name the npm pack output, got ${tarball}`);
  ({ text: readme, blocks } = readmeBlocks());
  catalog = JSON.parse(readFileSync(join(model, "catalog.json"), "utf8")).items;
  publicKey = readFileSync(join(model, "demo.pub"), "utf8").trim();
  app = mkdtempSync(join(tmpdir(), "foresight-readme-"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module", scripts: { build: "vite build" } }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", `vite@${VITE}`, `react@${REACT}`, `react-dom@${REACT}`, tarball], {
    cwd: app,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
});

before(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

/** The catalog's k most popular ids, as `Foresight.start` answers while the SDK loads. */
const mostPopular = (k) => [...catalog].sort((a, b) => (b.popularity ?? 0) - (a.popularity ?? 0)).slice(0, k).map((i) => i.id);

test("README: the inline snippet is the same everywhere the README shows it", () => {
  const snippets = readme.match(/^\s*window\.foresight = window\.foresight \|\|.*$/gm) ?? [];
  assert.ok(snippets.length >= 2, snippets.join("\n"));
  assert.equal(new Set(snippets.map((s) => s.trim())).size, 1, `the README shows different snippets:\n${snippets.join("\n")}`);
});

test("README: useRecommendations in a Vite + React app", async (t) => {
  const src = join(app, "src");
  mkdirSync(src, { recursive: true });
  mkdirSync(join(app, "public/models"), { recursive: true });
  copyFileSync(join(model, "recommender.fsb"), join(app, "public/models/recommender.fsb"));
  writeFileSync(join(src, "catalog.json"), JSON.stringify(catalog));
  for (const name of [...blocks.keys()].filter((n) => n.startsWith("react "))) {
    const file = join(app, name.slice("react ".length));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, block(blocks, name, name.endsWith("foresight.js") ? { "publicKey: '…'": `publicKey: ${JSON.stringify(publicKey)}` } : {}));
  }
  // The shop's app around the README's code: two product pages seen on earlier pages of the
  // visit, the one shown now, a "for you" list, and buttons that change what is shown.
  const products = catalog.slice(0, 4).map((i) => ({ id: i.id, category: i.category, price: i.price, title: `Product ${i.id}` }));
  writeFileSync(join(app, "index.html"), `<!doctype html><html><body><div id="root"></div><script type="module" src="/src/main.jsx"></script></body></html>`);
  writeFileSync(join(src, "main.jsx"), `
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { foresight, useRecommendations } from "./foresight.js";
import { ProductPage, Recommendations } from "./Recommendations.jsx";

const products = ${JSON.stringify(products)};
foresight.track({ type: "product_view", itemId: products[0].id });
foresight.track({ type: "product_view", itemId: products[1].id });
window.handle = foresight;
// A slow answer: the lists of 7 are held until the test releases them (after newer answers).
const place = foresight.place;
const held = [];
foresight.place = (request) => (request.k === 7 ? new Promise((release) => held.push(release)).then(() => place(request)) : place(request));
window.release = () => {
  const n = held.length;
  for (const release of held.splice(0)) release();
  return n;
};

// A request the SDK refuses once it answers (similarTo without an item).
function Refused() {
  const { items, error, loading } = useRecommendations("similarTo", {});
  return <p id="refused" data-code={error?.code ?? ""} data-loading={String(loading)} data-items={items.length} />;
}

function App() {
  const [at, setAt] = useState(2);
  const [k, setK] = useState(5);
  const [shown, setShown] = useState(true);
  return (
    <>
      <ProductPage product={products[at]} />
      <section id="for-you">{shown && <Recommendations k={k} />}</section>
      <Refused />
      <button id="next" onClick={() => setAt(3)}>next product</button>
      <button id="fewer" onClick={() => setK(3)}>fewer</button>
      <button id="slow" onClick={() => setK(7)}>slow</button>
      <button id="toggle" onClick={() => setShown((s) => !s)}>toggle</button>
    </>
  );
}
createRoot(document.getElementById("root")).render(<StrictMode><App /></StrictMode>);
`);
  execFileSync("npm", ["run", "build"], { cwd: app, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  assert.ok(existsSync(join(app, "dist/index.html")));

  const url = await serve(join(app, "dist"), t);
  const { context, page, errors } = await open(url, { lists: { forYou: "#for-you ol", similar: "ol[data-placement=similarTo]" } });
  t.after(() => context.close());
  const forYou = "#for-you ol";
  const settled = async (selector, source, n) => {
    const ok = await until(
      page,
      ({ selector, source, n }) => {
        const list = document.querySelector(selector);
        return list?.dataset.source === source && list.getAttribute("aria-busy") === "false" && list.querySelectorAll("li").length === n;
      },
      { selector, source, n },
    );
    const list = await page.$eval(selector, (l) => ({ ...l.dataset, busy: l.getAttribute("aria-busy"), items: l.querySelectorAll("li").length })).catch(() => null);
    assert.ok(ok, `${selector}: ${n} items from ${source}, got ${JSON.stringify(list)}; states: ${JSON.stringify(await states(page, "forYou"))}; errors: ${errors}`);
  };
  await until(page, () => document.querySelector("#for-you ol")?.dataset.source === "model");
  assert.deepEqual(errors, []);
  const seen = await states(page, "forYou");
  const shown = seen.filter((s) => s.ids.length > 0);
  assert.deepEqual(shown[0], { source: "popularity", busy: "false", ids: mostPopular(5) }, `first shown from the catalog while loading: ${JSON.stringify(seen)}`);
  assert.equal(shown.at(-1).source, "model", JSON.stringify(seen));
  assert.ok(
    shown.every((s) => s.source === "popularity" || s.source === "model") && shown.findIndex((s) => s.source === "model") > 0,
    `popularity, then the model's list once ready: ${JSON.stringify(seen)}`,
  );
  await settled(forYou, "model", 5);
  assert.deepEqual(
    await history(page, "handle"),
    products.slice(0, 3).map((p) => ["product_view", p.id]),
    "the views tracked while loading, then the product page's effect, in order",
  );
  const similar = await states(page, "similar");
  assert.equal(similar.filter((s) => s.ids.length > 0)[0]?.source, "popularity", JSON.stringify(similar));
  assert.ok(similar.at(-1).ids.length > 0 && !similar.at(-1).ids.includes(products[2].id), JSON.stringify(similar));
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "readme-react.png") });

  // A refused request is `error`, not an exception in render: the rest of the page lives on.
  await until(page, () => document.getElementById("refused").dataset.code !== "");
  assert.deepEqual(
    await page.$eval("#refused", (p) => ({ ...p.dataset })),
    { code: "invalid_option", loading: "false", items: "0" },
  );

  // Other arguments: asked again, the new answer shown.
  await page.click("#fewer");
  await settled(forYou, "model", 3);
  // An answer that arrives after newer arguments were answered is dropped.
  await page.click("#slow");
  assert.ok(await until(page, () => document.querySelector("#for-you ol")?.getAttribute("aria-busy") === "true"), "loading while the held list is asked");
  await page.click("#fewer");
  await settled(forYou, "model", 3);
  assert.equal(await page.evaluate(() => window.release()), 1, "the list of 7 was asked and held");
  await page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
  const list = await page.$eval(forYou, (l) => ({ busy: l.getAttribute("aria-busy"), items: l.querySelectorAll("li").length }));
  assert.deepEqual(list, { busy: "false", items: 3 }, `the stale list of 7 is not shown: ${JSON.stringify(await states(page, "forYou"))}`);
  await page.click("#next");
  const moved = await until(
    page,
    (id) => {
      const list = document.querySelector("ol[data-placement=similarTo]");
      return list?.getAttribute("aria-busy") === "false" && list.querySelectorAll("li").length > 0 && !list.querySelector(`li[data-id="${id}"]`);
    },
    products[3].id,
  );
  assert.ok(moved, `similar to the new product: ${JSON.stringify(await states(page, "similar"))}`);
  assert.equal(await page.textContent("h1"), products[3].title);
  assert.deepEqual((await history(page, "handle")).at(-1), ["product_view", products[3].id]);
  // Unmounted and mounted again.
  await page.click("#toggle");
  await page.waitForFunction(() => !document.querySelector("#for-you ol"));
  await page.click("#toggle");
  await settled(forYou, "model", 3);
  assert.deepEqual(errors, []);
});

test("README: the plain <script> page, no bundler", async (t) => {
  const site = mkdtempSync(join(tmpdir(), "foresight-readme-site-"));
  t.after(() => rmSync(site, { recursive: true, force: true }));
  cpSync(join(app, "node_modules/foresight-sdk/dist"), join(site, "foresight"), { recursive: true });
  mkdirSync(join(site, "models"));
  copyFileSync(join(model, "recommender.fsb"), join(site, "models/recommender.fsb"));
  writeFileSync(join(site, "catalog.json"), JSON.stringify(catalog));
  const viewed = catalog[0].id;
  const html = block(blocks, "script index.html", {
    "publicKey: '…'": `publicKey: ${JSON.stringify(publicKey)}`,
    "'sku-1'": JSON.stringify(viewed),
  });
  writeFileSync(join(site, "index.html"), `<!doctype html>\n<html><head><meta charset="utf-8"><title>shop</title></head><body>\n${html}\n</body></html>\n`);

  const url = await serve(site, t);
  const { context, page, errors } = await open(url, { lists: { recommended: "#recommended" } });
  t.after(() => context.close());
  await until(page, () => document.getElementById("recommended")?.dataset.source === "model");

  // The view was queued by the inline snippet before the module had loaded: the handle that
  // replaced the snippet replayed it.
  assert.equal(await page.evaluate(() => typeof window.foresight.ready?.then), "function", `window.foresight is the handle; errors: ${errors}`);
  assert.deepEqual(await history(page, "foresight"), [["product_view", viewed]], "the view queued by the inline snippet was recorded");
  const seen = await states(page, "recommended");
  const shown = seen.filter((s) => s.ids.length > 0);
  assert.deepEqual(shown[0], { source: "popularity", busy: null, ids: mostPopular(8) }, `first shown from the catalog while loading: ${JSON.stringify(seen)}`);
  assert.equal(shown.at(-1).source, "model", `then the model's list: ${JSON.stringify(seen)}`);
  assert.equal(shown.at(-1).ids.length, 8);
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "readme-script.png") });
  assert.deepEqual(errors, []);
});
