// The core wasm has no graph runtime: tract is a second module, loaded only when a model is a
// graph (NNEF/ONNX). These tests watch the loader the wasm calls (`loadTract`, overridable in
// the config) to see when it is and is not fetched, and what a page gets when it cannot be.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import { Foresight } from 'foresight-sdk';
import { catalog, fixtures, gruModel, memoryStorage, publicKey, wasm } from './helpers.mjs';

const bundle = (name) => fs.readFileSync(`${fixtures}bundles/${name}`);
const formatOf = (bytes) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + view.getUint32(12, true)))).model.format;
};

/** A loader that records its calls and then does what `then` says. */
function spy(then) {
  const calls = [];
  const loadTract = () => {
    calls.push(new Date());
    return then();
  };
  return { calls, loadTract };
}

test('bundles on the SDK\'s own kernels (gru, linear) never fetch the tract module', async () => {
  const gru = bundle('session_gru.fsb');
  const intent = bundle('intent_logreg.fsb');
  assert.equal(formatOf(gru), 'gru', 'the fixture recommender is a kernel bundle');
  assert.equal(formatOf(intent), 'linear', 'the fixture intent model is a kernel bundle');
  const { calls, loadTract } = spy(() => Promise.reject(new Error('must not be called')));
  const fs_ = await Foresight.init({ wasm, bundles: [gru, intent], publicKey, storage: memoryStorage(), loadTract });
  for (const itemId of ['sku-00003', 'sku-00017', 'sku-00042']) await fs_.track({ type: 'product_view', itemId });
  const recs = await fs_.recommend({ k: 10 });
  assert.equal(recs.source, 'model');
  assert.equal(recs.items.length, 10);
  const status = await fs_.status();
  assert.equal(status.recommender.state, 'ready');
  assert.equal(status.intent.state, 'ready');
  const p = await fs_.intent();
  assert.ok(p.probability >= 0 && p.probability <= 1, `intent ${JSON.stringify(p)}`);
  assert.equal(calls.length, 0, 'loadTract was called');
  await fs_.close();
});

test('a graph bundle loads the tract module once, from beside the package, and runs on it', async () => {
  const tower = bundle('session_tower.fsb');
  assert.equal(formatOf(tower), 'nnef');
  const fs_ = await Foresight.init({ wasm, bundles: [tower], publicKey, storage: memoryStorage() });
  for (const itemId of ['sku-00003', 'sku-00017']) await fs_.track({ type: 'product_view', itemId });
  const recs = await fs_.recommend({ k: 5 });
  assert.equal(recs.source, 'model', JSON.stringify(await fs_.status()));
  assert.equal((await fs_.status()).recommender.state, 'ready');
  await fs_.close();
});

test('when the tract module cannot be fetched, the status says so and the page gets popularity', async () => {
  const { calls, loadTract } = spy(() => Promise.reject(new Error('net::ERR_BLOCKED_BY_CLIENT')));
  const fs_ = await Foresight.init({ wasm, catalog, recommender: { model: gruModel }, storage: memoryStorage(), loadTract });
  assert.equal(calls.length, 1);
  const status = await fs_.status();
  assert.equal(status.recommender.state, 'failed');
  assert.equal(status.recommender.code, 'model_runtime_unavailable');
  assert.match(status.recommender.error, /tract module could not be loaded.*ERR_BLOCKED_BY_CLIENT/);
  await fs_.track({ type: 'product_view', itemId: 'sku-00003' });
  const recs = await fs_.recommend({ k: 5 });
  assert.equal(recs.source, 'popularity');
  assert.equal(recs.items.length, 5);
  await fs_.close();
});

test('a tractUrl that does not exist is the same clear failure, not a broken page', async () => {
  const fs_ = await Foresight.init({
    wasm,
    catalog,
    recommender: { model: gruModel },
    storage: memoryStorage(),
    tractUrl: new URL('file:///nonexistent/foresight_tract_bg.wasm'),
  });
  const status = await fs_.status();
  assert.equal(status.recommender.code, 'model_runtime_unavailable');
  assert.match(status.recommender.error, /nonexistent/);
  assert.equal((await fs_.recommend({ k: 3 })).source, 'popularity');
  await fs_.close();
});
