// foresight-sdk in the calling thread, on the real wasm and the repository's fixture models.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  Foresight,
  ForesightError,
  InvalidEventError,
  InvalidOptionError,
  NoModelError,
  BundleError,
} from 'foresight-sdk';
import { catalog, fixtures, gruModel, gruReference, intentModel, memoryStorage, publicKey, serveBundles, wasm } from './helpers.mjs';

function init(extra = {}) {
  return Foresight.init({
    wasm,
    catalog,
    recommender: { model: gruModel },
    intent: { model: intentModel },
    storage: memoryStorage(),
    ...extra,
  });
}

test('recommendations match the onnxruntime reference through the typed API', async () => {
  const fs = await init();
  const cases = gruReference.cases.filter((c) => !c.item_ids.some((id, i) => id === c.item_ids[i - 1]));
  assert.ok(cases.length >= 4, 'enough reference cases without back-to-back repeats');
  for (const c of cases) {
    await fs.forget();
    for (const itemId of c.item_ids) await fs.track({ type: 'product_view', itemId });
    const recs = await fs.recommend({ k: 20 });
    assert.equal(recs.source, 'model', c.name);
    assert.equal(recs.fallbackReason, undefined);
    assert.deepEqual(recs.items.map((r) => r.itemId), c.top20.map((r) => r.id), c.name);
    for (const [got, want] of recs.items.map((r, i) => [r, c.top20[i]])) {
      assert.ok(Math.abs(got.score - want.score) <= 1e-4, `${c.name}: ${got.itemId} ${got.score} vs ${want.score}`);
      assert.equal(got.because.kind, 'recent_event');
      assert.ok(c.item_ids.includes(got.because.itemId), 'credited to an item the visitor viewed');
      assert.match(got.because.text, /^because you viewed sku-/);
    }
  }
  await fs.close();
});

test('an invalid event rejects with InvalidEventError naming the field', async () => {
  const fs = await init();
  const empty = await fs.track({ type: 'product_view', itemId: '' }).then(() => null, (e) => e);
  assert.ok(empty instanceof InvalidEventError, `got ${empty}`);
  assert.ok(empty instanceof ForesightError);
  assert.ok(empty instanceof Error);
  assert.equal(empty.code, 'invalid_event');
  assert.equal(empty.name, 'InvalidEventError');
  assert.equal(empty.field, 'itemId');
  assert.match(empty.message, /itemId/);

  await assert.rejects(fs.track({ type: 'add_to_cart', itemId: 'sku-00001', quantity: 1.5 }), (e) => {
    return e instanceof InvalidEventError && e.field === 'quantity' && /quantity/.test(e.message);
  });
  await assert.rejects(fs.track({ type: 'teleport' }), (e) => e instanceof InvalidEventError && /teleport/.test(e.message));
  await assert.rejects(fs.track(undefined), InvalidEventError);
  assert.deepEqual(await fs.history(), [], 'nothing invalid was stored');
  await fs.close();
});

test('an unknown config field rejects with InvalidOptionError naming it', async () => {
  const err = await init({ recomender: { model: gruModel } }).then(() => null, (e) => e);
  assert.ok(err instanceof InvalidOptionError, `got ${err}`);
  assert.equal(err.code, 'invalid_option');
  assert.equal(err.field, 'recomender');
  assert.match(err.message, /recomender/);
  await assert.rejects(init({ storage: { get() {} } }), (e) => e instanceof InvalidOptionError && /storage\.set/.test(e.message));
  await assert.rejects(Foresight.init('nope'), InvalidOptionError);
});

test('bad call options reject with InvalidOptionError', async () => {
  const fs = await init();
  await assert.rejects(fs.recommend({ k: 0 }), (e) => e instanceof InvalidOptionError && e.field === 'k');
  await assert.rejects(fs.recommend({ count: 3 }), (e) => e instanceof InvalidOptionError && /count/.test(e.message));
  await assert.rejects(fs.consent('maybe'), (e) => e instanceof InvalidOptionError && /maybe/.test(e.message));
  await assert.rejects(fs.consent(true), InvalidOptionError);
  await fs.close();
});

