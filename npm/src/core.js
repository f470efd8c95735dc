// The SDK in this thread: loads the wasm once and wraps one wasm `Foresight` so every call
// returns a Promise and throws only ForesightErrors. The page uses it directly in main-thread
// mode; worker.js uses it inside the Worker.

import initWasm, { Foresight as WasmForesight } from './wasm/foresight.js';
import { Bundles, bundleUrlsOf } from './bundles.js';
import { ForesightError, InvalidOptionError, toForesightError } from './errors.js';

/** Config keys of this layer; the wasm refuses unknown keys, so they never reach it. */
export const LAYER_KEYS = ['worker', 'wasm', 'wasmUrl', 'tractUrl', 'gpuUrl', 'bundleCache', 'sources'];

/** The methods a page may call, the same in both modes. */
export const METHODS = ['track', 'recommend', 'place', 'variants', 'intent', 'history', 'forget', 'status', 'scoring', 'consent', 'privacy', 'flush', 'stopAutocapture'];

const isNode = typeof process === 'object' && process !== null && typeof process.versions?.node === 'string';

/**
 * Loads the wasm from `wasm` (bytes, a compiled Module, a Response) or `wasmUrl`, else from the
 * file beside this module. The default is written as `new URL('…', import.meta.url)` literally:
 * that is the form Vite (and other bundlers) recognise to ship the file as an asset, and a plain
 * static server resolves it next to this file without any build.
 */
export async function loadWasm({ wasm, wasmUrl } = {}) {
  let source = wasm ?? wasmUrl ?? new URL('./wasm/foresight_bg.wasm', import.meta.url);
  try {
    source = await readable(source);
    await initWasm({ module_or_path: source });
  } catch (e) {
    throw new ForesightError('wasm_load', `could not load the Foresight WebAssembly module (${describeSource(source)}): ${e?.message ?? e}`, { cause: e });
  }
}

/** A string is a URL relative to the page; Node's fetch does not read file: URLs, so read those. */
async function readable(source) {
  if (typeof source === 'string') source = new URL(source, globalThis.document?.baseURI ?? globalThis.location?.href);
  if (source instanceof URL && source.protocol === 'file:' && isNode) {
    // The specifier is a variable so that bundlers do not try to resolve a Node built-in for
    // the browser.
    const fsModule = 'node:fs/promises';
    const { readFile } = await import(/* @vite-ignore */ fsModule);
    return readFile(source);
  }
  return source;
}

/**
 * A wasm module of the package fetched only when the core asks for it: `load` imports its glue
 * (written as a literal `import('./…')` by the caller, so that bundlers ship it as a chunk) and
 * `url` is its wasm. A failure is not kept: a later model may try again (the network may be back).
 */
function lazyModule(load, url, code, what) {
  let pending;
  return () => (pending ??= (async () => {
    let source = url;
    try {
      const module = await load();
      source = await readable(source);
      await module.default({ module_or_path: source });
      return module;
    } catch (e) {
      pending = undefined;
      throw new ForesightError(code, `could not load ${what} (${describeSource(source)}): ${e?.message ?? e}`, { cause: e });
    }
  })());
}

/**
 * The graph runtime (tract, for bundles in the `nnef`/`onnx` formats and inline ONNX models) is a
 * second wasm module beside this one. The wasm calls the returned function only when a model
 * needs it, so a shop whose models run on the SDK's own kernels never downloads it. Both paths
 * are literal so that bundlers ship the files and a static server finds them beside this one.
 */
export function tractLoader({ tractUrl } = {}) {
  return lazyModule(() => import('./tract/foresight_tract.js'), tractUrl ?? new URL('./tract/foresight_tract_bg.wasm', import.meta.url),
    'model_runtime_unavailable', 'the tract module');
}

/**
 * WebGPU scoring (wgpu) is a third wasm module beside this one, for visitor-tower bundles only:
 * the wasm calls the returned function once such a model is loaded, the CPU was not asked for
 * (`scoring: 'cpu'`) and the browser has a WebGPU adapter. Every other page never downloads it.
 */
