// Types of foresight-sdk. The shapes mirror the Rust SDK's serde output (sdk/src/capture.rs,
// recommend.rs, intent.rs, client.rs, sync.rs, report.rs, web/mod.rs, web/delivery.rs).

// ───────────────────────────── events ─────────────────────────────

export interface PageViewEvent { type: 'page_view'; path?: string }
export interface ProductViewEvent { type: 'product_view'; itemId: string; category?: string; price?: number }
export interface SearchEvent { type: 'search'; query: string }
export interface ClickEvent { type: 'click'; itemId: string; placement?: string }
export interface AddToCartEvent { type: 'add_to_cart'; itemId: string; quantity?: number; price?: number; category?: string }
export interface RemoveFromCartEvent { type: 'remove_from_cart'; itemId: string; quantity?: number }
export interface PurchaseLine { itemId: string; quantity?: number; price?: number }
export interface PurchaseEvent { type: 'purchase'; items: PurchaseLine[]; total?: number }
export interface DwellEvent { type: 'dwell'; itemId?: string; seconds: number }

/** What `track` takes. Unknown fields, empty ids, negative prices, non-integer quantities and
 * payloads over 4 KB are refused with an InvalidEventError naming the field. */
export type TrackEvent =
  | PageViewEvent
  | ProductViewEvent
  | SearchEvent
  | ClickEvent
  | AddToCartEvent
  | RemoveFromCartEvent
  | PurchaseEvent
  | DwellEvent;

export type EventType = TrackEvent['type'];

/** An event as stored on the device: quantities are filled in (default 1). */
export type StoredEvent = (
  | PageViewEvent
  | ProductViewEvent
  | SearchEvent
  | ClickEvent
  | (AddToCartEvent & { quantity: number })
  | (RemoveFromCartEvent & { quantity: number })
  | { type: 'purchase'; items: Array<PurchaseLine & { quantity: number }>; total?: number }
  | DwellEvent
) & {
  /** Milliseconds since the Unix epoch. */
  at: number;
  /** Session number; sessions split after `store.sessionGapMinutes` of inactivity. */
  session: number;
};

// ───────────────────────────── results ─────────────────────────────

/** Why an item is recommended. */
export type Explanation =
  | {
      kind: 'recent_event';
      /** The type of the visitor's event whose item most raised this item's score. */
      event: EventType;
      itemId: string;
      /** e.g. "because you viewed sku-1". */
      text: string;
    }
  | { kind: 'popular_now'; text: string }
  | { kind: 'similar_to'; itemId: string; text: string }
  | { kind: 'goes_with'; itemId: string; text: string }
  | { kind: 'trending'; text: string }
  | { kind: 'recently_viewed'; text: string }
  | { kind: 'bought_before'; text: string }
  | { kind: 'pinned'; text: string }
  | { kind: 'reranked'; shopPosition: number; text: string };

export interface Recommendation {
  itemId: string;
  score: number;
  because: Explanation;
}

export type PlacementName = 'forYou' | 'similarTo' | 'boughtTogether' | 'popular' | 'trending' | 'recentlyViewed' | 'buyAgain' | 'rerank';

export interface Recommendations {
  items: Recommendation[];
  /** What answered: the model, popularity, the catalog's trend, or the visitor's history. */
  source: 'model' | 'popularity' | 'trend' | 'history';
  /** Why a fallback answered, when one did. */
  fallbackReason?: string;
  placement: PlacementName;
  /** The visitor's variant of an experiment on this placement. */
  variant?: string;
  /** This list's id on the device: clicks, cart adds and purchases of its items are attributed to it. */
  id: string;
}

export interface PlacementOptions {
  /** How many items, 1 to 100 (default 10). */
  k?: number;
  /** Item ids never to show in this list. */
  exclude?: string[];
}

export type PlacementRequest =
  | ({ type: 'forYou' } & PlacementOptions)
  | ({ type: 'similarTo'; itemId: string } & PlacementOptions)
  | ({ type: 'boughtTogether'; itemIds: string[] } & PlacementOptions)
  | ({ type: 'popular'; category?: string } & PlacementOptions)
  | ({ type: 'trending'; category?: string } & PlacementOptions)
  | ({ type: 'recentlyViewed' } & PlacementOptions)
  | ({ type: 'buyAgain' } & PlacementOptions)
  | { type: 'rerank'; itemIds: string[]; /** 0 keeps the shop's order, 1 the model's (default 0.5). */ blend?: number };

