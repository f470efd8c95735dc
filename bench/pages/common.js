// Helpers shared by the benchmark pages.
export const sorted = (xs) => [...xs].sort((a, b) => a - b);
// Nearest-rank quantile.
export const q = (xs, p) => { const s = sorted(xs); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]; };
export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
export const json = async (url) => (await fetch(url)).json();
export const text = async (url) => (await fetch(url)).text();
// Top-k item indices, by score descending, ties by index (as the fixtures' references do):
// one pass keeping the best k in order, the way a page would pick from a runtime's scores
// (a full sort of every score would overstate the JavaScript side).
export function topk(scores, k) {
  const best = [];
  const better = (i, j) => scores[i] > scores[j] || (scores[i] === scores[j] && i < j);
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) continue;
    if (best.length === k && !better(i, best[k - 1])) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && better(i, best[at - 1])) { best[at] = best[at - 1]; at--; }
    best[at] = i;
    if (best.length > k) best.length = k;
  }
  return best;
}
export const maxAbsDelta = (a, b) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
export const params = new URLSearchParams(location.search);
export function report(result) {
  window.benchResult = result;
  const out = document.getElementById("out");
  if (out) out.textContent = JSON.stringify(result, null, 2);
}
export function fail(e) {
  report({ error: String(e && e.stack || e) });
}