test('history survives re-init over the same storage; forget erases it', async () => {
  const storage = memoryStorage();
  const first = await init({ storage });
  await first.track({ type: 'product_view', itemId: 'sku-00042', category: 'cat-01', price: 9.5 });
  await first.track({ type: 'add_to_cart', itemId: 'sku-00042' });
  await first.consent('granted');
  await first.close();
  assert.ok(storage.entries.get('foresight.events')?.includes('sku-00042'), 'written through the hook');

  const second = await init({ storage });
  const history = await second.history();
  assert.deepEqual(history.map((e) => [e.type, e.itemId]), [['product_view', 'sku-00042'], ['add_to_cart', 'sku-00042']]);
  assert.equal(history[1].quantity, 1, 'stored events are normalised');
  assert.equal(typeof history[0].at, 'number');
  assert.equal((await second.status()).events, 2);
  assert.equal((await second.privacy()).consent, 'granted', 'consent is kept on the device too');

  await second.forget();
  assert.deepEqual(await second.history(), []);
  await second.close();
  const third = await init({ storage });
  assert.deepEqual(await third.history(), [], 'forgotten on the device, not only in memory');
  const recs = await third.recommend({ k: 3 });
  assert.equal(recs.source, 'popularity');
  assert.equal(recs.items[0].because.kind, 'popular_now');
  await third.close();
});

test('a storage hook whose set throws QuotaExceededError gets the quota handling', async () => {
  const storage = memoryStorage();
  const limit = 1500;
  const set = storage.set;
  storage.set = (key, value) => {
    if (value.length > limit) throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
    set(key, value);
  };
  const fs = await init({ storage });
  for (let i = 0; i < 40; i++) await fs.track({ type: 'product_view', itemId: `sku-${String(i).padStart(5, '0')}` });
  const stored = storage.entries.get('foresight.events');
  assert.ok(stored.length <= limit);
  // A full quota evicts the oldest events and keeps writing; "unavailable" would keep all 40
  // in memory and leave the stored copy stale.
  assert.ok(stored.includes('sku-00039'), 'the newest event is on the device');
  const history = await fs.history();
  assert.ok(history.length < 40, `oldest evicted (${history.length} left)`);
  assert.equal(history.at(-1).itemId, 'sku-00039');
  await fs.close();
});

test('intent() without an intent model rejects with NoModelError', async () => {
  const fs = await init({ intent: undefined });
  await fs.track({ type: 'product_view', itemId: 'sku-00001' });
  const err = await fs.intent().then(() => null, (e) => e);
  assert.ok(err instanceof NoModelError, `got ${err}`);
  assert.equal(err.code, 'no_model');
  assert.equal((await fs.status()).intent.state, 'absent');
  await fs.close();

  const withModel = await init();
  await withModel.track({ type: 'product_view', itemId: 'sku-00001', price: 20, category: 'cat-03' });
  const score = await withModel.intent();
  assert.ok(score.probability > 0 && score.probability < 1);
  assert.ok(score.features.length > 0 && score.features.every((f) => typeof f.name === 'string' && Number.isFinite(f.value)));
  await withModel.close();
});

