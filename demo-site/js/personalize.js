// The shop's side of the SDK: every call wrapped so that nothing it does can break the page.
//
// The ordering of calls is the SDK's own: `Foresight.start` gives a handle at once that queues
// `track`, `consent`, … until the models are ready and replays them in order, so a `recommend()`
// made right after a `track()` sees that event. What is left here is what only the demo needs:
// calls made before the SDK module itself has been fetched wait for it (in the order made), and
// when the module cannot load at all, the same methods answer from the demo's catalog.

export class Personalization {
  constructor(catalog) {
    this.catalog = catalog;
    /** The `Foresight.start` handle once the module loaded; null before, or when it could not. */
    this.fs = null;
    /** "loading" | "ready" | "failed" */
    this.state = "loading";
    this.error = null;
    /** Whether the intent model answers (false: no nudges). */
    this.intentAvailable = true;
    this.intentError = null;
    this.ForesightError = null;
    /** `status()` right after init: `{recommender: {state, …}, intent: {state, …}, …}`. */
    this.modelStatus = null;
    this.listeners = new Set();
    /** Calls not answered yet (for `idle()`). */
    this.pending = new Set();
    // Resolves with the handle as soon as the module is there (null if it could not load):
    // calls that arrive earlier resume in the order they were made.
    this.handle = new Promise((resolve) => {
      this.resolveHandle = resolve;
    });
    // Resolves once `init` settled. The rails wait for it rather than take the handle's
    // popularity-while-loading: a returning visitor would otherwise see them change under the
    // cursor half a second later.
    this.settled = new Promise((resolve) => {
      this.markSettled = resolve;
    });
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what) {
    for (const fn of this.listeners) {
      try {
        fn(what);
      } catch (e) {
        console.warn("[demo] listener failed", e);
      }
    }
  }

