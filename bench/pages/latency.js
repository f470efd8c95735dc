// One recommendation after a new event, at session lengths 10, 50 and 200, in one page: the
// SDK with its kept state (one GRU step / one attention position per event, the signed `gru` and
// `attention` bundles on its own kernels) against onnxruntime-web (wasm, 1 thread) as a skilled
// engineer would deploy it — a *step model* from the same weights (GRU: item + previous hidden
// state → new state + scores; attention: past keys/values in, present ones out), session and
// input tensors reused, with and without an in-graph TopK — and, as before, every runtime on the
// whole sequence (`bench/models/make_step_models.py` writes and checks the step models).
//
// Correctness is part of the timing: every timed call's top 20 (by score, ties by index) is
// compared between the SDK and each onnxruntime-web variant on the same input; any difference
// fails the page and names the case.
//
// Timer: cross-origin isolated pages get 5 µs `performance.now()`; each sample batches enough
// calls (the same number for every path of a group, so call c has the same input everywhere)
// to span at least 100 timer ticks; p50/p99 are per call over the samples.
//   ?runs=300&warmup=30
import { q, mean, topk, maxAbsDelta, params, report, fail, text, bytes } from "./common.js";

const SAMPLES = Number(params.get("runs") || 300);
const WARMUP = Number(params.get("warmup") || 30);
const LENGTHS = [10, 50, 200];
const N = 5000;
const K = 20;
const SAS_POSITIONS = 50;
/** Calls per sample at most (the input streams are sized for it). */
const MAX_BATCH = 64;

/** The timer's resolution, measured: the smallest step `performance.now()` takes. */
function timerTick() {
  let tick = Infinity;
  for (let i = 0; i < 50; i++) {
    const a = performance.now();
    let b = a;
    while (b === a) b = performance.now();
    tick = Math.min(tick, b - a);
  }
  return tick;
}
const TICK_MS = timerTick();
const MIN_SAMPLE_MS = 100 * TICK_MS;

// A fixed pseudo-random stream of items (the same in every page load).
function stream(seed, n) {
  let x = seed;
  return Array.from({ length: n }, () => { x = (x * 1103515245 + 12345) % 2147483648; return x % N; });
}

const failures = [];
/** Top-20 differences between runtimes that are only float noise: items whose scores differ by ≤ TIE. */
const TIE = 1e-5;
const key20 = (ids) => Array.from(ids, Number).join(",");
const scoresOf = (out) => out.scores ?? out;
const top20Of = (out) => (out.top ? key20(out.top) : key20(topk(out, K)));
/** The reference's best K + 10 items with their scores (to tell a near-tie from an error). */
const bestOf = (scores) => new Map(topk(scores, K + 10).map((i) => [i, scores[i]]));
/** Whether `got` ranks the same items as `want` up to swaps of items the reference scores within TIE. */
function sameUpToTies(got, want, best) {
  const g = got.split(",").map(Number), w = want.split(",").map(Number);
  if (g.length !== w.length) return false;
  return g.every((id, r) => best.has(id) && Math.abs(best.get(id) - best.get(w[r])) <= TIE);
}

/**
 * Times the paths of one group on the same calls. `paths`: `{name: {run(c) → output, sample?(s),
 * setup?()}}`; an output is a `Float32Array` of every score or `{top}` (the 20 picked in the
 * runtime) or `{scores, top}`. `reference` names the path every other is checked against.
 * Returns `{batch, samples, paths: {name: {p50Ms, p99Ms, meanMs}}, maxAbsDelta}`.
 */
