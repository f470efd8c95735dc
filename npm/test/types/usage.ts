// The public API of foresight-sdk as a storefront engineer writes against it, type-checked
// (never run) by `npm run typecheck` against src/index.d.ts under `strict`. Every
// `@ts-expect-error` below marks a mistake the declarations must refuse: if one of them stops
// being an error (the types got looser), tsc fails with "Unused '@ts-expect-error' directive".

import {
  BundleError,
  Foresight,
  ForesightError,
  InvalidEventError,
  InvalidOptionError,
  ModelError,
  NoConsentError,
  NoModelError,
  StorageError,
} from '../../src/index.js';
import { mapGa4, segmentPlugin } from '../../src/sources.js';
import type {
  CatalogItem,
  ConsentState,
  Contribution,
  ErrorCode,
  EventType,
  Experiment,
  Explanation,
  FlushResult,
  ForesightConfig,
  IntentScore,
  ModelStatus,
  PlacementName,
  PlacementRequest,
  PrivacyStatus,
  ProgressEvent,
  Recommendation,
  Recommendations,
  Report,
  Rules,
  ScoringChoice,
  Status,
  StorageHook,
  StoredEvent,
  TrackEvent,
} from '../../src/index.js';

/** Compile-time exhaustiveness: only `never` fits. */
function assertNever(value: never): never {
  throw new Error(`unexpected ${String(value)}`);
}

// ───────────────────────────── config ─────────────────────────────

const catalog: CatalogItem[] = [
  { id: 'sku-1', category: 'shoes', price: 59, popularity: 10, trend: 2.5, inStock: true, attributes: { color: 'red' } },
  { id: 'sku-2' },
];

const rules: Rules = {
  filter: {
    inStockOnly: true,
    categories: ['shoes', 'bags'],
    excludeCategories: ['gift-cards'],
    minPrice: 5,
    maxPrice: 500,
    attributes: { color: ['red', 'blue'] },
    excludeItems: ['sku-9'],
  },
  pins: [{ itemId: 'sku-1', position: 1 }],
  boosts: [{ category: 'shoes', factor: 1.5 }, { attribute: { brand: 'acme' }, factor: 0.5 }],
  excludeCart: true,
  excludePurchased: false,
  excludeRecentlyShown: true,
  maxPerCategory: 3,
  diversity: 0.7,
};

const experiments: Experiment[] = [
  {
    name: 'home-recs-2024',
    placement: 'forYou',
    variants: [
      { name: 'control', weight: 1, source: 'popularity' },
      { name: 'model', weight: 1, source: 'model', rules: false },
    ],
    epsilon: 0.5,
  },
];

const memory = new Map<string, string>();
const storage: StorageHook = {
  get: (key) => memory.get(key) ?? null,
  set: (key, value) => {
    memory.set(key, value);
  },
  remove: (key) => {
    memory.delete(key);
  },
};

const bytes = new Uint8Array([0, 97, 115, 109]);

const config: ForesightConfig = {
  storageKey: 'shop.foresight',
  store: { maxEvents: 500, maxBytes: 200_000, ttlDays: 30, sessionGapMinutes: 30 },
  catalog,
  recommender: { model: bytes, input: 'items', output: 'logits', maxSeqLen: 50 },
  intent: { model: bytes.buffer, input: 'x', output: 'y', positiveIndex: 1 },
  bundles: [bytes],
  bundleUrl: '/models/recommender.fsb',
  bundleUrls: ['/models/recommender.fsb', '/models/intent.fsb'],
  publicKey: 'cqGi/fYCexample=',
  onProgress: ({ url, loaded, total }: ProgressEvent) => {
    const percent: number | null = total === null ? null : (100 * loaded) / total;
    console.log(url, percent);
  },
  autocapture: false,
  collector: {
    url: 'https://collector.example/v1/report',
    site: 'demo-shop',
    key: 'demo-key',
    epsilonPerDay: 1,
    honourOptOutSignals: true,
    mechanisms: {
      itemView: { hashes: 4, width: 1024, epsilon: 0.25 },
      itemTransition: { hashes: 4, width: 1024, epsilon: 0.25 },
      categoryView: { hashes: 2, width: 256, epsilon: 0.1 },
      intentBucket: { k: 10, epsilon: 0.1 },
      recOutcome: { k: 4, epsilon: 0.1 },
      recItem: { hashes: 4, width: 1024, epsilon: 0.1 },
    },
    maxQueued: 7,
  },
  personalization: 'with_consent',
  rules,
  experiments,
  attributionWindowMinutes: 1440,
  precompute: true,
  scoring: 'auto',
  wasmUrl: new URL('https://cdn.example/foresight_bg.wasm'),
};

