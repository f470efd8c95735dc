// Small DOM helpers and the film tile / poster templates (a product's in the grocery, js/shop.js).

import { shop } from "./shop.js";

/** `html` tagged template: interpolated values are escaped unless wrapped in `raw()`. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1];
  });
  return new Raw(out);
}

class Raw {
  constructor(s) {
    this.s = s;
  }
  toString() {
    return this.s;
  }
}

export function raw(s) {
  return new Raw(String(s));
}

function render(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(render).join("");
  if (v === null || v === undefined || v === false) return "";
  return escape(String(v));
}

export function escape(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Parses `html` into a single element (the first). */
export function el(markup) {
  const t = document.createElement("template");
  t.innerHTML = String(markup).trim();
  return t.content.firstElementChild;
}

export const money = (x) => shop.money(x);

export const filmLabel = (f) => shop.label(f);

/** A stable hue per film, for its gradient poster. */
function hue(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return Math.abs(h) % 360;
}

/** Up to two initials from the title's significant words. */
export function initials(title) {
  const words = title
    .replace(/[^\p{L}\p{N}\s]/gu, " ")
    .split(/\s+/)
    .filter((w) => w && !/^(the|a|an|of|and|la|le|les|el|der|die|das)$/i.test(w));
  const picked = (words.length ? words : [title]).slice(0, 2).map((w) => w[0].toUpperCase());
  return picked.join("");
}

export function poster(film, size = "") {
  if (shop.kind === "grocery") {
    // No pictures and no names: a label in its subclass's colour with the number's last digits.
    const h = hue(film.genres[0] ?? "");
    return html`<div class="poster product ${size}" style="--h:${h};--h2:${(h + 47) % 360}" aria-hidden="true"><span>${film.id.slice(-4)}</span><small>${shop.categoryLabel(film.genres[0] ?? "")}</small></div>`;
  }
  const h = hue(film.title + film.id);
  return html`<div class="poster ${size}" style="--h:${h};--h2:${(h + 47) % 360}" aria-hidden="true"><span>${initials(film.title)}</span><small>${film.year ?? ""}</small></div>`;
}

/**
 * A film tile linking to its page, with a quick "add to cart". `because` (text) shows on hover
 * and as the tooltip; `placement` makes a click on it a tracked `click` event.
 */
export function tile(film, { placement, because, score } = {}) {
  const tip = because ? (score !== undefined ? `${because} (score ${Number(score).toFixed(3)})` : because) : filmLabel(film);
  return html`<div class="tile" data-item-id="${film.id}" data-placement="${placement ?? ""}" title="${tip}">
    <a class="tile-link" href="${itemHref(film.id)}">
      ${poster(film)}
      <span class="meta"><span class="t">${film.title}</span><span class="sub">${shop.kind === "grocery" ? shop.categoryLabel(film.genres[0] ?? "") : html`${film.year ?? "—"} · ${film.genres[0] ?? ""}`}</span><span class="price">${money(film.price)}</span></span>
    </a>
    <button type="button" class="quick-add" data-testid="quick-add" aria-label="Add ${film.title} to the cart" title="Add to cart">+ Cart</button>
    ${because ? html`<span class="because" data-testid="because">${because}</span>` : ""}
  </div>`;
}

export function genreHref(g) {
  return `#/${shop.categoryRoute}/${encodeURIComponent(g)}`;
}

/** A film's page (`#/film/50`; a product's in the grocery, `#/product/4710…`). */
export function itemHref(id) {
  return `#/${shop.itemRoute}/${encodeURIComponent(id)}`;
}
