// The demo shop's settings. Everything here is the shop's choice, not the SDK's.
//
// Nudge thresholds can also be set per visit from the query string, e.g.
// `/?intentHigh=0.4&intentDropBy=0.1#/` (handy for trying them out, and for the tests).

export const config = {
  // Proactive nudges from the intent model (a probability that this session ends in a purchase).
  nudges: {
    // Intent at or above this: show delivery information ("order in the next 2 h…").
    intentHigh: 0.6,
    // A visitor whose intent peaked at or above this in the session…
    intentDropFrom: 0.5,
    // …and has since fallen by at least this much sees a helpful offer.
    intentDropBy: 0.2,
  },
  // Where the runtime settings (public key, collector, bundle URLs) and the catalog are served.
  runtimeUrl: "./data/runtime.json",
  filmsUrl: "./data/films.json",
  // The SDK (the npm package's dist/, served at /sdk/).
  sdkUrl: "./sdk/index.js",
  // The SDK's event log key and the shop's own cart key (separate: the cart is the shop's state).
  storageKey: "foresight.demo-shop",
  cartKey: "demo-shop.cart",
  // Recommendation list sizes.
  forYouCount: 8,
  similarCount: 6,
  popularCount: 8,
  trendingCount: 8,
  togetherCount: 6,
  // "Trending in <genre>" above a genre's films.
  genreTrendingCount: 8,
  // "Recently viewed" on the home page (these are left out of "Recommended for you").
  recentCount: 8,
  // Genre pages and search results keep the shop's own list (every film, most rated first),
  // reordered for the visitor: 0 keeps the shop's order, 1 would be the model's alone.
  rerankBlend: 0.5,

  // What the shop hands the SDK on top of the runtime settings (bundles, key, collector).
  foresight: {
    // Merchandising rules: every SDK list obeys them (not `rerank`, which only reorders the
    // page's own list). Cart and purchased films are left out (the SDK's defaults, spelled
    // out here); MovieLens's two "unknown" entries (no title, no genre) are never promoted; and
    // the shop's licence for Pulp Fiction is ending, so it is no longer recommended anywhere —
    // its page and the genre lists still sell it (see js/views.js).
    rules: {
      excludeCart: true,
      excludePurchased: true,
      filter: { excludeCategories: ["unknown"], excludeItems: ["56"] },
    },
    // One A/B test: does the on-device model beat plain popularity for "Goes well with your
    // cart"? The first variant is the control. Each visitor is assigned on this device (stable,
    // random, never sent); outcomes travel only inside the daily randomized report.
    experiments: [
      {
        name: "cart-addons",
        placement: "boughtTogether",
        variants: [{ name: "popular", source: "popularity" }, { name: "model" }],
        epsilon: 0.25,
      },
    ],
    // A click, cart add or purchase counts for a list shown within this many minutes.
    attributionWindowMinutes: 24 * 60,
    // The experiment's ε comes on top of the report's other statistics, and the day's total
    // must stay within the budget (1.0, which is also the most the collector accepts per
    // report). So the shop gives the experiment 0.25 and takes it from the item statistics
    // (defaults: item views 0.3, transitions 0.25, categories 0.1, recommended items 0.1;
    // intent 0.1 and the recommendation funnel 0.15 stay). Applied when the runtime names a
    // collector.
    collector: {
      epsilonPerDay: 1.0,
      mechanisms: {
        itemView: { hashes: 16, width: 1024, epsilon: 0.2 },
        itemTransition: { hashes: 16, width: 1024, epsilon: 0.2 },
        categoryView: { hashes: 8, width: 256, epsilon: 0.05 },
        recItem: { hashes: 16, width: 1024, epsilon: 0.05 },
      },
    },
  },
  // The grocery (`make demo DATA=tafeng`, js/shop.js) has neither MovieLens's "unknown" entries
  // nor Pulp Fiction (the SDK refuses rules naming what its catalog lacks): its rules are the
  // defaults, spelled out. Everything else in `foresight` applies to it as it is.
  groceryRules: { excludeCart: true, excludePurchased: true },
  // What the privacy panel says about each experiment (keyed by name).
  experimentNotes: {
    // ({items}: "films", or "products" in the grocery, `make demo DATA=tafeng`.)
    "cart-addons": "what “Goes well with your cart” shows: {items} the on-device model picks to go with yours or simply the most popular {items} (the control)",
  },
  // Give up waiting for the SDK after this long and run on the catalog alone.
  initTimeoutMs: 30000,
};

const NUMERIC = ["intentHigh", "intentDropFrom", "intentDropBy"];

/** The config with per-visit overrides from the query string applied. */
export function effectiveConfig(search = location.search) {
  const params = new URLSearchParams(search);
  const nudges = { ...config.nudges };
  for (const name of NUMERIC) {
    const v = Number.parseFloat(params.get(name) ?? "");
    if (Number.isFinite(v)) nudges[name] = v;
  }
  const worker = ["1", "true", "yes"].includes((params.get("worker") ?? "").toLowerCase());
  return { ...config, nudges, worker };
}
