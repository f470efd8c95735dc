// One recommendation, at session lengths 10, 50 and 200, the same GRU model three ways in one
// page: Foresight incremental (one GRU step per new event + the scoring head, SDK kernels, the
// signed `gru` bundle), Foresight whole sequence (tract on the ONNX file, and the SDK kernels
// from a zero state), and onnxruntime-web (wasm, 1 thread) on the ONNX file. The same for the
// SASRec-style model (its `attention` bundle: a key/value cache, one position per event). Each timed run is
// input → all 5,000 scores in JavaScript; "top-20" runs also pick the top 20 (in wasm for
// Foresight, in JavaScript for onnxruntime-web, which returns the scores).
//   ?runs=300&warmup=30
import { q, mean, topk, maxAbsDelta, params, report, fail, text } from "./common.js";

const RUNS = Number(params.get("runs") || 300);
const WARMUP = Number(params.get("warmup") || 30);
const LENGTHS = [10, 50, 200];
const N = 5000;

// A fixed pseudo-random session (the same in every page load).
function session(len) {
  let x = 12345;
  return Array.from({ length: len + RUNS + WARMUP + 1 }, () => { x = (x * 1103515245 + 12345) % 2147483648; return x % N; });
}

// `setup(i)`, when given, runs before run i and is not timed.
async function timeIt(fn, setup) {
  for (let i = 0; i < WARMUP; i++) { if (setup) setup(i); await fn(i); }
  const t = [];
  for (let i = 0; i < RUNS; i++) {
    if (setup) setup(WARMUP + i);
    const a = performance.now();
    await fn(WARMUP + i);
    t.push(performance.now() - a);
  }
  return { p50Ms: q(t, 0.5), p99Ms: q(t, 0.99), meanMs: mean(t) };
}

