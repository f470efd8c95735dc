// foresight-sdk: the typed layer over the wasm-bindgen output.
//
// `Foresight.init(config)` runs the SDK in the page's thread (default) or, with
// `worker: true`, in a module Worker so that loading and running models never blocks the page.
// The API is the same in both modes: every method returns a Promise, and every failure is a
// ForesightError subclass carrying the SDK's stable `code`.

import { DirectEngine, METHODS, checkConfig } from './core.js';
import { ForesightError, InvalidOptionError, deserializeError, makeError } from './errors.js';
import { Starting } from './start.js';


export {
  ForesightError,
  InvalidEventError,
  InvalidOptionError,
  ModelError,
  BundleError,
  NoModelError,
  NoConsentError,
  StorageError,
} from './errors.js';

const DEFAULT_STORAGE_KEY = 'foresight.events';

/** The analytics a page's existing events can come from (`sources`, read by ./sources.js). */
const SOURCES = ['ga4', 'segment'];

// Only init may construct an instance: a Foresight always holds a ready engine.
const TOKEN = Symbol('Foresight.init');

export class Foresight {
  #engine;
  #closed = false;
  #stopSources = null;
  #journal = null;

  constructor(token, engine) {
    if (token !== TOKEN) throw new TypeError('use `await Foresight.init(config)`');
    this.#engine = engine;
  }

  /**
   * Opens the visitor's on-device history and loads the models. Rejects only for an unusable
   * config (InvalidOptionError), a wasm that cannot be loaded (code "wasm_load") or a Worker
   * that cannot start (code "worker"); a model that fails to load leaves `status()` saying why
   * and recommendations on the popularity fallback.
   */
  static async init(config = {}) {
    const options = config ?? {};
    if (typeof options !== 'object' || Array.isArray(options)) {
      throw new InvalidOptionError('invalid_option', 'invalid config: pass an object', { field: 'config' });
    }
    const sources = options.sources;
    if (sources !== undefined && (!Array.isArray(sources) || sources.some((s) => !SOURCES.includes(s)))) {
      throw new InvalidOptionError('invalid_option', `invalid config: sources must be an array of ${SOURCES.map((s) => `"${s}"`).join(', ')}`, { field: 'sources' });
    }
    // Loaded only by pages that ask for it, while the engine starts; a module that cannot be
    // fetched leaves the SDK working without its sources.
    const reader = sources?.length
      ? import('./sources.js').catch((e) => {
          console.warn(`[foresight] sources ${JSON.stringify(sources)} are off: their module could not be loaded (${e?.message ?? e})`);
          return null;
        })
      : null;
    const journal = Journal.open(options);
    const engine = options.worker ? await WorkerEngine.create(options, journal) : await DirectEngine.create(options);
    // Events a Worker-mode page tracked but whose write never came back (that page was gone
    // first): recorded now, in either mode.
    for (const entry of journal?.entries() ?? []) {
      await engine.call('track', [entry.event]).catch((e) => console.warn(`[foresight] an event from the previous page could not be recorded: ${e?.message ?? e}`));
      journal.remove(entry.id);
    }
    const fs = new Foresight(TOKEN, engine);
    fs.#journal = journal;
    const module = await reader;
    if (module) {
      // The page's own analytics events, read on the page's side in both modes (the dataLayer
      // and Segment live there).
      fs.#stopSources = module.startSources(sources, (event) => fs.track(event));
    }
    return fs;
  }

  /**
   * A handle usable at once, before the wasm and the models have arrived: calls that change
   * state are queued and replayed in order once `init` resolves, lists come from the config's
   * `catalog` by popularity meanwhile, and nothing throws into the page. `handle.ready`
   * resolves to the Foresight. Calls an inline snippet queued in `window.foresight.q` are
   * replayed first, and the handle takes its place (npm/README.md).
   */
  static start(config = {}) {
    const handle = new Starting(Foresight.init(config), config);
    const snippet = globalThis.foresight;
    if (snippet && typeof snippet === 'object' && Array.isArray(snippet.q)) {
      handle.adopt(snippet);
      globalThis.foresight = handle;
    }
    return handle;
  }

  /** Records what the visitor did. */
  track(event) {
    return this.#call('track', [event]);
  }

  /** `{items, source, fallbackReason?}`. */
  recommend(options = {}) {
    return this.#call('recommend', [options]);
  }