async function group(label, paths, reference) {
  const names = Object.keys(paths);
  // Warm-up (also the calibration): the fastest path sets the batch for all of them.
  let fastest = Infinity;
  for (const name of names) {
    const p = paths[name];
    if (p.setup) await p.setup();
    if (p.sample) await p.sample(0);
    const a = performance.now();
    for (let c = 0; c < WARMUP; c++) await p.run(c);
    fastest = Math.min(fastest, (performance.now() - a) / WARMUP);
  }
  const batch = Math.max(1, Math.ceil(MIN_SAMPLE_MS / fastest));
  if (batch > MAX_BATCH) throw new Error(`${label}: the timer ticks every ${TICK_MS} ms: ${batch} calls per sample would be needed (is the page cross-origin isolated?)`);
  const tops = {};
  const refBest = [];
  const firstScores = {};
  const result = { batch, samples: SAMPLES, paths: {} };
  for (const name of [reference, ...names.filter((n) => n !== reference)]) {
    const p = paths[name];
    if (p.setup) await p.setup();
    const perCall = [];
    const mine = (tops[name] = []);
    const outs = new Array(batch);
    for (let s = 0; s < SAMPLES; s++) {
      if (p.sample) await p.sample(s);
      const base = s * batch;
      const a = performance.now();
      for (let j = 0; j < batch; j++) outs[j] = await p.run(base + j);
      perCall.push((performance.now() - a) / batch);
      // Untimed: what each call answered.
      for (let j = 0; j < batch; j++) {
        mine.push(top20Of(outs[j]));
        if (name === reference) refBest.push(bestOf(scoresOf(outs[j])));
        if (s === 0 && j < 20 && scoresOf(outs[j]) instanceof Float32Array) (firstScores[name] ??= []).push(scoresOf(outs[j]));
      }
    }
    result.paths[name] = { p50Ms: q(perCall, 0.5), p99Ms: q(perCall, 0.99), meanMs: mean(perCall) };
  }
  // Every call of every path against the reference's answer to the same input.
  const want = tops[reference];
  result.calls = want.length;
  result.nearTies = {};
  for (const name of names) {
    if (name === reference) continue;
    const got = tops[name];
    let ties = 0;
    for (let c = 0; c < want.length; c++) {
      if (got[c] === want[c]) continue;
      if (sameUpToTies(got[c], want[c], refBest[c])) { ties++; continue; }
      failures.push(`${label}: ${name} call ${c}: top-${K} [${got[c]}] but ${reference} [${want[c]}]`);
      break;
    }
    result.nearTies[name] = ties;
  }
  let delta = 0;
  for (const name of names) {
    if (name === reference || !firstScores[name] || !firstScores[reference]) continue;
    firstScores[name].forEach((s, i) => { delta = Math.max(delta, maxAbsDelta(s, firstScores[reference][i])); });
  }
  result.maxAbsDelta = delta;
  return result;
}

