// Helpers shared by the benchmark pages.
export const sorted = (xs) => [...xs].sort((a, b) => a - b);
// Nearest-rank quantile.
export const q = (xs, p) => { const s = sorted(xs); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]; };
export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
export const json = async (url) => (await fetch(url)).json();
export const text = async (url) => (await fetch(url)).text();
// Top-k item indices, by score descending, ties by index (as the fixtures' references do).
export function topk(scores, k) {
  const idx = Array.from(scores.keys());
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  return idx.slice(0, k);
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