  /** One placement's list: `{type: "forYou" | "similarTo" | "boughtTogether" | "popular" |
   * "trending" | "recentlyViewed" | "buyAgain" | "rerank", ...}` → `{items, source, placement, variant?, id}`. */
  place(request) {
    return this.#call('place', [request]);
  }

  /** The session recommender on the visitor's history (= `recommend`). */
  forYou(options = {}) {
    return this.place({ ...options, type: 'forYou' });
  }

  /** What visitors look at after `itemId` (product page: "you may also like"). */
  similarTo(itemId, options = {}) {
    return this.place({ ...options, type: 'similarTo', itemId });
  }

  /** What goes with these items (cart page: "complete your order"). */
  boughtTogether(itemIds, options = {}) {
    return this.place({ ...options, type: 'boughtTogether', itemIds });
  }

  /** The catalog's most popular items, optionally of one category. */
  popular(options = {}) {
    return this.place({ ...options, type: 'popular' });
  }

  /** Rising lately (the catalog's `trend`), optionally of one category. */
  trending(options = {}) {
    return this.place({ ...options, type: 'trending' });
  }

  /** The visitor's own recently viewed items, newest first. */
  recentlyViewed(options = {}) {
    return this.place({ ...options, type: 'recentlyViewed' });
  }

  /** What the visitor is likely to buy again: their own purchases (recency- and
   * frequency-weighted, on the device), then popular items. */
  buyAgain(options = {}) {
    return this.place({ ...options, type: 'buyAgain' });
  }

  /** A personal reordering of the page's own list (search results, a category page). */
  rerank(itemIds, options = {}) {
    return this.place({ ...options, type: 'rerank', itemIds });
  }

  /** The visitor's experiment variants, `{experiment: variant}` (kept on the device). */
  variants() {
    return this.#call('variants', []);
  }

  /** `{probability, features}` for the current session; NoModelError without an intent model. */
  intent() {
    return this.#call('intent', []);
  }

  /** Everything stored about the visitor on this device, oldest first. */
  history() {
    return this.#call('history', []);
  }

  /** Erases the visitor's history from this device. */
  forget() {
    return this.#call('forget', []).then((v) => {
      this.#journal?.clear();
      return v;
    });
  }

  /** Model states, number of stored events, whether autocapture runs. */
  status() {
    return this.#call('status', []);
  }

  /** `{backend, reason, adapter?, cpuMs?, gpuMs?, ready}`: which path scores item embeddings. */
  scoring() {
    return this.#call('scoring', []);
  }

  /** `"granted" | "denied" | "unknown"`, kept on the device. */
  consent(state) {
    if (typeof state !== 'string') {
      return Promise.reject(makeError('invalid_option', `consent must be "granted", "denied" or "unknown", got ${typeof state}`, { field: 'consent' }));
    }
    return this.#call('consent', [state]);
  }

  /** What may leave the device and what did. */
  privacy() {
    return this.#call('privacy', []);
  }

  /** Prepares today's report if allowed and sends what is due; never rejects for the network. */
  flush() {
    return this.#call('flush', []);
  }

  /** Stops DOM autocapture; the instance keeps working for explicit calls. */
  stopAutocapture() {
    return this.#call('stopAutocapture', []);
  }

  /** Releases the instance (the wasm memory, or the Worker). Later calls reject with code "closed". */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopSources?.();
    this.#engine.close();
  }

  #call(method, args) {
    if (this.#closed) return Promise.reject(new ForesightError('closed', `Foresight.${method}() after close()`));
    return this.#engine.call(method, args);
  }
}

/** localStorage, or null where the page may not use it (sandboxed iframe, privacy modes). */
function pageStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function absolute(url) {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  if (url instanceof URL) return url.href;
  if (typeof url !== 'string' || base === undefined) return url;
  try {
    return new URL(url, base).href;
  } catch {
    return url; // the SDK reports the bad URL itself
  }
}

/**
 * Worker mode, the page side: a proxy that posts each call with a request id to worker.js and
 * settles its promise from the reply, writes the Worker's storage changes to localStorage, and
 * relays download progress.
 */
class WorkerEngine {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #failure = null;
  #onPagehide = null;
  #journal = null;

