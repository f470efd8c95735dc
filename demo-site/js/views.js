// The shop's pages. Each view fills `ctx.main` and resolves when everything on it (the
// recommendations included) is rendered.

import { html, el, tile, poster, money, filmLabel, genreHref } from "./ui.js";
import { renderPrivacy } from "./privacy.js";
import { shop } from "./shop.js";

/** "film" → "Film". */
const cap = (w) => w[0].toUpperCase() + w.slice(1);
/** "3 films", "1 film" (products in the grocery). */
const count = (n) => `${n} ${n === 1 ? shop.item : shop.items}`;

const PAGE_SIZE = 48;
const FIRST_RECS = "demo:first-recommendations";

/**
 * A recommendation rail: a heading, a line saying where the list comes from, the tiles.
 * `load()` returns `{items, source, fallbackReason?}`.
 */
export async function recRail(ctx, container, { testid, title, placement, load, note }) {
  const section = el(html`<section class="rail-section">
      <div class="rail-head"><h2>${title}</h2><p class="source" data-testid="${testid}-source"></p></div>
      <div class="rail" data-testid="${testid}" data-state="loading" aria-busy="true">${Array.from({ length: 6 }, () => html`<div class="tile skeleton"></div>`)}</div>
    </section>`);
  container.append(section);
  const rail = section.querySelector(".rail");
  const source = section.querySelector(".source");
  let recs;
  try {
    recs = await load();
  } catch (e) {
    console.warn("[demo] recommendations failed", e);
    recs = ctx.p.catalogPopular(8, [], "the recommendation call failed");
  }
  const items = (recs?.items ?? []).map((r) => ({ r, film: ctx.catalog.byId.get(r.itemId) })).filter((x) => x.film);
  rail.innerHTML = "";
  if (items.length === 0) {
    rail.append(el(html`<p class="empty">Nothing to suggest yet.</p>`));
  }
  for (const { r, film } of items) {
    const because = ctx.explain(r.because);
    const t = el(tile(film, { placement, because, score: recs.source === "model" ? r.score : undefined }));
    rail.append(t);
  }
  rail.dataset.source = recs?.source ?? "none";
  if (recs?.fallbackReason) rail.dataset.fallbackReason = recs.fallbackReason;
  // Which SDK placement answered, the visitor's experiment variant on it, the list's id.
  if (recs?.placement) rail.dataset.placement = recs.placement;
  if (recs?.variant) rail.dataset.variant = recs.variant;
  if (recs?.id) rail.dataset.listId = recs.id;
  source.textContent =
    note?.(recs) ??
    (recs?.source === "model"
      ? `Picked on this device from your browsing — ${shop.hoverHint}.`
      : `Popular now${recs?.fallbackReason ? ` (${recs.fallbackReason})` : ""}.`);
  rail.dataset.state = "ready";
  rail.removeAttribute("aria-busy");
  if ((testid === "rec-for-you" || testid === "rec-similar") && performance.getEntriesByName(FIRST_RECS).length === 0) {
    // For timing: page load → the first recommendations from the SDK on screen.
    performance.mark(FIRST_RECS, { detail: { testid, source: recs?.source ?? null } });
  }
  return recs;
}

/** "Popular now": the SDK's `popular` placement (the catalog's popularity, under the shop's rules). */
function popularRail(ctx, container, exclude = []) {
  return recRail(ctx, container, {
    testid: "rec-popular",
    title: "Popular now",
    placement: "popular",
    load: () => ctx.p.popular({ k: ctx.cfg.popularCount, exclude }),
    note: () => shop.popularNote,
  });
}

/** "Trending now": the SDK's `trending` placement (what rose lately in the shop). */
function trendingRail(ctx, container, { exclude = [], genre, k = ctx.cfg.trendingCount, testid = "rec-trending", placement = "trending" } = {}) {
  return recRail(ctx, container, {
    testid,
    title: genre ? `Trending in ${shop.categoryLabel(genre)}` : "Trending now",
    placement,
    load: () => ctx.p.trending({ k, exclude, ...(genre ? { category: genre } : {}) }),
    note: (recs) =>
      recs.source === "trend"
        ? shop.trendingNote(genre)
        : `Popular now (${recs.fallbackReason ?? "no trend data"}).`,
  });
}

