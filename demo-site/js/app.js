// Foresight Films: boot, routing, event tracking and nudges.
//
// The page works without the SDK: the catalog renders first, from /data/films.json; the SDK
// loads alongside (progress bar), and once it is ready the recommendation rails become personal.
// If it cannot start, the rails stay on popularity and a small notice says so.

import { effectiveConfig } from "../config.js";
import { Personalization } from "./personalize.js";
import { Cart } from "./cart.js";
import { Nudges } from "./nudges.js";
import { filmLabel, html, el, genreHref } from "./ui.js";
import { shop, setShop, applyShopChrome } from "./shop.js";
import * as views from "./views.js";

const cfg = effectiveConfig();

let resolveReady;
/** Test hook: resolves once the SDK started (or failed to), with `{state, error?}`. */
window.__demoReady = new Promise((r) => {
  resolveReady = r;
});
window.__foresight = null;

const $ = (sel) => document.querySelector(sel);

function showNotice(text) {
  const n = $("[data-testid=notice]");
  n.textContent = text;
  n.hidden = false;
}

// ---- progress bar (bundle downloads) -----------------------------------------------------

const progress = { byUrl: new Map() };
function onProgress({ url, loaded, total }) {
  progress.byUrl.set(url, { loaded, total });
  let l = 0;
  let t = 0;
  let known = true;
  for (const v of progress.byUrl.values()) {
    l += v.loaded ?? 0;
    if (v.total) t += v.total;
    else known = false;
  }
  const bar = $("[data-testid=load-progress]");
  bar.hidden = false;
  bar.dataset.loaded = String(l);
  const pct = known && t > 0 ? Math.min(100, (100 * l) / t) : null;
  bar.querySelector(".bar").style.width = pct === null ? "40%" : `${pct.toFixed(1)}%`;
  bar.classList.toggle("indeterminate", pct === null);
  bar.querySelector(".label").textContent = `Loading your on-device recommendations… ${pct === null ? `${(l / 1e6).toFixed(1)} MB` : `${pct.toFixed(0)}%`}`;
}
function hideProgress() {
  const bar = $("[data-testid=load-progress]");
  bar.querySelector(".bar").style.width = "100%";
  setTimeout(() => {
    bar.hidden = true;
  }, 300);
}

// ---- catalog -----------------------------------------------------------------------------

async function loadJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function buildCatalog(data) {
  setShop(data?.shop);
  const items = (data?.items ?? [])
    .filter((f) => f && f.id !== undefined)
    .map((f) => ({
      id: String(f.id),
      title: String(f.title ?? f.id),
      year: Number.isFinite(f.year) ? f.year : null,
      genres: Array.isArray(f.genres) && f.genres.length ? f.genres.map(String) : [String(f.category ?? "Unknown")],
      price: Number(f.price) || 0,
      popularity: Number(f.popularity) || 0,
    }));
  const byId = new Map(items.map((f) => [f.id, f]));
  const byPopularity = [...items].sort((a, b) => b.popularity - a.popularity);
  const counts = new Map();
  const bought = new Map();
  for (const f of items) {
    for (const g of f.genres) {
      counts.set(g, (counts.get(g) ?? 0) + 1);
      bought.set(g, (bought.get(g) ?? 0) + f.popularity);
    }
  }
  const genres = [...counts].map(([name, count]) => ({ name, count, popularity: bought.get(name) })).filter((g) => g.name !== "unknown").sort((a, b) => a.name.localeCompare(b.name));
  // Where there are too many to list (the grocery's subclasses): the most bought, most first.
  const featured = (n) => (genres.length <= n ? genres : [...genres].sort((a, b) => b.popularity - a.popularity || a.name.localeCompare(b.name)).slice(0, n));
  return { items, byId, byPopularity, genres, featured };
}

// ---- boot --------------------------------------------------------------------------------