test('signed bundles download with progress; a wrong key falls back to popularity', async () => {
  const server = await serveBundles();
  try {
    const progress = [];
    const fs = await Foresight.init({
      wasm,
      storage: memoryStorage(),
      bundleUrls: [`${server.url}session_gru.fsb`, `${server.url}intent_logreg.fsb`],
      publicKey,
      onProgress: (p) => progress.push(p),
    });
    const status = await fs.status();
    assert.equal(status.recommender.state, 'ready', JSON.stringify(status));
    assert.equal(status.intent.state, 'ready');
    const gru = progress.filter((p) => p.url.endsWith('session_gru.fsb'));
    assert.ok(gru.length >= 2, 'progress after each chunk');
    assert.equal(gru.at(-1).loaded, gru.at(-1).total);
    await fs.track({ type: 'product_view', itemId: 'sku-02235' });
    const recs = await fs.recommend({ k: 1 });
    assert.equal(recs.source, 'model');
    assert.equal(recs.items[0].itemId, gruReference.cases[0].top20[0].id);
    await fs.close();

    // A bundle signed by someone else: init still resolves, status says why, fallback answers.
    const otherKey = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x, 'base64url').toString('base64');
    const refused = await Foresight.init({ wasm, catalog, storage: memoryStorage(), bundleUrl: `${server.url}session_gru.fsb`, publicKey: otherKey });
    const st = await refused.status();
    assert.equal(st.recommender.state, 'failed');
    assert.match(st.recommender.code, /^bundle_/);
    assert.equal((await refused.recommend({ k: 2 })).source, 'popularity');
    await refused.close();
  } finally {
    await server.close();
  }
});

test('bundle bytes that are not a bundle are a failed status, not an exception', async () => {
  const fs = await Foresight.init({ wasm, catalog, storage: memoryStorage(), bundles: [new Uint8Array([1, 2, 3])] });
  const st = await fs.status();
  assert.equal(st.recommender.state, 'failed');
  assert.match(st.recommender.code, /^bundle_/);
  // The class the code maps to, should a caller build one from a status.
  assert.ok(new BundleError(st.recommender.code, st.recommender.error) instanceof ForesightError);
  await fs.close();
});

test('calls after close() reject with code "closed"', async () => {
  const fs = await init();
  await fs.close();
  await assert.rejects(fs.recommend(), (e) => e instanceof ForesightError && e.code === 'closed');
});

test('the wasm loads from the default URL beside the module (file: in Node)', async () => {
  const fs = await Foresight.init({ storage: memoryStorage(), catalog });
  assert.equal((await fs.recommend({ k: 1 })).source, 'popularity');
  await fs.close();
});

test('every placement answers through the typed API, and contradictory rules reject init', async () => {
  const fs = await init({ rules: { maxPerCategory: 2, pins: [{ itemId: 'sku-00300', position: 1 }] } });
  for (const itemId of ['sku-00010', 'sku-00011', 'sku-00012']) await fs.track({ type: 'product_view', itemId });
  const lists = {
    forYou: await fs.forYou({ k: 6 }),
    similarTo: await fs.similarTo('sku-00010', { k: 6 }),
    boughtTogether: await fs.boughtTogether(['sku-00010', 'sku-00011'], { k: 6 }),
    popular: await fs.popular({ k: 6 }),
    trending: await fs.trending({ k: 6 }),
    recentlyViewed: await fs.recentlyViewed({ k: 6 }),
  };
  const category = new Map(catalog.map((i) => [i.id, i.category]));
  for (const [name, list] of Object.entries(lists)) {
    assert.equal(list.placement, name);
    assert.ok(list.items.length > 0 && typeof list.id === 'string', name);
    if (name !== 'recentlyViewed') {
      assert.equal(list.items[0].itemId, 'sku-00300', `${name}: the pin holds position 1`);
      assert.equal(list.items[0].because.kind, 'pinned');
    }
    const counts = {};
    for (const r of list.items.slice(name === 'recentlyViewed' ? 0 : 1)) counts[category.get(r.itemId)] = (counts[category.get(r.itemId)] ?? 0) + 1;
    assert.ok(Object.values(counts).every((n) => n <= 2), `${name}: at most 2 per category ${JSON.stringify(counts)}`);
  }
  assert.deepEqual(lists.recentlyViewed.items.map((r) => r.itemId), ['sku-00012', 'sku-00011', 'sku-00010']);
  assert.equal(lists.similarTo.items[1].because.kind, 'similar_to');
  const page = ['sku-00001', 'sku-00002', 'sku-00003', 'sku-00004'];
  const reranked = await fs.rerank(page, { blend: 1 });
  assert.deepEqual([...reranked.items.map((r) => r.itemId)].sort(), page);
  await assert.rejects(fs.place({ type: 'sideways' }), (e) => e instanceof InvalidOptionError);
  await fs.close();

  const bad = await init({ rules: { filter: { minPrice: 50, maxPrice: 10 }, maxPerCategory: 0 } }).then(() => null, (e) => e);
  assert.ok(bad instanceof InvalidOptionError, `got ${bad}`);
  assert.match(bad.message, /minPrice 50 is above filter.maxPrice 10/);
  assert.match(bad.message, /maxPerCategory 0/);
});