// Every way to pick the mode and the wasm.
const inWorker: ForesightConfig = { ...config, worker: true };
const selfHostedWorker: ForesightConfig = { catalog, worker: { url: new URL('/assets/worker.js', 'https://shop.example') } };
const workerByString: ForesightConfig = { worker: { url: '/assets/worker.js' }, wasmUrl: '/assets/foresight_bg.wasm' };
const inNode: ForesightConfig = { catalog, storage, wasm: bytes };
const precompiled = (module: WebAssembly.Module): ForesightConfig => ({ wasm: module, scoring: 'cpu' });
const streamed = (response: Response): ForesightConfig => ({ wasm: response, scoring: 'gpu' });

// @ts-expect-error scoring is 'auto' | 'cpu' | 'gpu'
const badScoring: ForesightConfig = { scoring: 'fast' };
// @ts-expect-error personalization is 'always' | 'with_consent'
const badPersonalization: ForesightConfig = { personalization: 'never' };
// @ts-expect-error the collector needs its site and key
const badCollector: ForesightConfig = { collector: { url: 'https://collector.example' } };
// @ts-expect-error a worker url is a string or URL
const badWorker: ForesightConfig = { worker: { url: 42 } };
// @ts-expect-error an experiment's placement is a PlacementName
const badExperiment: Experiment = { name: 'x', placement: 'homepage', variants: [{ name: 'a' }, { name: 'b' }] };
// @ts-expect-error a pin needs its position
const badPin: Rules = { pins: [{ itemId: 'sku-1' }] };
// @ts-expect-error a misspelt config key is refused (the wasm refuses it at runtime too)
const misspelt: ForesightConfig = { recomender: { model: bytes } };

// ───────────────────────────── events ─────────────────────────────

const events: TrackEvent[] = [
  { type: 'page_view' },
  { type: 'page_view', path: '/shoes' },
  { type: 'product_view', itemId: 'sku-1', category: 'shoes', price: 59 },
  { type: 'search', query: 'red shoes' },
  { type: 'click', itemId: 'sku-2', placement: 'forYou' },
  { type: 'add_to_cart', itemId: 'sku-1', quantity: 2, price: 59, category: 'shoes' },
  { type: 'remove_from_cart', itemId: 'sku-1', quantity: 1 },
  { type: 'purchase', items: [{ itemId: 'sku-1', quantity: 1, price: 59 }, { itemId: 'sku-2' }], total: 59 },
  { type: 'dwell', itemId: 'sku-1', seconds: 12.5 },
  { type: 'dwell', seconds: 3 },
];

function describeEvent(event: TrackEvent): string {
  switch (event.type) {
    case 'page_view':
      return event.path ?? '/';
    case 'product_view':
    case 'click':
    case 'add_to_cart':
    case 'remove_from_cart':
      return event.itemId;
    case 'search':
      return event.query;
    case 'purchase':
      return event.items.map((line) => line.itemId).join(',');
    case 'dwell':
      return `${event.seconds}s`;
    default:
      return assertNever(event);
  }
}