/** Merchandising rules every placement obeys; contradictions reject `init` with every problem named. */
export interface Rules {
  filter?: {
    inStockOnly?: boolean;
    categories?: string[];
    excludeCategories?: string[];
    minPrice?: number;
    maxPrice?: number;
    /** attribute → allowed values */
    attributes?: Record<string, string[]>;
    excludeItems?: string[];
  };
  /** 1-based positions. */
  pins?: { itemId: string; position: number }[];
  /** factor > 1 boosts, < 1 buries. */
  boosts?: { category?: string; attribute?: Record<string, string>; factor: number }[];
  /** Default true. */
  excludeCart?: boolean;
  /** Default true. */
  excludePurchased?: boolean;
  excludeRecentlyShown?: boolean;
  maxPerCategory?: number;
  /** MMR trade-off in [0, 1]; 1 = relevance only. */
  diversity?: number;
}

/** One placement's changes to the shop-wide `Rules`. */
export type RulesPatch = Omit<Rules, 'maxPerCategory' | 'diversity'> & { maxPerCategory?: number | null; diversity?: number | null };

export interface Experiment {
  /** Letters, digits, - and _; sent with reports (the same for every visitor). */
  name: string;
  placement: PlacementName;
  /** 2 to 4; the first is the control. */
  variants: { name: string; weight?: number; source?: 'model' | 'popularity'; rules?: boolean }[];
  /** ε of its report contribution, on top of the collector's mechanisms (default 0.5). */
  epsilon?: number;
}

export interface RecommendOptions {
  /** How many items, 1 to 100 (default 10). */
  k?: number;
  /** Item ids never to recommend (the cart and purchased items are always excluded). */
  exclude?: string[];
}

export interface IntentFeature { name: string; value: number }

export interface IntentScore {
  /** Probability that this session ends in a purchase. */
  probability: number;
  features: IntentFeature[];
}

export type ModelStatus =
  | { state: 'absent' }
  | { state: 'ready' }
  | { state: 'failed'; error: string; code: string };

export interface Status {
  recommender: ModelStatus;
  intent: ModelStatus;
  /** Events stored on this device. */
  events: number;
  /** Whether DOM autocapture runs (always false in Worker mode). */
  autocapture: boolean;
  /** One per `bundleUrl`/`bundleUrls` entry, in config order (absent without bundle URLs). */
  bundles?: BundleStatus[];
}

/** What became of a bundle URL: where the bytes in use came from and the latest background
 * check for a newer version. */
export interface BundleStatus {
  /** The URL as the config gave it. */
  url: string;
  /** Where the bundle in use came from; null when it could not be downloaded at all. */
  source: 'network' | 'cache' | null;
  /** SHA-256 (hex) of the bundle in use. */
  sha256: string | null;
  /** Whether its model loaded (a refused bundle leaves the slot failed or on the old model). */
  loaded: boolean;
  /** Whether the bundle in use is in the Cache API, so that a revisit needs no network. */
  cached: boolean;
  /**
   * The background check of a cached bundle: `pending` until the page is idle, then `checking`,
   * `not_modified` (304 or same bytes), `updated` (a new version verified, loaded and cached),
   * `refused` (a new version failed verification or loading: the model in use and the cached
   * copy stay), `unreachable` (offline, or the download failed). `fresh` when it was just
   * downloaded.
   */
  revalidation: {
    state: 'pending' | 'checking' | 'fresh' | 'not_modified' | 'updated' | 'refused' | 'unreachable';
    /** For `refused`: the refused version's hash. */
    sha256?: string;
    code?: string;
    error?: string;
  };
  /** Why the download failed. */
  error?: string;
}

/** Which path scores a visitor tower's item embeddings, and why. */
export interface ScoringChoice {
  backend: 'cpu' | 'gpu';
  reason: string;
  /** The WebGPU adapter, when one was found. */
  adapter?: string;
  /** Calibration: median milliseconds of a top-20 over the whole catalog on each path. */
  cpuMs?: number;
  gpuMs?: number;
  /** False while WebGPU is still being probed after init (the CPU scores meanwhile). */
  ready: boolean;
}

export type ConsentState = 'granted' | 'denied' | 'unknown';

export interface HcmsParams { hashes: number; width: number; epsilon: number }
export interface KaryRrParams { k: number; epsilon: number }
export interface HcmsReport { hash: number; coord: number; sign: 1 | -1 }