export async function home(ctx) {
  const main = ctx.main;
  main.append(
    shop.kind === "grocery"
      ? el(html`<section class="hero" data-testid="hero">
      <h1>Your everyday groceries</h1>
      <p>${ctx.catalog.items.length.toLocaleString("en")} products of the Ta Feng supermarket, from its real transactions (Taiwan, 2000–2001). Recommendations are computed in your browser, from what you do here — nothing about your browsing leaves this device. <a href="#/privacy">See exactly what is stored and sent.</a></p>
    </section>`)
      : el(html`<section class="hero">
      <h1>Films worth a second look</h1>
      <p>1,682 films from MovieLens-100K. Recommendations are computed in your browser, from what you do here — nothing about your browsing leaves this device. <a href="#/privacy">See exactly what is stored and sent.</a></p>
    </section>`),
  );
  const exclude = ctx.cart.ids();
  // Films viewed lately are listed apart ("Recently viewed"), not recommended again. The SDK
  // answers a visitor with no views from popularity: then there is no such row.
  const recentRecs = await ctx.p.recentlyViewed({ k: ctx.cfg.recentCount });
  const recent = recentRecs?.source === "history" ? recentRecs.items.map((r) => r.itemId) : [];
  // A grocery's shoppers mostly buy what they bought before: their own purchases get a row
  // (the SDK answers from popularity until there is one).
  const again = shop.kind === "grocery" ? await ctx.p.buyAgain({ k: ctx.cfg.recentCount, exclude }) : null;
  await Promise.all([
    again?.source === "history" && again.items.length
      ? recRail(ctx, main, {
          testid: "rec-buy-again",
          title: "Buy again",
          placement: "buy_again",
          load: async () => again,
          note: () => "Your own purchases, recent and frequent first, scored on this device; then what sells most.",
        })
      : null,
    recRail(ctx, main, {
      testid: "rec-for-you",
      title: "Recommended for you",
      placement: "for_you",
      load: () => ctx.p.forYou({ k: ctx.cfg.forYouCount, exclude: [...exclude, ...recent] }),
      note: (recs) =>
        recs.source === "model"
          ? `Picked on this device from your browsing — ${shop.hoverHint}.`
          : ctx.p.state === "failed"
            ? "Popular now — personalization is unavailable at the moment."
            : `Popular now — browse a few ${shop.items} and this list becomes yours.`,
    }),
    recent.length
      ? recRail(ctx, main, {
          testid: "rec-recent",
          title: "Recently viewed",
          placement: "recent",
          load: async () => recentRecs,
          note: () => "From the history kept on this device, newest first.",
        })
      : null,
    trendingRail(ctx, main, { exclude }),
    popularRail(ctx, main, exclude),
  ]);
  const chips = ctx.catalog.featured(shop.chipCategories);
  const more = ctx.catalog.genres.length - chips.length;
  main.append(
    el(html`<section class="genres-section"><h2>Browse by ${shop.category}</h2><div class="chips">${chips.map(
      (g) => html`<a class="chip" href="${genreHref(g.name)}">${shop.categoryLabel(g.name)} <small>${g.count}</small></a>`,
    )}</div>${more > 0 ? html`<p class="fine">The ${chips.length} most bought of ${ctx.catalog.genres.length.toLocaleString("en")} ${shop.categories}; every product page links to its own.</p>` : ""}</section>`),
  );
}

/**
 * The shop's own list of films, `PAGE_SIZE` at a time, reordered for the visitor by the SDK's
 * `rerank` (a permutation: every film stays). It draws at once in the shop's order and again
 * when the new order arrives; `wrap.ready` resolves then. Each moved tile says why on hover
 * ("moved up from #7 for you").
 */