async function storefront(): Promise<void> {
  const fs: Foresight = await Foresight.init(config);
  await Foresight.init();
  await Foresight.init(inWorker);
  await Foresight.init(selfHostedWorker);
  await Foresight.init(workerByString);
  await Foresight.init(inNode);

  for (const event of events) {
    const done: void = await fs.track(event);
    console.log(describeEvent(event), done);
  }

  // @ts-expect-error an event type the SDK does not know
  await fs.track({ type: 'teleport', itemId: 'sku-1' });
  // @ts-expect-error a product view needs its itemId
  await fs.track({ type: 'product_view', category: 'shoes' });
  // @ts-expect-error a purchase carries lines, not bare ids
  await fs.track({ type: 'purchase', items: ['sku-1'] });
  // @ts-expect-error a price is a number
  await fs.track({ type: 'add_to_cart', itemId: 'sku-1', price: '59.00' });
  // @ts-expect-error unknown fields are refused (InvalidEventError at runtime)
  await fs.track({ type: 'search', query: 'x', extra: 1 });
  // @ts-expect-error an event is required
  await fs.track();

  // ─────────────────────────── placements ───────────────────────────

  const recs: Recommendations = await fs.recommend({ k: 8, exclude: ['sku-9'] });
  await fs.recommend();
  const lists: Recommendations[] = [
    recs,
    await fs.forYou({ k: 4 }),
    await fs.forYou(),
    await fs.similarTo('sku-1', { k: 6, exclude: ['sku-2'] }),
    await fs.similarTo('sku-1'),
    await fs.boughtTogether(['sku-1', 'sku-2'], { k: 3 }),
    await fs.popular({ category: 'shoes', k: 10 }),
    await fs.popular(),
    await fs.trending({ category: 'bags' }),
    await fs.trending(),
    await fs.recentlyViewed({ k: 5 }),
    await fs.recentlyViewed(),
    await fs.buyAgain({ k: 8, exclude: ['sku-1'] }),
    await fs.buyAgain(),
    await fs.rerank(['sku-3', 'sku-1', 'sku-2'], { blend: 0.5 }),
    await fs.rerank(['sku-3', 'sku-1']),
  ];
  const requests: PlacementRequest[] = [
    { type: 'forYou', k: 4 },
    { type: 'similarTo', itemId: 'sku-1' },
    { type: 'boughtTogether', itemIds: ['sku-1'], exclude: ['sku-2'] },
    { type: 'popular', category: 'shoes' },
    { type: 'trending' },
    { type: 'recentlyViewed', k: 3 },
    { type: 'buyAgain', k: 5 },
    { type: 'rerank', itemIds: ['sku-1', 'sku-2'], blend: 1 },
  ];
  for (const request of requests) lists.push(await fs.place(request));

  for (const list of lists) {
    const source: 'model' | 'popularity' | 'trend' | 'history' = list.source;
    const placement: PlacementName = list.placement;
    const id: string = list.id;
    const variant: string | undefined = list.variant;
    const fallback: string | undefined = list.fallbackReason;
    console.log(source, placement, id, variant, fallback);
    for (const rec of list.items) {
      const { itemId, score }: Recommendation = rec;
      console.log(itemId, score.toFixed(3), explain(rec.because));
    }
  }

  // @ts-expect-error similarTo needs the item
  await fs.similarTo();
  // @ts-expect-error boughtTogether takes an array of ids
  await fs.boughtTogether('sku-1');
  // @ts-expect-error k is a number
  await fs.recommend({ k: '8' });
  // @ts-expect-error blend is a number
  await fs.rerank(['sku-1'], { blend: 'half' });
  // @ts-expect-error a similarTo request needs its itemId
  await fs.place({ type: 'similarTo' });
  // @ts-expect-error no such placement
  await fs.place({ type: 'bestSellers' });

  const variants: Record<string, string | null> = await fs.variants();
  console.log(variants['home-recs-2024']);

  // ───────────────────────────── intent ─────────────────────────────

  const score: IntentScore = await fs.intent();
  const probability: number = score.probability;
  for (const { name, value } of score.features) console.log(name, value);
  if (probability > 0.8) console.log('show the free-shipping banner');

  // ──────────────────────── history and state ────────────────────────

  const history: StoredEvent[] = await fs.history();
  for (const stored of history) {
    const at: number = stored.at;
    const session: number = stored.session;
    const type: EventType = stored.type;
    if (stored.type === 'add_to_cart' || stored.type === 'remove_from_cart') {
      const quantity: number = stored.quantity; // filled in on the device
      console.log(quantity);
    }
    if (stored.type === 'purchase') {
      const quantities: number[] = stored.items.map((line) => line.quantity);
      console.log(quantities);
    }
    console.log(at, session, type);
  }
  const forgotten: void = await fs.forget();

  const status: Status = await fs.status();
  console.log(modelState(status.recommender), modelState(status.intent), status.events, status.autocapture);

  const scoring: ScoringChoice = await fs.scoring();
  const backend: 'cpu' | 'gpu' = scoring.backend;
  const timings: [number | undefined, number | undefined] = [scoring.cpuMs, scoring.gpuMs];
  console.log(backend, scoring.reason, scoring.adapter, timings, scoring.ready);

  // ──────────────────────── consent and privacy ────────────────────────

  const states: ConsentState[] = ['granted', 'denied', 'unknown'];
  for (const state of states) await fs.consent(state);
  await fs.consent('granted');
  // @ts-expect-error consent is "granted" | "denied" | "unknown"
  await fs.consent('yes');
  // @ts-expect-error consent is a string, not a boolean
  await fs.consent(true);

  const privacy: PrivacyStatus = await fs.privacy();
  const consent: ConsentState = privacy.consent;
  console.log(consent, privacy.sending, privacy.globalPrivacyControl, privacy.doNotTrack);
  console.log(privacy.epsilonSpentToday, privacy.epsilonPerDay);
  for (const report of [...privacy.pending, ...privacy.sent]) describeReport(report);

  const flushed: FlushResult = await fs.flush();
  if (flushed.outcome === 'delivered') console.log(`${flushed.sent} sent`, flushed.prepared);
  else if (flushed.outcome === null) console.log('nothing to send', flushed.error);
  else console.log(flushed.outcome satisfies 'retry' | 'rejected');

  await fs.stopAutocapture();
  await fs.close();
  console.log(forgotten);
}

