// `sources: ["ga4", "segment"]`: the commerce events a shop already sends to Google Analytics 4
// or Segment become the SDK's own, so the shop does not write every `track()` again.
//
// GA4: the page's `dataLayer` is read from its start (entries pushed before the SDK loaded),
// then `dataLayer.push` is wrapped to see later ones. Both forms are read: the Tag Manager form
// `{event: 'view_item', ecommerce: {items}}` and gtag's `gtag('event', 'view_item', {items})`,
// which pushes its `arguments`.
// Segment: an analytics-next destination plugin (no network) registered on `window.analytics`
// (the snippet queues `register` until analytics.js loads); pages that load analytics from npm
// register `segmentPlugin(foresight)` from `foresight-sdk/sources` themselves.
//
// index.js imports this module only when the config names `sources`.
//
// The mapping (also in npm/README.md). One SDK event per item where the source lists several.
//   GA4 event            Segment event          SDK event           fields
//   page_view            —                      page_view           path ← page_location's path
//   view_item            Product Viewed         product_view        itemId ← item_id / product_id, category ← item_category / category, price
//   view_item_list       Product List Viewed    page_view           path (a list is a page, not interest in its items)
//   select_item          Product Clicked        click               itemId, placement ← item_list_id / list_id
//   add_to_cart          Product Added          add_to_cart         itemId, quantity, price, category
//   remove_from_cart     Product Removed        remove_from_cart    itemId, quantity
//   begin_checkout       Checkout Started       page_view           path
//   purchase             Order Completed        purchase            items[] ← items / products (itemId, quantity, price), total ← value / total / revenue
//   view_search_results  Products Searched      search              query ← search_term / query
// Anything else is ignored; an event that maps but does not validate is a console warning.

const GA4 = {
  page_view: (p) => [{ type: 'page_view', ...path(p.page_location) }],
  view_item: (p) => items(p.items).map((i) => productView(i, ga4Item)),
  view_item_list: (p) => [{ type: 'page_view', ...path(p.page_location) }],
  select_item: (p) => items(p.items).map((i) => click(ga4Item(i).itemId, i.item_list_id ?? p.item_list_id)),
  add_to_cart: (p) => items(p.items).map((i) => addToCart(ga4Item(i))),
  remove_from_cart: (p) => items(p.items).map((i) => removeFromCart(ga4Item(i))),
  begin_checkout: (p) => [{ type: 'page_view', ...path(p.page_location) }],
  purchase: (p) => [purchase(items(p.items).map(ga4Item), p.value)],
  view_search_results: (p) => [{ type: 'search', query: p.search_term }],
};

const SEGMENT = {
  'Product Viewed': (p) => [productView(p, segmentItem)],
  'Product List Viewed': () => [{ type: 'page_view', ...path() }],
  'Product Clicked': (p) => [click(segmentItem(p).itemId, p.list_id)],
  'Product Added': (p) => [addToCart(segmentItem(p))],
  'Product Removed': (p) => [removeFromCart(segmentItem(p))],
  'Checkout Started': () => [{ type: 'page_view', ...path() }],
  'Order Completed': (p) => [purchase(items(p.products).map(segmentItem), p.total ?? p.revenue)],
  'Products Searched': (p) => [{ type: 'search', query: p.query }],
};

function items(list) {
  if (!Array.isArray(list)) throw new TypeError('it has no items array');
  return list;
}

/** An id as the SDK takes it: shops send numbers as often as strings. */
function id(value) {
  return typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
}

/** A number, or a numeric string ("12.50"); anything else is left for the SDK to refuse. */
function number(value) {
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return value;
}

function ga4Item(i) {
  return { itemId: id(i?.item_id), category: i?.item_category, price: number(i?.price), quantity: number(i?.quantity) };
}

function segmentItem(p) {
  return { itemId: id(p?.product_id ?? p?.sku), category: p?.category, price: number(p?.price), quantity: number(p?.quantity) };
}

/** Drops undefined fields: the SDK treats a field that is there as given. */
function defined(event) {
  return Object.fromEntries(Object.entries(event).filter(([, v]) => v !== undefined && v !== null));
}

function productView(raw, read) {
  const i = read(raw);
  return defined({ type: 'product_view', itemId: i.itemId, category: i.category, price: i.price });
}

function click(itemId, placement) {
  return defined({ type: 'click', itemId, placement: id(placement) });
}

function addToCart(i) {
  return defined({ type: 'add_to_cart', itemId: i.itemId, quantity: i.quantity, price: i.price, category: i.category });
}

function removeFromCart(i) {
  return defined({ type: 'remove_from_cart', itemId: i.itemId, quantity: i.quantity });
}

function purchase(lines, total) {
  return defined({ type: 'purchase', items: lines.map((l) => defined({ itemId: l.itemId, quantity: l.quantity, price: l.price })), total: number(total) });
}

