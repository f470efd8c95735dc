// Worker mode, the Worker side: the wasm SDK runs here so model loading and inference never
// block the page's main thread. index.js (the page side) posts
//   {id, op: 'init', config, wasm?, wasmUrl?, tractUrl?, gpuUrl?, bundleCache?, snapshot, signals, progress}
//   {id, op: 'call', method, args}
// and gets back, in order:
//   {kind: 'storage', op: 'set' | 'remove', key, value?}   every write, for localStorage
//   {kind: 'progress', event}                              bundle download progress
//   {kind: 'reply', id, ok, value | error: {code, message, field?}}
// A Worker has no localStorage, so the SDK gets a storage hook over a Map seeded with the page's
// entries; each write goes back to the page before the reply of the call that made it, so when
// a call's promise resolves its writes are already in the page's localStorage.

import { DirectEngine } from './core.js';
import { ForesightError, serializeError } from './errors.js';

/** @type {DirectEngine | null} */
let engine = null;

const post = (message) => self.postMessage(message);

function storageOver(snapshot) {
  const entries = new Map(snapshot);
  return {
    get: (key) => (entries.has(key) ? entries.get(key) : null),
    set: (key, value) => {
      entries.set(key, String(value));
      post({ kind: 'storage', op: 'set', key, value: String(value) });
    },
    remove: (key) => {
      entries.delete(key);
      post({ kind: 'storage', op: 'remove', key });
    },
  };
}

/**
 * The SDK reads Global Privacy Control and Do-Not-Track from `navigator`; a Worker's navigator
 * lacks `doNotTrack`, and an absent signal would read as "no opt-out". The page's values are
 * copied on as own properties (they shadow the WorkerNavigator getters).
 */
function mirrorSignals(signals) {
  const nav = globalThis.navigator;
  if (!nav || !signals) return;
  for (const [name, value] of Object.entries(signals)) {
    try {
      Object.defineProperty(nav, name, { value, configurable: true });
    } catch {
      // A locked-down navigator: the SDK then reads the worker's own values.
    }
  }
}

async function init(message) {
  if (engine) throw new ForesightError('internal', 'this worker is already initialised');
  mirrorSignals(message.signals);
  const config = { ...message.config, storage: storageOver(message.snapshot ?? []) };
  if (message.progress) config.onProgress = (event) => post({ kind: 'progress', event });
  if (message.wasm !== undefined) config.wasm = message.wasm;
  if (message.wasmUrl !== undefined) config.wasmUrl = message.wasmUrl;
  if (message.tractUrl !== undefined) config.tractUrl = message.tractUrl;
  if (message.gpuUrl !== undefined) config.gpuUrl = message.gpuUrl;
  if (message.bundleCache !== undefined) config.bundleCache = message.bundleCache;
  engine = await DirectEngine.create(config);
}

self.addEventListener('message', async (event) => {
  const message = event.data;
  if (!message || typeof message.id !== 'number') return;
  try {
    let value;
    if (message.op === 'init') {
      value = await init(message);
    } else if (message.op === 'call') {
      if (!engine) throw new ForesightError('internal', 'the worker was called before init');
      value = await engine.call(message.method, message.args ?? []);
    } else {
      throw new ForesightError('internal', `unknown worker op: ${message.op}`);
    }
    post({ kind: 'reply', id: message.id, ok: true, value });
  } catch (e) {
    post({ kind: 'reply', id: message.id, ok: false, error: serializeError(e) });
  }
});