/** One privatized statistic of a report (see docs/privacy.md). */
export type Contribution =
  | { statistic: 'item_view'; mechanism: HcmsParams; report: HcmsReport }
  | { statistic: 'item_transition'; mechanism: HcmsParams; report: HcmsReport }
  | { statistic: 'category_view'; mechanism: HcmsParams; report: HcmsReport }
  | { statistic: 'intent_bucket'; mechanism: KaryRrParams; value: number }
  | { statistic: 'rec_outcome'; mechanism: KaryRrParams; value: number }
  | { statistic: 'rec_item'; mechanism: HcmsParams; report: HcmsReport }
  | { statistic: 'experiment_outcome'; experiment: string; mechanism: KaryRrParams; value: number };

/** An aggregate report exactly as it leaves the device. */
export interface Report {
  version: number;
  site: string;
  idempotencyKey: string;
  /** UTC `YYYY-MM-DD`. */
  day: string;
  epsilon: number;
  contributions: Contribution[];
}

export interface PrivacyStatus {
  consent: ConsentState;
  /** Whether a report may leave now (consent, opt-out signals, a collector configured). */
  sending: boolean;
  globalPrivacyControl: boolean;
  doNotTrack: boolean;
  epsilonSpentToday: number;
  epsilonPerDay: number;
  /** Reports waiting on the device, exactly as they will be sent. */
  pending: Report[];
  /** Reports that left the device, exactly as sent (most recent last). */
  sent: Report[];
}

export interface FlushResult {
  /** Whether today's report was prepared by this call. */
  prepared: boolean;
  /** Reports posted by this call. */
  sent: number;
  outcome: 'delivered' | 'retry' | 'rejected' | null;
  /** Network error or "busy", when there was one. */
  error?: string;
}

// ───────────────────────────── config ─────────────────────────────

export interface ProgressEvent {
  url: string;
  loaded: number;
  /** null when the server sends no Content-Length. */
  total: number | null;
}

export type Bytes = Uint8Array | ArrayBuffer;

export interface CatalogItem {
  id: string;
  category?: string;
  price?: number;
  popularity?: number;
  /** Recent popularity, for `trending`. */
  trend?: number;
  /** false when out of stock (rules can filter on it). */
  inStock?: boolean;
  attributes?: Record<string, string>;
}

export interface RecommenderConfig {
  /** The ONNX file's bytes. */
  model: Bytes;
  input?: string;
  output?: string;
  /** How many recent items the model sees (default 50). */
  maxSeqLen?: number;
}

export interface IntentConfig {
  /** The ONNX file's bytes. */
  model: Bytes;
  input?: string;
  output?: string;
  /** Column of the positive class in a `[1, classes]` output (default 1). */
  positiveIndex?: number;
}

export interface StoreConfig {
  maxEvents?: number;
  maxBytes?: number;
  ttlDays?: number;
  sessionGapMinutes?: number;
}

export interface MechanismsConfig {
  itemView?: HcmsParams;
  itemTransition?: HcmsParams;
  categoryView?: HcmsParams;
  intentBucket?: KaryRrParams;
  recOutcome?: KaryRrParams;
  recItem?: HcmsParams;
}

export interface CollectorConfig {
  /** The collector's report endpoint. */
  url: string;
  /** The shop's public site id. */
  site: string;
  /** The site's key (sent as `?key=`). */
  key: string;
  /** Daily ε budget (default 1.0). */
  epsilonPerDay?: number;
  /** Honour Global Privacy Control and Do-Not-Track (default true). */
  honourOptOutSignals?: boolean;
  mechanisms?: MechanismsConfig;
  maxQueued?: number;
}

/** Synchronous key-value storage used instead of localStorage (main-thread mode and Node only).
 * A `set` that throws an error named `QuotaExceededError` is handled as a full quota. */
export interface StorageHook {
  get(key: string): string | null | undefined;
  set(key: string, value: string): void;
  remove(key: string): void;
}