async function boot() {
  let catalog;
  let runtime;
  try {
    [catalog, runtime] = await Promise.all([loadJson(cfg.filmsUrl).then(buildCatalog), loadJson(cfg.runtimeUrl).catch((e) => ({ error: e }))]);
  } catch (e) {
    showNotice(`The catalog could not be loaded (${e.message}). Please try again later.`);
    resolveReady({ state: "failed", error: String(e.message ?? e) });
    return;
  }
  applyShopChrome(document, catalog);
  const p = new Personalization(catalog);
  const cart = new Cart(cfg.cartKey);
  const nudges = new Nudges({ thresholds: cfg.nudges, banner: $("[data-testid=nudge]") });

  const ctx = {
    cfg,
    catalog,
    p,
    cart,
    nudges,
    main: null,
    state: {},
    /** `because` → words, with the film's title instead of its id. */
    explain(because) {
      if (!because) return "";
      const film = because.itemId ? catalog.byId.get(because.itemId) : null;
      switch (because.kind) {
        case "recent_event": {
          const verb = because.event === "add_to_cart" ? "added" : because.event === "purchase" ? "bought" : "viewed";
          if (film) return `because you ${verb} ${filmLabel(film)}`;
          break;
        }
        case "similar_to":
          if (film) return `visitors who viewed ${filmLabel(film)} looked at this next`;
          break;
        case "goes_with":
          if (film) return `goes with ${filmLabel(film)} in your cart`;
          break;
        default:
          break;
      }
      // popular_now, trending, recently_viewed, pinned, reranked ("moved up from #7 for you"):
      // the SDK's own words.
      return because.text ?? "";
    },
    /** Tracks an event, then updates the nudges from the new intent score. */
    async track(event) {
      const ok = await p.track(event);
      if (!ok) return false;
      const score = await p.intent();
      nudges.update(score, describeForNudge(catalog, event));
      window.__demo.lastIntent = score;
      return true;
    },
  };

  // Cart badge.
  const badge = $("[data-testid=cart-count]");
  const drawBadge = () => {
    badge.textContent = String(cart.count());
  };
  cart.onChange(drawBadge);
  drawBadge();

  // Genre navigation.
  $("[data-testid=genre-nav]").append(
    ...catalog.featured(shop.navCategories).map((g) => el(html`<a href="${genreHref(g.name)}" data-genre="${g.name}">${shop.categoryLabel(g.name)}</a>`)),
  );

  // Search form: a route, so the back button works.
  $("[data-testid=search-form]").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new FormData(e.target).get("q")?.toString().trim() ?? "";
    location.hash = `#/search?q=${encodeURIComponent(q)}`;
  });

  // Clicks on film tiles: a `click` event with where the tile was (recommendation rails, grids).
  // A quick "+ Cart" on a tile: the cart changes, so the page's lists are drawn again.
  document.addEventListener("click", async (e) => {
    const add = e.target.closest?.(".tile[data-item-id] .quick-add");
    if (add) {
      const f = catalog.byId.get(add.closest(".tile").dataset.itemId);
      if (!f) return;
      add.disabled = true;
      add.textContent = "✓ Added";
      cart.add(f.id, 1);
      await ctx.track({ type: "add_to_cart", itemId: f.id, quantity: 1, price: f.price, category: f.genres[0] });
      await route({ refresh: true });
      return;
    }
    const link = e.target.closest?.(".tile[data-item-id] a.tile-link");
    if (!link || e.defaultPrevented) return;
    const t = link.closest(".tile");
    const placement = t.dataset.placement || undefined;
    ctx.track({ type: "click", itemId: t.dataset.itemId, ...(placement ? { placement } : {}) });
  });

  // Test and debugging hooks.
  window.__demo = {
    cfg,
    catalog,
    cart,
    nudges,
    personalization: p,
    lastIntent: null,
    /** Navigates and resolves when the new page is fully rendered (recommendations included). */
    navigate(hash) {
      if (location.hash === hash) return route({ refresh: true });
      return new Promise((resolve) => {
        pendingNavigations.push(resolve);
        location.hash = hash;
      });
    },
    /** The page currently rendering or rendered. */
    rendered: () => currentRender,
    /** Resolves when every SDK call made so far has answered. */
    idle: () => p.idle(),
  };

  // Router.
  const pendingNavigations = [];
  let currentRender = Promise.resolve();
  let seq = 0;
  /** Draws the page of `location.hash`; `refresh`: the same page again, without tracking a visit. */
  async function route({ refresh = false } = {}) {
    const mySeq = ++seq;
    const { name, params, path } = parseRoute(location.hash);
    params.refresh = refresh === true;
    const view = document.createElement("div");
    view.className = `view view-${name}`;
    view.dataset.route = name;
    const main = $("#app");
    main.replaceChildren(view);
    main.dataset.route = name;
    main.dataset.state = "rendering";
    document.title = shop.name;
    if (name !== "search") $("[data-testid=search-input]").value = "";
    for (const a of document.querySelectorAll("[data-genre]")) a.classList.toggle("active", name === "genre" && a.dataset.genre === params.name);
    const scroll = window.scrollY;
    const viewCtx = Object.assign(Object.create(ctx), { main: view });
    if (!refresh) {
      window.scrollTo(0, 0);
      // Time on the film page just left.
      const left = ctx.state.onFilm;
      ctx.state.onFilm = name === "film" ? { itemId: params.id, since: performance.now() } : null;
      if (left && catalog.byId.has(left.itemId)) {
        const seconds = Math.round((performance.now() - left.since) / 100) / 10;
        if (seconds >= 1) ctx.track({ type: "dwell", itemId: left.itemId, seconds });
      }
      ctx.track({ type: "page_view", path });
    }
    const render = (async () => {
      try {
        await (views[name] ?? views.notFound)(viewCtx, params);
      } catch (e) {
        console.error("[demo] the page failed to render", e);
        view.append(el(html`<p class="notice inline">Something went wrong on this page. <a href="#/">Back to the shop</a>.</p>`));
      }
      await p.idle();
      if (refresh) window.scrollTo(0, scroll);
      if (mySeq === seq) main.dataset.state = "ready";
    })();
    currentRender = render;
    await render;
    if (mySeq === seq) {
      while (pendingNavigations.length) pendingNavigations.shift()();
    }
    return render;
  }
  window.addEventListener("hashchange", () => route());

  // First page right away, on the catalog; the SDK loads meanwhile (the recommendation rails
  // wait for it, with the progress bar above).
  const firstRender = route();

  const state = await p.init({
    sdkUrl: cfg.sdkUrl,
    runtime: runtime?.error ? { bundles: [], publicKey: undefined } : runtime,
    worker: cfg.worker,
    storageKey: cfg.storageKey,
    onProgress,
    timeoutMs: cfg.initTimeoutMs,
    options: shop.kind === "grocery" ? { ...cfg.foresight, rules: cfg.groceryRules } : cfg.foresight,
  });
  hideProgress();
  window.__foresight = p.fs;
  window.__demo.instance = p.fs;
  if (runtime?.error) console.warn("[demo] runtime.json could not be loaded:", runtime.error);
  if (state === "failed") {
    showNotice(`Personalization is unavailable right now (${p.error?.message ?? p.error}). You are seeing what is popular.`);
  } else if (p.modelStatus?.recommender?.state === "failed") {
    showNotice("Personal recommendations are unavailable right now; you are seeing what is popular.");
  }
  document.documentElement.dataset.foresight = state;
  performance.mark("demo:sdk-ready", { detail: { state, worker: cfg.worker } });
  resolveReady({ state, error: p.error ? String(p.error.message ?? p.error) : undefined, worker: cfg.worker });
  await firstRender;
}