  /** Resolves when every call made so far has answered. */
  async idle() {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Loads the SDK module and the models. Never rejects: a failure leaves `state = "failed"`. */
  async init({ sdkUrl, runtime, worker, storageKey, onProgress, timeoutMs, options = {} }) {
    let handle = null;
    try {
      // Relative to the page, not to this module.
      const mod = await import(new URL(sdkUrl, document.baseURI).href);
      this.ForesightError = mod.ForesightError ?? null;
      const cfg = {
        bundleUrls: runtime.bundles,
        publicKey: runtime.publicKey,
        // The catalog fallback, in the SDK's own format (it takes only these four fields).
        catalog: this.catalog.items.map((f) => ({
          id: f.id,
          category: f.genres[0] ?? "Unknown",
          price: f.price,
          popularity: f.popularity,
        })),
        storageKey,
        onProgress,
      };
      // The shop's rules, experiments and attribution window (config.js).
      for (const key of ["rules", "experiments", "attributionWindowMinutes", "placements"]) {
        if (options[key] !== undefined) cfg[key] = options[key];
      }
      if (runtime.collector) cfg.collector = { ...runtime.collector, ...(options.collector ?? {}) };
      if (worker) cfg.worker = true;
      handle = mod.Foresight.start(cfg);
      this.fs = handle;
      this.resolveHandle(handle);
      await withTimeout(handle.ready, timeoutMs, "the SDK took too long to start");
      this.state = "ready";
      try {
        this.modelStatus = await handle.status();
        if (this.modelStatus?.intent?.state !== "ready") this.intentAvailable = false;
      } catch (e) {
        console.warn("[demo] status() failed", e);
      }
    } catch (e) {
      console.warn("[demo] Foresight could not start; the shop runs on the catalog alone.", e);
      // Lists come from the demo's catalog from now on; other calls still reach the handle,
      // which rejects them with the SDK's error, and the same fallbacks answer.
      this.fs = null;
      this.state = "failed";
      this.error = e;
      if (handle === null) this.resolveHandle(null);
    }
    this.markSettled();
    this.emit("init");
    return this.state;
  }

  /** `fn(handle)` once the module is there; `fallback(error?)` when it is missing or throws. */
  call(name, fn, fallback, { afterInit = false } = {}) {
    const result = (async () => {
      const handle = await this.handle;
      if (afterInit) await this.settled;
      if (!handle || (afterInit && this.state !== "ready")) return fallback(null);
      try {
        return await fn(handle);
      } catch (e) {
        if (name !== "intent") console.warn(`[demo] ${name}() failed:`, e);
        return fallback(e);
      }
    })();
    this.pending.add(result);
    result.finally(() => this.pending.delete(result)).catch(() => {});
    return result;
  }

  track(event) {
    return this.call(
      "track",
      async (fs) => {
        await fs.track(event);
        this.emit("track");
        return true;
      },
      () => false,
    );
  }

  /** Why the fallback answers: the SDK's error, or that it is not there. */
  why(e) {
    return e ? `the SDK failed: ${e.message}` : `the SDK is ${this.state === "loading" ? "still loading" : "unavailable"}`;
  }

  /**
   * One SDK placement (`fs.place(request)`), once `init` settled; `fallback(reason)` answers from the
   * catalog when the SDK is missing or the call throws. Every result has the SDK's shape:
   * `{items: [{itemId, score, because}], source, fallbackReason?, placement, variant?, id?}`.
   */
  place(request, fallback) {
    return this.call(request.type, (fs) => fs.place(request), (e) => ({ placement: request.type, ...fallback(this.why(e)) }), { afterInit: true });
  }

  /** "Recommended for you": the model on the visitor's history (popularity for a newcomer). */
  forYou({ k = 8, exclude = [] } = {}) {
    return this.place({ type: "forYou", k, exclude }, (reason) => this.catalogPopular(k, exclude, reason));
  }

  /** Kept for callers of the older API: the same list as `forYou`. */
  recommend(options) {
    return this.forYou(options);
  }

  /** "You may also like" on a film page: what visitors look at after that film. */
  similarTo(itemId, { k = 6, exclude = [] } = {}) {
    const category = this.catalog.byId.get(itemId)?.genres[0];
    return this.place({ type: "similarTo", itemId, k, exclude }, (reason) => this.catalogPopular(k, [itemId, ...exclude], reason, category));
  }

  /** "Goes well with your cart": the model on the cart's films. */
  boughtTogether(itemIds, { k = 6, exclude = [] } = {}) {
    return this.place({ type: "boughtTogether", itemIds, k, exclude }, (reason) => this.catalogPopular(k, [...itemIds, ...exclude], reason));
  }

  /** "Popular now": the catalog's popularity, under the shop's rules. */
  popular({ category, k = 8, exclude = [] } = {}) {
    return this.place({ type: "popular", ...(category ? { category } : {}), k, exclude }, (reason) => this.catalogPopular(k, exclude, reason, category));
  }

  /** "Trending now": the catalog's recent popularity (the last 30 days of the training log). */
  trending({ category, k = 8, exclude = [] } = {}) {
    return this.place({ type: "trending", ...(category ? { category } : {}), k, exclude }, (reason) =>
      this.catalogPopular(k, exclude, `${reason}; no trend without it`, category),
    );
  }

  /** "Recently viewed": the visitor's own views, newest first (nothing without the SDK). */
  recentlyViewed({ k = 8, exclude = [] } = {}) {
    return this.place({ type: "recentlyViewed", k, exclude }, (reason) => ({ items: [], source: "history", fallbackReason: reason }));
  }

  /** "Buy again": the visitor's own purchases, recency- and frequency-weighted on the device (nothing without the SDK). */
  buyAgain({ k = 8, exclude = [] } = {}) {
    return this.place({ type: "buyAgain", k, exclude }, (reason) => ({ items: [], source: "history", fallbackReason: reason }));
  }

  /**
   * The page's own list reordered for the visitor: always a permutation of `itemIds`. Without
   * the SDK, or if its answer is not a permutation, the shop's order stays.
   */
  async rerank(itemIds, { blend = 0.5 } = {}) {
    const keep = (reason) => ({
      placement: "rerank",
      items: itemIds.map((itemId, i) => ({ itemId, score: -i, because: null })),
      source: "popularity",
      fallbackReason: reason,
    });
    if (itemIds.length === 0) return keep("nothing to reorder");
    const recs = await this.place({ type: "rerank", itemIds, blend }, keep);
    const got = (recs?.items ?? []).map((r) => r.itemId);
    const want = new Set(itemIds);
    const permutation = got.length === itemIds.length && new Set(got).size === got.length && got.every((id) => want.has(id));
    if (!permutation) {
      console.warn("[demo] rerank() did not return a permutation of the page's list; the shop's order stays.", { sent: itemIds.length, got: got.length });
      return keep("the reordered list was incomplete");
    }
    return recs;
  }

  /** `{experiment: variant}` (kept on the device); `{}` without the SDK. */
  variants() {
    return this.call("variants", (fs) => fs.variants(), () => ({}));
  }

  /** The catalog's own popularity (optionally within a genre): the answer when the SDK is not there. */
  catalogPopular(k, exclude = [], reason = "popular now", genre) {
    const skip = new Set(exclude);
    const pick = (f) => !skip.has(f.id) && (!genre || f.genres.includes(genre));
    let films = this.catalog.byPopularity.filter(pick).slice(0, k);
    if (films.length === 0 && genre) films = this.catalog.byPopularity.filter((f) => !skip.has(f.id)).slice(0, k);
    const items = films.map((f) => ({ itemId: f.id, score: f.popularity, because: { kind: "popular_now", text: "popular now" } }));
    return { items, source: "popularity", fallbackReason: reason };
  }

  /** `{probability, features}` or null when there is no intent model (no nudges then). */
  intent() {
    if (!this.intentAvailable) return Promise.resolve(null);
    return this.call(
      "intent",
      (fs) => fs.intent(),
      (e) => {
        if (e) {
          // `no_model` (or a failed intent bundle): turn nudges off for this page, quietly.
          this.intentAvailable = false;
          this.intentError = e;
          console.info(`[demo] no intent scores (${e.code ?? "error"}): nudges are off.`, e.message);
        }
        return null;
      },
    );
  }

  history() {
    return this.call("history", (fs) => fs.history(), () => []);
  }

  privacy() {
    return this.call("privacy", (fs) => fs.privacy(), () => null);
  }

  status() {
    return this.call("status", (fs) => fs.status(), () => null);
  }

  consent(state) {
    return this.call(
      "consent",
      async (fs) => {
        await fs.consent(state);
        this.emit("consent");
        return true;
      },
      () => false,
    );
  }

  forget() {
    return this.call(
      "forget",
      async (fs) => {
        await fs.forget();
        this.emit("forget");
        return true;
      },
      () => false,
    );
  }

  /** Sends what is due now. Not queued behind other calls: it waits on the network. */
  async flush() {
    if (!this.fs) return { prepared: false, sent: 0, outcome: null, error: "the SDK is unavailable" };
    try {
      const r = await this.fs.flush();
      this.emit("flush");
      return r;
    } catch (e) {
      console.warn("[demo] flush() failed", e);
      return { prepared: false, sent: 0, outcome: null, error: String(e?.message ?? e) };
    }
  }
}

function withTimeout(promise, ms, message) {
  if (!ms) return promise;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