export interface ForesightConfig {
  /** localStorage key of the event log (default "foresight.events"); other keys use it as prefix. */
  storageKey?: string;
  store?: StoreConfig;
  /** The catalog in model-index order; also the popularity fallback. */
  catalog?: CatalogItem[];
  recommender?: RecommenderConfig;
  intent?: IntentConfig;
  /** Signed model bundles (`foresight-export convert`) as bytes. */
  bundles?: Bytes[];
  /** A bundle to download (with progress), in parallel with the wasm. Relative URLs resolve
   * against the page. Kept with the Cache API (see `bundleCache`). */
  bundleUrl?: string;
  bundleUrls?: string[];
  /** Base64 ed25519 public key; unsigned or foreign bundles are refused. */
  publicKey?: string;
  /** Bundle download progress, after each chunk. Works in both modes. */
  onProgress?: (event: ProgressEvent) => void;
  /** Record events from `data-fs-*` attributes. Main-thread mode only: with `worker` it is an
   * InvalidOptionError. */
  autocapture?: boolean;
  /** Where privatized aggregate reports go, once the visitor consents. */
  collector?: CollectorConfig;
  /** Whether on-device personalization waits for consent (default "always"). */
  personalization?: 'always' | 'with_consent';
  /** Merchandising rules for every placement. */
  rules?: Rules;
  /**
   * Rules of one placement over `rules`: each field given replaces the shop-wide one for that
   * placement only (`maxPerCategory: null` / `diversity: null` lift a shop-wide setting), e.g.
   * `{similarTo: {rules: {maxPerCategory: 1}}}` for a varied carousel.
   */
  placements?: { [P in PlacementName]?: { rules?: RulesPatch } };
  /** A/B experiments, at most one per placement. */
  experiments?: Experiment[];
  /** Clicks, cart adds and purchases count for a list within this many minutes (default 1440). */
  attributionWindowMinutes?: number;
  /** After each `track`, compute the next `recommend` answer when the page is idle (default true). */
  precompute?: boolean;
  /**
   * Which path scores the item embeddings of a visitor-tower bundle (`foresight-export convert
   * --split-head` / `--item-embeddings`): `auto` (default) times CPU and WebGPU at init and keeps
   * the faster; `gpu` needs the SDK's WebGPU build; either way the answers are identical.
   */
  scoring?: 'auto' | 'cpu' | 'gpu';
  /** Replaces localStorage (e.g. in Node). Not with `worker`. */
  storage?: StorageHook;
  /** Run the SDK in a module Web Worker; `{url}` points at a self-hosted copy of worker.js. */
  worker?: boolean | { url?: string | URL };
  /** The wasm itself (e.g. `fs.readFileSync(...)` in Node, or a precompiled Module). */
  wasm?: Bytes | WebAssembly.Module | Response;
  /** Where to fetch the wasm from (default: `./wasm/foresight_bg.wasm` beside this module). */
  wasmUrl?: string | URL;
  /** Where to fetch the graph runtime (tract) from, for bundles in the `nnef`/`onnx` formats and
   * inline ONNX models (default: `./tract/foresight_tract_bg.wasm` beside this module). It is
   * fetched only when such a model is configured. */
  tractUrl?: string | URL;
  /** Where to fetch the WebGPU scoring module's wasm from (default:
   * `./gpu/foresight_gpu_bg.wasm` beside this module). It is fetched only for a visitor-tower
   * bundle, when `scoring` is not `'cpu'` and the browser has a WebGPU adapter. */
  gpuUrl?: string | URL;
  /**
   * Record the events the page already sends to Google Analytics 4 (`dataLayer`, including
   * entries pushed before the SDK loaded) and/or Segment (a destination plugin registered on
   * `window.analytics`), mapped to the SDK's events (table in npm/README.md). Read on the page's
   * side in both modes; the mapping module is loaded only when this is set.
   */
  sources?: Array<'ga4' | 'segment'>;
  /**
   * Keep bundles from `bundleUrl(s)` with the Cache API (default true where it exists): a
   * revisit loads them from there, even offline, then checks for a newer version when the page
   * is idle (If-None-Match / If-Modified-Since) and swaps it in only once it has verified and
   * loaded; otherwise the cached model stays. `false` downloads on every init.
   */
  bundleCache?: boolean;
}

// ───────────────────────────── errors ─────────────────────────────

/** Stable codes: invalid_event, invalid_option, no_model, no_consent, storage, model_parse,
 * model_unsupported_op, model_input, model_output, model_prepare, model_run,
 * model_runtime_unavailable (a graph model and no tract module), bundle_format,
 * bundle_version, bundle_truncated, bundle_manifest, bundle_unsigned, bundle_wrong_key,
 * bundle_tampered, bundle_key, bundle_unverifiable (the browser's WebCrypto has no Ed25519 to
 * check a signed bundle with: Chrome and Edge before 137, Firefox before 129, Safari before 17,
 * or a page on plain http), busy, internal; of this layer: wasm_load, worker, closed. */