function explain(because: Explanation): string {
  switch (because.kind) {
    case 'recent_event':
      return `${because.event} ${because.itemId}: ${because.text}`;
    case 'similar_to':
    case 'goes_with':
      return `${because.itemId}: ${because.text}`;
    case 'reranked':
      return `was #${because.shopPosition}: ${because.text}`;
    case 'popular_now':
    case 'trending':
    case 'recently_viewed':
    case 'bought_before':
    case 'pinned':
      return because.text;
    default:
      return assertNever(because);
  }
}

function modelState(model: ModelStatus): string {
  switch (model.state) {
    case 'absent':
    case 'ready':
      return model.state;
    case 'failed':
      return `${model.code}: ${model.error}`;
    default:
      return assertNever(model);
  }
}

function describeReport(report: Report): void {
  console.log(report.version, report.site, report.idempotencyKey, report.day, report.epsilon);
  for (const c of report.contributions) console.log(contribution(c));
}

function contribution(c: Contribution): string {
  switch (c.statistic) {
    case 'item_view':
    case 'item_transition':
    case 'category_view':
    case 'rec_item':
      return `${c.statistic} ${c.mechanism.hashes}x${c.mechanism.width} ${c.report.hash}/${c.report.coord}/${c.report.sign}`;
    case 'intent_bucket':
    case 'rec_outcome':
      return `${c.statistic} ${c.mechanism.k} ${c.value}`;
    case 'experiment_outcome':
      return `${c.experiment} ${c.value}`;
    default:
      return assertNever(c);
  }
}

// ───────────────────────────── errors ─────────────────────────────