async function main() {
  const key = (await text("/bundles/test-signing.pub")).trim();
  const onnx = new Uint8Array(await (await fetch("/fixtures/session_gru.onnx")).arrayBuffer());
  const bundle = new Uint8Array(await (await fetch("/bundles/session_gru.fsb")).arrayBuffer());
  const mod = await import("/pkg/foresight.js");
  await mod.default();
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.logLevel = "error";

  const inc = mod.BenchModel.fromBundle(bundle, key);
  if (!inc.incremental) throw new Error("the fixture bundle is not in the gru format");
  const kernels = mod.BenchModel.fromBundle(bundle, key);
  const tract = mod.BenchModel.recommenderOnnx(onnx, N);
  const s = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  // The SASRec-style model: its signed `attention` bundle on the SDK's kernels (key/value
  // cache: one position per new event) and whole on the same kernels, tract on the ONNX file,
  // and onnxruntime-web. Its learned positions stop at 50: a longer session slides the window.
  const sasOnnx = new Uint8Array(await (await fetch("/models/sasrec_5000.onnx")).arrayBuffer());
  const sasBundle = new Uint8Array(await (await fetch("/generated/sasrec_5000.fsb")).arrayBuffer());
  const sasInc = mod.BenchModel.fromBundle(sasBundle, key);
  if (!sasInc.incremental) throw new Error("the SASRec bundle is not in the attention format");
  const sasKernels = mod.BenchModel.fromBundle(sasBundle, key);
  const sasTract = mod.BenchModel.recommenderOnnx(sasOnnx, N);
  const SAS_POSITIONS = 50;
  const sas = await ort.InferenceSession.create(sasOnnx, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const sasIn = sas.inputNames[0], sasOut = sas.outputNames[0];
  const sasRun = async (seq) => (await sas.run({ [sasIn]: new ort.Tensor("int64", BigInt64Array.from(seq, BigInt), [1, seq.length]) }, [sasOut]))[sasOut].data;
  const ortRun = async (seq) => (await s.run({ item_seq: new ort.Tensor("int64", BigInt64Array.from(seq, BigInt), [1, seq.length]) }, ["scores"])).scores.data;

  // Steady state: V8 runs wasm on a baseline compiler first and optimizes hot functions in the
  // background, so the first length measured would carry that. Every path runs for a while
  // (both runtimes alike) before anything is timed.
  {
    const items = session(50);
    const until = performance.now() + 3000;
    for (let i = 0; performance.now() < until; i++) {
      const w = Uint32Array.from(items.slice(i % 20, (i % 20) + 30));
      inc.pushTopK(items[i % 50], 20);
      inc.pushScores(items[(i + 1) % 50]);
      sasInc.prefill(w.subarray(0, 10));
      sasInc.pushTopK(items[i % 50], 20);
      sasInc.pushScores(items[(i + 1) % 50]);
      kernels.scores(w);
      sasKernels.scores(w);
      tract.scores(w);
      sasTract.scores(w);
      await ortRun(Array.from(w));
      await sasRun(Array.from(w));
    }
    inc.reset();
    sasInc.reset();
  }
  const result = { userAgent: navigator.userAgent, runs: RUNS, warmup: WARMUP, lengths: {} };
  for (const len of LENGTHS) {
    const items = session(len);
    const r = {};
    // Incremental: the session already holds len - 1 events; each timed run appends one event
    // and scores (so run i is at length len + i: the cost does not depend on the length).
    inc.reset();
    for (let i = 0; i < len - 1; i++) inc.pushScores(items[i]);
    r.incremental = await timeIt((i) => inc.pushScores(items[len - 1 + i]));
    inc.reset();
    for (let i = 0; i < len - 1; i++) inc.pushScores(items[i]);
    r.incrementalTop20 = await timeIt((i) => inc.pushTopK(items[len - 1 + i], 20));
    // Whole sequence at exactly this length (the window slides by one event per run).
    const windowAt = (i) => Uint32Array.from(items.slice(i + 1, i + 1 + len));
    r.kernelsWhole = await timeIt((i) => kernels.scores(windowAt(i)));
    r.tractWhole = await timeIt((i) => tract.scores(windowAt(i)));
    r.ortWhole = await timeIt((i) => ortRun(Array.from(windowAt(i))));
    r.ortWholeTop20 = await timeIt(async (i) => topk(await ortRun(Array.from(windowAt(i))), 20));
    // SASRec: the session holds len - 1 events (set up untimed, a different history per run),
    // the timed run appends one. Beyond 50 events the model reads the last 50: the whole
    // windows compare at that width, and the incremental run recomputes its whole window.
    const sasLen = Math.min(len, SAS_POSITIONS);
    const sasWindow = (i) => Uint32Array.from(items.slice(i + 1 + len - sasLen, i + 1 + len));
    // The model reads only the last 50 events, so the set-up pushes just those of the history
    // (the same state; pushing all 199 would slide the window 150 times per run, untimed).
    const sasHistory = (i) => Uint32Array.from(items.slice(i + 1 + Math.max(0, len - 1 - SAS_POSITIONS), i + len));
    const sasSetup = (i) => sasInc.prefill(sasHistory(i));
    r.sasrecIncremental = await timeIt((i) => sasInc.pushScores(items[i + len]), sasSetup);
    r.sasrecIncrementalTop20 = await timeIt((i) => sasInc.pushTopK(items[i + len], 20), sasSetup);
    r.sasrecKernelsWhole = await timeIt((i) => sasKernels.scores(sasWindow(i)));
    r.sasrecTract = await timeIt((i) => sasTract.scores(sasWindow(i)));
    r.sasrecOrt = await timeIt((i) => sasRun(Array.from(sasWindow(i))));
    r.sasrecOrtTop20 = await timeIt(async (i) => topk(await sasRun(Array.from(sasWindow(i))), 20));
    {
      // Agreement: the cache after these events (one at a time) vs onnxruntime-web's window.
      sasSetup(0);
      const mine = sasInc.pushScores(items[len]);
      sasSetup(0);
      const quick = Array.from(sasInc.pushTopK(items[len], 20));
      const theirs = await sasRun(Array.from(sasWindow(0)));
      const want = topk(theirs, 20).join();
      r.sasrecAgreement = { top20Identical: topk(mine, 20).join() === want && quick.join() === want, maxAbsDelta: maxAbsDelta(mine, theirs) };
    }
    // Agreement: the incremental state after exactly these len events vs onnxruntime-web.
    const seq = items.slice(0, len);
    inc.reset();
    let mine;
    for (const x of seq) mine = inc.pushScores(x);
    const theirs = await ortRun(seq);
    // The "+ top-20" path (the i16 head, rescored near the 20th) must pick the same 20.
    inc.reset();
    for (const x of seq.slice(0, -1)) inc.pushScores(x);
    const quick = Array.from(inc.pushTopK(seq[seq.length - 1], 20));
    const want = topk(theirs, 20).join();
    r.agreement = { top20Identical: topk(mine, 20).join() === want && quick.join() === want, maxAbsDelta: maxAbsDelta(mine, theirs) };
    result.lengths[len] = r;
  }

  // The SDK's own recommend({k: 10}) after a track(), at a session of 50 events: on the GRU
  // bundle (incremental state, 5 occlusion probes from the kept states, rules, the JS object)
  // and on the ONNX file (tract on the whole sequence, 5 whole re-runs for the explanations).
  const catalog = (await (await fetch("/fixtures/catalog.json")).json()).items;
  const items = session(50);
  const sdk = {};
  for (const [name, config] of [
    ["bundle", { bundles: [bundle], publicKey: key }],
    ["sasrec", { bundles: [sasBundle], publicKey: key }],
    ["onnx", { catalog, recommender: { model: onnx } }],
  ]) {
    const storageKey = `bench-latency-${name}`;
    for (const k of Object.keys(localStorage)) if (k.startsWith(storageKey)) localStorage.removeItem(k);
    const fs = await mod.Foresight.init({ storageKey, ...config });
    for (let i = 0; i < 49; i++) fs.track({ type: "product_view", itemId: catalog[items[i]].id });
    const track = [], rec = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
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
    for (let i = 0; i < WARMUP + RUNS; i++) {
      fs.track({ type: "product_view", itemId: catalog[items[49 + (i % 50)]].id });
      await idle();
      const a = performance.now();
      fs.recommend({ k: 10 });
      if (i >= WARMUP) pre.push(performance.now() - a);
    }
    const hits = fs.precomputeHits() - hitsBefore;
    sdk[name] = {
      recommendP50Ms: q(rec, 0.5), recommendP99Ms: q(rec, 0.99), trackP50Ms: q(track, 0.5),
      precomputedP50Ms: q(pre, 0.5), precomputedP99Ms: q(pre, 0.99), precomputeHitRate: hits / (WARMUP + RUNS),
    };
    fs.free();
    for (const k of Object.keys(localStorage)) if (k.startsWith(storageKey)) localStorage.removeItem(k);
  }
  result.sdk = sdk;
  report(result);
}

main().catch(fail);
