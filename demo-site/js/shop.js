// What the shop sells and how the pages speak of it. `/data/films.json` names its shop: none
// (MovieLens-100K, the film store) or `{"kind": "grocery", "data": "tafeng"}` (`make demo
// DATA=tafeng`: the Ta Feng supermarket's products, which have numbers, subclasses and prices
// but no names, years or genres). The film store's words are the defaults; the pages read them
// from `shop` (set once at boot, before anything is drawn).

const FILMS = {
  kind: "films",
  name: "Foresight Films",
  item: "film",
  items: "films",
  category: "genre",
  categories: "genres",
  itemRoute: "film",
  categoryRoute: "genre",
  /** Navigation lists every category; no cap on search results. */
  navCategories: Infinity,
  chipCategories: Infinity,
  maxResults: Infinity,
  money: (x) => `$${Number(x).toFixed(2)}`,
  categoryLabel: (g) => g,
  label: (f) => (f ? (f.year ? `${f.title} (${f.year})` : f.title) : "an unknown film"),
  searchText: (f) => `${f.title} ${f.year ?? ""}`,
  searchHint: "Type a title above, e.g. “star” or “1995”.",
  hoverHint: "hover a film to see why",
  popularNote: "The most-rated films in the catalog — the same for everyone.",
  trendingNote: (genre) => `Rated most in the last 30 days of the catalog's log${genre ? ` (films listed first under ${genre})` : ""} — the same for everyone.`,
  listOrder: "most rated first",
  fine: (f) => `Rated by ${f.popularity} MovieLens users. Digital rental, 48 h.`,
};

const GROCERY = {
  ...FILMS,
  kind: "grocery",
  name: "Foresight Grocery",
  item: "product",
  items: "products",
  category: "subclass",
  categories: "subclasses",
  itemRoute: "product",
  categoryRoute: "subclass",
  // Ta Feng has ~2,000 subclasses: the header names the 12 most bought, the home page 40; every
  // product page links to its own.
  navCategories: 12,
  chipCategories: 40,
  // A product-number prefix such as "4710" matches most of the catalog: the page lists (and
  // asks the SDK to rerank) the 480 most bought.
  maxResults: 480,
  money: (x) => (x === null || x === undefined || !Number.isFinite(Number(x)) ? "price n/a" : `NT$${Number.isInteger(Number(x)) ? Number(x) : Number(x).toFixed(2)}`),
  categoryLabel: (g) => (/^\d+$/.test(g) ? `Subclass ${g}` : g),
  label: (f) => (f ? f.title : "an unknown product"),
  searchText: (f) => `${f.title} ${f.genres.join(" ")}`,
  searchHint: "Type a product number or a subclass above, e.g. “4710088” or “100205”.",
  hoverHint: "hover a product to see why",
  popularNote: "The products Ta Feng's customers bought most — the same for everyone.",
  trendingNote: (genre) => `Bought most in the last 30 days of the Ta Feng log${genre ? ` (products of ${GROCERY.categoryLabel(genre)})` : ""} — the same for everyone.`,
  listOrder: "most bought first",
  fine: (f) => `Bought ${f.popularity} times in ${shop.meta?.trainedOn ?? "the whole"} of the Ta Feng log (Nov 2000 – Feb 2001); the price is the median its customers paid, in New Taiwan dollars.`,
};

/** The shop the page is drawn for (the film store until `setShop`). */
export const shop = { ...FILMS };

/** Picks the shop from films.json's `shop` field (unknown kinds: the film store). */
export function setShop(meta) {
  Object.assign(shop, meta?.kind === "grocery" ? GROCERY : FILMS, { meta: meta ?? null });
  return shop;
}

/** Renames the page's fixed parts (title, brand, search box, footer) for a shop other than the film store. */
export function applyShopChrome(doc, catalog) {
  if (shop.kind !== "grocery") return;
  const n = catalog.items.length.toLocaleString("en");
  doc.title = shop.name;
  doc.documentElement.dataset.shop = shop.kind;
  const brand = doc.querySelector(".brand");
  if (brand) {
    brand.setAttribute("aria-label", `${shop.name}, home`);
    brand.innerHTML = '<span class="logo" aria-hidden="true"></span>Foresight <b>Grocery</b>';
  }
  const input = doc.querySelector("[data-testid=search-input]");
  if (input) {
    input.placeholder = `Search ${n} products by number or subclass…`;
    input.setAttribute("aria-label", "Search products");
  }
  doc.querySelector(".genre-nav")?.setAttribute("aria-label", "Subclasses");
  doc.querySelector('meta[name="description"]')?.setAttribute("content", "A demo grocery whose recommendations are computed in your browser.");
  const footer = doc.querySelector("footer");
  if (footer) {
    footer.innerHTML = `<p><strong>About this shop.</strong> A demo of <a href="#/privacy">on-device personalization</a>: the recommendation and
    purchase-intent models run in your browser (WebAssembly); what you do here is stored on this device only.</p>
  <p>Catalog: the ${n} products of the <strong>Ta Feng</strong> supermarket's transactions (Taiwan, November 2000 – February
    2001; 817,741 purchase lines of 32,266 customers), as published for research. The data has no product names: each product is
    shown by its number, its category is the data's product subclass, its price the median unit price customers paid (NT$), and
    “bought” counts its purchase lines. The recommender was trained on ${shop.meta?.trainedOn ?? "the log"} of it. Nothing is for sale.</p>`;
  }
}
