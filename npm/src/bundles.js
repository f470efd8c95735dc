// Bundles named by URL (`bundleUrl`, `bundleUrls`): downloaded while the wasm compiles, kept
// with the Cache API, revalidated in the background, and swapped for a newer version only once
// the wasm has verified and loaded it.
//
// A revisit starts from the cached copy (no network on the critical path, and offline works).
// After init, at an idle moment, each cached bundle is revalidated: a conditional request
// (If-None-Match / If-Modified-Since) for a same-origin URL; the browser's own revalidation
// (`cache: 'no-cache'`) for a cross-origin one, whose CDN may refuse those headers in a CORS
// preflight. A new version goes to the wasm's `replaceBundle`, which verifies the signature and
// builds the model before replacing anything; only then is it written to the cache. So the
// cache holds only bundles that loaded, and a tampered or broken update leaves the model in use
// and the cached copy as they were (the rollback) while `status().bundles` says what happened.
//
// A cached entry records the SHA-256 of its bytes, checked on every read, and the public key
// and SDK version it was verified under: a rotated key or a new SDK reads it as absent.

const CACHE_NAME = 'foresight-bundles-v1';
const SDK_VERSION = '0.1.0';
const HEADER = { sha256: 'x-foresight-sha256', key: 'x-foresight-public-key', sdk: 'x-foresight-sdk', etag: 'x-foresight-etag', modified: 'x-foresight-last-modified' };

/** The bundle URLs of a config, or null when they are not plain strings (the wasm then
 * refuses the config with the field named). */
export function bundleUrlsOf(config) {
  const urls = [];
  const { bundleUrl, bundleUrls, bundles } = config;
  if (bundles !== undefined && bundles !== null && !Array.isArray(bundles)) return null;
  if (typeof bundleUrl === 'string') urls.push(bundleUrl);
  else if (bundleUrl !== undefined && bundleUrl !== null) return null;
  if (Array.isArray(bundleUrls) && bundleUrls.every((u) => typeof u === 'string')) urls.push(...bundleUrls);
  else if (bundleUrls !== undefined && bundleUrls !== null) return null;
  return urls.length > 0 ? urls : null;
}

/**
 * Starts getting every bundle at once; the caller awaits `ready` after compiling the wasm.
 * `cache: false` (the config's `bundleCache`) or an environment without the Cache API (Node,
 * an insecure origin) downloads every time.
 */
export class Bundles {
  /** @type {Promise<Entry[]>} */
  ready;
  #onProgress;
  #store;

