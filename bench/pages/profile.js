// Where one recommendation's time goes: each path of bench/pages/latency.js as a loop that
// bench/run.mjs samples with Chromium's profiler (DevTools protocol), self time by function.
// The page only sets the paths up; `window.runPath(name, ms)` runs one for `ms` milliseconds
// and returns how many calls it made.
import { report, fail, text } from "./common.js";

const N = 5000;

async function main() {
  const key = (await text("/bundles/test-signing.pub")).trim();
  const get = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const mod = await import("/pkg/foresight.js");
  await mod.default();
  const gruOnnx = await get("/fixtures/session_gru.onnx");
  const sasOnnx = await get("/models/sasrec_5000.onnx");
  const gruInc = mod.BenchModel.fromBundle(await get("/bundles/session_gru.fsb"), key);
  const sasInc = mod.BenchModel.fromBundle(await get("/generated/sasrec_5000.fsb"), key);
  const gruTract = mod.BenchModel.recommenderOnnx(gruOnnx, N);
  const sasTract = mod.BenchModel.recommenderOnnx(sasOnnx, N);
  let x = 12345;
  const items = Array.from({ length: 4096 }, () => { x = (x * 1103515245 + 12345) % 2147483648; return x % N; });
  const window50 = (i) => Uint32Array.from(items.slice(i % 4000, (i % 4000) + 50));
  let i = 0;
  const paths = {
    // Before: the graph on tract, the whole 50-event sequence per recommendation.
    "GRU, tract whole sequence (50 events)": () => gruTract.topK(window50(i++), 20),
    // After: one GRU step and the i16-ranked top-20.
    // Sessions of 50 to 1,050 events (the state checks that the history only grew).
    "GRU, incremental + top-20": () => {
      if (i % 1000 === 0) gruInc.prefill(window50(i));
      return gruInc.pushTopK(items[i++ % 4096], 20);
    },
    "SASRec, tract whole sequence (50 events)": () => sasTract.topK(window50(i++), 20),
    // One position per event over sessions of 1–50 events (a fresh session every 50).
    "SASRec, incremental + top-20 (sessions ≤ 50 events)": () => {
      if (i % 50 === 0) sasInc.reset();
      return sasInc.pushTopK(items[i++ % 4096], 20);
    },
    // Past 50 events the window slides: every position is recomputed on the SDK's kernels.
    "SASRec, sliding window (sessions > 50 events)": () => {
      if (i % 400 === 0) sasInc.prefill(window50(i));
      return sasInc.pushTopK(items[i++ % 4096], 20);
    },
  };
  window.runPath = (name, ms) => {
    const until = performance.now() + ms;
    let calls = 0;
    while (performance.now() < until) { paths[name](); calls++; }
    return calls;
  };
  report({ paths: Object.keys(paths) });
}

main().catch(fail);
