// End-to-end tests of the demo storefront: a real Chromium against the served site and a live
// collector. Run by `node --test e2e.mjs` (see README.md beside this file).
//
// Environment:
//   DEMO_URL        the served site (default http://127.0.0.1:8080/)
//   COLLECTOR_URL   the collector's origin (default http://127.0.0.1:8787)
//   COLLECTOR_DB    the collector's SQLite file; without it the stored-report counts are skipped
//   FORESIGHT_EXPORT  the foresight-export binary (default: target/release, else target/debug)
//   SCREENSHOT_DIR  where screenshots go (default target/screenshots under the repository)
//   CHROMIUM        the browser (default /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { go, rail, settled } from './page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const DEMO_URL = new URL(process.env.DEMO_URL || 'http://127.0.0.1:8080/').href;
const COLLECTOR_URL = (process.env.COLLECTOR_URL || 'http://127.0.0.1:8787').replace(/\/+$/, '');
const COLLECTOR_DB = process.env.COLLECTOR_DB || '';
const FORESIGHT_EXPORT =
  process.env.FORESIGHT_EXPORT ||
  [path.join(repo, 'target/release/foresight-export'), path.join(repo, 'target/debug/foresight-export')].find((p) => existsSync(p)) ||
  'foresight-export';
const SCREENSHOT_DIR = path.resolve(process.env.SCREENSHOT_DIR || path.join(repo, 'target/screenshots'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SITE = 'demo-shop';
/**
 * The "shift" visitor views films of this genre: six of its well-known but not top titles (the
 * most rated films of every genre are blockbusters whose neighbours are other blockbusters).
 */
const GENRE = process.env.DEMO_GENRE || 'Animation';

const run = promisify(execFile);
let browser;
let films;

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const r = await fetch(new URL('data/films.json', DEMO_URL));
  assert.equal(r.status, 200, `${DEMO_URL}data/films.json: is the demo served? (scripts/demo.sh)`);
  films = (await r.json()).items;
  assert.ok(films.length > 1000, 'the MovieLens catalog');
});

after(async () => {
  await browser?.close();
});

// ---- helpers -------------------------------------------------------------------------------

const byId = (id) => films.find((f) => f.id === id);

/** A fresh visitor: new context (empty storage and cache), console errors collected. */
async function visitor({ query = '', hash = '#/', initScript, route, viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 }, acceptDownloads: true });
  if (initScript) await context.addInitScript(initScript);
  if (route) for (const [pattern, handler] of route) await context.route(pattern, handler);
  // Everything that goes to the collector, from the page or a Worker, fetch or beacon.
  const posts = [];
  const requests = [];
  context.on('request', (req) => {
    requests.push(req.url());
    if (req.url().startsWith(COLLECTOR_URL) && req.method() === 'POST') posts.push({ url: req.url(), body: req.postData() ?? '' });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await open(page, query, hash);
  return { context, page, posts, problems, requests };
}

async function open(page, query = '', hash = '#/') {
  await page.goto(new URL(`${query}${hash}`, DEMO_URL).href);
  const ready = await page.evaluate(() => window.__demoReady);
  assert.equal(ready.worker, new URLSearchParams(query).get('worker') === '1', 'the SDK mode asked for');
  await settled(page);
  return ready;
}

const ids = (r) => r.items.map((i) => i.itemId);
const genreShare = (r, genre) => r.items.filter((i) => byId(i.itemId)?.genres.includes(genre)).length / Math.max(1, r.items.length);

async function storedReports() {
  if (!COLLECTOR_DB) return null;
  const { stdout } = await run(FORESIGHT_EXPORT, ['aggregates', '--db', `sqlite:${COLLECTOR_DB}`, '--site', SITE, '--format', 'json']);
  return JSON.parse(stdout).reports;
}

/** Polls the collector's store until `want(count)` or the time is up; returns the last count. */
async function waitForStored(want, ms = 5000) {
  const end = Date.now() + ms;
  let n = await storedReports();
  while (n !== null && !want(n) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    n = await storedReports();
  }
  return n;
}

async function shot(page, name, options = {}) {
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, ...options });
  return file;
}

async function privacyPanel(page) {
  await go(page, '#/privacy');
  await page.waitForSelector('[data-testid=privacy][data-state=ready]');
}

/** Clicks a privacy-panel control and waits until the panel has refreshed. */
async function panelAction(page, selector) {
  await page.click(selector);
  await page.waitForSelector('[data-testid=privacy][data-state=ready]');
}

/** Leaves the page (pagehide: the SDK's beacon moment), then gives requests a moment. */
async function leave(page) {
  await page.goto('about:blank');
  await new Promise((r) => setTimeout(r, 500));
}

/** The most rated films of a genre. */
function topOf(genre, n) {
  return films.filter((f) => f.genres.includes(genre)).sort((a, b) => b.popularity - a.popularity).slice(0, n);
}

// ---- tests ---------------------------------------------------------------------------------

/** The flows that differ between the SDK in the page and in a Worker run in both. */
const MODES = [
  { label: '', query: '' },
  { label: ' [Worker mode]', query: '?worker=1' },
];

