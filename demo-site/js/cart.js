// The shop's cart: its own state in localStorage, apart from the SDK's event log.

export class Cart {
  constructor(key) {
    this.key = key;
    this.lines = this.load();
    this.listeners = new Set();
  }

  load() {
    try {
      const raw = localStorage.getItem(this.key);
      const lines = raw ? JSON.parse(raw) : [];
      return Array.isArray(lines) ? lines.filter((l) => l && typeof l.itemId === "string" && l.quantity > 0) : [];
    } catch {
      return [];
    }
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.lines));
    } catch (e) {
      console.warn("[demo] the cart could not be saved", e);
    }
    for (const fn of this.listeners) fn(this);
  }

  onChange(fn) {
    this.listeners.add(fn);
  }

  /** Item ids in the cart. */
  ids() {
    return this.lines.map((l) => l.itemId);
  }

  count() {
    return this.lines.reduce((n, l) => n + l.quantity, 0);
  }

  quantityOf(itemId) {
    return this.lines.find((l) => l.itemId === itemId)?.quantity ?? 0;
  }

  add(itemId, quantity = 1) {
    const line = this.lines.find((l) => l.itemId === itemId);
    if (line) line.quantity += quantity;
    else this.lines.push({ itemId, quantity });
    this.save();
  }

  /** Removes `quantity` units (all of them when omitted); returns how many were removed. */
  remove(itemId, quantity) {
    const line = this.lines.find((l) => l.itemId === itemId);
    if (!line) return 0;
    const n = Math.min(quantity ?? line.quantity, line.quantity);
    line.quantity -= n;
    if (line.quantity <= 0) this.lines = this.lines.filter((l) => l !== line);
    this.save();
    return n;
  }

  clear() {
    this.lines = [];
    try {
      localStorage.removeItem(this.key);
    } catch {
      /* nothing to do */
    }
    for (const fn of this.listeners) fn(this);
  }
}