export type ErrorCode = string;

export class ForesightError extends Error {
  readonly code: ErrorCode;
  /** The field an invalid_event / invalid_option error is about, when there is one (e.g.
   * "itemId", "k", an unknown config key, or a path into the config such as
   * "rules.pins[0].position"); absent for other codes. */
  readonly field?: string;
  constructor(code: ErrorCode, message: string, extra?: { field?: string; cause?: unknown });
}
/** code "invalid_event". */
export class InvalidEventError extends ForesightError {}
/** code "invalid_option". */
export class InvalidOptionError extends ForesightError {}
/** codes "model_*". */
export class ModelError extends ForesightError {}
/** codes "bundle_*". */
export class BundleError extends ForesightError {}
/** code "no_model". */
export class NoModelError extends ForesightError {}
/** code "no_consent". */
export class NoConsentError extends ForesightError {}
/** code "storage". */
export class StorageError extends ForesightError {}

// ───────────────────────────── the API ─────────────────────────────

/** One visitor's Foresight instance. Every method returns a Promise, in both modes. */
export class Foresight {
  private constructor(token: never, engine: never);
  /** Rejects only for an unusable config (InvalidOptionError), an unloadable wasm ("wasm_load")
   * or a Worker that cannot start ("worker"); a model that fails to load shows in `status()`. */
  static init(config?: ForesightConfig): Promise<Foresight>;
  /**
   * A handle usable at once, before the SDK is ready: calls that change state are queued and
   * replayed in order, lists come from `config.catalog` by popularity meanwhile (source
   * `popularity`, `fallbackReason` "the SDK is still loading", or "the SDK could not start: …"
   * when it never does), nothing throws into the page.
   * Replays and replaces an inline snippet's `window.foresight.q` (npm/README.md).
   */
  static start(config?: ForesightConfig): ForesightHandle;
  track(event: TrackEvent): Promise<void>;
  recommend(options?: RecommendOptions): Promise<Recommendations>;
  place(request: PlacementRequest): Promise<Recommendations>;
  forYou(options?: PlacementOptions): Promise<Recommendations>;
  similarTo(itemId: string, options?: PlacementOptions): Promise<Recommendations>;
  boughtTogether(itemIds: string[], options?: PlacementOptions): Promise<Recommendations>;
  popular(options?: PlacementOptions & { category?: string }): Promise<Recommendations>;
  trending(options?: PlacementOptions & { category?: string }): Promise<Recommendations>;
  recentlyViewed(options?: PlacementOptions): Promise<Recommendations>;
  /** What the visitor is likely to buy again: their own purchases scored on the device, popular items after them. */
  buyAgain(options?: PlacementOptions): Promise<Recommendations>;
  rerank(itemIds: string[], options?: { blend?: number }): Promise<Recommendations>;
  /** `{experiment: variant}`; kept on the device, never sent. */
  variants(): Promise<Record<string, string | null>>;
  /** Rejects with NoModelError without an intent model, NoConsentError when personalization waits for consent. */
  intent(): Promise<IntentScore>;
  history(): Promise<StoredEvent[]>;
  forget(): Promise<void>;
  status(): Promise<Status>;
  /** Which path scores item embeddings (visitor-tower bundles), and why. */
  scoring(): Promise<ScoringChoice>;
  consent(state: ConsentState): Promise<void>;
  privacy(): Promise<PrivacyStatus>;
  /** Never rejects for network trouble: the outcome says what happened. */
  flush(): Promise<FlushResult>;
  stopAutocapture(): Promise<void>;
  /** Frees the wasm instance or terminates the Worker; later calls reject with code "closed". */
  close(): Promise<void>;
}

/** What `Foresight.start` returns: Foresight's public methods (`Omit` keeps only those, so the
 * handle is not a Foresight nominally), usable before `ready`. */
export type ForesightHandle = Omit<Foresight, never> & {
  /** The Foresight, once `init` resolved; rejects as `init` would. */
  readonly ready: Promise<Foresight>;
  /** The inline snippet's form (`foresight.call('track', [event])`), still usable once adopted. */
  call(method: string, args?: unknown[]): Promise<unknown>;
};
