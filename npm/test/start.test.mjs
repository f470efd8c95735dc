// `Foresight.start(config)`: usable before the SDK is ready — tracks queued and replayed in
// order, lists from popularity meanwhile, an inline snippet's queue adopted, nothing thrown
// into the page even when the SDK never starts.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Foresight, ForesightError } from 'foresight-sdk';
import { catalog, gruModel, memoryStorage, wasm } from './helpers.mjs';

const byPopularity = [...catalog].sort((a, b) => b.popularity - a.popularity);

test('before ready: lists from popularity, tracks queued; then replayed in order and the model answers', async () => {
  const fs = Foresight.start({ wasm, catalog, recommender: { model: gruModel }, storage: memoryStorage() });
  const early = await fs.forYou({ k: 5 });
  assert.equal(early.source, 'popularity');
  assert.match(early.fallbackReason, /still loading/);
  assert.deepEqual(early.items.map((r) => r.itemId), byPopularity.slice(0, 5).map((i) => i.id));
  const similar = await fs.similarTo('sku-00042', { k: 3 });
  const category = catalog.find((i) => i.id === 'sku-00042').category;
  assert.ok(similar.items.every((r) => r.itemId !== 'sku-00042' && catalog.find((i) => i.id === r.itemId).category === category), JSON.stringify(similar));
  const tracked = ['sku-00003', 'sku-00017', 'sku-00042'].map((itemId) => fs.track({ type: 'product_view', itemId }));
  const ready = await fs.ready;
  await Promise.all(tracked);
  assert.deepEqual((await fs.history()).map((e) => e.itemId), ['sku-00003', 'sku-00017', 'sku-00042'], 'replayed in order');
  const later = await fs.forYou({ k: 5 });
  assert.equal(later.source, 'model');
  assert.deepEqual(await ready.history(), await fs.history(), 'the handle forwards to the Foresight it resolved to');
  await fs.close();
});

test('an invalid queued track is a warning, not an unhandled rejection; awaited, it rejects', async () => {
  const warned = [];
  const original = console.warn;
  console.warn = (...a) => warned.push(a.join(' '));
  try {
    const fs = Foresight.start({ wasm, catalog, storage: memoryStorage() });
    fs.track({ type: 'product_view', itemId: '' });
    const awaited = fs.track({ type: 'teleport' });
    await assert.rejects(awaited, (e) => e instanceof ForesightError && e.code === 'invalid_event');
    await fs.ready;
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(warned.some((w) => /track\(\) not recorded: .*itemId/.test(w)), warned.join('\n'));
    await fs.close();
  } finally {
    console.warn = original;
  }
});

test('an inline snippet\'s queue is replayed first and the handle takes its place', async (t) => {
  const answers = [];
  globalThis.foresight = {
    q: [],
    call(m, a) {
      return new Promise((resolve, reject) => this.q.push([m, a, resolve, reject]));
    },
  };
  t.after(() => delete globalThis.foresight);
  globalThis.foresight.call('track', [{ type: 'product_view', itemId: 'sku-00003' }]).then((v) => answers.push(['track', v]));
  globalThis.foresight.call('popular', [{ k: 2 }]).then((v) => answers.push(['popular', v.source]));
  // Fire-and-forget, as tags do: an invalid event must not become an unhandled rejection.
  globalThis.foresight.call('track', [{ type: 'product_view', itemId: '' }]);
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(String(e));
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const warned = [];
  const original = console.warn;
  console.warn = (...a) => warned.push(a.join(' '));
  t.after(() => {
    console.warn = original;
  });
  const fs = Foresight.start({ wasm, catalog, storage: memoryStorage() });
  assert.equal(globalThis.foresight, fs);
  await fs.ready;
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(answers.map((a) => a[0]).sort(), ['popular', 'track']);
  assert.deepEqual(unhandled, []);
  assert.ok(warned.some((w) => /track\(\) not recorded.*itemId/.test(w)), warned.join('\n'));
  // Code written against the snippet keeps working after the module took its place.
  await globalThis.foresight.call('track', [{ type: 'add_to_cart', itemId: 'sku-00004', quantity: 1 }]);
  await assert.rejects(globalThis.foresight.call('nope', []), (e) => e.code === 'invalid_option');
  assert.deepEqual((await fs.history()).map((e) => e.itemId), ['sku-00003', 'sku-00004']);
  await fs.close();
});

test('when the SDK cannot start, lists still answer and nothing throws into the page', async () => {
  // (An unusable config; a wasm that cannot load fails the same way, but this process has
  // loaded the module already.)
  const fs = Foresight.start({ wasm, catalog, storage: memoryStorage(), storageKey: '' });
  fs.track({ type: 'product_view', itemId: 'sku-00003' });
  await assert.rejects(fs.ready, (e) => e.code === 'invalid_option');
  const recs = await fs.forYou({ k: 3 });
  assert.equal(recs.source, 'popularity');
  assert.match(recs.fallbackReason, /^the SDK could not start: .*storageKey/, 'the reason is the failure, not "still loading"');
  assert.deepEqual(recs.items.map((r) => r.itemId), byPopularity.slice(0, 3).map((i) => i.id));
  await assert.rejects(fs.history(), (e) => e.code === 'invalid_option');
  await fs.close();
});