function rerankedGrid(ctx, films, placement, { testid, rerankTestid }) {
  const wrap = el(html`<div class="grid-wrap" data-testid="${rerankTestid}" data-state="loading" data-count="${films.length}"></div>`);
  const g = el(html`<div class="grid" data-testid="${testid}"></div>`);
  const more = el(html`<button class="more" type="button">Show more</button>`);
  wrap.append(g, more);
  let list = films.map((film) => ({ film, because: "" }));
  let shown = 0;
  const page = () => {
    list.slice(shown, shown + PAGE_SIZE).forEach(({ film, because, from }, j) => {
      const t = el(tile(film, { placement, because }));
      if (from) {
        const at = shown + j + 1;
        t.dataset.shopPosition = String(from);
        t.dataset.moved = from > at ? "up" : from < at ? "down" : "kept";
      }
      g.append(t);
    });
    shown = Math.min(list.length, shown + PAGE_SIZE);
    more.hidden = shown >= list.length;
    more.textContent = `Show more (${list.length - shown} left)`;
  };
  const draw = (upTo) => {
    g.innerHTML = "";
    shown = 0;
    do page();
    while (shown < Math.min(upTo, list.length));
  };
  more.addEventListener("click", page);
  page();
  wrap.ready = (async () => {
    const recs = await ctx.p.rerank(
      films.map((f) => f.id),
      { blend: ctx.cfg.rerankBlend },
    );
    const byId = new Map(films.map((f) => [f.id, f]));
    list = recs.items.map((r) => ({ film: byId.get(r.itemId), because: ctx.explain(r.because), from: r.because?.shopPosition }));
    draw(shown);
    const moved = recs.items.filter((r, i) => r.because?.shopPosition && r.because.shopPosition !== i + 1).length;
    wrap.dataset.source = recs.source;
    wrap.dataset.moved = String(moved);
    if (recs.fallbackReason) wrap.dataset.fallbackReason = recs.fallbackReason;
    else delete wrap.dataset.fallbackReason;
    wrap.dataset.state = "ready";
    return recs;
  })();
  return wrap;
}

/** A line under a reranked list's heading: the shop's order, or reordered for the visitor. */
function rerankNote(recs, what) {
  return recs.source === "model"
    ? `${what}, reordered for you on this device (half the shop's order, half your taste) — hover a ${shop.item} to see how it moved.`
    : `${what}.`;
}

export async function genre(ctx, { name }) {
  const films = ctx.catalog.items.filter((f) => f.genres.includes(name)).sort((a, b) => b.popularity - a.popularity);
  if (films.length === 0) return notFound(ctx, `No ${shop.category} called “${name}”.`);
  const label = shop.categoryLabel(name);
  document.title = `${label} — ${shop.name}`;
  const head = el(html`<section class="page-head"><h1>${label}</h1><p data-testid="genre-note">${count(films.length)}, ${shop.listOrder}.</p></section>`);
  ctx.main.append(head);
  const trending = trendingRail(ctx, ctx.main, { exclude: ctx.cart.ids(), genre: name, k: ctx.cfg.genreTrendingCount, testid: "rec-genre-trending", placement: "genre_trending" });
  const all = el(html`<section class="genre-all"><h2>${shop.kind === "grocery" ? `All products of ${label}` : `All ${name} films`}</h2></section>`);
  const g = rerankedGrid(ctx, films, "genre", { testid: "genre-grid", rerankTestid: "reranked-genre" });
  all.append(g);
  ctx.main.append(all);
  const [recs] = await Promise.all([g.ready, trending]);
  head.querySelector("p").textContent = rerankNote(recs, `${count(films.length)}, ${shop.listOrder}`);
}

