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
  // "Recently viewed" on the home page (these are left out of "Recommended for you").
  recentCount: 8,
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