test('a visitor-tower bundle recommends on the CPU where there is no WebGPU, and scoring() says why', async () => {
  const server = await serveBundles();
  try {
    const fs = await Foresight.init({ wasm, storage: memoryStorage(), bundleUrl: `${server.url}session_tower.fsb`, publicKey, scoring: 'gpu' });
    let choice = await fs.scoring();
    for (let i = 0; i < 100 && !choice.ready; i++) {
      await new Promise((r) => setTimeout(r, 20));
      choice = await fs.scoring();
    }
    assert.equal(choice.ready, true);
    assert.equal(choice.backend, 'cpu');
    assert.match(choice.reason, /WebGPU/);
    for (const id of ['sku-00042', 'sku-00777', 'sku-01234']) await fs.track({ type: 'product_view', itemId: id });
    const recs = await fs.recommend({ k: 5 });
    assert.equal(recs.source, 'model');
    assert.equal(recs.items.length, 5);
    await fs.close();

    const plain = await Foresight.init({ wasm, catalog, storage: memoryStorage(), recommender: { model: gruModel } });
    const c = await plain.scoring();
    assert.deepEqual([c.backend, c.ready], ['cpu', true]);
    assert.match(c.reason, /no item embeddings/);
    await plain.close();

    const bad = await Foresight.init({ wasm, catalog, storage: memoryStorage(), scoring: 'tpu' }).then(() => null, (e) => e);
    assert.equal(bad?.code, 'invalid_option', `got ${bad}`);
  } finally {
    await server.close();
  }
});

test('signatures are checked by WebCrypto: a changed manifest is refused, and without Ed25519 the refusal says why', async () => {
  const good = new Uint8Array(readFileSync(`${fixtures}bundles/session_gru.fsb`));
  const ok = await Foresight.init({ wasm, catalog, storage: memoryStorage(), bundles: [good], publicKey });
  assert.equal((await ok.status()).recommender.state, 'ready');
  await ok.close();

  // One letter of the manifest changed, still valid JSON: only the signature can tell.
  const changed = good.slice();
  const at = Buffer.from(changed).indexOf('foresight-export');
  assert.ok(at > 0, 'the manifest names its converter');
  changed[at] = 'F'.charCodeAt(0);
  const tampered = await Foresight.init({ wasm, catalog, storage: memoryStorage(), bundles: [changed], publicKey });
  const st = await tampered.status();
  assert.equal(st.recommender.state, 'failed');
  assert.equal(st.recommender.code, 'bundle_tampered', st.recommender.error);
  await tampered.close();

  // A runtime whose WebCrypto lacks Ed25519 (Chrome before 137): the core has no ed25519 of its
  // own, so the bundle is refused with a code and a reason, and the page goes on.
  const subtle = globalThis.crypto.subtle;
  const importKey = subtle.importKey;
  subtle.importKey = async (format, key, algorithm, ...rest) => {
    if ((algorithm?.name ?? algorithm) === 'Ed25519') throw new DOMException('Unrecognized name.', 'NotSupportedError');
    return importKey.call(subtle, format, key, algorithm, ...rest);
  };
  try {
    const old = await Foresight.init({ wasm, catalog, storage: memoryStorage(), bundles: [good], publicKey });
    const st = await old.status();
    assert.equal(st.recommender.state, 'failed');
    assert.equal(st.recommender.code, 'bundle_unverifiable');
    assert.match(st.recommender.error, /WebCrypto has no Ed25519/);
    await old.close();
  } finally {
    subtle.importKey = importKey;
  }
});
