// The shop's pages. Each view fills `ctx.main` and resolves when everything on it (the
// recommendations included) is rendered.

import { html, el, tile, poster, money, filmLabel, genreHref } from "./ui.js";
import { renderPrivacy } from "./privacy.js";

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
    recs = ctx.p.popular(8, [], "the recommendation call failed");
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
  source.textContent =
    note?.(recs) ??
    (recs?.source === "model"
      ? "Picked on this device from your browsing — hover a film to see why."
      : `Popular now${recs?.fallbackReason ? ` (${recs.fallbackReason})` : ""}.`);
  rail.dataset.state = "ready";
  rail.removeAttribute("aria-busy");
  if ((testid === "rec-for-you" || testid === "rec-similar") && performance.getEntriesByName(FIRST_RECS).length === 0) {
    // For timing: page load → the first recommendations from the SDK on screen.
    performance.mark(FIRST_RECS, { detail: { testid, source: recs?.source ?? null } });
  }
  return recs;
}

/** The shop's own "Popular now": straight from the catalog's popularity, no SDK involved. */
function popularRail(ctx, container, exclude = []) {
  return recRail(ctx, container, {
    testid: "rec-popular",
    title: "Popular now",
    placement: "popular",
    load: async () => ctx.p.popular(ctx.cfg.popularCount, exclude, "most rated on MovieLens-100K"),
    note: () => "The most-rated films in the catalog — the same for everyone.",
  });
}

/** Distinct films of the latest product views in the on-device history, newest first. */
async function recentlyViewed(ctx, n) {
  const history = await ctx.p.history();
  const out = [];
  for (let i = (history?.length ?? 0) - 1; i >= 0 && out.length < n; i--) {
    const e = history[i].event ?? history[i];
    if (e.type === "product_view" && ctx.catalog.byId.has(e.itemId) && !out.includes(e.itemId)) out.push(e.itemId);
  }
  return out;
}

export async function home(ctx) {
  const main = ctx.main;
  main.append(
    el(html`<section class="hero">
      <h1>Films worth a second look</h1>
      <p>1,682 films from MovieLens-100K. Recommendations are computed in your browser, from what you do here — nothing about your browsing leaves this device. <a href="#/privacy">See exactly what is stored and sent.</a></p>
    </section>`),
  );
  const exclude = ctx.cart.ids();
  // Films viewed lately are listed apart ("Recently viewed"), not recommended again.
  const recent = await recentlyViewed(ctx, ctx.cfg.recentCount);
  await Promise.all([
    recRail(ctx, main, {
      testid: "rec-for-you",
      title: "Recommended for you",
      placement: "for_you",
      load: () => ctx.p.recommend({ k: ctx.cfg.forYouCount, exclude: [...exclude, ...recent] }),
      note: (recs) =>
        recs.source === "model"
          ? "Picked on this device from your browsing — hover a film to see why."
          : ctx.p.state === "failed"
            ? "Popular now — personalization is unavailable at the moment."
            : "Popular now — browse a few films and this list becomes yours.",
    }),
    recent.length
      ? recRail(ctx, main, {
          testid: "recently-viewed",
          title: "Recently viewed",
          placement: "recent",
          load: async () => ({ source: "history", items: recent.map((id) => ({ itemId: id })) }),
          note: () => "From the history kept on this device.",
        })
      : null,
    popularRail(ctx, main, exclude),
  ]);
  main.append(
    el(html`<section class="genres-section"><h2>Browse by genre</h2><div class="chips">${ctx.catalog.genres.map(
      (g) => html`<a class="chip" href="${genreHref(g.name)}">${g.name} <small>${g.count}</small></a>`,
    )}</div></section>`),
  );
}

