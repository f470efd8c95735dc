// `Foresight.start(config)`: a handle the page can use at once, before the wasm and the models
// have arrived (what analytics snippets do). Until `init` resolves, calls that change the
// visitor's state (`track`, `consent`, `forget`, …) are queued and then replayed in order;
// lists are answered from the config's catalog by popularity (or, without a catalog, once
// ready). Nothing throws into the page: every method returns a promise, and a queued `track`
// that turns out invalid is a console warning unless the page awaits it.
//
// A page may also queue calls before this module has loaded, with the inline snippet in
// npm/README.md: `window.foresight = {q: [], …}`; `start` replays that queue first and puts the
// handle in its place.

import { ForesightError } from './errors.js';

/** Methods answered by a list; before the SDK is ready, from popularity. */
const LISTS = ['recommend', 'place', 'forYou', 'similarTo', 'boughtTogether', 'popular', 'trending', 'recentlyViewed', 'buyAgain', 'rerank'];
/** Every other method of Foresight the handle forwards. */
const CALLS = ['track', 'variants', 'intent', 'history', 'forget', 'status', 'scoring', 'consent', 'privacy', 'flush', 'stopAutocapture'];

export class Starting {
  /** Resolves to the ready Foresight; rejects as `init` did (also logged). */
  ready;
  #fs = null;
  #failed = null;
  #queue = [];
  #draining = false;
  #catalog;
  #lists = 0;

  constructor(init, config) {
    this.#catalog = Array.isArray(config?.catalog) ? config.catalog.filter((i) => i && typeof i.id === 'string') : [];
    this.ready = init.then(
      (fs) => {
        this.#fs = fs;
        this.#drain();
        return fs;
      },
      (e) => {
        this.#failed = e;
        console.warn(`[foresight] the SDK could not start (${e?.message ?? e}); lists come from popularity`);
        this.#drain();
        throw e;
      },
    );
    this.ready.catch(() => {});
    for (const method of [...LISTS, ...CALLS]) {
      this[method] = (...args) => this.#call(method, args);
    }
  }

  /**
   * The inline snippet's form, `call(method, args)`, kept working once the handle has taken the
   * snippet's place: a late tag or click handler written against the snippet must not throw.
   */
  call(method, args = []) {
    if (![...LISTS, ...CALLS].includes(method)) return Promise.reject(new ForesightError('invalid_option', `foresight.call: no such method: ${method}`));
    return this[method](...(Array.isArray(args) ? args : [args]));
  }

  /**
   * Replays the calls an inline snippet queued (`[method, args, resolve?, reject?]`). A queued
   * `track` whose event turns out invalid resolves its snippet promise (the warning says why):
   * snippet tracking is fire-and-forget, and a rejection nobody awaits would surface as an
   * uncaught error in the page.
   */
  adopt(snippet) {
    for (const [method, args, resolve, reject] of snippet.q) {
      const p = this.call(method, args ?? []);
      if (method === 'track') p.then(resolve, () => resolve?.());
      else p.then(resolve, reject ?? (() => {}));
    }
    snippet.q.length = 0;
  }

  close() {
    return this.ready.then((fs) => fs.close(), () => {});
  }

  #call(method, args) {
    const p = this.#answer(method, args);
    if (method === 'track') {
      // Fire-and-forget tracking must not become an unhandled rejection in the page.
      p.catch((e) => console.warn(`[foresight] track() not recorded: ${e?.message ?? e}`));
    }
    return p;
  }

  #answer(method, args) {
    if (this.#fs && !this.#draining) return this.#fs[method](...args);
    if (LISTS.includes(method) && this.#catalog.length > 0 && !this.#fs) return Promise.resolve(this.#popular(method, args));
    if (this.#failed && !this.#draining) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => this.#queue.push({ method, args, resolve, reject }));
  }

  async #drain() {
    if (this.#draining) return;
    this.#draining = true;
    while (this.#queue.length > 0) {
      const { method, args, resolve, reject } = this.#queue.shift();
      try {
        if (this.#fs) resolve(await this.#fs[method](...args));
        else if (LISTS.includes(method)) resolve(this.#popular(method, args));
        else reject(this.#failed);
      } catch (e) {
        reject(e);
      }
    }
    this.#draining = false;
  }

  /** A list from the catalog's popularity, shaped like the SDK's own fallback. */
  #popular(method, args) {
    const [first, second] = args;
    const options = (method === 'similarTo' || method === 'boughtTogether' || method === 'rerank' ? second : first) ?? {};
    const placement = method === 'recommend' ? 'forYou' : method === 'place' ? (first?.type ?? 'forYou') : method;
    const k = Number.isInteger(options.k) && options.k > 0 ? Math.min(options.k, 100) : 10;
    const reason = this.#failed ? `the SDK could not start: ${this.#failed?.message ?? this.#failed}` : 'the SDK is still loading';
    const list = (items, source = 'popularity') => ({ items, source, fallbackReason: reason, placement, id: `loading-${++this.#lists}` });
    const popular = { kind: 'popular_now', text: 'popular right now' };
    if (placement === 'recentlyViewed') return list([], 'history');
    if (placement === 'rerank') {
      const ids = Array.isArray(first) ? first : (first?.itemIds ?? []);
      return list(ids.map((itemId, i) => ({ itemId, score: ids.length - i, because: { kind: 'reranked', shopPosition: i + 1, text: 'in the shop\'s order' } })));
    }
    const exclude = new Set([...(options.exclude ?? [])]);
    let pool = this.#catalog;
    if (placement === 'similarTo') {
      const itemId = typeof first === 'string' ? first : options.itemId;
      exclude.add(itemId);
      const category = this.#catalog.find((i) => i.id === itemId)?.category;
      if (category !== undefined) pool = pool.filter((i) => i.category === category);
    } else if (placement === 'boughtTogether') {
      for (const id of Array.isArray(first) ? first : (options.itemIds ?? [])) exclude.add(id);
    } else if ((placement === 'popular' || placement === 'trending') && typeof options.category === 'string') {
      pool = pool.filter((i) => i.category === options.category);
    }
    const weight = placement === 'trending' ? (i) => i.trend ?? i.popularity ?? 0 : (i) => i.popularity ?? 0;
    const items = pool
      .filter((i) => !exclude.has(i.id))
      .sort((a, b) => weight(b) - weight(a))
      .slice(0, k)
      .map((i) => ({ itemId: i.id, score: weight(i), because: popular }));
    return list(items);
  }
}