/** `#/film/50` → {name: "film", params: {id: "50"}}. */
export function parseRoute(hash) {
  const h = (hash || "#/").replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = h.split("?");
  const parts = pathPart.split("/").filter(Boolean).map(safeDecode);
  const query = Object.fromEntries(new URLSearchParams(queryPart));
  const path = pathPart || "/";
  switch (parts[0]) {
    case undefined:
      return { name: "home", params: {}, path };
    case "genre":
    case "subclass":
      return { name: "genre", params: { name: parts[1] ?? "" }, path };
    case "film":
    case "product":
      return { name: "film", params: { id: parts[1] ?? "" }, path };
    case "search":
      return { name: "search", params: { q: query.q ?? "" }, path };
    case "cart":
    case "checkout":
    case "thanks":
    case "privacy":
      return { name: parts[0], params: {}, path };
    default:
      return { name: "notFound", params: {}, path };
  }
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The event that moved the intent score, in words, for the nudge's "reason". */
function describeForNudge(catalog, e) {
  const film = (id) => filmLabel(catalog.byId.get(id));
  switch (e.type) {
    case "product_view":
      return `you viewed ${film(e.itemId)}`;
    case "add_to_cart":
      return `you added ${film(e.itemId)} to your cart`;
    case "remove_from_cart":
      return `you removed ${film(e.itemId)} from your cart`;
    case "search":
      return `you searched for “${e.query}”`;
    case "click":
      return `you opened ${film(e.itemId)}`;
    case "purchase":
      return "your purchase";
    case "page_view":
      return `you opened ${e.path ?? "a page"}`;
    default:
      return e.type;
  }
}

boot().catch((e) => {
  console.error("[demo] boot failed", e);
  showNotice("Something went wrong while starting the shop. Please reload.");
  resolveReady({ state: "failed", error: String(e?.message ?? e) });
});