function grid(ctx, films, placement, { testid }) {
  const g = el(html`<div class="grid" data-testid="${testid}"></div>`);
  let shown = 0;
  const more = el(html`<button class="more" type="button">Show more</button>`);
  const page = () => {
    for (const f of films.slice(shown, shown + PAGE_SIZE)) g.append(el(tile(f, { placement })));
    shown = Math.min(films.length, shown + PAGE_SIZE);
    more.hidden = shown >= films.length;
    more.textContent = `Show more (${films.length - shown} left)`;
  };
  more.addEventListener("click", page);
  page();
  const wrap = el(html`<div class="grid-wrap"></div>`);
  wrap.append(g, more);
  return wrap;
}

export async function genre(ctx, { name }) {
  const films = ctx.catalog.items.filter((f) => f.genres.includes(name)).sort((a, b) => b.popularity - a.popularity);
  if (films.length === 0) return notFound(ctx, `No genre called “${name}”.`);
  document.title = `${name} — Foresight Films`;
  ctx.main.append(
    el(html`<section class="page-head"><h1>${name}</h1><p>${films.length} films, most rated first.</p></section>`),
    grid(ctx, films, "genre", { testid: "genre-grid" }),
  );
}

export async function film(ctx, params) {
  const { id } = params;
  const f = ctx.catalog.byId.get(id);
  if (!f) return notFound(ctx, `No film with id ${id}.`);
  document.title = `${filmLabel(f)} — Foresight Films`;
  const category = f.genres[0];
  const page = el(html`<article class="film" data-testid="film" data-item-id="${f.id}">
      ${poster(f, "large")}
      <div class="film-info">
        <p class="crumbs"><a href="#/">Home</a> / <a href="${genreHref(category)}">${category}</a></p>
        <h1>${f.title}</h1>
        <p class="sub">${f.year ?? "Year unknown"} · ${f.genres.map((g, i) => html`${i ? ", " : ""}<a href="${genreHref(g)}">${g}</a>`)}</p>
        <p class="price big">${money(f.price)}</p>
        <div class="buy">
          <button class="primary" type="button" data-testid="add-to-cart" data-item-id="${f.id}">Add to cart</button>
          <span class="in-cart" data-testid="in-cart"></span>
        </div>
        <p class="fine">Rated by ${f.popularity} MovieLens users. Digital rental, 48 h.</p>
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
      // Queued after the product_view above, so the model sees this film.
      load: () => ctx.p.recommend({ k: ctx.cfg.similarCount, exclude: [f.id, ...ctx.cart.ids()] }),
    });
    const current = ctx.main.querySelector(".similar");
    if (current) current.replaceWith(fresh);
    else ctx.main.append(fresh);
    await done;
  };
  await refreshSimilar();
}

/** Films whose title has every word of the query, most rated first. */
export function searchFilms(catalog, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [];
  return catalog.items
    .filter((f) => {
      const hay = `${f.title} ${f.year ?? ""}`.toLowerCase();
      return words.every((w) => hay.includes(w));
    })
    .sort((a, b) => b.popularity - a.popularity);
}

export async function search(ctx, { q, refresh }) {
  const query = (q ?? "").trim();
  const input = document.querySelector("[data-testid=search-input]");
  if (input && input.value !== query) input.value = query;
  if (!query) {
    ctx.main.append(el(html`<section class="page-head"><h1>Search</h1><p>Type a title above, e.g. “star” or “1995”.</p></section>`));
    return;
  }
  document.title = `“${query}” — Foresight Films`;
  if (!refresh) ctx.track({ type: "search", query: query.slice(0, 200) });
  const films = searchFilms(ctx.catalog, query);
  ctx.main.append(
    el(html`<section class="page-head"><h1>Results for “${query}”</h1><p data-testid="search-count">${films.length} film${films.length === 1 ? "" : "s"}</p></section>`),
  );
  if (films.length) ctx.main.append(grid(ctx, films, "search", { testid: "search-results" }));
  else {
    ctx.main.append(el(html`<p class="empty">No film matches. Popular picks instead:</p>`));
    await popularRail(ctx, ctx.main, ctx.cart.ids());
  }
}

export async function cart(ctx) {
  document.title = "Your cart — Foresight Films";
  const wrap = el(html`<section class="cart" data-testid="cart"><h1>Your cart</h1><div class="lines"></div></section>`);
  ctx.main.append(wrap);
  const lines = wrap.querySelector(".lines");
  const draw = () => {
    const rows = ctx.cart.lines.map((l) => ({ ...l, film: ctx.catalog.byId.get(l.itemId) })).filter((l) => l.film);
    if (rows.length === 0) {
      lines.innerHTML = html`<p class="empty" data-testid="cart-empty">Your cart is empty. <a href="#/">Find a film</a>.</p>`.toString();
      return;
    }
    const total = rows.reduce((s, l) => s + l.film.price * l.quantity, 0);
    lines.innerHTML = html`<table class="cart-table">
        <thead><tr><th></th><th>Film</th><th>Qty</th><th>Price</th><th></th></tr></thead>
        <tbody>${rows.map(
          (l) => html`<tr data-testid="cart-line" data-item-id="${l.itemId}">
            <td>${poster(l.film, "mini")}</td>
            <td><a href="#/film/${l.itemId}">${filmLabel(l.film)}</a></td>
            <td class="qty"><button type="button" data-act="dec" aria-label="One fewer">−</button> ${l.quantity} <button type="button" data-act="inc" aria-label="One more">+</button></td>
            <td>${money(l.film.price * l.quantity)}</td>
            <td><button type="button" class="link" data-act="remove" data-testid="remove-from-cart">Remove</button></td>
          </tr>`,
        )}</tbody>
        <tfoot><tr><td></td><td>Total</td><td></td><td data-testid="cart-total">${money(total)}</td><td></td></tr></tfoot>
      </table>
      <p class="actions"><a class="button primary" href="#/checkout" data-testid="checkout">Checkout</a></p>`.toString();
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
  });
  draw();
  await recRail(ctx, ctx.main, {
    testid: "rec-for-you",
    title: "Goes well with your cart",
    placement: "cart",
    load: () => ctx.p.recommend({ k: ctx.cfg.forYouCount, exclude: ctx.cart.ids() }),
  });
}

export async function checkout(ctx) {
  document.title = "Checkout — Foresight Films";
  const rows = ctx.cart.lines.map((l) => ({ ...l, film: ctx.catalog.byId.get(l.itemId) })).filter((l) => l.film);
  if (rows.length === 0) {
    ctx.main.append(el(html`<section class="page-head"><h1>Checkout</h1><p>Your cart is empty. <a href="#/">Find a film</a>.</p></section>`));
    return;
  }
  const total = round2(rows.reduce((s, l) => s + l.film.price * l.quantity, 0));
  const form = el(html`<section class="checkout"><h1>Checkout</h1>
    <form data-testid="checkout-form" autocomplete="off">
      <label>Name <input name="name" required value="Ada Lovelace"></label>
      <label>Email <input name="email" type="email" required value="ada@example.com"></label>
      <label>Card <input name="card" inputmode="numeric" value="4242 4242 4242 4242" required></label>
      <p class="fine">A demo: nothing is charged and this form is not sent anywhere.</p>
      <p class="summary">${rows.length} film${rows.length === 1 ? "" : "s"} · total <strong>${money(total)}</strong></p>
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
  document.title = "Thank you — Foresight Films";
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
    load: () => ctx.p.recommend({ k: ctx.cfg.forYouCount }),
  });
}

export async function privacy(ctx) {
  document.title = "Privacy — Foresight Films";
  await renderPrivacy(ctx);
}

export async function notFound(ctx, message = "This page does not exist.") {
  ctx.main.append(el(html`<section class="page-head"><h1>Not found</h1><p>${message} <a href="#/">Back to the shop</a>.</p></section>`));
}

function round2(x) {
  return Math.round(x * 100) / 100;
}