  constructor(urls, { onProgress, publicKey, cache = true }) {
    this.#onProgress = typeof onProgress === 'function' ? onProgress : null;
    this.#store = cache === false ? null : CacheStore.open(typeof publicKey === 'string' ? publicKey : '');
    this.ready = Promise.all(urls.map((url) => this.#get(url)));
  }

  async #get(given) {
    const entry = new Entry(given);
    let url;
    try {
      url = new URL(given, globalThis.document?.baseURI ?? globalThis.location?.href).href;
    } catch (e) {
      entry.fail(`not a URL (${e?.message ?? e})`);
      return entry;
    }
    entry.url = url;
    const store = await this.#store;
    const cached = await store?.read(url);
    if (cached) {
      entry.use(cached.bytes, 'cache', cached.sha256);
      entry.validators = cached.validators;
      entry.cached = true;
      this.#progress(given, cached.bytes.length, cached.bytes.length);
      return entry;
    }
    try {
      const got = await download(url, {}, (loaded, total) => this.#progress(given, loaded, total));
      entry.use(got.bytes, 'network', await sha256(got.bytes));
      entry.validators = got.validators;
      entry.revalidation = { state: 'fresh' };
    } catch (e) {
      entry.fail(e?.message ?? String(e));
    }
    return entry;
  }

  #progress(url, loaded, total) {
    if (!this.#onProgress) return;
    try {
      this.#onProgress({ url, loaded, total });
    } catch (e) {
      // The page's callback may throw; that is its bug, not a reason to fail the download.
      console.warn('[foresight] onProgress threw:', e);
    }
  }

  /**
   * After init: records what the wasm made of each bundle, caches the ones that loaded, and
   * at idle moments revalidates the cached ones, swapping a newer version in through `wasm`.
   * `first` is the index the first of these bundles had in the config's `bundles`.
   */
  settle(entries, wasm, first) {
    const refused = new Set(wasm.refusedBundles());
    let index = first;
    for (const entry of entries) {
      if (!entry.bytes) {
        console.warn(`[foresight] bundle ${entry.given} could not be downloaded, using the popularity fallback: ${entry.error}`);
        wasm.noteBundleFailure(`${entry.given}: ${entry.error}`);
        continue;
      }
      const loaded = !refused.has(index++);
      entry.loaded = loaded;
      if (!loaded && entry.source === 'cache') {
        // A cached copy that no longer loads (it verified when it was stored): fetch anew.
        this.#whenIdle(() => this.#refetch(entry, wasm));
      } else if (loaded && entry.source === 'cache') {
        this.#whenIdle(() => this.#revalidate(entry, wasm));
      } else if (loaded) {
        const bytes = entry.bytes;
        this.#whenIdle(() => this.#store.then((s) => s?.write(entry, bytes)).then((ok) => { entry.cached = ok === true; }));
      }
      // Once handed over, the wasm holds its own copy.
      entry.bytes = null;
    }
  }

  async #revalidate(entry, wasm) {
    entry.revalidation = { state: 'checking' };
    const sameOrigin = globalThis.location && new URL(entry.url).origin === globalThis.location.origin;
    const headers = {};
    if (sameOrigin && entry.validators.etag) headers['If-None-Match'] = entry.validators.etag;
    if (sameOrigin && entry.validators.lastModified) headers['If-Modified-Since'] = entry.validators.lastModified;
    let got;
    try {
      got = await download(entry.url, sameOrigin ? { cache: 'no-store', headers } : { cache: 'no-cache' });
    } catch (e) {
      entry.revalidation = { state: 'unreachable', error: e?.message ?? String(e) };
      return;
    }
    if (got.notModified) {
      entry.revalidation = { state: 'not_modified' };
      return;
    }
    const hash = await sha256(got.bytes);
    if (hash === entry.sha256) {
      // Same bytes under new validators: keep them so the next check can be conditional.
      entry.validators = got.validators;
      entry.revalidation = { state: 'not_modified' };
      await (await this.#store)?.touch(entry);
      return;
    }
    await this.#swap(entry, wasm, got, hash);
  }

  async #refetch(entry, wasm) {
    entry.revalidation = { state: 'checking' };
    (await this.#store)?.remove(entry.url);
    entry.cached = false;
    try {
      const got = await download(entry.url, { cache: 'no-cache' });
      await this.#swap(entry, wasm, got, await sha256(got.bytes));
    } catch (e) {
      entry.revalidation = { state: 'unreachable', error: e?.message ?? String(e) };
    }
  }

  /** Hands a new version to the wasm at an idle moment; caches it only if it loaded. */
  async #swap(entry, wasm, got, hash) {
    await idle();
    try {
      await wasm.replaceBundle(got.bytes);
    } catch (e) {
      entry.revalidation = { state: 'refused', sha256: hash, code: e?.code ?? 'internal', error: e?.message ?? String(e) };
      console.warn(`[foresight] an update of ${entry.given} was refused; the model in use stays: ${e?.message ?? e}`);
      return;
    }
    entry.use(null, 'network', hash);
    entry.loaded = true;
    entry.validators = got.validators;
    entry.revalidation = { state: 'updated' };
    entry.cached = (await (await this.#store)?.write(entry, got.bytes)) === true;
  }

  #whenIdle(task) {
    idle().then(task).catch((e) => console.warn('[foresight] bundle cache:', e));
  }
}

/** One bundle URL and what happened to it, as `status().bundles` shows it. */
class Entry {
  constructor(given) {
    this.given = given;
    this.url = given;
    this.bytes = null;
    this.source = null;
    this.sha256 = null;
    this.error = null;
    this.loaded = false;
    this.cached = false;
    this.validators = {};
    this.revalidation = { state: 'pending' };
  }

  use(bytes, source, sha256) {
    this.bytes = bytes;
    this.source = source;
    this.sha256 = sha256;
  }

  fail(error) {
    this.error = error;
    this.revalidation = { state: 'unreachable', error };
  }

  view() {
    const v = { url: this.given, source: this.source, sha256: this.sha256, loaded: this.loaded, cached: this.cached, revalidation: { ...this.revalidation } };
    if (this.error) v.error = this.error;
    return v;
  }
}

/** The Cache API store, or null where there is none. */
class CacheStore {
  #cache;
  #key;

  constructor(cache, key) {
    this.#cache = cache;
    this.#key = key;
  }

  static async open(publicKey) {
    try {
      if (typeof globalThis.caches?.open !== 'function' || typeof globalThis.crypto?.subtle?.digest !== 'function') return null;
      return new CacheStore(await globalThis.caches.open(CACHE_NAME), publicKey);
    } catch {
      // Opaque origins and some privacy modes refuse the Cache API: download every time.
      return null;
    }
  }

  /** The cached bundle for `url`, if it is intact and was verified under this key and SDK. */
  async read(url) {
    try {
      const response = await this.#cache.match(url);
      if (!response) return null;
      const h = response.headers;
      if (h.get(HEADER.key) !== encodeURIComponent(this.#key) || h.get(HEADER.sdk) !== SDK_VERSION) return null;
      const bytes = new Uint8Array(await response.arrayBuffer());
      const hash = await sha256(bytes);
      if (hash !== h.get(HEADER.sha256)) {
        await this.remove(url);
        return null;
      }
      return { bytes, sha256: hash, validators: { etag: h.get(HEADER.etag), lastModified: h.get(HEADER.modified) } };
    } catch {
      return null;
    }
  }

  /** Replaces the entry for the bundle in one `put`: a reader sees the old or the new one. */
  async write(entry, bytes) {
    const headers = { 'content-type': 'application/octet-stream', [HEADER.sha256]: entry.sha256, [HEADER.key]: encodeURIComponent(this.#key), [HEADER.sdk]: SDK_VERSION };
    if (entry.validators.etag) headers[HEADER.etag] = entry.validators.etag;
    if (entry.validators.lastModified) headers[HEADER.modified] = entry.validators.lastModified;
    try {
      await this.#cache.put(entry.url, new Response(bytes, { headers }));
      return true;
    } catch (e) {
      // Quota exceeded, most likely: the next visit downloads again.
      console.warn(`[foresight] could not cache ${entry.given}: ${e?.name ?? e}`);
      return false;
    }
  }

  /** Keeps the cached bytes, with the validators of the latest check. */
  async touch(entry) {
    const current = await this.#cache.match(entry.url).catch(() => null);
    if (!current) return;
    await this.write(entry, new Uint8Array(await current.arrayBuffer()));
  }

  async remove(url) {
    await this.#cache.delete(url).catch(() => false);
  }
}

/** The bundle's bytes with progress after each chunk, or `{notModified}` for a 304. */
async function download(url, init, onProgress) {
  const response = await fetch(url, init);
  if (response.status === 304) return { notModified: true };
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
  const validators = { etag: response.headers.get('etag'), lastModified: response.headers.get('last-modified') };
  const length = response.headers.get('content-length');
  const total = length === null || Number.isNaN(Number(length)) ? null : Number(length);
  const chunks = [];
  let loaded = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress?.(loaded, total);
    }
  } catch (e) {
    throw new Error(`download interrupted: ${e?.message ?? e}`);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, validators };
}

async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (typeof subtle?.digest !== 'function') return null;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The next idle moment (`requestIdleCallback`, or a zero timeout where there is none, as in
 * a Worker, whose thread the page does not wait on). */
function idle() {
  return new Promise((resolve) => {
    if (typeof globalThis.requestIdleCallback === 'function') globalThis.requestIdleCallback(() => resolve(), { timeout: 2000 });
    else setTimeout(resolve, 0);
  });
}