function path(location = globalThis.location?.href) {
  try {
    return { path: new URL(location, globalThis.location?.href).pathname };
  } catch {
    return {};
  }
}

/** The SDK events for one source event, or null when the source event is not one it maps. */
export function mapGa4(name, params) {
  const map = Object.hasOwn(GA4, name) ? GA4[name] : null;
  return map ? map(params ?? {}) : null;
}

export function mapSegment(name, properties) {
  const map = Object.hasOwn(SEGMENT, name) ? SEGMENT[name] : null;
  return map ? map(properties ?? {}) : null;
}

/**
 * Starts reading the sources into `track` (a function returning a promise). Returns a function
 * that stops reading (restores `dataLayer.push`; a registered Segment plugin stays registered
 * but forwards nothing).
 */
export function startSources(sources, track) {
  sources = [...new Set(sources)];
  let live = true;
  const send = (source, name, events) => {
    for (const event of events) {
      track(event).catch((e) => console.warn(`[foresight] ${source} event "${name}" not recorded: ${e?.message ?? e}`));
    }
  };
  const handle = (source, name, map, params) => {
    if (!live) return;
    let events;
    try {
      events = map(name, params);
    } catch (e) {
      console.warn(`[foresight] ${source} event "${name}" skipped: ${e?.message ?? e}`);
      return;
    }
    if (events) send(source, name, events);
  };
  const stops = [];
  if (sources.includes('ga4')) stops.push(readDataLayer((name, params) => handle('GA4', name, mapGa4, params)));
  if (sources.includes('segment')) {
    const analytics = globalThis.analytics;
    if (analytics && typeof analytics.register === 'function') {
      const registered = analytics.register(segmentPlugin({ track: (event) => (live ? track(event) : Promise.resolve()) }));
      // analytics-next returns a promise; a rejection is its problem to report, not the page's.
      registered?.catch?.((e) => console.warn(`[foresight] the Segment plugin could not be registered: ${e?.message ?? e}`));
    } else {
      console.warn('[foresight] sources: "segment" needs window.analytics (Segment analytics.js) loaded or its snippet; register segmentPlugin(foresight) yourself when you load it from npm');
    }
  }
  return () => {
    live = false;
    for (const stop of stops) stop();
  };
}

/** The GA4 event in one dataLayer entry: `{event, ecommerce}` or gtag's `arguments`. */
function ga4Entry(entry) {
  if (entry === null || typeof entry !== 'object') return null;
  if (typeof entry.length === 'number' && entry[0] === 'event' && typeof entry[1] === 'string') {
    return { name: entry[1], params: entry[2] ?? {} };
  }
  if (typeof entry.event === 'string' && !entry.event.startsWith('gtm.')) {
    // Tag Manager's ecommerce events keep their parameters under `ecommerce`; the rest
    // (page_location, search_term) sit beside `event`.
    const params = entry.ecommerce && typeof entry.ecommerce === 'object' ? { ...entry, ...entry.ecommerce } : entry;
    return { name: entry.event, params };
  }
  return null;
}

function readDataLayer(on) {
  const read = (entry) => {
    const e = ga4Entry(entry);
    if (e) on(e.name, e.params);
  };
  const layer = (globalThis.dataLayer ??= []);
  if (!Array.isArray(layer)) {
    console.warn('[foresight] sources: "ga4" needs window.dataLayer to be an array');
    return () => {};
  }
  for (const entry of [...layer]) read(entry);
  const original = layer.push;
  const push = function (...entries) {
    const result = original.apply(this, entries);
    for (const entry of entries) read(entry);
    return result;
  };
  layer.push = push;
  return () => {
    // Only if nothing (Tag Manager) wrapped it since; otherwise theirs calls ours, which then
    // forwards nothing (startSources's `live`).
    if (layer.push === push) layer.push = original;
  };
}

/**
 * A Segment analytics-next destination plugin that records the ecommerce events it sees in
 * `foresight` (anything with `track(event)`): `analytics.register(segmentPlugin(fs))`.
 */
export function segmentPlugin(foresight) {
  const forward = (ctx) => {
    const name = ctx?.event?.event;
    let events = null;
    try {
      events = typeof name === 'string' ? mapSegment(name, ctx.event.properties) : null;
    } catch (e) {
      console.warn(`[foresight] Segment event "${name}" skipped: ${e?.message ?? e}`);
    }
    for (const event of events ?? []) {
      Promise.resolve(foresight.track(event)).catch((e) => console.warn(`[foresight] Segment event "${name}" not recorded: ${e?.message ?? e}`));
    }
    return ctx;
  };
  return {
    name: 'Foresight',
    type: 'destination',
    version: '0.1.0',
    isLoaded: () => true,
    load: () => Promise.resolve(),
    track: forward,
  };
}
