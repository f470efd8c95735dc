// The demo store on the Ta Feng grocery catalog (`DATA=tafeng scripts/demo.sh`): real Chromium
// against the served site. scripts/test-e2e.sh builds it with DEMO_QUICK=1 (a model trained on
// the last 14 days of Ta Feng) and runs `node --test tafeng.mjs`.
//
// Environment: DEMO_URL (the served Ta Feng site, default http://127.0.0.1:8080/), TAFENG_ITEMS
// (data/tafeng/items.csv), SCREENSHOT_DIR, CHROMIUM (as in e2e.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { go, rail, settled } from './page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const DEMO_URL = new URL(process.env.DEMO_URL || 'http://127.0.0.1:8080/').href;
const ITEMS = process.env.TAFENG_ITEMS || path.join(repo, 'data/tafeng/items.csv');
const SCREENSHOT_DIR = path.resolve(process.env.SCREENSHOT_DIR || path.join(repo, 'target/screenshots'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let browser;
let shop;
let products;
/** items.csv: product id → {category, price}. */
const tafeng = new Map();

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const [header, ...lines] = readFileSync(ITEMS, 'utf8').trim().split('\n');
  assert.equal(header.trim(), 'item_id,category,price', `${ITEMS}: scripts/fetch-data.sh's Ta Feng items`);
  for (const line of lines) {
    const [id, category, price] = line.trim().split(',');
    tafeng.set(id, { category, price: price === '' ? null : Number(price) });
  }
  const r = await fetch(new URL('data/films.json', DEMO_URL));
  assert.equal(r.status, 200, `${DEMO_URL}data/films.json: is the Ta Feng demo served? (DATA=tafeng scripts/demo.sh)`);
  ({ shop, items: products } = await r.json());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

const byId = (id) => products.find((p) => p.id === id);
const byPopularity = () => [...products].sort((a, b) => b.popularity - a.popularity);

async function visitor(hash = '#/') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(new URL(hash, DEMO_URL).href);
  const ready = await page.evaluate(() => window.__demoReady);
  assert.equal(ready.state, 'ready', `the SDK started (${ready.error ?? ''})`);
  await settled(page);
  return { context, page, problems };
}

test('the catalog is Ta Feng: product numbers as names, subclasses, the real prices', () => {
  assert.equal(shop?.kind, 'grocery');
  assert.equal(shop?.data, 'tafeng');
  assert.ok(products.length > 5000, `${products.length} products`);
  for (const p of products) {
    const t = tafeng.get(p.id);
    assert.ok(t, `${p.id} is a Ta Feng product`);
    assert.equal(p.title, `Product ${p.id}`);
    assert.equal(p.year, null);
    assert.deepEqual(p.genres, [t.category]);
    assert.equal(p.price, Math.round(t.price * 100) / 100, `${p.id}: items.csv's price`);
  }
});

test('a fresh visitor sees the grocery: Ta Feng products, subclasses, NT$ prices, search', async () => {
  const { context, page, problems } = await visitor();
  try {
    assert.equal(await page.title(), 'Foresight Grocery');
    assert.match(await page.textContent('.brand'), /Grocery/);
    const footer = await page.textContent('footer');
    assert.match(footer, /Ta Feng/);
    assert.doesNotMatch(footer, /MovieLens/);
    assert.match(await page.textContent('[data-testid=hero]'), new RegExp(`${products.length.toLocaleString('en')} products`));
    const popular = await rail(page, 'rec-popular');
    assert.deepEqual(popular.items.map((i) => i.itemId), byPopularity().slice(0, 8).map((p) => p.id));
    for (const i of popular.items) {
      assert.match(i.text, new RegExp(`Product ${i.itemId}`));
      assert.match(i.text, /NT\$\d/);
      assert.match(i.text, new RegExp(`Subclass ${byId(i.itemId).genres[0]}`));
    }
    // ~2,000 subclasses: the header names the 12 most bought.
    const nav = await page.$$eval('[data-testid=genre-nav] a', (as) => as.map((a) => a.dataset.genre));
    assert.equal(nav.length, 12);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'tafeng-home.png') });

    await page.click(`[data-testid=genre-nav] a[data-genre="${nav[0]}"]`);
    await settled(page);
    const grid = await page.$$eval('[data-testid=genre-grid] [data-item-id]', (ts) => ts.map((t) => t.dataset.itemId));
    assert.ok(grid.length > 0);
    for (const id of grid) assert.deepEqual(byId(id).genres, [nav[0]]);

    // A product-number prefix matches most of the catalog: the 480 most bought are listed.
    await page.fill('[data-testid=search-input]', '4710');
    await page.press('[data-testid=search-input]', 'Enter');
    await settled(page);
    await page.waitForSelector('[data-testid=reranked-search][data-state=ready]');
    const found = Number(await page.getAttribute('[data-testid=search-count]', 'data-found'));
    assert.equal(found, products.filter((p) => p.id.includes('4710') || p.genres[0].includes('4710')).length);
    assert.equal(Number(await page.getAttribute('[data-testid=reranked-search]', 'data-count')), Math.min(480, found));
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a visitor who viewed a product gets Ta Feng products from the model trained on Ta Feng', async () => {
  const { context, page, problems } = await visitor();
  try {
    // A well-bought product, not the very top.
    const viewed = byPopularity()[30];
    await go(page, `#/product/${viewed.id}`);
    assert.equal(await page.textContent('.film-info h1'), `Product ${viewed.id}`);
    assert.match(await page.textContent('.film-info .price'), /^NT\$\d/);
    const similar = await rail(page, 'rec-similar');
    assert.equal(similar.source, 'model');
    assert.ok(similar.items.length > 0);
    for (const { itemId } of similar.items) {
      assert.ok(byId(itemId) && tafeng.has(itemId), `${itemId} is a product of the catalog`);
      assert.notEqual(itemId, viewed.id);
    }
    await go(page, '#/');
    const forYou = await rail(page, 'rec-for-you');
    assert.equal(forYou.source, 'model', 'one product viewed: the model answers');
    assert.equal(forYou.items.length, 8);
    for (const { itemId } of forYou.items) assert.ok(byId(itemId) && tafeng.has(itemId), `${itemId} is a product of the catalog`);
    assert.ok(
      forYou.items.some((i) => i.title?.includes(`because you viewed Product ${viewed.id}`)),
      `a reason names the viewed product: ${forYou.items.map((i) => i.title).join(' | ')}`,
    );
    const recent = await rail(page, 'rec-recent');
    assert.deepEqual(recent.items.map((i) => i.itemId), [viewed.id]);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'tafeng-personalized.png') });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

