// Page helpers both demo suites use (e2e.mjs on the film store, tafeng.mjs on the grocery):
// the demo exposes `window.__demo` so a test can wait for exactly what it needs.

/** Waits until the current page is rendered and every SDK call it made has answered. */
export async function settled(page) {
  await page.waitForFunction(() => document.querySelector('#app')?.dataset.state === 'ready' && window.__demo);
  await page.evaluate(async () => {
    await window.__demo.rendered();
    await window.__demo.idle();
  });
}

/** Navigates by hash and waits for the page, recommendations included. */
export async function go(page, hash) {
  await page.evaluate((h) => window.__demo.navigate(h), hash);
  await settled(page);
}

/** `{source, fallbackReason, items: [{itemId, title, text}]}` of a recommendation rail, once it is ready. */
export async function rail(page, testid) {
  const sel = `[data-testid="${testid}"][data-state="ready"]`;
  await page.waitForSelector(sel);
  return page.$eval(sel, (el) => ({
    source: el.dataset.source,
    fallbackReason: el.dataset.fallbackReason ?? null,
    items: [...el.querySelectorAll('[data-item-id]')].map((t) => ({ itemId: t.dataset.itemId, title: t.getAttribute('title'), text: t.textContent })),
  }));
}