test('a fresh visitor sees the shop: popular lists, genre pages, search; screenshots', async () => {
  const { context, page, problems, requests } = await visitor();
  try {
    const ready = await page.evaluate(() => window.__demoReady);
    assert.equal(ready.state, 'ready', `the SDK started (${ready.error ?? ''})`);
    // The demo's bundles (gru recommender, linear intent model) run on the core's own kernels:
    // both models are ready and the tract module is never downloaded.
    const status = await page.evaluate(() => window.__foresight.status());
    assert.equal(status.recommender.state, 'ready', JSON.stringify(status.recommender));
    assert.equal(status.intent.state, 'ready', JSON.stringify(status.intent));
    assert.deepEqual(requests.filter((u) => u.includes('foresight_tract')), [], 'the tract module was fetched');
    assert.ok(await page.evaluate(() => window.__foresight !== null));
    const loaded = Number(await page.getAttribute('[data-testid=load-progress]', 'data-loaded'));
    assert.ok(loaded > 0, `the progress bar followed the bundle downloads (${loaded} bytes)`);
    const forYou = await rail(page, 'rec-for-you');
    assert.equal(forYou.source, 'popularity', 'no history yet: popularity');
    assert.equal(forYou.items.length, 8);
    const popular = await rail(page, 'rec-popular');
    assert.deepEqual(ids(popular), [...films].sort((a, b) => b.popularity - a.popularity).slice(0, 8).map((f) => f.id));
    assert.ok(await page.isHidden('[data-testid=nudge]'), 'no nudge before any intent');
    await shot(page, 'home-fresh');

    await page.click(`[data-testid=genre-nav] a[data-genre="${GENRE}"]`);
    await settled(page);
    const shown = await page.$$eval('[data-testid=genre-grid] [data-item-id]', (ts) => ts.map((t) => t.dataset.itemId));
    assert.deepEqual(shown.slice(0, 5), topOf(GENRE, 5).map((f) => f.id));

    await page.fill('[data-testid=search-input]', 'star wars');
    await page.press('[data-testid=search-input]', 'Enter');
    await page.waitForFunction(() => location.hash.startsWith('#/search'));
    await settled(page);
    const results = await page.$$eval('[data-testid=search-results] [data-item-id]', (ts) => ts.map((t) => t.dataset.itemId));
    assert.ok(results.includes('50'), 'Star Wars (id 50) is found');
    const history = await page.evaluate(() => window.__foresight.history());
    const types = history.map((e) => e.type ?? e.event?.type);
    assert.ok(types.includes('search') && types.includes('page_view'), `tracked: ${types}`);
    // Narrow screens.
    await page.setViewportSize({ width: 390, height: 844 });
    await go(page, '#/film/50');
    await shot(page, 'film-mobile');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling on a phone');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('viewing films of one genre shifts "Recommended for you" toward it, away from a fresh visitor', async () => {
  const fresh = await visitor();
  const shifted = await visitor();
  try {
    const freshList = await rail(fresh.page, 'rec-for-you');
    const { page } = shifted;
    // One film reached by clicking through the genre page, the rest by address.
    const viewed = topOf(GENRE, 16).slice(10);
    await page.click(`[data-testid=genre-nav] a[data-genre="${GENRE}"]`);
    await settled(page);
    await page.click(`[data-testid=genre-grid] [data-item-id="${viewed[0].id}"] a.tile-link`);
    await page.waitForFunction((id) => location.hash === `#/film/${id}`, viewed[0].id);
    await settled(page);
    for (const f of viewed.slice(1)) await go(page, `#/film/${f.id}`);

    const similar = await rail(page, 'rec-similar');
    assert.equal(similar.source, 'model');
    assert.ok(!ids(similar).includes(viewed.at(-1).id), '"You may also like" leaves out the film itself');

    await go(page, '#/');
    const mine = await rail(page, 'rec-for-you');
    assert.equal(mine.source, 'model', 'personal recommendations from the on-device model');
    assert.notDeepEqual(ids(mine), ids(freshList), 'differs from what a fresh visitor sees');
    const before = genreShare(freshList, GENRE);
    const afterShare = genreShare(mine, GENRE);
    console.log(`# ${GENRE} share of "Recommended for you": fresh visitor ${before.toFixed(2)}, after ${viewed.length} ${GENRE} films ${afterShare.toFixed(2)}`);
    assert.ok(afterShare > before, `${GENRE} share rose (${before} → ${afterShare})`);
    assert.ok(afterShare >= 0.5, `at least half are ${GENRE} films (${afterShare})`);
    // Every tile says why, naming a film the visitor viewed.
    const viewedTitles = viewed.map((f) => f.title);
    for (const item of mine.items) {
      assert.match(item.title, /^because you viewed /);
      assert.ok(viewedTitles.some((t) => item.title.includes(t)), `"${item.title}" names a viewed film`);
    }
    // The reason is visible on hover, too.
    const first = page.locator('[data-testid=rec-for-you] [data-item-id]').first();
    await first.hover();
    await page.waitForFunction(() => {
      const b = document.querySelector('[data-testid=rec-for-you] [data-item-id] [data-testid=because]');
      return b && getComputedStyle(b).opacity === '1';
    });
    await shot(page, 'home-personalized');
    // A click on a recommendation is tracked with its placement.
    const clicked = mine.items[0].itemId;
    await first.locator('a.tile-link').click();
    await page.waitForFunction((id) => location.hash === `#/film/${id}`, clicked);
    await settled(page);
    const history = await page.evaluate(() => window.__foresight.history());
    const flat = history.map((e) => e.event ?? e);
    assert.ok(flat.some((e) => e.type === 'click' && e.itemId === clicked && e.placement === 'for_you'), 'click with placement');
    const pv = flat.find((e) => e.type === 'product_view' && e.itemId === clicked);
    assert.ok(pv && pv.category === byId(clicked).genres[0] && pv.price === byId(clicked).price, 'product_view with category and price');
    assert.deepEqual([...fresh.problems, ...shifted.problems], []);
  } finally {
    await fresh.context.close();
    await shifted.context.close();
  }
});

for (const mode of MODES) {
  test(`cart items are left out of recommendations; a reload keeps the history; erase goes back to popular${mode.label}`, async () => {
    const { context, page, problems } = await visitor({ query: mode.query });
    try {
      for (const f of topOf('Sci-Fi', 4)) await go(page, `#/film/${f.id}`);
      await go(page, '#/');
      const before = await rail(page, 'rec-for-you');
      assert.equal(before.source, 'model');
      const target = before.items[0].itemId;
      // Quick "+ Cart" on the top recommendation: no view of it, only add_to_cart.
      await page.click(`[data-testid=rec-for-you] [data-item-id="${target}"] [data-testid=quick-add]`);
      await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '1');
      await settled(page);
      const afterAdd = await rail(page, 'rec-for-you');
      assert.ok(!ids(afterAdd).includes(target), 'the cart item left "Recommended for you"');
      const sdkRecs = await page.evaluate(() => window.__foresight.recommend({ k: 50 }));
      assert.ok(!sdkRecs.items.some((r) => r.itemId === target), 'the SDK itself leaves cart items out');
      // Also from a film page's "You may also like", after an add there.
      const other = topOf('Sci-Fi', 6)[5].id;
      await go(page, `#/film/${other}`);
      await page.click('[data-testid=add-to-cart]');
      await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '2');
      await page.waitForFunction(() => document.querySelector('[data-testid=rec-similar]')?.dataset.state === 'ready');
      await settled(page);
      const similar = await rail(page, 'rec-similar');
      assert.ok(!ids(similar).includes(target) && !ids(similar).includes(other), 'no cart item in "You may also like"');
      const adds = (await page.evaluate(() => window.__foresight.history())).map((e) => e.event ?? e).filter((e) => e.type === 'add_to_cart');
      assert.deepEqual(adds.map((e) => e.itemId), [target, other]);
      assert.ok(adds.every((e) => e.quantity === 1 && typeof e.price === 'number' && e.category), 'add_to_cart with price and category');

      // Reload: the history (the SDK's) and the cart (the shop's) are still there.
      await go(page, '#/');
      const beforeReload = await rail(page, 'rec-for-you');
      const historyBefore = await page.evaluate(() => window.__foresight.history());
      await page.reload();
      await page.evaluate(() => window.__demoReady);
      await settled(page);
      const historyAfter = await page.evaluate(() => window.__foresight.history());
      assert.deepEqual(historyAfter.slice(0, historyBefore.length), historyBefore, 'history kept across the reload');
      const afterReload = await rail(page, 'rec-for-you');
      assert.equal(afterReload.source, 'model');
      assert.deepEqual(ids(afterReload), ids(beforeReload), 'same recommendations after the reload');
      assert.equal(await page.textContent('[data-testid=cart-count]'), '2');

      // Remove one from the cart page: a remove_from_cart event.
      await go(page, '#/cart');
      await page.click(`[data-testid=cart-line][data-item-id="${other}"] [data-testid=remove-from-cart]`);
      await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '1');
      await settled(page);
      const removes = (await page.evaluate(() => window.__foresight.history())).map((e) => e.event ?? e).filter((e) => e.type === 'remove_from_cart');
      assert.deepEqual(removes.map((e) => [e.itemId, e.quantity]), [[other, 1]]);

      // Erase everything: history and cart gone, back to what everyone sees.
      await privacyPanel(page);
      await panelAction(page, '[data-testid=erase]');
      assert.deepEqual(await page.evaluate(() => window.__foresight.history()), []);
      assert.equal(await page.textContent('[data-testid=cart-count]'), '0');
      assert.equal(await page.evaluate((k) => localStorage.getItem(k), 'demo-shop.cart'), null);
      await go(page, '#/');
      const erased = await rail(page, 'rec-for-you');
      assert.equal(erased.source, 'popularity', 'back to popular');
      assert.deepEqual(ids(erased), [...films].sort((a, b) => b.popularity - a.popularity).slice(0, 8).map((f) => f.id));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

test('checkout: purchase event, thank-you page, cart emptied', async () => {
  const { context, page, problems } = await visitor();
  try {
    await go(page, '#/film/50');
    await page.click('[data-testid=add-to-cart]');
    await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '1');
    await go(page, '#/film/181');
    await page.click('[data-testid=add-to-cart]');
    await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '2');
    await go(page, '#/cart');
    await page.click('[data-testid=checkout]');
    await page.waitForSelector('[data-testid=checkout-form]');
    await page.click('[data-testid=place-order]');
    await page.waitForSelector('[data-testid=thanks]');
    await settled(page);
    const purchase = (await page.evaluate(() => window.__foresight.history())).map((e) => e.event ?? e).find((e) => e.type === 'purchase');
    assert.ok(purchase, 'a purchase event');
    assert.deepEqual(purchase.items.map((i) => i.itemId).sort(), ['181', '50']);
    assert.equal(purchase.total, Math.round((byId('50').price + byId('181').price) * 100) / 100);
    assert.equal(await page.textContent('[data-testid=cart-count]'), '0');
    const next = await rail(page, 'rec-for-you');
    assert.ok(!ids(next).includes('50') && !ids(next).includes('181'), 'bought films are not recommended again');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

for (const mode of MODES) {
  test(`consent denied: the collector receives nothing${mode.label}`, async () => {
    const storedBefore = await storedReports();
    const { context, page, posts, problems } = await visitor({ query: mode.query });
    try {
      await privacyPanel(page);
      await panelAction(page, '[data-testid=consent-denied]');
      assert.equal(await page.getAttribute('[data-testid=privacy-sending]', 'data-sending'), 'false');
      for (const f of topOf('Drama', 4)) await go(page, `#/film/${f.id}`);
      await privacyPanel(page);
      await panelAction(page, '[data-testid=flush]');
      const result = JSON.parse(await page.textContent('[data-testid=flush-result]'));
      assert.equal(result.sent, 0, 'nothing sent');
      assert.deepEqual(JSON.parse(await page.textContent('[data-testid=privacy-pending]')), []);
      assert.deepEqual(JSON.parse(await page.textContent('[data-testid=privacy-sent]')), []);
      assert.equal(Number(await page.getAttribute('[data-testid=epsilon]', 'data-spent')), 0);
      await leave(page);
      assert.deepEqual(posts, [], 'no request to the collector');
      const storedAfter = await storedReports();
      if (storedBefore === null) console.log('# COLLECTOR_DB not set: the stored count is not checked');
      else assert.equal(storedAfter, storedBefore, 'the collector stored nothing new');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

for (const mode of MODES) {
  test(`Global Privacy Control on: nothing is sent even with consent${mode.label}`, async () => {
    const storedBefore = await storedReports();
    const { context, page, posts, problems } = await visitor({
      query: mode.query,
      initScript: () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true }),
    });
    try {
      await privacyPanel(page);
      await panelAction(page, '[data-testid=consent-granted]');
      assert.equal(await page.textContent('[data-testid=privacy-gpc]'), 'on — nothing is sent');
      assert.equal(await page.getAttribute('[data-testid=privacy-sending]', 'data-sending'), 'false');
      for (const f of topOf('Comedy', 4)) await go(page, `#/film/${f.id}`);
      await privacyPanel(page);
      await panelAction(page, '[data-testid=flush]');
      assert.equal(JSON.parse(await page.textContent('[data-testid=flush-result]')).sent, 0);
      await leave(page);
      assert.deepEqual(posts, [], 'no request to the collector');
      const storedAfter = await storedReports();
      if (storedBefore !== null) assert.equal(storedAfter, storedBefore, 'the collector stored nothing new');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

for (const mode of MODES) {
  test(`consent given: the collector receives reports, exactly those shown, with no item id or sequence${mode.label}`, async () => {
    const storedBefore = await storedReports();
    const { context, page, posts, problems } = await visitor({ query: mode.query });
    try {
      await privacyPanel(page);
      await panelAction(page, '[data-testid=consent-granted]');
      assert.equal(await page.getAttribute('[data-testid=privacy-sending]', 'data-sending'), 'true');
      const viewed = topOf('Thriller', 5);
      for (const f of viewed) await go(page, `#/film/${f.id}`);
      await go(page, '#/search?q=alien');
      await privacyPanel(page);
      await panelAction(page, '[data-testid=flush]');
      const result = JSON.parse(await page.textContent('[data-testid=flush-result]'));
      assert.ok(result.sent >= 1 && result.outcome === 'delivered', `sent: ${JSON.stringify(result)}`);
      assert.ok(posts.length >= 1, 'a POST to the collector');
      const reports = posts.flatMap((p) => {
        const body = JSON.parse(p.body);
        return Array.isArray(body) ? body : body.reports ?? [body];
      });
      assert.ok(reports.length >= 1);

      // What left is exactly what the privacy panel shows as sent.
      const shown = JSON.parse(await page.textContent('[data-testid=privacy-sent]'));
      const sent = await page.evaluate(() => window.__foresight.privacy().then((p) => p.sent));
      assert.deepEqual(shown, sent, 'the panel shows privacy().sent as is');
      for (const r of reports) {
        assert.deepEqual(shown.find((s) => s.idempotencyKey === r.idempotencyKey), r, 'the panel shows the exact payload');
      }
      assert.ok(Number(await page.getAttribute('[data-testid=epsilon]', 'data-spent')) > 0, 'ε spent today is shown');

      // No item id, title, query or sequence in anything that left.
      const secrets = new Set([...viewed.flatMap((f) => [f.id, f.title]), 'alien']);
      const allowedKeys = new Set(['version', 'site', 'idempotencyKey', 'day', 'epsilon', 'contributions', 'statistic', 'mechanism', 'report', 'value', 'hashes', 'width', 'k', 'hash', 'coord', 'sign', 'experiment']);
      const walk = (v, where) => {
        if (Array.isArray(v)) {
          assert.ok(where === '.contributions', `the only list is the contributions (found one at ${where})`);
          v.forEach((x, i) => walk(x, `${where}[${i}]`));
        } else if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) {
            assert.ok(allowedKeys.has(k), `unexpected field ${where}.${k}`);
            walk(x, `${where}.${k}`);
          }
        } else if (typeof v === 'string') {
          assert.ok(!secrets.has(v) && ![...secrets].some((s) => s.length > 3 && v.includes(s)), `${where} holds "${v}"`);
        }
      };
      for (const r of reports) walk(r, '');
      // The shop's experiment travels inside the report: its name and one randomized value
      // (variant × stage), nothing else — no item id, no variant name in the clear.
      const outcomes = reports.flatMap((r) => r.contributions).filter((c) => c.statistic === 'experiment_outcome');
      assert.equal(outcomes.length, reports.length, 'one experiment_outcome contribution per report');
      const declared = await page.evaluate(() => window.__demo.cfg.foresight.experiments[0]);
      for (const c of outcomes) {
        assert.deepEqual(Object.keys(c).sort(), ['experiment', 'mechanism', 'statistic', 'value']);
        assert.equal(c.experiment, declared.name);
        assert.equal(c.mechanism.epsilon, declared.epsilon);
        assert.equal(c.mechanism.k % declared.variants.length, 0, `k = variants × stages (${c.mechanism.k})`);
        assert.ok(Number.isInteger(c.value) && c.value >= 0 && c.value < c.mechanism.k, `value ${c.value} in [0, ${c.mechanism.k})`);
        for (const v of declared.variants) assert.ok(!JSON.stringify(c).includes(`"${v.name}"`), 'the variant name is not sent');
      }
      for (const p of posts) {
        for (const f of viewed) {
          assert.ok(!p.body.includes(`"${f.id}"`) && !p.body.includes(f.title), `film ${f.id} is not in the body`);
        }
        assert.ok(!new URL(p.url).search.includes('item'), 'nothing in the query string but the site key');
      }

      if (storedBefore === null) {
        console.log('# COLLECTOR_DB not set: the stored count is not checked');
      } else {
        const storedAfter = await waitForStored((n) => n >= storedBefore + reports.length);
        assert.equal(storedAfter, storedBefore + reports.length, 'the collector stored the reports');
      }
      await shot(page, 'privacy-panel', { fullPage: true });

      // Export: a JSON download of the history and the privacy state.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download]')]);
      const file = await download.path();
      const data = JSON.parse(readFileSync(file, 'utf8'));
      assert.deepEqual(data.history, await page.evaluate(() => window.__foresight.history()));
      assert.deepEqual(data.privacy.sent, sent);
      assert.match(download.suggestedFilename(), /\.json$/);

      // Leaving the page sends nothing more today (one report a day, already sent).
      const n = posts.length;
      await leave(page);
      const again = posts.slice(n).flatMap((p) => JSON.parse(p.body));
      assert.ok(again.every((r) => reports.some((s) => s.idempotencyKey === r.idempotencyKey)), 'no new report on pagehide');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

// ---- placements, rules, experiments ----------------------------------------------------------

/** Every tile of a (paged) grid, clicking "Show more" until the whole list is drawn. */
async function wholeGrid(page, testid) {
  const wrap = page.locator(`[data-testid=${testid}]`).locator('xpath=..');
  for (;;) {
    const more = wrap.locator('button.more');
    if (!(await more.isVisible())) break;
    await more.click();
  }
  return page.$$eval(`[data-testid=${testid}] [data-item-id]`, (ts) =>
    ts.map((t) => ({ itemId: t.dataset.itemId, title: t.getAttribute('title'), moved: t.dataset.moved ?? null, from: Number(t.dataset.shopPosition ?? 0) })),
  );
}

/** Waits until a hovered tile's reason is visible; returns its text. */
async function hoverReason(page, tileSelector) {
  await page.hover(tileSelector);
  await page.waitForFunction((sel) => {
    const b = document.querySelector(`${sel} [data-testid=because]`);
    return b && getComputedStyle(b).opacity === '1';
  }, tileSelector);
  return page.textContent(`${tileSelector} [data-testid=because]`);
}

const label = (f) => (f.year ? `${f.title} (${f.year})` : f.title);
/**
 * An init script that puts the visitor in an experiment group before the SDK starts: the SDK
 * keeps an assignment it finds in storage (`<storageKey>.variants`, see sdk/src/client/keys.rs).
 */
const inGroup = (variant) => ({
  content: `(() => {
    const key = 'foresight.demo-shop.variants';
    if (!localStorage.getItem(key)) localStorage.setItem(key, ${JSON.stringify(JSON.stringify({ 'cart-addons': variant }))});
  })();`,
});

test('film page: "You may also like" is similarTo(the film), each reason naming it, on hover too', async () => {
  const { context, page, problems } = await visitor({ hash: '#/film/172' });
  try {
    const film = byId('172');
    const similar = await rail(page, 'rec-similar');
    assert.equal(similar.source, 'model');
    assert.equal(await page.getAttribute('[data-testid=rec-similar]', 'data-placement'), 'similarTo');
    assert.equal(similar.items.length, 6);
    assert.ok(!ids(similar).includes('172'), 'not the film itself');
    for (const item of similar.items) assert.ok(item.title.startsWith(`visitors who viewed ${label(film)} looked at this next`), item.title);
    // The same list the SDK gives for that film (the cart is empty).
    const sdk = await page.evaluate(() => window.__foresight.similarTo('172', { k: 6, exclude: ['172'] }));
    assert.deepEqual(ids(similar), sdk.items.map((r) => r.itemId));
    assert.equal(sdk.placement, 'similarTo');
    assert.ok(sdk.items.every((r) => r.because.kind === 'similar_to' && r.because.itemId === '172'));
    // A film seen after another: the list follows the page's film, not the whole history.
    await go(page, '#/film/1');
    const other = await rail(page, 'rec-similar');
    assert.ok(other.items.length > 0 && other.items.every((i) => i.title.includes(label(byId('1')))), 'the reasons name Toy Story');
    assert.notDeepEqual(ids(other), ids(similar));
    const text = await hoverReason(page, '[data-testid=rec-similar] [data-item-id]:first-child');
    assert.match(text, /^visitors who viewed Toy Story \(1995\) looked at this next$/);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

for (const variant of ['model', 'popular']) {
  test(`cart: "Goes well with your cart" is boughtTogether(the cart), never a cart film (experiment group "${variant}")`, async () => {
    const { context, page, problems } = await visitor({ initScript: inGroup(variant) });
    try {
      assert.deepEqual(await page.evaluate(() => window.__foresight.variants()), { 'cart-addons': variant });
      const cartFilms = ['50', '98', '1'];
      for (const id of cartFilms) {
        await go(page, `#/film/${id}`);
        await page.click('[data-testid=add-to-cart]');
        await settled(page);
      }
      await go(page, '#/cart');
      const together = await rail(page, 'rec-together');
      const railEl = '[data-testid=rec-together]';
      assert.equal(await page.getAttribute(railEl, 'data-placement'), 'boughtTogether');
      assert.equal(await page.getAttribute(railEl, 'data-variant'), variant, 'the list carries the visitor\'s group');
      assert.ok(together.items.length > 0, 'not empty');
      assert.ok(together.items.length <= 6);
      for (const id of cartFilms) assert.ok(!ids(together).includes(id), `cart film ${id} is not suggested`);
      if (variant === 'model') {
        assert.equal(together.source, 'model');
        const names = cartFilms.map((id) => label(byId(id)));
        for (const item of together.items) {
          assert.ok(names.some((n) => item.title.startsWith(`goes with ${n} in your cart`)), `"${item.title}" names a film in the cart`);
        }
      } else {
        assert.equal(together.source, 'popularity', 'the control answers from popularity');
        assert.match(together.fallbackReason, /cart-addons/);
        const top = [...films].sort((a, b) => b.popularity - a.popularity).filter((f) => !cartFilms.includes(f.id)).slice(0, together.items.length);
        assert.deepEqual(ids(together), top.map((f) => f.id));
      }
      // Removing a film: the list is drawn again for the new cart, still without its films.
      await page.click('[data-testid=cart-line][data-item-id="98"] [data-testid=remove-from-cart]');
      await page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '2');
      await settled(page);
      const after = await rail(page, 'rec-together');
      assert.ok(after.items.length > 0);
      assert.ok(!ids(after).includes('50') && !ids(after).includes('1'), 'still no cart film');
      if (variant === 'model') assert.ok(after.items.every((i) => !i.title.includes(label(byId('98')))), 'no reason names the removed film');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

test('genre page and search results: the shop\'s whole list, reordered for a visitor with history', async () => {
  const fresh = await visitor();
  const known = await visitor();
  try {
    const genre = 'Crime'; // 109 films: three pages of tiles
    const shopOrder = films.filter((f) => f.genres.includes(genre)).sort((a, b) => b.popularity - a.popularity).map((f) => f.id);
    await go(fresh.page, `#/genre/${genre}`);
    assert.equal(await fresh.page.getAttribute('[data-testid=reranked-genre]', 'data-state'), 'ready');
    const plain = await wholeGrid(fresh.page, 'genre-grid');
    assert.deepEqual(plain.map((t) => t.itemId), shopOrder, 'no history: the shop\'s order, complete');
    assert.equal(await fresh.page.getAttribute('[data-testid=reranked-genre]', 'data-moved'), '0');

    const { page } = known;
    for (const f of topOf('Sci-Fi', 4)) await go(page, `#/film/${f.id}`);
    await go(page, `#/genre/${genre}`);
    assert.equal(await page.getAttribute('[data-testid=reranked-genre]', 'data-source'), 'model');
    const mine = await wholeGrid(page, 'genre-grid');
    assert.equal(mine.length, shopOrder.length, 'as many films');
    assert.deepEqual([...mine.map((t) => t.itemId)].sort(), [...shopOrder].sort(), 'the same films (a permutation)');
    assert.notDeepEqual(mine.map((t) => t.itemId), shopOrder, 'in another order');
    const sdk = await page.evaluate((list) => window.__foresight.rerank(list, { blend: 0.5 }), shopOrder);
    assert.deepEqual(mine.map((t) => t.itemId), sdk.items.map((r) => r.itemId), 'the SDK\'s rerank, drawn as is');
    mine.forEach((t, i) => {
      const m = /^(?:moved up from #(\d+) for you|moved down from #(\d+)|kept at #(\d+))$/.exec(t.title);
      assert.ok(m, `tile ${i + 1} says how it moved: "${t.title}"`);
      const from = Number(m[1] ?? m[2] ?? m[3]);
      assert.equal(shopOrder[from - 1], t.itemId, `#${from} in the shop's list is ${t.itemId}`);
      assert.equal(m[1] !== undefined, from > i + 1, 'up means it rose');
    });
    const up = mine.findIndex((t) => t.moved === 'up');
    assert.ok(up >= 0, 'something moved up');
    const text = await hoverReason(page, `[data-testid=genre-grid] [data-item-id="${mine[up].itemId}"]`);
    assert.match(text, /^moved up from #\d+ for you$/);
    await page.hover('[data-testid=genre-note]');
    await shot(page, 'genre-reranked');

    // Search results: the same, for the titles found.
    const q = 'star';
    const found = films.filter((f) => `${f.title} ${f.year ?? ''}`.toLowerCase().includes(q)).map((f) => f.id);
    await go(fresh.page, `#/search?q=${q}`);
    await go(page, `#/search?q=${q}`);
    const a = await wholeGrid(fresh.page, 'search-results');
    const b = await wholeGrid(page, 'search-results');
    assert.equal(await page.getAttribute('[data-testid=reranked-search]', 'data-source'), 'model');
    assert.deepEqual([...a.map((t) => t.itemId)].sort(), [...found].sort());
    assert.deepEqual([...b.map((t) => t.itemId)].sort(), [...found].sort(), 'every result stays');
    assert.ok(b.every((t) => /^(moved up from #\d+ for you|moved down from #\d+|kept at #\d+)$/.test(t.title)));
    assert.deepEqual([...fresh.problems, ...known.problems], []);
  } finally {
    await fresh.context.close();
    await known.context.close();
  }
});

test('home: "Trending now" differs from "Popular now"; "Recently viewed" lists the films viewed, newest first', async () => {
  const { context, page, problems } = await visitor();
  try {
    const trending = await rail(page, 'rec-trending');
    const popular = await rail(page, 'rec-popular');
    assert.equal(trending.source, 'trend', `trend data in the catalog (${trending.fallbackReason ?? ''})`);
    assert.equal(trending.items.length, 8);
    assert.ok(trending.items.every((i) => i.title === 'trending lately'));
    assert.notDeepEqual(ids(trending), ids(popular), 'trending is not the all-time list');
    assert.ok(ids(trending).some((id) => !ids(popular).includes(id)), 'a film trends that is not among the most popular');
    assert.equal(await page.$('[data-testid=rec-recent]'), null, 'nothing viewed yet: no "Recently viewed"');
    // The genre page's own trending row stays in the genre.
    await go(page, '#/genre/Comedy');
    const comedy = await rail(page, 'rec-genre-trending');
    assert.equal(comedy.source, 'trend');
    assert.ok(comedy.items.length > 0 && comedy.items.every((i) => byId(i.itemId).genres[0] === 'Comedy'));

    for (const id of ['172', '98', '1', '181', '172']) await go(page, `#/film/${id}`);
    await go(page, '#/');
    const recent = await rail(page, 'rec-recent');
    assert.equal(recent.source, 'history');
    assert.deepEqual(ids(recent), ['172', '181', '1', '98'], 'each film once, newest first');
    assert.ok(recent.items.every((i) => i.title === 'you viewed this'));
    const forYou = await rail(page, 'rec-for-you');
    assert.ok(ids(forYou).every((id) => !ids(recent).includes(id)), '"Recommended for you" leaves them to "Recently viewed"');
    await shot(page, 'home-placements', { fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('merchandising rules: a film whose licence ends is never recommended, yet still for sale', async () => {
  const { context, page, problems } = await visitor();
  try {
    // Crime films whose neighbours include Pulp Fiction (id 56).
    for (const id of ['100', '127', '12', '182']) await go(page, `#/film/${id}`);
    const lists = await page.evaluate(async () => {
      const fs = window.__foresight;
      return Promise.all([fs.forYou({ k: 100 }), fs.similarTo('12', { k: 100 }), fs.popular({ k: 100 }), fs.trending({ k: 100 }), fs.boughtTogether(['100', '12'], { k: 100 })]);
    });
    for (const l of lists) {
      assert.ok(l.items.length > 20, `${l.placement} answers`);
      assert.ok(!l.items.some((r) => r.itemId === '56'), `${l.placement} leaves Pulp Fiction out`);
      assert.ok(!l.items.some((r) => byId(r.itemId).genres[0] === 'unknown'), `${l.placement} leaves "unknown" entries out`);
    }
    // Without the rule, Pulp Fiction would be among the 100 most popular films.
    assert.ok([...films].sort((a, b) => b.popularity - a.popularity).slice(0, 30).some((f) => f.id === '56'));
    await go(page, '#/film/56');
    assert.ok(await page.isVisible('[data-testid=not-promoted]'), 'its page says so');
    assert.ok(await page.isEnabled('[data-testid=add-to-cart]'), 'and still sells it');
    await go(page, '#/genre/Crime');
    assert.ok(await page.$('[data-testid=genre-grid] [data-item-id="56"]'), 'the shop\'s own genre list keeps it');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('experiment: the visitor\'s group is shown in the privacy panel and stays the same after a reload', async () => {
  const { context, page, problems } = await visitor();
  try {
    const declared = await page.evaluate(() => window.__demo.cfg.foresight.experiments);
    assert.equal(declared.length, 1);
    assert.notEqual(declared[0].placement, 'forYou');
    const names = declared[0].variants.map((v) => v.name);
    await privacyPanel(page);
    const shown = await page.textContent(`[data-testid=experiment-variant][data-experiment="${declared[0].name}"]`);
    assert.ok(names.includes(shown), `"${shown}" is one of ${names}`);
    assert.deepEqual(await page.evaluate(() => window.__foresight.variants()), { [declared[0].name]: shown });
    assert.match(await page.textContent('[data-testid=experiment-privacy]'), /never leaves it/);
    assert.match(await page.textContent('[data-testid=experiment-privacy]'), /experiment_outcome/);
    for (let i = 0; i < 2; i++) {
      await page.reload();
      await page.evaluate(() => window.__demoReady);
      await settled(page);
      await page.waitForSelector('[data-testid=privacy][data-state=ready]');
      assert.equal(await page.textContent(`[data-testid=experiment-variant][data-experiment="${declared[0].name}"]`), shown, 'the same group after a reload');
    }
    // And the cart's list is that group's.
    await go(page, '#/film/50');
    await page.click('[data-testid=add-to-cart]');
    await settled(page);
    await go(page, '#/cart');
    await rail(page, 'rec-together');
    assert.equal(await page.getAttribute('[data-testid=rec-together]', 'data-variant'), shown);
    await privacyPanel(page);
    await page.locator('[data-testid=experiments]').scrollIntoViewIfNeeded();
    await shot(page, 'privacy-experiment');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('nudges: delivery information when intent is high, an offer when it drops; the reason on hover', async () => {
  // Thresholds from the query string: any score counts as "high".
  const high = await visitor({ query: '?intentHigh=0' });
  const low = await visitor({ query: '?intentHigh=1.01&intentDropFrom=0&intentDropBy=0' });
  try {
    await go(high.page, '#/film/50');
    const banner = high.page.locator('[data-testid=nudge]');
    await banner.waitFor({ state: 'visible' });
    assert.equal(await banner.getAttribute('data-kind'), 'delivery');
    assert.match(await banner.textContent(), /delivery tomorrow/);
    const title = await banner.getAttribute('title');
    assert.match(title, /^intent \d\.\d\d ≥ 0\.00/);
    assert.match(title, /you viewed Star Wars \(1977\)|you opened/);
    const intent = await high.page.evaluate(() => window.__foresight.intent());
    assert.ok(title.includes(`intent ${intent.probability.toFixed(2)}`), `${title} shows the score ${intent.probability}`);
    await banner.hover();
    await high.page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid=nudge]'), '::after').opacity === '1');
    await shot(high.page, 'nudge-delivery');
    await high.page.click('[data-testid=nudge] [data-dismiss]');
    assert.ok(await banner.isHidden(), 'dismissed');

    await go(low.page, '#/film/181');
    const offer = low.page.locator('[data-testid=nudge]');
    await offer.waitFor({ state: 'visible' });
    assert.equal(await offer.getAttribute('data-kind'), 'offer');
    assert.match(await offer.textContent(), /10% off/);
    assert.match(await offer.getAttribute('title'), /^intent \d\.\d\d, down/);
    await shot(low.page, 'nudge-offer');
    assert.deepEqual([...high.problems, ...low.problems], []);
  } finally {
    await high.context.close();
    await low.context.close();
  }
});

test('nudges with the default thresholds follow the intent score', async () => {
  const { context, page, problems } = await visitor();
  try {
    const cfg = await page.evaluate(() => window.__demo.cfg.nudges);
    for (const f of topOf('Action', 3)) {
      await go(page, `#/film/${f.id}`);
      await page.click('[data-testid=add-to-cart]');
      await settled(page);
    }
    const log = await page.evaluate(() => window.__demo.nudges.log);
    assert.ok(log.length >= 6, 'intent is scored after each event');
    let peak = 0;
    for (const entry of log) {
      peak = Math.max(peak, entry.probability);
      if (entry.probability >= cfg.intentHigh) assert.equal(entry.nudge, 'delivery');
      else if (peak >= cfg.intentDropFrom && peak - entry.probability >= cfg.intentDropBy) assert.equal(entry.nudge, 'offer');
    }
    console.log(`# intent after each event: ${log.map((e) => e.probability.toFixed(2)).join(' ')}`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('the shop never breaks: no SDK, no bundles, no intent model', async () => {
  // 1. The SDK's module cannot be fetched.
  const noSdk = await visitor({ route: [['**/sdk/index.js', (r) => r.fulfill({ status: 404, body: 'gone' })]] });
  // 2. Neither bundle downloads.
  const noModels = await visitor({ route: [['**/models/*.fsb', (r) => r.fulfill({ status: 404, body: 'gone' })]] });
  // 3. Only the intent model is missing; every score would nudge if there were one.
  const noIntent = await visitor({ query: '?intentHigh=0', route: [['**/models/intent.fsb', (r) => r.fulfill({ status: 404, body: 'gone' })]] });
  try {
    assert.equal((await noSdk.page.evaluate(() => window.__demoReady)).state, 'failed');
    assert.ok(await noSdk.page.isVisible('[data-testid=notice]'), 'a small notice');
    const a = await rail(noSdk.page, 'rec-for-you');
    assert.equal(a.source, 'popularity');
    assert.equal(a.items.length, 8);
    assert.equal((await rail(noSdk.page, 'rec-popular')).items.length, 8);
    await go(noSdk.page, '#/film/50');
    await noSdk.page.click('[data-testid=add-to-cart]');
    await noSdk.page.waitForFunction(() => document.querySelector('[data-testid=cart-count]').textContent === '1');
    assert.equal((await rail(noSdk.page, 'rec-similar')).source, 'popularity');
    await privacyPanel(noSdk.page);
    await shot(noSdk.page, 'no-sdk-privacy');

    assert.equal((await noModels.page.evaluate(() => window.__demoReady)).state, 'ready');
    assert.ok(await noModels.page.isVisible('[data-testid=notice]'));
    await go(noModels.page, '#/film/50');
    const b = await rail(noModels.page, 'rec-similar');
    assert.equal(b.source, 'popularity');
    assert.ok(b.fallbackReason, 'the fallback says why');
    assert.ok(await noModels.page.isHidden('[data-testid=nudge]'), 'no intent model: no nudge');

    for (const id of ['50', '172', '181']) await go(noIntent.page, `#/film/${id}`);
    assert.equal((await rail(noIntent.page, 'rec-similar')).source, 'model', 'the recommender still works');
    assert.ok(await noIntent.page.isHidden('[data-testid=nudge]'), 'no intent model: no nudge');
    assert.equal(await noIntent.page.evaluate(() => window.__demo.personalization.intentAvailable), false);

    for (const v of [noSdk, noModels, noIntent]) assert.deepEqual(v.problems, []);
  } finally {
    for (const v of [noSdk, noModels, noIntent]) await v.context.close();
  }
});

/** Long tasks (> 50 ms) on the main thread from navigation to the first recommendations. */
const LONGTASK_OBSERVER = () => {
  window.__longTasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration, name: e.name });
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    window.__longTasks = null;
  }
  // Long animation frames name the scripts that ran in them: which long task was whose.
  window.__frames = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__frames.push({
          start: e.startTime,
          end: e.startTime + e.duration,
          scripts: e.scripts.map((s) => ({ url: s.sourceURL, fn: s.sourceFunctionName, invoker: s.invoker, ms: Math.round(s.duration) })),
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch {
    window.__frames = null;
  }
};

/** The scripts of the long animation frames a long task falls in (its attribution). */
function scriptsOf(task, frames) {
  return (frames ?? []).filter((f) => f.start <= task.start + 1 && task.start + task.duration <= f.end + 1).flatMap((f) => f.scripts);
}

/**
 * One cold first visit (new context: empty cache and storage) landing on a film page: the SDK
 * loads, tracks the view, and the model answers "You may also like".
 */
async function firstVisit(worker) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(LONGTASK_OBSERVER);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(new URL(`${worker ? '?worker=1' : ''}#/film/50`, DEMO_URL).href);
    const ready = await page.evaluate(() => window.__demoReady);
    assert.equal(ready.state, 'ready', ready.error);
    assert.equal(ready.worker, worker);
    await page.waitForSelector('[data-testid=rec-similar][data-state=ready]');
    const m = await page.evaluate(() => {
      const mark = performance.getEntriesByName('demo:first-recommendations')[0];
      const ready = performance.getEntriesByName('demo:sdk-ready')[0];
      return { firstRecs: mark.startTime, sdkReady: ready.startTime, source: mark.detail?.source, longTasks: window.__longTasks, frames: window.__frames };
    });
    assert.equal(m.source, 'model');
    assert.notEqual(m.longTasks, null, 'this Chromium reports long tasks');
    m.during = m.longTasks.filter((t) => t.start < m.firstRecs).map((t) => ({ ...t, scripts: scriptsOf(t, m.frames) }));
    assert.deepEqual(problems, []);
    return m;
  } finally {
    await context.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('Worker mode: no main-thread long task during init and recommendation; load → first recommendation timings', async () => {
  const runs = { main: [], worker: [] };
  for (let i = 0; i < 3; i++) {
    runs.main.push(await firstVisit(false));
    runs.worker.push(await firstVisit(true));
  }
  const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
  for (const mode of ['main', 'worker']) {
    const r = runs[mode];
    const times = r.map((x) => x.firstRecs);
    const ready = r.map((x) => x.sdkReady);
    const tasks = r.map((x) => x.during.length);
    const longest = Math.max(0, ...r.flatMap((x) => x.during.map((t) => t.duration)));
    console.log(
      `# ${mode === 'main' ? 'main-thread' : 'Worker     '} mode: page load → first recommendation median ${median(times).toFixed(0)} ms (${fmt(times)}), ` +
        `→ SDK ready median ${median(ready).toFixed(0)} ms; ` +
        `main-thread long tasks before it: ${tasks.join(', ')} (longest ${longest.toFixed(0)} ms)`,
    );
  }
  // The Long Tasks API reports tasks of 50 ms and more, rounded to whole milliseconds. On this
  // 2-core machine one task of 50–53 ms recurs ~250–340 ms after navigation, long before the SDK is
  // ready; the long animation frame it falls in names the scripts that ran (none of the SDK's when
  // seen so far: the page's own start-up). The claim is about the SDK: no task over 50 ms in
  // which an SDK script (served from /sdk/) ran, and every task is printed with its attribution.
  // Main-thread mode is reported, not asserted: on this 2-core machine the SDK's first call
  // (reading the config while V8 compiles the wasm functions it runs) is sometimes just over 50 ms.
  for (const r of runs.main) {
    for (const t of r.during) console.log(`# main-thread mode long task at ${t.start.toFixed(0)} ms, ${t.duration} ms: ${JSON.stringify(t.scripts)}`);
  }
  for (const r of runs.worker) {
    for (const t of r.during) console.log(`# Worker mode long task at ${t.start.toFixed(0)} ms, ${t.duration} ms: ${JSON.stringify(t.scripts)}`);
    const ours = r.during.filter((t) => t.duration > 50 && (r.frames === null || t.scripts.some((s) => s.url.includes('/sdk/'))));
    assert.deepEqual(ours, [], `Worker mode: no main-thread task over 50 ms running the SDK before the first recommendations (${JSON.stringify(r.during)})`);
  }
});
