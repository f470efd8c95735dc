// The shop's side of the SDK: every call wrapped so that nothing it does can break the page.
//
// Calls go through one queue, in the order the page makes them, so a `recommend()` made right
// after a `track()` sees that event (this also holds in Worker mode, where each call is a
// message round trip). When the SDK could not load, the same methods answer from the catalog:
// popularity for recommendations, nothing for intent.

export class Personalization {
  constructor(catalog) {
    this.catalog = catalog;
    /** The SDK instance once `init` resolved; null before or when it failed. */
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
    // Calls made while the SDK loads wait for it (in order), so nothing the visitor does on the
    // first page is lost; once `init` settled they run against the SDK or the fallback.
    this.started = new Promise((resolve) => {
      this.markStarted = resolve;
    });
    this.queue = this.started;
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

  /** Loads the SDK module and the models. Never rejects: a failure leaves `state = "failed"`. */
  async init({ sdkUrl, runtime, worker, storageKey, onProgress, timeoutMs }) {
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
      if (runtime.collector) cfg.collector = runtime.collector;
      if (worker) cfg.worker = true;
      const fs = await withTimeout(mod.Foresight.init(cfg), timeoutMs, "the SDK took too long to start");
      this.fs = fs;
      this.state = "ready";
      try {
        this.modelStatus = await fs.status();
        if (this.modelStatus?.intent?.state !== "ready") this.intentAvailable = false;
      } catch (e) {
        console.warn("[demo] status() failed", e);
      }
    } catch (e) {
      console.warn("[demo] Foresight could not start; the shop runs on the catalog alone.", e);
      this.fs = null;
      this.state = "failed";
      this.error = e;
    }
    this.markStarted();
    this.emit("init");
    return this.state;
  }

  /** Runs `fn(fs)` in queue order; `fallback(error?)` answers when the SDK is missing or throws. */
  call(name, fn, fallback) {
    const result = this.queue.then(async () => {
      if (!this.fs) return fallback(null);
      try {
        return await fn(this.fs);
      } catch (e) {
        if (name !== "intent") console.warn(`[demo] ${name}() failed:`, e);
        return fallback(e);
      }
    });
    this.queue = result.catch(() => {});
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

  /** `{items, source, fallbackReason?}`; from the catalog's popularity when the SDK is unavailable. */
  recommend({ k = 8, exclude = [] } = {}) {
    return this.call(
      "recommend",
      (fs) => fs.recommend({ k, exclude }),
      (e) => this.popular(k, exclude, e ? `the SDK failed: ${e.message}` : `the SDK is ${this.state === "loading" ? "still loading" : "unavailable"}`),
    );
  }

  popular(k, exclude = [], reason = "popular now") {
    const skip = new Set(exclude);
    const items = this.catalog.byPopularity
      .filter((f) => !skip.has(f.id))
      .slice(0, k)
      .map((f) => ({ itemId: f.id, score: f.popularity, because: { kind: "popular_now", text: "popular now" } }));
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
