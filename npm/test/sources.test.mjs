// `sources: ["ga4", "segment"]`: the shop's existing GA4 dataLayer pushes and Segment track
// calls become SDK events, without a `track()` written by the shop. Node has no page, so the
// tests set `globalThis.dataLayer` and `globalThis.analytics` the way the page's tags would.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Foresight, InvalidOptionError } from 'foresight-sdk';
import { segmentPlugin } from 'foresight-sdk/sources';
import { catalog, memoryStorage, wasm } from './helpers.mjs';

/** Waits until the SDK has stored `n` events (tracking from a source does not return a promise
 * to the page). */
async function stored(fs, n) {
  for (let i = 0; i < 100; i++) {
    const h = await fs.history();
    if (h.length >= n) return h;
    await new Promise((r) => setTimeout(r, 10));
  }
  return fs.history();
}

/** Collects console.warn while `f` runs. */
async function warnings(f) {
  const seen = [];
  const original = console.warn;
  console.warn = (...args) => seen.push(args.join(' '));
  try {
    await f();
  } finally {
    console.warn = original;
  }
  return seen;
}

test('GA4: entries pushed before init and after it are recorded, in both dataLayer forms', async (t) => {
  const dataLayer = [];
  globalThis.dataLayer = dataLayer;
  t.after(() => delete globalThis.dataLayer);
  // Before the SDK loads: Tag Manager's form, and a clearing push GA4 setups make between events.
  dataLayer.push({ ecommerce: null });
  dataLayer.push({ event: 'view_item', ecommerce: { items: [{ item_id: 'sku-00003', item_category: 'cat-01', price: '12.50' }] } });
  dataLayer.push({ event: 'gtm.js' });
  const fs = await Foresight.init({ wasm, catalog, storage: memoryStorage(), sources: ['ga4'] });
  // After: gtag's form pushes its `arguments`.
  function gtag() {
    dataLayer.push(arguments); // eslint-disable-line prefer-rest-params
  }
  gtag('event', 'add_to_cart', { items: [{ item_id: 17, quantity: 2, price: 3 }] });
  dataLayer.push({ event: 'select_item', ecommerce: { item_list_id: 'forYou', items: [{ item_id: 'sku-00042' }] } });
  dataLayer.push({ event: 'view_search_results', search_term: 'red shoes' });
  dataLayer.push({ event: 'purchase', ecommerce: { value: 15.5, items: [{ item_id: 'sku-00003', quantity: 1, price: 12.5 }, { item_id: '17', price: 3 }] } });
  dataLayer.push({ event: 'some_custom_event', foo: 1 });
  const history = await stored(fs, 5);
  assert.deepEqual(
    history.map(({ at, session, ...e }) => e),
    [
      { type: 'product_view', itemId: 'sku-00003', category: 'cat-01', price: 12.5 },
      { type: 'add_to_cart', itemId: '17', quantity: 2, price: 3 },
      { type: 'click', itemId: 'sku-00042', placement: 'forYou' },
      { type: 'search', query: 'red shoes' },
      { type: 'purchase', items: [{ itemId: 'sku-00003', quantity: 1, price: 12.5 }, { itemId: '17', quantity: 1, price: 3 }], total: 15.5 },
    ],
  );
  assert.equal(dataLayer.length, 8, 'the pushes still reach the dataLayer');
  await fs.close();
  dataLayer.push({ event: 'view_item', ecommerce: { items: [{ item_id: 'sku-00009' }] } });
  assert.equal(dataLayer.length, 9, 'after close the page keeps pushing, unread');
});

test('GA4: a malformed event is a console warning and the page goes on', async (t) => {
  globalThis.dataLayer = [];
  t.after(() => delete globalThis.dataLayer);
  const fs = await Foresight.init({ wasm, catalog, storage: memoryStorage(), sources: ['ga4'] });
  const seen = await warnings(async () => {
    globalThis.dataLayer.push({ event: 'view_item', ecommerce: { items: 'sku-1' } });
    globalThis.dataLayer.push({ event: 'add_to_cart', ecommerce: { items: [{ item_id: '' }] } });
    await new Promise((r) => setTimeout(r, 50));
  });
  assert.equal(seen.length, 2, seen.join('\n'));
  assert.match(seen[0], /GA4 event "view_item" skipped: it has no items array/);
  assert.match(seen[1], /GA4 event "add_to_cart" not recorded: .*itemId/);
  assert.deepEqual(await fs.history(), []);
  await fs.close();
});

test('Segment: the plugin is registered on window.analytics and maps the ecommerce spec', async (t) => {
  const plugins = [];
  globalThis.analytics = { register: (...p) => { plugins.push(...p); return Promise.resolve(); } };
  t.after(() => delete globalThis.analytics);
  const fs = await Foresight.init({ wasm, catalog, storage: memoryStorage(), sources: ['segment'] });
  assert.equal(plugins.length, 1);
  const [plugin] = plugins;
  assert.equal(plugin.type, 'destination');
  assert.equal(await plugin.isLoaded(), true);
  const track = (event, properties) => plugin.track({ event: { type: 'track', event, properties } });
  track('Product Viewed', { product_id: 'sku-00003', category: 'cat-01', price: 9 });
  track('Product Added', { product_id: 'sku-00003', quantity: 3 });
  track('Product Clicked', { product_id: 'sku-00042', list_id: 'similarTo' });
  track('Order Completed', { total: 27, products: [{ product_id: 'sku-00003', quantity: 3, price: 9 }] });
  track('Signed Up', { plan: 'x' });
  const history = await stored(fs, 4);
  assert.deepEqual(history.map((e) => e.type), ['product_view', 'add_to_cart', 'click', 'purchase']);
  assert.equal(history[2].placement, 'similarTo');
  assert.equal(history[3].total, 27);
  await fs.close();
});

test('segmentPlugin(fs) for analytics loaded from npm, and sources checked', async () => {
  const fs = await Foresight.init({ wasm, catalog, storage: memoryStorage() });
  const plugin = segmentPlugin(fs);
  const ctx = { event: { event: 'Products Searched', properties: { query: 'lamp' } } };
  assert.equal(plugin.track(ctx), ctx, 'the plugin hands the context on');
  assert.deepEqual((await stored(fs, 1)).map(({ at, session, ...e }) => e), [{ type: 'search', query: 'lamp' }]);
  await fs.close();
  await assert.rejects(Foresight.init({ wasm, catalog, storage: memoryStorage(), sources: ['ga3'] }), (e) => e instanceof InvalidOptionError && e.field === 'sources');
  await assert.rejects(Foresight.init({ wasm, catalog, storage: memoryStorage(), sources: 'ga4' }), InvalidOptionError);
});