export async function film(ctx, params) {
  const { id } = params;
  const f = ctx.catalog.byId.get(id);
  if (!f) return notFound(ctx, `No ${shop.item} with id ${id}.`);
  document.title = `${filmLabel(f)} — ${shop.name}`;
  const category = f.genres[0];
  const page = el(html`<article class="film" data-testid="film" data-item-id="${f.id}">
      ${poster(f, "large")}
      <div class="film-info">
        <p class="crumbs"><a href="#/">Home</a> / <a href="${genreHref(category)}">${shop.categoryLabel(category)}</a></p>
        <h1>${f.title}</h1>
        ${
          shop.kind === "grocery"
            ? html`<p class="sub">Product number ${f.id} · <a href="${genreHref(category)}">${shop.categoryLabel(category)}</a></p>`
            : html`<p class="sub">${f.year ?? "Year unknown"} · ${f.genres.map((g, i) => html`${i ? ", " : ""}<a href="${genreHref(g)}">${g}</a>`)}</p>`
        }
        <p class="price big">${money(f.price)}</p>
        <div class="buy">
          <button class="primary" type="button" data-testid="add-to-cart" data-item-id="${f.id}">Add to cart</button>
          <span class="in-cart" data-testid="in-cart"></span>
        </div>
        <p class="fine">${shop.fine(f)}</p>
        ${notPromoted(ctx, f.id) ? html`<p class="fine" data-testid="not-promoted">The shop’s licence for this film ends soon: it is still for sale here, but no recommendation on this site suggests it (a merchandising rule).</p>` : ""}
      </div>
    </article>`);
  ctx.main.append(page);
  const inCart = page.querySelector("[data-testid=in-cart]");
  const showInCart = () => {
    const q = ctx.cart.quantityOf(f.id);
    inCart.innerHTML = q ? html`In your cart: ${q} · <a href="#/cart">view cart</a>`.toString() : "";
  };
  showInCart();
  page.querySelector("[data-testid=add-to-cart]").addEventListener("click", async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    ctx.cart.add(f.id, 1);
    showInCart();
    await ctx.track({ type: "add_to_cart", itemId: f.id, quantity: 1, price: f.price, category });
    button.disabled = false;
    // The cart is excluded from recommendations: refresh the list below.
    await refreshSimilar();
  });
  if (!params.refresh) ctx.track({ type: "product_view", itemId: f.id, category, price: f.price });
  const refreshSimilar = async () => {
    const fresh = el(html`<div class="similar"></div>`);
    const done = recRail(ctx, fresh, {
      testid: "rec-similar",
      title: "You may also like",
      placement: "similar",
      // What visitors look at after this film (the SDK's `similarTo`, nudged toward its genre).
      load: () => ctx.p.similarTo(f.id, { k: ctx.cfg.similarCount, exclude: [f.id, ...ctx.cart.ids()] }),
      note: (recs) =>
        recs.source === "model"
          ? `What visitors looked at after ${filmLabel(f)} — computed on this device.`
          : `Popular in ${shop.categoryLabel(category)}${recs.fallbackReason ? ` (${recs.fallbackReason})` : ""}.`,
    });
    const current = ctx.main.querySelector(".similar");
    if (current) current.replaceWith(fresh);
    else ctx.main.append(fresh);
    await done;
  };
  await refreshSimilar();
}

/** Films whose title has every word of the query, most rated first (products: number or subclass, most bought first). */
export function searchFilms(catalog, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [];
  return catalog.items
    .filter((f) => {
      const hay = shop.searchText(f).toLowerCase();
      return words.every((w) => hay.includes(w));
    })
    .sort((a, b) => b.popularity - a.popularity);
}

export async function search(ctx, { q, refresh }) {
  const query = (q ?? "").trim();
  const input = document.querySelector("[data-testid=search-input]");
  if (input && input.value !== query) input.value = query;
  if (!query) {
    ctx.main.append(el(html`<section class="page-head"><h1>Search</h1><p>${shop.searchHint}</p></section>`));
    return;
  }
  document.title = `“${query}” — ${shop.name}`;
  if (!refresh) ctx.track({ type: "search", query: query.slice(0, 200) });
  const found = searchFilms(ctx.catalog, query);
  // The grocery lists (and reranks) at most `maxResults` of them, the most bought.
  const films = found.slice(0, shop.maxResults);
  const counted = films.length < found.length ? `the ${films.length} most bought of ${count(found.length)}` : count(films.length);
  ctx.main.append(
    el(html`<section class="page-head"><h1>Results for “${query}”</h1><p data-testid="search-count" data-found="${found.length}">${counted}</p></section>`),
  );
  if (films.length) {
    const g = rerankedGrid(ctx, films, "search", { testid: "search-results", rerankTestid: "reranked-search" });
    ctx.main.append(g);
    const recs = await g.ready;
    ctx.main.querySelector("[data-testid=search-count]").textContent = rerankNote(recs, `${counted}, ${shop.listOrder}`);
  } else {
    ctx.main.append(el(html`<p class="empty">No ${shop.item} matches. Popular picks instead:</p>`));
    await popularRail(ctx, ctx.main, ctx.cart.ids());
  }
}

