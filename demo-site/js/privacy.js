// The privacy panel: what is stored on this device, what was sent (exactly), the ε budget,
// consent, export and erase.

import { html, el, filmLabel } from "./ui.js";
import { shop } from "./shop.js";

const CONSENT_LABELS = {
  granted: "Yes — send a daily anonymous, randomized summary",
  denied: "No — send nothing",
  unknown: "Not decided (nothing is sent)",
};

export async function renderPrivacy(ctx) {
  const root = el(html`<section class="privacy" data-testid="privacy">
    <h1>Your data</h1>
    <p class="lead">Recommendations and nudges on this site are computed <strong>in your browser</strong>
      from what you do here. The record of it stays on this device. With your consent, at most one
      small report a day leaves it: randomized on the device (local differential privacy), with no
      id, no list of ${shop.items} and no raw events — the exact reports are shown below.</p>
    <div class="panel-grid">
      <div class="card">
        <h2>Sending anonymous statistics</h2>
        <fieldset class="consent" data-testid="consent">
          <legend>Share a daily randomized summary with the shop?</legend>
          ${Object.entries(CONSENT_LABELS).map(
            ([v, label]) => html`<label><input type="radio" name="consent" value="${v}" data-testid="consent-${v}"> ${label}</label>`,
          )}
        </fieldset>
        <p data-testid="privacy-sending" class="sending"></p>
        <dl class="facts">
          <dt>Global Privacy Control</dt><dd data-testid="privacy-gpc"></dd>
          <dt>Do Not Track</dt><dd data-testid="privacy-dnt"></dd>
          <dt>Privacy budget used today</dt><dd><span data-testid="epsilon"></span><div class="meter"><div data-testid="epsilon-meter"></div></div></dd>
        </dl>
        <p class="fine">ε (epsilon) bounds how much any day's reports can reveal about you: the smaller, the less. The budget is kept on this device and resets each UTC day.</p>
        <div class="actions">
          <button type="button" data-testid="flush">Send now</button>
          <button type="button" data-testid="download">Download my data</button>
          <button type="button" class="danger" data-testid="erase">Erase everything</button>
        </div>
        <p class="status-line" data-testid="action-result" role="status"></p>
      </div>
      <div class="card">
        <h2>Purchase intent, right now</h2>
        <p data-testid="privacy-intent" class="intent-now"></p>
        <table class="features" data-testid="privacy-features"></table>
        <h2>Models</h2>
        <pre data-testid="privacy-status" class="json small"></pre>
      </div>
    </div>
    <div class="card" data-testid="experiments">
      <h2>Experiments</h2>
      <ul class="experiments" data-testid="experiment-list"></ul>
      <p class="fine" data-testid="experiment-privacy">Your group was drawn at random on this device, is kept in its storage
        and never leaves it as such: no request carries it. With your consent, the daily report below holds one
        <code>experiment_outcome</code> value per test — your group and how far that list led today (shown → clicked →
        added to cart → bought), randomized together on this device (k-ary randomized response, its own ε, part of
        today’s budget), so the shop can compare the groups across many visitors but learns nothing certain about yours.
        It names the test, never a ${shop.item}.</p>
    </div>
    <div class="card">
      <h2>Stored on this device <small data-testid="history-count"></small></h2>
      <div class="history-table-wrap"><table class="history" data-testid="privacy-history-table"></table></div>
      <details><summary>As JSON, exactly as the SDK returns it</summary><pre class="json" data-testid="privacy-history"></pre></details>
      <p class="fine">The shop's own data on this device: the cart (<code>localStorage["${ctx.cfg.cartKey}"]</code>) and this session's nudge state (<code>sessionStorage</code>).</p>
      <pre class="json small" data-testid="privacy-cart"></pre>
    </div>
    <div class="panel-grid">
      <div class="card">
        <h2>Waiting to be sent <small data-testid="pending-count"></small></h2>
        <pre class="json" data-testid="privacy-pending"></pre>
      </div>
      <div class="card">
        <h2>Sent <small data-testid="sent-count"></small></h2>
        <pre class="json" data-testid="privacy-sent"></pre>
        <p class="fine">Last “Send now”:</p>
        <pre class="json small" data-testid="flush-result">—</pre>
      </div>
    </div>
  </section>`);
  ctx.main.append(root);
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const say = (text) => {
    $("action-result").textContent = text;
  };

  if (ctx.p.state !== "ready") {
    root.prepend(
      el(html`<p class="notice inline">Foresight is ${ctx.p.state === "loading" ? "still loading" : "unavailable"} on this page: nothing is being recorded or sent.</p>`),
    );
  }

  async function refresh() {
    const [priv, history, status, intent, variants] = await Promise.all([ctx.p.privacy(), ctx.p.history(), ctx.p.status(), ctx.p.intent(), ctx.p.variants()]);
    const consent = priv?.consent ?? "unknown";
    for (const input of root.querySelectorAll("input[name=consent]")) {
      input.checked = input.value === consent;
      input.disabled = !priv;
    }
    $("privacy-sending").textContent = priv ? sendingText(priv) : "Nothing can be sent: the SDK is not running.";
    $("privacy-sending").dataset.sending = String(Boolean(priv?.sending));
    $("privacy-gpc").textContent = priv ? (priv.globalPrivacyControl ? "on — nothing is sent" : "off") : "—";
    $("privacy-dnt").textContent = priv ? (priv.doNotTrack ? "on — nothing is sent" : "off") : "—";
    const spent = priv?.epsilonSpentToday ?? 0;
    const perDay = priv?.epsilonPerDay ?? 0;
    $("epsilon").textContent = priv ? `ε ${spent.toFixed(2)} of ${perDay.toFixed(2)}` : "—";
    $("epsilon").dataset.spent = String(spent);
    $("epsilon").dataset.perDay = String(perDay);
    $("epsilon-meter").style.width = `${perDay > 0 ? Math.min(100, (100 * spent) / perDay) : 0}%`;

    const pending = priv?.pending ?? [];
    const sent = priv?.sent ?? [];
    $("privacy-pending").textContent = JSON.stringify(pending, null, 2);
    $("privacy-sent").textContent = JSON.stringify(sent, null, 2);
    $("pending-count").textContent = `(${pending.length})`;
    $("sent-count").textContent = `(${sent.length})`;

    const events = Array.isArray(history) ? history : [];
    $("history-count").textContent = `(${events.length} event${events.length === 1 ? "" : "s"})`;
    $("privacy-history").textContent = JSON.stringify(events, null, 2);
    $("privacy-history-table").innerHTML = events.length
      ? html`<thead><tr><th>When</th><th>Session</th><th>What</th></tr></thead><tbody>${[...events]
          .reverse()
          .slice(0, 200)
          .map((e) => html`<tr><td>${new Date(e.at).toLocaleString()}</td><td>${e.session}</td><td>${describe(ctx, e)}</td></tr>`)}</tbody>`.toString()
      : html`<tbody><tr><td class="empty">Nothing is stored.</td></tr></tbody>`.toString();
    drawExperiments(ctx, $("experiment-list"), variants ?? {});
    $("privacy-cart").textContent = JSON.stringify({ cart: ctx.cart.lines, nudges: { peak: ctx.nudges.peak, offer: Boolean(ctx.nudges.offer) } }, null, 2);
    $("privacy-status").textContent = JSON.stringify(status ?? { state: ctx.p.state, error: String(ctx.p.error?.message ?? "") }, null, 2);
    if (intent) {
      $("privacy-intent").textContent = `${(intent.probability * 100).toFixed(0)}% likely to buy this session (score ${intent.probability.toFixed(3)}).`;
      $("privacy-features").innerHTML = html`<tbody>${(intent.features ?? []).map(
        (f) => html`<tr><td>${f.name}</td><td>${Number(f.value).toFixed(3)}</td></tr>`,
      )}</tbody>`.toString();
    } else {
      $("privacy-intent").textContent = ctx.p.intentError
        ? `No intent score: ${ctx.p.intentError.message ?? ctx.p.intentError} (nudges are off).`
        : "No intent score (nudges are off).";
      $("privacy-features").innerHTML = "";
    }
    root.dataset.state = "ready";
  }

  root.querySelector("[data-testid=consent]").addEventListener("change", async (e) => {
    const v = e.target.value;
    root.dataset.state = "busy";
    const ok = await ctx.p.consent(v);
    say(ok ? `Consent: ${v}.` : "Could not change consent: the SDK is not running.");
    await refresh();
  });
  $("flush").addEventListener("click", async () => {
    root.dataset.state = "busy";
    say("Sending…");
    const r = await ctx.p.flush();
    $("flush-result").textContent = JSON.stringify(r, null, 2);
    say(r.sent ? `Sent ${r.sent} report${r.sent === 1 ? "" : "s"}.` : `Nothing sent${r.outcome ? ` (${r.outcome})` : ""}.`);
    await refresh();
  });
  $("download").addEventListener("click", async () => {
    const [history, priv, status] = await Promise.all([ctx.p.history(), ctx.p.privacy(), ctx.p.status()]);
    const data = {
      exportedAt: new Date().toISOString(),
      site: location.origin,
      history,
      privacy: priv,
      models: status,
      shop: { cart: ctx.cart.lines },
    };
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `foresight-my-data-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    say("Downloaded.");
  });
  $("erase").addEventListener("click", async () => {
    root.dataset.state = "busy";
    const ok = await ctx.p.forget();
    ctx.cart.clear();
    ctx.nudges.reset();
    say(ok ? "Everything this site stored on this device is erased." : "The cart is erased; the SDK was not running.");
    await refresh();
  });
  await refresh();
}

/** The visitor's group in each of the shop's tests (`variants()`), in words. */
function drawExperiments(ctx, list, variants) {
  const declared = ctx.cfg.foresight?.experiments ?? [];
  const names = Object.keys(variants);
  if (ctx.p.state !== "ready" || names.length === 0) {
    list.innerHTML = html`<li class="empty">No test is running for you${ctx.p.state === "ready" ? "" : ": Foresight is not running on this page"}.</li>`.toString();
    return;
  }
  list.innerHTML = names
    .map((name) => {
      const e = declared.find((x) => x.name === name);
      const variant = variants[name];
      const note = ctx.cfg.experimentNotes?.[name]?.replaceAll("{items}", shop.items);
      const groups = e ? e.variants.map((v) => v.name) : [];
      return html`<li data-experiment="${name}">Test <code>${name}</code>${e ? html` on <code>${e.placement}</code>` : ""}${note ? html` — ${note}` : ""}:
        you are in the group <strong data-testid="experiment-variant" data-experiment="${name}">${variant ?? "not assigned"}</strong>${
          groups.length ? html` (of ${groups.map((g, i) => html`${i ? ", " : ""}<code>${g}</code>`)}; the first is the control)` : ""
        }.</li>`;
    })
    .join("");
}

function sendingText(p) {
  if (p.sending) return "A daily report may be sent (you agreed). It is randomized on this device before it leaves.";
  if (p.globalPrivacyControl) return "Nothing is sent: your browser asks sites not to share data (Global Privacy Control).";
  if (p.doNotTrack) return "Nothing is sent: your browser sends Do Not Track.";
  if (p.consent === "denied") return "Nothing is sent: you said no.";
  if (p.consent === "granted") return "Nothing is sent.";
  return "Nothing is sent until you agree.";
}

/** One stored event in words. */
function describe(ctx, stored) {
  const e = stored.event ?? stored;
  const f = (id) => filmLabel(ctx.catalog.byId.get(id)) + ` [${id}]`;
  switch (e.type) {
    case "page_view":
      return `page ${e.path ?? ""}`;
    case "product_view":
      return `viewed ${f(e.itemId)}${e.category ? ` · ${e.category}` : ""}${e.price !== undefined ? ` · $${e.price}` : ""}`;
    case "search":
      return `searched “${e.query}”`;
    case "click":
      return `clicked ${f(e.itemId)}${e.placement ? ` in ${e.placement}` : ""}`;
    case "add_to_cart":
      return `added ${f(e.itemId)} ×${e.quantity ?? 1}`;
    case "remove_from_cart":
      return `removed ${f(e.itemId)} ×${e.quantity ?? 1}`;
    case "purchase":
      return `bought ${(e.items ?? []).map((i) => f(i.itemId)).join(", ")}${e.total !== undefined ? ` · $${e.total}` : ""}`;
    case "dwell":
      return `stayed ${e.seconds}s${e.itemId ? ` on ${f(e.itemId)}` : ""}`;
    default:
      return JSON.stringify(e);
  }
}