export function gpuLoader({ gpuUrl } = {}) {
  return lazyModule(() => import('./gpu/foresight_gpu.js'), gpuUrl ?? new URL('./gpu/foresight_gpu_bg.wasm', import.meta.url),
    'gpu_unavailable', 'the WebGPU module');
}

/** Resolves in a new task, after the browser had a chance to handle input and paint. */
function nextTask() {
  if (typeof globalThis.scheduler?.yield === 'function') return globalThis.scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function describeSource(source) {
  if (source instanceof URL) return source.href;
  if (typeof source === 'string') return source;
  if (typeof WebAssembly !== 'undefined' && source instanceof WebAssembly.Module) return 'a WebAssembly.Module';
  if (source && typeof source.byteLength === 'number') return `${source.byteLength} bytes`;
  return typeof source;
}

/** Config minus this layer's own keys, checked enough to give a clear error. */
export function checkConfig(config) {
  if (config === undefined || config === null) return {};
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidOptionError('invalid_option', 'invalid config: pass an object', { field: 'config' });
  }
  if (config.bundleCache !== undefined && typeof config.bundleCache !== 'boolean') {
    throw new InvalidOptionError('invalid_option', 'invalid config: bundleCache must be true or false', { field: 'bundleCache' });
  }
  const rest = { ...config };
  for (const k of LAYER_KEYS) delete rest[k];
  return rest;
}

/** One SDK instance in this thread. */
export class DirectEngine {
  #inner;
  #bundles;

  constructor(inner, bundles) {
    this.#inner = inner;
    this.#bundles = bundles;
  }

  /** `config` holds only wasm keys (plus this layer's, used here and dropped). */
  static async create(config) {
    const options = config ?? {};
    // Bundles download (or come from the cache) while the wasm compiles.
    const urls = typeof options === 'object' ? bundleUrlsOf(options) : null;
    const bundles = urls && new Bundles(urls, { onProgress: options.onProgress, publicKey: options.publicKey, cache: options.bundleCache });
    await loadWasm(options);
    const rest = checkConfig(config);
    let entries = [];
    let first = 0;
    if (bundles) {
      entries = await bundles.ready;
      delete rest.bundleUrl;
      delete rest.bundleUrls;
      first = rest.bundles?.length ?? 0;
      rest.bundles = [...(rest.bundles ?? []), ...entries.filter((e) => e.bytes).map((e) => e.bytes)];
    }
    // The wasm reads the config, verifies each bundle and builds each model in tasks of its
    // own; this one only ends the download's.
    await nextTask();
    let inner;
    try {
      inner = await WasmForesight.init({ loadTract: tractLoader(options), loadGpu: gpuLoader(options), ...rest });
    } catch (e) {
      throw toForesightError(e);
    }
    bundles?.settle(entries, inner, first);
    // The wasm built the models in tasks of their own; the page's code after `init` (its first
    // `track` and `recommend`, rendering) gets one too, so no task runs over 50 ms in
    // main-thread mode.
    await nextTask();
    return new DirectEngine(inner, entries);
  }

  /** Runs one method; synchronous wasm calls and `flush`'s promise alike become a Promise. */
  async call(method, args) {
    if (!METHODS.includes(method)) throw new ForesightError('internal', `no such method: ${method}`);
    // `recommendAsync` lets the WebGPU build select candidates on the GPU; older wasm lacks it.
    const name = method === 'recommend' && typeof this.#inner.recommendAsync === 'function' ? 'recommendAsync' : method;
    try {
      const value = await this.#inner[name](...args);
      // What became of each bundle URL: where it came from, and its background revalidation.
      if (method === 'status' && this.#bundles.length > 0) value.bundles = this.#bundles.map((e) => e.view());
      return value;
    } catch (e) {
      throw toForesightError(e);
    }
  }

  close() {
    // Frees the wasm-side instance: its pagehide listener and autocapture go with it.
    this.#inner.free();
  }
}