export async function cart(ctx) {
  document.title = `Your cart — ${shop.name}`;
  const wrap = el(html`<section class="cart" data-testid="cart"><h1>Your cart</h1><div class="lines"></div></section>`);
  ctx.main.append(wrap);
  const lines = wrap.querySelector(".lines");
  const draw = () => {
    const rows = ctx.cart.lines.map((l) => ({ ...l, film: ctx.catalog.byId.get(l.itemId) })).filter((l) => l.film);
    if (rows.length === 0) {
      lines.innerHTML = html`<p class="empty" data-testid="cart-empty">Your cart is empty. <a href="#/">Find a ${shop.item}</a>.</p>`.toString();
      return;
    }
    const total = rows.reduce((s, l) => s + l.film.price * l.quantity, 0);
    lines.innerHTML = html`<table class="cart-table">
        <thead><tr><th></th><th>${cap(shop.item)}</th><th>Qty</th><th>Price</th><th></th></tr></thead>
        <tbody>${rows.map(
          (l) => html`<tr data-testid="cart-line" data-item-id="${l.itemId}">
            <td>${poster(l.film, "mini")}</td>
            <td><a href="#/${shop.itemRoute}/${l.itemId}">${filmLabel(l.film)}</a></td>
            <td class="qty"><button type="button" data-act="dec" aria-label="One fewer">−</button> ${l.quantity} <button type="button" data-act="inc" aria-label="One more">+</button></td>
            <td>${money(l.film.price * l.quantity)}</td>
            <td><button type="button" class="link" data-act="remove" data-testid="remove-from-cart">Remove</button></td>
          </tr>`,
        )}</tbody>
        <tfoot><tr><td></td><td>Total</td><td></td><td data-testid="cart-total">${money(total)}</td><td></td></tr></tfoot>
      </table>
      <p class="actions"><a class="button primary" href="#/checkout" data-testid="checkout">Checkout</a></p>`.toString();
  };
  // Below the cart: what goes with it (the SDK's `boughtTogether` on the cart's films; the
  // shop's experiment compares it with a popularity control), or, for an empty cart, the
  // visitor's own recommendations. Drawn again when the cart changes.
  const refreshRecs = async () => {
    const fresh = el(html`<div class="cart-recs"></div>`);
    const inCart = ctx.cart.ids();
    const done = inCart.length
      ? recRail(ctx, fresh, {
          testid: "rec-together",
          title: "Goes well with your cart",
          placement: "together",
          load: () => ctx.p.boughtTogether(inCart, { k: ctx.cfg.togetherCount, exclude: inCart }),
          note: (recs) =>
            recs.source === "model"
              ? `Picked on this device from the ${shop.items} in your cart — hover one to see which it goes with.`
              : recs.variant
                ? `Popular picks — you are in the “${recs.variant}” group of this shop’s test (see Your data).`
                : `Popular now${recs.fallbackReason ? ` (${recs.fallbackReason})` : ""}.`,
        })
      : recRail(ctx, fresh, {
          testid: "rec-for-you",
          title: "Recommended for you",
          placement: "cart",
          load: () => ctx.p.forYou({ k: ctx.cfg.forYouCount }),
        });
    const current = ctx.main.querySelector(".cart-recs");
    if (current) current.replaceWith(fresh);
    else ctx.main.append(fresh);
    await done;
  };
  lines.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-act]");
    if (!btn) return;
    const itemId = btn.closest("[data-item-id]").dataset.itemId;
    const f = ctx.catalog.byId.get(itemId);
    if (btn.dataset.act === "inc") {
      ctx.cart.add(itemId, 1);
      draw();
      await ctx.track({ type: "add_to_cart", itemId, quantity: 1, price: f?.price, category: f?.genres[0] });
    } else {
      const n = ctx.cart.remove(itemId, btn.dataset.act === "dec" ? 1 : undefined);
      draw();
      if (n > 0) await ctx.track({ type: "remove_from_cart", itemId, quantity: n });
    }
    // Only a change of which films are in the cart changes what goes with it.
    if (btn.dataset.act !== "inc") await refreshRecs();
  });
  draw();
  await refreshRecs();
}