async function addToCart(fs: Foresight, itemId: string): Promise<void> {
  try {
    await fs.track({ type: 'add_to_cart', itemId });
  } catch (e) {
    if (e instanceof InvalidEventError || e instanceof InvalidOptionError) {
      const field: string | undefined = e.field;
      const code: ErrorCode = e.code;
      console.warn(`bad ${field ?? 'input'} (${code}): ${e.message}`);
    } else if (e instanceof NoModelError || e instanceof NoConsentError) {
      console.info(e.code, e.name);
    } else if (e instanceof ModelError || e instanceof BundleError || e instanceof StorageError) {
      console.error(e.code, e.cause);
    } else if (e instanceof ForesightError) {
      if (e.code === 'closed' || e.code === 'wasm_load' || e.code === 'worker') console.error(e.message);
    } else {
      throw e;
    }
  }
}

const errors: ForesightError[] = [
  new ForesightError('busy', 'try again'),
  new InvalidEventError('invalid_event', 'invalid event: `itemId` must not be empty', { field: 'itemId' }),
  new InvalidOptionError('invalid_option', 'invalid k: must be from 1 to 100', { field: 'k', cause: new Error('k') }),
  new ModelError('model_parse', 'not an ONNX model'),
  new BundleError('bundle_tampered', 'signature mismatch'),
  new NoModelError('no_model', 'no intent model'),
  new NoConsentError('no_consent', 'waiting for consent'),
  new StorageError('storage', 'quota exceeded'),
];
const asError: Error = errors[0] ?? new Error();

function mistakes(fs: Foresight, e: ForesightError): void {
  // @ts-expect-error instances come from `await Foresight.init(config)` only
  new Foresight();
  // @ts-expect-error code is read-only
  e.code = 'other';
  // @ts-expect-error field is read-only
  e.field = 'itemId';
  // @ts-expect-error field is a string
  const n: number | undefined = e.field;
  // @ts-expect-error an error needs its code and message
  new InvalidEventError('invalid_event');
  // @ts-expect-error every method returns a Promise
  const sync: Recommendations = fs.recommend();
  console.log(n, sync);
}

/** A shop whose tracking is GA4 and Segment. */
async function fromAnalytics(): Promise<void> {
  const fs = await Foresight.init({ bundleUrl: '/models/recommender.fsb', sources: ['ga4', 'segment'], bundleCache: false });
  const plugin = segmentPlugin(fs);
  const ctx = plugin.track({ event: { event: 'Product Viewed', properties: { product_id: 'sku-1' } } });
  const same: string | undefined = ctx.event.event;
  const events = mapGa4('view_item', { items: [{ item_id: 'sku-1' }] });
  if (events) for (const e of events) await fs.track(e);
  const status = await fs.status();
  const state: string | undefined = status.bundles?.[0]?.revalidation.state;
  // @ts-expect-error: only GA4 and Segment are sources
  await Foresight.init({ sources: ['ga3'] });
  // @ts-expect-error: bundleCache is a boolean
  await Foresight.init({ bundleCache: 'yes' });
  const handle = Foresight.start({ bundleUrl: '/models/recommender.fsb', catalog: [{ id: 'sku-1', popularity: 3 }] });
  void handle.track({ type: 'product_view', itemId: 'sku-1' });
  const early: string = (await handle.forYou({ k: 4 })).source;
  const ready: Foresight = await handle.ready;
  await handle.call('track', [{ type: 'product_view', itemId: 'sku-1' }]);
  // @ts-expect-error: the snippet's form takes the arguments as an array
  await handle.call('track', { type: 'product_view', itemId: 'sku-1' }, 1);
  void early;
  void ready;
  await Foresight.init({ rules: { maxPerCategory: 3 }, placements: { similarTo: { rules: { maxPerCategory: 1 } }, forYou: { rules: { maxPerCategory: null } } } });
  // @ts-expect-error: not a placement
  await Foresight.init({ placements: { carousel: { rules: {} } } });
  void same;
  void state;
}

export {
  addToCart,
  fromAnalytics,
  asError,
  badCollector,
  badExperiment,
  badPersonalization,
  badPin,
  badScoring,
  badWorker,
  misspelt,
  mistakes,
  precompiled,
  storefront,
  streamed,
};