  static async create(options, journal) {
    const rest = checkConfig(options);
    // Functions cannot be posted to a Worker; these two are refused rather than dropped.
    if (rest.storage !== undefined) {
      throw new InvalidOptionError('invalid_option', 'invalid storage: a storage hook cannot be used with `worker`; Worker mode keeps the history in the page\'s localStorage', { field: 'storage' });
    }
    if (rest.autocapture) {
      throw new InvalidOptionError(
        'invalid_option',
        'invalid autocapture: DOM autocapture needs the page\'s document and is not available with `worker`; call track() from the page, or drop `worker`',
        { field: 'autocapture' },
      );
    }
    const onProgress = rest.onProgress;
    if (onProgress !== undefined && onProgress !== null && typeof onProgress !== 'function') {
      throw new InvalidOptionError('invalid_option', 'invalid config: onProgress must be a function', { field: 'onProgress' });
    }
    delete rest.onProgress;
    // A Worker resolves relative URLs against its own script, not the page: resolve them here,
    // and report progress under the URL the page gave, as in main-thread mode.
    const givenUrl = new Map();
    const resolve = (url) => {
      const full = absolute(url);
      if (typeof full === 'string') givenUrl.set(full, url);
      return full;
    };
    if (typeof rest.bundleUrl === 'string') rest.bundleUrl = resolve(rest.bundleUrl);
    if (Array.isArray(rest.bundleUrls)) rest.bundleUrls = rest.bundleUrls.map(resolve);
    if (rest.collector && typeof rest.collector === 'object' && typeof rest.collector.url === 'string') {
      rest.collector = { ...rest.collector, url: absolute(rest.collector.url) };
    }

    const storageKey = typeof rest.storageKey === 'string' ? rest.storageKey : DEFAULT_STORAGE_KEY;
    const local = pageStorage();
    const snapshot = [];
    if (local) {
      // The SDK's keys are the storage key and `<storageKey>.<suffix>` (consent, outbox, …).
      for (let i = 0; i < local.length; i++) {
        const key = local.key(i);
        if (key === storageKey || key?.startsWith(`${storageKey}.`)) snapshot.push([key, local.getItem(key)]);
      }
    } else {
      console.warn('[foresight] localStorage is not available; history is kept for this page only');
    }
    const nav = globalThis.navigator;
    const signals = {
      globalPrivacyControl: nav?.globalPrivacyControl === true,
      doNotTrack: nav?.doNotTrack ?? null,
    };

    const choice = options.worker;
    if (typeof Worker !== 'function') {
      throw new ForesightError('worker', 'Web Workers are not available here; init without `worker`');
    }
    let worker;
    try {
      worker = typeof choice === 'object' && choice !== null && choice.url
        ? new Worker(choice.url, { type: 'module' })
        // Written out in full: bundlers (Vite) recognise exactly this form and bundle the worker.
        : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    } catch (e) {
      // e.g. a SecurityError for a worker URL on another origin.
      throw new ForesightError('worker', `the Foresight worker could not be started: ${e?.message ?? e}`, { cause: e });
    }
    const progress = typeof onProgress === 'function'
      ? (event) => onProgress({ ...event, url: givenUrl.get(event.url) ?? event.url })
      : undefined;
    const engine = new WorkerEngine(worker, local, progress, journal);
    const message = { op: 'init', config: rest, snapshot, signals, progress: typeof onProgress === 'function' };
    if (options.wasm !== undefined) message.wasm = options.wasm;
    if (options.wasmUrl !== undefined) message.wasmUrl = absolute(options.wasmUrl);
    if (options.tractUrl !== undefined) message.tractUrl = absolute(options.tractUrl);
    if (options.gpuUrl !== undefined) message.gpuUrl = absolute(options.gpuUrl);
    if (options.bundleCache !== undefined) message.bundleCache = options.bundleCache;
    try {
      await engine.#send(message);
    } catch (e) {
      worker.terminate();
      throw e;
    }

    if (rest.collector && typeof globalThis.addEventListener === 'function') {
      // The page-thread SDK sends the day's report by sendBeacon on pagehide. A Worker has no
      // sendBeacon, so the Worker is asked to flush with fetch(keepalive) instead. If the
      // document is being discarded the Worker may be stopped before the request starts; the
      // report stays queued on the device and the next page's init sends it (each report
      // carries an idempotency key, so a resend is counted once).
      engine.#onPagehide = () => {
        engine.call('flush', []).catch(() => {});
      };
      globalThis.addEventListener('pagehide', engine.#onPagehide);
    }
    return engine;
  }