export async function checkout(ctx) {
  document.title = `Checkout — ${shop.name}`;
  const rows = ctx.cart.lines.map((l) => ({ ...l, film: ctx.catalog.byId.get(l.itemId) })).filter((l) => l.film);
  if (rows.length === 0) {
    ctx.main.append(el(html`<section class="page-head"><h1>Checkout</h1><p>Your cart is empty. <a href="#/">Find a ${shop.item}</a>.</p></section>`));
    return;
  }
  const total = round2(rows.reduce((s, l) => s + l.film.price * l.quantity, 0));
  const form = el(html`<section class="checkout"><h1>Checkout</h1>
    <form data-testid="checkout-form" autocomplete="off">
      <label>Name <input name="name" required value="Ada Lovelace"></label>
      <label>Email <input name="email" type="email" required value="ada@example.com"></label>
      <label>Card <input name="card" inputmode="numeric" value="4242 4242 4242 4242" required></label>
      <p class="fine">A demo: nothing is charged and this form is not sent anywhere.</p>
      <p class="summary">${count(rows.length)} · total <strong>${money(total)}</strong></p>
      <button class="primary" data-testid="place-order">Place order</button>
    </form></section>`);
  ctx.main.append(form);
  form.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    e.submitter && (e.submitter.disabled = true);
    const items = rows.map((l) => ({ itemId: l.itemId, quantity: l.quantity, price: l.film.price }));
    await ctx.track({ type: "purchase", items, total });
    ctx.state.lastOrder = { items: rows.map((l) => ({ title: filmLabel(l.film), quantity: l.quantity })), total };
    ctx.cart.clear();
    location.hash = "#/thanks";
  });
}

export async function thanks(ctx) {
  document.title = `Thank you — ${shop.name}`;
  const o = ctx.state.lastOrder;
  ctx.main.append(
    el(html`<section class="page-head thanks" data-testid="thanks"><h1>Thank you!</h1>
      ${o ? html`<p>Your order of ${o.items.map((i, n) => html`${n ? ", " : ""}${i.title}${i.quantity > 1 ? ` ×${i.quantity}` : ""}`)} (${money(o.total)}) is confirmed.</p>` : html`<p>Your order is confirmed.</p>`}
      <p><a href="#/">Back to the shop</a></p></section>`),
  );
  await recRail(ctx, ctx.main, {
    testid: "rec-for-you",
    title: "Next time, perhaps",
    placement: "thanks",
    load: () => ctx.p.forYou({ k: ctx.cfg.forYouCount }),
  });
}

export async function privacy(ctx) {
  document.title = `Privacy — ${shop.name}`;
  await renderPrivacy(ctx);
}

export async function notFound(ctx, message = "This page does not exist.") {
  ctx.main.append(el(html`<section class="page-head"><h1>Not found</h1><p>${message} <a href="#/">Back to the shop</a>.</p></section>`));
}

/** Whether the shop's rules keep this film out of every recommendation (config.js). */
function notPromoted(ctx, id) {
  return Boolean(ctx.cfg.foresight?.rules?.filter?.excludeItems?.includes(id));
}

function round2(x) {
  return Math.round(x * 100) / 100;
}