/** Puts `ids` in the cart and places the order. */
async function buy(page, ids) {
  for (const [n, id] of ids.entries()) {
    await go(page, `#/product/${id}`);
    await page.click('[data-testid=add-to-cart]');
    await page.waitForFunction((want) => document.querySelector('[data-testid=cart-count]').textContent === String(want), n + 1);
  }
  await go(page, '#/cart');
  await page.click('[data-testid=checkout]');
  await page.waitForSelector('[data-testid=checkout-form]');
  await page.click('[data-testid=place-order]');
  await page.waitForSelector('[data-testid=thanks]');
  await settled(page);
}

test('a shopper who bought gets a "Buy again" row: their own purchases first, the most bought on top', async () => {
  const { context, page, problems } = await visitor();
  try {
    assert.equal(await page.$('[data-testid=rec-buy-again]'), null, 'nothing bought yet: no row');
    const [staple, once] = [byPopularity()[40], byPopularity()[41]];
    await buy(page, [staple.id, once.id]);
    await buy(page, [staple.id]);
    await go(page, '#/');
    const again = await rail(page, 'rec-buy-again');
    assert.equal(again.source, 'history');
    const order = again.items.map((i) => i.itemId);
    assert.equal(order[0], staple.id, `bought twice, first: ${order.join(', ')}`);
    assert.ok(order.includes(once.id), `bought once, listed: ${order.join(', ')}`);
    assert.match(again.items[0].title ?? '', /you bought this before/);
    for (const id of order) assert.ok(byId(id) && tafeng.has(id), `${id} is a product of the catalog`);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'tafeng-buy-again.png') });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