  constructor(worker, local, onProgress, journal) {
    this.#worker = worker;
    this.#journal = journal;
    worker.addEventListener('message', (event) => this.#receive(event.data, local, onProgress));
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      this.#fail(new ForesightError('worker', `the Foresight worker failed: ${event.message ?? 'it could not be loaded'}`));
    });
    worker.addEventListener('messageerror', () => {
      this.#fail(new ForesightError('worker', 'a message from the Foresight worker could not be read'));
    });
  }

  #receive(message, local, onProgress) {
    if (!message) return;
    switch (message.kind) {
      case 'storage':
        if (!local) return;
        try {
          if (message.op === 'set') local.setItem(message.key, message.value);
          else local.removeItem(message.key);
        } catch (e) {
          // The Worker's copy already holds the write; only persistence across reloads is lost.
          console.warn(`[foresight] could not save to localStorage (${e?.name ?? e}); this page keeps the history in memory`);
        }
        return;
      case 'progress':
        if (typeof onProgress === 'function') {
          try {
            onProgress(message.event);
          } catch (e) {
            console.warn('[foresight] onProgress threw:', e);
          }
        }
        return;
      case 'reply': {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(deserializeError(message.error));
        return;
      }
    }
  }

  #fail(error) {
    this.#failure ??= error;
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  #send(message) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage({ ...message, id });
      } catch (e) {
        this.#pending.delete(id);
        // A DataCloneError: something in the config or arguments cannot cross to the Worker.
        reject(new InvalidOptionError('invalid_option', `invalid ${message.op === 'init' ? 'config' : 'argument'}: it cannot be sent to the worker (${e?.message ?? e})`, { cause: e }));
      }
    });
  }

  call(method, args) {
    if (!METHODS.includes(method)) return Promise.reject(new ForesightError('internal', `no such method: ${method}`));
    const journaled = method === 'track' ? this.#journal?.add(args[0]) : null;
    const reply = this.#send({ op: 'call', method, args });
    if (journaled) {
      // The Worker's storage write reaches the page before its reply: from then on the event is
      // in localStorage, and the journal's copy can go.
      // A failure of this side (closed, the Worker gone) says nothing about the event: kept.
      const done = () => this.#journal.remove(journaled);
      reply.then(done, (e) => (e?.code === 'closed' || e?.code === 'worker' ? undefined : done()));
    }
    return reply;
  }

  close() {
    if (this.#onPagehide) globalThis.removeEventListener?.('pagehide', this.#onPagehide);
    this.#fail(new ForesightError('closed', 'Foresight was closed'));
    this.#worker.terminate();
  }
}

/**
 * Worker mode, the page side: each `track()` is written to localStorage here before it is
 * posted, and removed once the Worker's reply shows its own write arrived. A page discarded in
 * between (a link followed right after an un-awaited `track()`) leaves it here, and the next
 * init in Worker mode records it. The key sits outside the SDK's own (`<storageKey>.…`), so
 * the Worker never sees it; `forget()` erases it too.
 */
class Journal {
  #local;
  #key;

  constructor(local, storageKey) {
    this.#local = local;
    this.#key = `${storageKey}:journal`;
  }

  /** The journal of the config's storage key in the page's localStorage; none with a storage
   * hook (the page then keeps the history itself) or without localStorage. */
  static open(options) {
    if (options.storage !== undefined) return null;
    const local = pageStorage();
    if (!local) return null;
    return new Journal(local, typeof options.storageKey === 'string' ? options.storageKey : DEFAULT_STORAGE_KEY);
  }

  entries() {
    try {
      const list = JSON.parse(this.#local.getItem(this.#key) ?? '[]');
      return Array.isArray(list) ? list.filter((e) => e && typeof e.id === 'string') : [];
    } catch {
      return [];
    }
  }

  #write(list) {
    try {
      if (list.length === 0) this.#local.removeItem(this.#key);
      else this.#local.setItem(this.#key, JSON.stringify(list));
      return true;
    } catch {
      // Storage full or refused, or an event JSON cannot hold: the Worker still records it.
      return false;
    }
  }

  /** The entry's id, or null when it could not be written. */
  add(event) {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    return this.#write([...this.entries(), { id, event }]) ? id : null;
  }

  remove(id) {
    const list = this.entries();
    const rest = list.filter((e) => e.id !== id);
    if (rest.length !== list.length) this.#write(rest);
  }

  clear() {
    this.#write([]);
  }
}