async function main() {
  if (!Number.isFinite(TICK_MS) || TICK_MS <= 0) throw new Error("performance.now() does not advance");
  const key = (await text("/bundles/test-signing.pub")).trim();
  const gruOnnx = await bytes("/fixtures/session_gru.onnx");
  const gruBundle = await bytes("/bundles/session_gru.fsb");
  const sasOnnx = await bytes("/models/sasrec_5000.onnx");
  const sasBundle = await bytes("/generated/sasrec_5000.fsb");
  const mod = await import("/pkg/foresight.js");
  await mod.default();
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.logLevel = "error";
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const session = async (url) => ort.InferenceSession.create(await bytes(url), options);

  // The SDK: the bundles on its kernels (kept state, and whole from scratch), tract on the ONNX.
  const inc = mod.BenchModel.fromBundle(gruBundle, key);
  if (!inc.incremental) throw new Error("the fixture bundle is not in the gru format");
  const kernels = mod.BenchModel.fromBundle(gruBundle, key);
  const tract = mod.BenchModel.recommenderOnnx(gruOnnx, N);
  const sasInc = mod.BenchModel.fromBundle(sasBundle, key);
  if (!sasInc.incremental) throw new Error("the SASRec bundle is not in the attention format");
  const sasKernels = mod.BenchModel.fromBundle(sasBundle, key);
  const sasTract = mod.BenchModel.recommenderOnnx(sasOnnx, N);

  // onnxruntime-web: whole-sequence and step models, TopK variants.
  const gruWhole = await session("/fixtures/session_gru.onnx");
  const gruStep = await session("/generated/gru_step.onnx");
  const gruStepTopK = await session("/generated/gru_step_topk.onnx");
  const sasWhole = await session("/models/sasrec_5000.onnx");
  const sasStep = await session("/models/sasrec_5000_step.onnx");
  const sasStepTopK = await session("/generated/sasrec_step_topk.onnx");

  // Input tensors made once and refilled: what a page that steps per event does.
  const itemBuf = new BigInt64Array(1);
  const gruItem = new ort.Tensor("int64", itemBuf, [1, 1]);
  const sasItem = new ort.Tensor("int64", itemBuf, [1]);
  const seqTensor = (seq) => new ort.Tensor("int64", BigInt64Array.from(seq, BigInt), [1, seq.length]);
  const wholeRun = async (s, seq) => (await s.run({ [s.inputNames[0]]: seqTensor(seq) }, ["scores"])).scores.data;
  const zeroH = new ort.Tensor("float32", new Float32Array(64), [1, 1, 64]);
  const gruStepRun = async (s, item, h, withTop) => {
    itemBuf[0] = BigInt(item);
    const out = await s.run({ item: gruItem, h }, withTop ? ["top_indices", "h_next"] : ["scores", "h_next"]);
    return { h: out.h_next, out: withTop ? { top: out.top_indices.data } : out.scores.data };
  };
  // make_sasrec.py's model: 2 blocks, 2 heads of 32 dims; no past before the first event.
  const emptyKv = () => new ort.Tensor("float32", new Float32Array(0), [2, 2, 0, 32]);
  const sasStepRun = async (s, item, kv, withTop) => {
    itemBuf[0] = BigInt(item);
    const out = await s.run({ item: sasItem, past_k: kv.k, past_v: kv.v }, withTop ? ["top_indices", "present_k", "present_v"] : ["scores", "present_k", "present_v"]);
    return { kv: { k: out.present_k, v: out.present_v }, out: withTop ? { top: out.top_indices.data } : out.scores.data };
  };
  // The keys/values after `seq` (untimed set-up).
  const sasPast = async (seq) => {
    let kv = { k: emptyKv(), v: emptyKv() };
    for (const item of seq) kv = (await sasStepRun(sasStep, item, kv, false)).kv;
    return kv;
  };

  // Steady state: V8 runs wasm on a baseline compiler first and optimizes hot functions in the
  // background; every path runs a while (both runtimes alike) before anything is timed.
  {
    const items = stream(7, 80);
    const until = performance.now() + 3000;
    let h = zeroH;
    let kv = { k: emptyKv(), v: emptyKv() };
    for (let i = 0; performance.now() < until; i++) {
      const w = Uint32Array.from(items.slice(i % 20, (i % 20) + 30));
      if (i % 40 === 0) { inc.reset(); sasInc.reset(); h = zeroH; kv = { k: emptyKv(), v: emptyKv() }; }
      inc.pushTopK(items[i % 80], K);
      sasInc.pushScores(items[i % 80]);
      kernels.scores(w);
      sasKernels.scores(w);
      tract.scores(w);
      sasTract.scores(w);
      h = (await gruStepRun(gruStep, items[i % 80], h, false)).h;
      kv = (await sasStepRun(sasStep, items[i % 80], kv, false)).kv;
      if (i % 2 === 0) await sasStepRun(sasStepTopK, items[i % 80], kv, true);
      await gruStepRun(gruStepTopK, items[i % 80], h, true);
      await wholeRun(gruWhole, Array.from(w));
      await wholeRun(sasWhole, Array.from(w));
    }
  }

  const result = { userAgent: navigator.userAgent, samples: SAMPLES, warmup: WARMUP, tickMs: TICK_MS, crossOriginIsolated, lengths: {} };
  for (const len of LENGTHS) {
    const history = stream(1000 + len, len - 1);
    const fresh = stream(2000 + len, MAX_BATCH * SAMPLES + WARMUP + 200);
    const r = {};

    // GRU, one event after a session of `len - 1`: each sample starts from that session (set
    // up untimed) and appends `batch` new events, one step each — the SDK from its kept state,
    // onnxruntime-web feeding back its `h_next`.
    const gruSample = (model) => () => model.prefill(Uint32Array.from(history));
    let hHistory = zeroH;
    for (const item of history) hHistory = (await gruStepRun(gruStep, item, hHistory, false)).h;
    let h = hHistory;
    r.gru = await group(`GRU at length ${len}`, {
      sdk: { sample: gruSample(inc), run: (c) => inc.pushScores(fresh[c]) },
      sdkTop20: { sample: gruSample(inc), run: (c) => ({ top: inc.pushTopK(fresh[c], K) }) },
      ortStep: { sample: () => { h = hHistory; }, run: async (c) => { const o = await gruStepRun(gruStep, fresh[c], h, false); h = o.h; return o.out; } },
      ortStepTopK: { sample: () => { h = hHistory; }, run: async (c) => { const o = await gruStepRun(gruStepTopK, fresh[c], h, true); h = o.h; return o.out; } },
    }, "ortStep");
    // Whole sequence at exactly this length (call c: the `len` events of the stream from c).
    const windowAt = (c) => fresh.slice(c, c + len);
    r.gruWhole = await group(`GRU whole sequence at length ${len}`, {
      sdkKernels: { run: (c) => kernels.scores(Uint32Array.from(windowAt(c))) },
      tract: { run: (c) => tract.scores(Uint32Array.from(windowAt(c))) },
      ort: { run: (c) => wholeRun(gruWhole, windowAt(c)) },
    }, "ort");

    // SASRec: up to 50 events, a new event costs one position with kept keys/values. Each call
    // replaces the last event of a session of `len` (the SDK takes it back with `pop()`, free;
    // onnxruntime-web feeds the same past again), so every call is at exactly this length.
    // Beyond 50 the window slides: every position moves, and both sides recompute the last 50
    // events per event (the SDK from its kept sequence; onnxruntime-web's step there is its
    // whole-sequence model on the window).
    if (len <= SAS_POSITIONS) {
      const past = await sasPast(history);
      const sdkSetup = () => { sasInc.prefill(Uint32Array.from([...history, fresh[0]])); };
      r.sasrec = await group(`SASRec at length ${len}`, {
        sdk: { setup: sdkSetup, run: (c) => { sasInc.pop(); return sasInc.pushScores(fresh[c]); } },
        sdkTop20: { setup: sdkSetup, run: (c) => { sasInc.pop(); return { top: sasInc.pushTopK(fresh[c], K) }; } },
        ortStep: { run: async (c) => (await sasStepRun(sasStep, fresh[c], past, false)).out },
        ortStepTopK: { run: async (c) => (await sasStepRun(sasStepTopK, fresh[c], past, true)).out },
      }, "ortStep");
    } else {
      // Call c: the history, then the stream up to c; the model reads the last 50.
      const tail = (c) => [...history.slice(-(SAS_POSITIONS - 1)), ...fresh.slice(0, c + 1)].slice(-SAS_POSITIONS);
      let next = 0;
      const sdkSetup = () => { sasInc.prefill(Uint32Array.from(history.slice(-(SAS_POSITIONS - 1)))); next = 0; };
      // The SDK's session keeps growing (it must be fed in order): call c is its c-th push.
      const push = (c, top) => {
        while (next < c) sasInc.pushScores(fresh[next++]);
        next = c + 1;
        return top ? { top: sasInc.pushTopK(fresh[c], K) } : sasInc.pushScores(fresh[c]);
      };
      r.sasrec = await group(`SASRec at length ${len} (the last 50)`, {
        sdk: { setup: sdkSetup, run: (c) => push(c, false) },
        sdkTop20: { setup: sdkSetup, run: (c) => push(c, true) },
        ortStep: { run: (c) => wholeRun(sasWhole, tail(c)) },
      }, "ortStep");
    }
    const sasWindow = (c) => fresh.slice(c, c + Math.min(len, SAS_POSITIONS));
    r.sasrecWhole = await group(`SASRec whole sequence at length ${len}`, {
      sdkKernels: { run: (c) => sasKernels.scores(Uint32Array.from(sasWindow(c))) },
      tract: { run: (c) => sasTract.scores(Uint32Array.from(sasWindow(c))) },
      ort: { run: (c) => wholeRun(sasWhole, sasWindow(c)) },
    }, "ort");
    result.lengths[len] = r;
  }

  // The SDK's own recommend({k: 10}) after a track(), at a session of 50 events: on the GRU
  // bundle (incremental state, 5 occlusion probes from the kept states, rules, the JS object)
  // and on the ONNX file (tract on the whole sequence, 5 whole re-runs for the explanations).
  const catalog = (await (await fetch("/fixtures/catalog.json")).json()).items;
  const items = stream(12345, 100);
  const sdk = {};
  for (const [name, config] of [
    ["bundle", { bundles: [gruBundle], publicKey: key }],
    ["sasrec", { bundles: [sasBundle], publicKey: key }],
    ["onnx", { catalog, recommender: { model: gruOnnx } }],
  ]) {
    const storageKey = `bench-latency-${name}`;
    for (const k of Object.keys(localStorage)) if (k.startsWith(storageKey)) localStorage.removeItem(k);
    const fs = await mod.Foresight.init({ storageKey, ...config });
    for (let i = 0; i < 49; i++) fs.track({ type: "product_view", itemId: catalog[items[i]].id });
    const track = [], rec = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const a = performance.now();
      fs.track({ type: "product_view", itemId: catalog[items[49 + (i % 50)]].id });
      const b = performance.now();
      fs.recommend({ k: 10 });
      const c = performance.now();
      if (i >= WARMUP) { track.push(b - a); rec.push(c - b); }
    }
    // The same with the page idle between track() and recommend(): the SDK has computed the
    // answer in an idle callback (precompute), and recommend() hands it out.
    const hitsBefore = fs.precomputeHits();
    const idle = () => new Promise((r) => requestIdleCallback(() => r()));
    const pre = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      fs.track({ type: "product_view", itemId: catalog[items[49 + (i % 50)]].id });
      await idle();
      const a = performance.now();
      fs.recommend({ k: 10 });
      if (i >= WARMUP) pre.push(performance.now() - a);
    }
    const hits = fs.precomputeHits() - hitsBefore;
    sdk[name] = {
      recommendP50Ms: q(rec, 0.5), recommendP99Ms: q(rec, 0.99), trackP50Ms: q(track, 0.5),
      precomputedP50Ms: q(pre, 0.5), precomputedP99Ms: q(pre, 0.99), precomputeHitRate: hits / (WARMUP + SAMPLES),
    };
    fs.free();
    for (const k of Object.keys(localStorage)) if (k.startsWith(storageKey)) localStorage.removeItem(k);
  }
  result.sdk = sdk;
  result.failures = failures;
  report(result);
}

main().catch(fail);
