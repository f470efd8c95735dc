// Proactive nudges from the on-device intent score.
//
// After every tracked event the page asks for `intent()`:
// - at or above `intentHigh`: delivery information (the visitor is likely to buy: remove doubt);
// - after a session peak at or above `intentDropFrom`, a fall of at least `intentDropBy`: a helpful
//   offer (the visitor is drifting away). The offer stays for the session once made.
// The banner's hover (and `title`) says why: the score, the threshold, the event that moved it.
// The session's peak is kept in sessionStorage so a reload does not forget it.

const PEAK_KEY = "demo-shop.intent-peak";
const DISMISSED_KEY = "demo-shop.nudges-dismissed";
const OFFER_KEY = "demo-shop.offer";

export class Nudges {
  constructor({ thresholds, banner }) {
    this.t = thresholds;
    this.banner = banner;
    this.peak = readNumber(PEAK_KEY);
    this.offer = readJson(OFFER_KEY);
    this.dismissed = new Set(readJson(DISMISSED_KEY) ?? []);
    this.last = null;
    /** Every decision, newest last (for the privacy panel and tests). */
    this.log = [];
    this.banner.querySelector("[data-dismiss]")?.addEventListener("click", () => this.dismiss());
  }

  /** `score`: `{probability, features}` from `intent()`, or null (no model: nothing shown). */
  update(score, because) {
    if (!score || typeof score.probability !== "number" || !Number.isFinite(score.probability)) {
      this.render(null);
      return null;
    }
    const p = score.probability;
    const { intentHigh, intentDropFrom, intentDropBy } = this.t;
    const previous = this.last?.probability ?? null;
    this.peak = Math.max(this.peak ?? 0, p);
    writeValue(PEAK_KEY, this.peak);
    let nudge = null;
    const signals = topFeatures(score.features);
    if (p >= intentHigh) {
      const trend = previous === null ? "" : p > previous ? `, up from ${fmt(previous)}` : previous > p ? `, down from ${fmt(previous)}` : "";
      nudge = {
        kind: "delivery",
        probability: p,
        reason: `intent ${fmt(p)} ≥ ${fmt(intentHigh)}${trend}${because ? ` — after ${because}` : ""}`,
        signals,
      };
    } else if (this.peak >= intentDropFrom && this.peak - p >= intentDropBy) {
      nudge = {
        kind: "offer",
        probability: p,
        reason: `intent ${fmt(p)}, down ${fmt(this.peak - p)} from this session's peak ${fmt(this.peak)}${because ? ` — after ${because}` : ""}`,
        signals,
      };
      this.offer = nudge;
      writeValue(OFFER_KEY, JSON.stringify(nudge));
    } else if (this.offer) {
      nudge = { ...this.offer, probability: p };
    }
    this.last = { probability: p, at: Date.now() };
    this.log.push({ probability: p, peak: this.peak, nudge: nudge?.kind ?? null, because: because ?? null });
    if (nudge && this.dismissed.has(nudge.kind)) nudge = null;
    this.render(nudge);
    return nudge;
  }

  dismiss() {
    const kind = this.banner.dataset.kind;
    if (kind) {
      this.dismissed.add(kind);
      writeValue(DISMISSED_KEY, JSON.stringify([...this.dismissed]));
    }
    this.render(null);
  }

  /** Forgets the session's peak, offer and dismissals (on "erase everything"). */
  reset() {
    this.peak = null;
    this.offer = null;
    this.last = null;
    this.dismissed.clear();
    for (const k of [PEAK_KEY, DISMISSED_KEY, OFFER_KEY]) {
      try {
        sessionStorage.removeItem(k);
      } catch {
        /* ignore */
      }
    }
    this.render(null);
  }

  render(nudge) {
    const b = this.banner;
    if (!nudge) {
      b.hidden = true;
      delete b.dataset.kind;
      b.removeAttribute("title");
      return;
    }
    const text = b.querySelector("[data-text]");
    if (nudge.kind === "delivery") {
      text.innerHTML = `<strong>Order in the next 2 h for delivery tomorrow.</strong> Free shipping over $25, free returns for 30 days.`;
    } else {
      text.innerHTML = `<strong>10% off your first order</strong> with code <code>WELCOME10</code> — still looking? Try the <a href="#/">staff picks</a> or ask us for a suggestion.`;
    }
    const reason = nudge.signals ? `${nudge.reason} · signals: ${nudge.signals}` : nudge.reason;
    b.dataset.kind = nudge.kind;
    b.dataset.intent = nudge.probability.toFixed(2);
    b.dataset.reason = reason;
    b.title = reason;
    b.hidden = false;
  }
}

/** The three strongest (largest) feature values, as `name value` text. */
function topFeatures(features) {
  if (!Array.isArray(features) || features.length === 0) return "";
  return [...features]
    .filter((f) => typeof f.value === "number" && f.value !== 0)
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .slice(0, 3)
    .map((f) => `${f.name} ${fmt(f.value)}`)
    .join(", ");
}

function fmt(x) {
  return Number(x).toFixed(2);
}

function readNumber(key) {
  const v = Number.parseFloat(readRaw(key) ?? "");
  return Number.isFinite(v) ? v : null;
}

function readJson(key) {
  try {
    return JSON.parse(readRaw(key) ?? "null");
  } catch {
    return null;
  }
}

function readRaw(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeValue(key, value) {
  try {
    sessionStorage.setItem(key, String(value));
  } catch {
    /* nudges still work for this page */
  }
}
