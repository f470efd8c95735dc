// Worker mode (`worker: true`) end to end in Node: the real dist/worker.js runs in a worker
// thread behind a minimal Web Worker facade, and the page's localStorage is a Map.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Worker as ThreadWorker } from 'node:worker_threads';

import { Foresight, ForesightError, InvalidEventError, InvalidOptionError, NoModelError } from 'foresight-sdk';
import { catalog, fakeLocalStorage, gruModel, gruReference, intentModel, publicKey, serveBundles } from './helpers.mjs';

/** The browser's `Worker` as far as the package uses it, over a Node worker thread. */
class FacadeWorker {
  static created = [];
  #thread;
  #listeners = { message: [], error: [], messageerror: [] };

  constructor(url, options) {
    assert.equal(options?.type, 'module', 'the package starts a module worker');
    FacadeWorker.created.push(String(url));
    this.#thread = new ThreadWorker(new URL('./worker-shim.mjs', import.meta.url), { workerData: { script: String(url) } });
    this.#thread.on('message', (data) => this.#listeners.message.forEach((l) => l({ data })));
    this.#thread.on('error', (e) => this.#listeners.error.forEach((l) => l({ message: e.message })));
  }

  addEventListener(type, listener) {
    this.#listeners[type]?.push(listener);
  }

  postMessage(message) {
    this.#thread.postMessage(message);
  }

  terminate() {
    this.#thread.terminate();
  }
}

let local;
before(() => {
  globalThis.Worker = FacadeWorker;
});
after(() => {
  delete globalThis.Worker;
  delete globalThis.localStorage;
});

function freshPage() {
  local = fakeLocalStorage();
  globalThis.localStorage = local;
}

const models = () => ({ catalog, recommender: { model: gruModel }, intent: { model: intentModel } });

test('worker mode: same API, results computed in the worker match the reference', async () => {
  freshPage();
  const before = FacadeWorker.created.length;
  const fs = await Foresight.init({ worker: true, ...models() });
  assert.equal(FacadeWorker.created.length, before + 1, 'a worker was started');
  assert.match(FacadeWorker.created.at(-1), /\/dist\/worker\.js$/);
  const c = gruReference.cases[0];
  for (const itemId of c.item_ids) await fs.track({ type: 'product_view', itemId });
  const recs = await fs.recommend({ k: 5 });
  assert.equal(recs.source, 'model');
  assert.deepEqual(recs.items.map((r) => r.itemId), c.top20.slice(0, 5).map((r) => r.id));
  const intent = await fs.intent();
  assert.ok(intent.probability > 0 && intent.probability < 1);
  assert.equal((await fs.status()).recommender.state, 'ready');
  await fs.close();
});

test('worker mode: writes reach the page\'s localStorage before the call resolves; history survives a reload', async () => {
  freshPage();
  local.setItem('unrelated', 'keep out of the worker');
  const first = await Foresight.init({ worker: true, ...models() });
  await first.track({ type: 'product_view', itemId: 'sku-00042' });
  assert.ok(local.getItem('foresight.events')?.includes('sku-00042'), 'on disk when track() resolved');
  await first.consent('granted');
  assert.ok(local.getItem('foresight.events.consent'), 'prefixed keys are mirrored too');
  await first.close();

  // A "reload": a new worker, seeded from localStorage.
  const second = await Foresight.init({ worker: true, ...models() });
  assert.deepEqual((await second.history()).map((e) => e.itemId), ['sku-00042']);
  assert.equal((await second.privacy()).consent, 'granted');
  await second.forget();
  assert.ok(!(local.getItem('foresight.events') ?? '').includes('sku-00042'), 'forget reaches the page');
  assert.equal(local.getItem('unrelated'), 'keep out of the worker');
  await second.close();
});

test('worker mode: errors come back as the same subclasses with their codes', async () => {
  freshPage();
  const fs = await Foresight.init({ worker: true, catalog, recommender: { model: gruModel } });
  const err = await fs.track({ type: 'search', query: '', extra: 1 }).then(() => null, (e) => e);
  assert.ok(err instanceof InvalidEventError, `got ${err}`);
  assert.equal(err.code, 'invalid_event');
  assert.ok(err.field);
  await assert.rejects(fs.intent(), (e) => e instanceof NoModelError && e.code === 'no_model');
  await assert.rejects(fs.recommend({ k: 1000 }), (e) => e instanceof InvalidOptionError && e.field === 'k');
  await fs.close();
  await assert.rejects(fs.history(), (e) => e instanceof ForesightError && e.code === 'closed');

  await assert.rejects(Foresight.init({ worker: true, catalog, storeKey: 'x' }), (e) => e instanceof InvalidOptionError && /storeKey/.test(e.message));
});

test('worker mode refuses autocapture and a storage hook with a clear InvalidOptionError', async () => {
  freshPage();
  const before = FacadeWorker.created.length;
  await assert.rejects(Foresight.init({ worker: true, catalog, autocapture: true }), (e) => e instanceof InvalidOptionError && e.field === 'autocapture' && /track\(\)/.test(e.message));
  await assert.rejects(Foresight.init({ worker: true, catalog, storage: { get() {}, set() {}, remove() {} } }), (e) => e instanceof InvalidOptionError && e.field === 'storage');
  assert.equal(FacadeWorker.created.length, before, 'refused before a worker starts');
});

test('worker mode: bundles are fetched in the worker, with onProgress on the page', async () => {
  freshPage();
  const server = await serveBundles();
  try {
    const progress = [];
    const fs = await Foresight.init({
      worker: true,
      bundleUrls: [`${server.url}session_gru.fsb`, `${server.url}intent_logreg.fsb`],
      publicKey,
      onProgress: (p) => progress.push(p),
    });
    const status = await fs.status();
    assert.equal(status.recommender.state, 'ready', JSON.stringify(status));
    assert.equal(status.intent.state, 'ready');
    const last = progress.filter((p) => p.url === `${server.url}session_gru.fsb`).at(-1);
    assert.ok(last && last.loaded === last.total && last.total > 1_000_000);
    await fs.close();
  } finally {
    await server.close();
  }
});

test('worker mode where there is no Worker rejects with code "worker"', async () => {
  const saved = globalThis.Worker;
  delete globalThis.Worker;
  try {
    await assert.rejects(Foresight.init({ worker: true, catalog }), (e) => e instanceof ForesightError && e.code === 'worker');
  } finally {
    globalThis.Worker = saved;
  }
});
