// One page, several runtimes, the same ONNX models: load time, first inference, p50/p99 after
// warm-up, and the top-20 of every runtime compared with onnxruntime-web's.
//   ?runtimes=full,lean,ort  which runtimes, in this order (the runner rotates it per load)
//   &threads=1               onnxruntime-web's wasm threads (needs crossOriginIsolated for > 1)
//   &runs=300&warmup=30      timed runs after warm-up, per model
import { q, mean, bytes, json, text, topk, maxAbsDelta, params, report, fail } from "./common.js";

const runtimes = (params.get("runtimes") || "full,lean,ort").split(",");
const threads = Number(params.get("threads") || 1);
const RUNS = Number(params.get("runs") || 300);
const WARMUP = Number(params.get("warmup") || 30);
const K = 20;

// The recommenders take item indices [1, seq]; the intent model 18 float32 features.
const MODELS = [
  { name: "session_gru", kind: "recommender", onnx: "/fixtures/session_gru.onnx", bundle: "/bundles/session_gru.fsb" },
  { name: "sasrec", kind: "recommender", onnx: "/models/sasrec_5000.onnx", bundle: "/generated/sasrec_5000.fsb" },
  { name: "intent_logreg", kind: "intent", onnx: "/fixtures/intent_logreg.onnx", bundle: "/bundles/intent_logreg.fsb" },
];

// A runtime: start() imports and instantiates it; load(model, bytes) → a runner with
// run(input) → Float32Array (recommender scores) or number (intent probability), awaited.
function foresight(variant) {
  const dir = variant === "full" ? "/pkg" : "/pkg-lean";
  let mod;
  return {
    name: variant === "full" ? "Foresight full" : "Foresight lean",
    async start() { mod = await import(`${dir}/foresight.js`); await mod.default(); },
    // full: the ONNX file; lean: the signed NNEF bundle (it cannot read ONNX).
    source: (m) => (variant === "full" ? m.onnx : m.bundle),
    load(m, b, key) {
      const B = mod.BenchModel;
      if (variant === "lean") return wrap(B.fromBundle(b, key), m);
      return wrap(m.kind === "intent" ? B.intentOnnx(b, 1) : B.recommenderOnnx(b, 5000), m);
    },
  };
  function wrap(bm, m) {
    return m.kind === "intent"
      ? { run: (x) => bm.probability(x), free: () => bm.free() }
      : { run: (x) => bm.scores(Uint32Array.from(x)), free: () => bm.free() };
  }
}

function onnxruntime() {
  let ort;
  return {
    name: threads > 1 ? `ORT web ${threads} threads` : "ORT web 1 thread",
    async start() {
      ort = await import("/ort/ort.wasm.min.mjs");
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.wasmPaths = "/ort/";
      ort.env.logLevel = "error";
    },
    source: (m) => m.onnx,
    async load(m, b) {
      const s = await ort.InferenceSession.create(b, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      const inName = s.inputNames[0];
      const outName = m.kind === "intent" ? "probabilities" : s.outputNames[0];
      if (m.kind === "intent") {
        return {
          async run(x) { const r = await s.run({ [inName]: new ort.Tensor("float32", Float32Array.from(x), [1, x.length]) }, [outName]); return r[outName].data[1]; },
          free: () => s.release(),
        };
      }
      return {
        async run(x) {
          const r = await s.run({ [inName]: new ort.Tensor("int64", BigInt64Array.from(x, BigInt), [1, x.length]) }, [outName]);
          return r[outName].data;
        },
        free: () => s.release(),
      };
    },
  };
}

async function main() {
  const gruRef = await json("/fixtures/session_gru.reference.json");
  const intentRef = await json("/fixtures/intent_logreg.reference.json");
  const key = (await text("/bundles/test-signing.pub")).trim();
  const seqCases = gruRef.cases.map((c) => ({ name: c.name, x: c.indices }));
  const timingSeq = gruRef.cases.find((c) => c.indices.length === 50).indices;
  const intentCases = intentRef.cases.map((c) => ({ name: c.name, x: c.features }));
  const timingFeatures = intentRef.cases[intentRef.cases.length - 1].features;
  const files = {};
  // A model a runtime cannot take (no NNEF bundle could be made) is skipped for that runtime.
  for (const m of MODELS) for (const u of [m.onnx, m.bundle]) { const r = await fetch(u); files[u] = r.ok ? new Uint8Array(await r.arrayBuffer()) : null; }

  const result = { userAgent: navigator.userAgent, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, threads, runs: RUNS, warmup: WARMUP, order: runtimes, runtimes: {}, outputs: {} };
  const outputs = {}; // runtime → model → [per-case output]
  for (const id of runtimes) {
    const rt = id === "ort" ? onnxruntime() : foresight(id);
    const r = { name: rt.name, models: {} };
    // Runtime start: import the JS, fetch + compile + instantiate the wasm, and load the 0.5 KB
    // intent model (onnxruntime-web instantiates its wasm at the first session).
    const t0 = performance.now();
    await rt.start();
    const tiny = await rt.load(MODELS[2], files[rt.source(MODELS[2])], key);
    await tiny.run(timingFeatures);
    r.startMs = performance.now() - t0;
    tiny.free();
    outputs[id] = {};
    for (const m of MODELS) {
      const b = files[rt.source(m)];
      if (!b) { r.models[m.name] = { unavailable: rt.source(m) }; outputs[id][m.name] = null; continue; }
      const x = m.kind === "intent" ? timingFeatures : timingSeq;
      const l0 = performance.now();
      const runner = await rt.load(m, b, key);
      const l1 = performance.now();
      await runner.run(x);
      const l2 = performance.now();
      for (let i = 0; i < WARMUP; i++) await runner.run(x);
      const times = [];
      for (let i = 0; i < RUNS; i++) { const a = performance.now(); await runner.run(x); times.push(performance.now() - a); }
      const cases = m.kind === "intent" ? intentCases : seqCases;
      const outs = [];
      for (const c of cases) { const o = await runner.run(c.x); outs.push(m.kind === "intent" ? o : Float32Array.from(o)); }
      outputs[id][m.name] = outs;
      runner.free();
      r.models[m.name] = { modelBytes: b.length, loadMs: l1 - l0, firstMs: l2 - l1, p50Ms: q(times, 0.5), p99Ms: q(times, 0.99), meanMs: mean(times), minMs: Math.min(...times) };
    }
    result.runtimes[id] = r;
  }
  // Agreement: every runtime against onnxruntime-web (if it ran here), else against the
  // first runtime; and the session GRU against the fixture's onnxruntime (Python) top-20.
  const base = runtimes.includes("ort") ? "ort" : runtimes[0];
  for (const id of runtimes) {
    const agreement = {};
    for (const m of MODELS) {
      const mine = outputs[id][m.name], theirs = outputs[base][m.name];
      if (!mine || !theirs) { agreement[m.name] = null; continue; }
      if (m.kind === "intent") {
        agreement[m.name] = { cases: mine.length, maxAbsDelta: Math.max(...mine.map((p, i) => Math.abs(p - theirs[i]))) };
        continue;
      }
      const mismatches = [];
      let same = 0, delta = 0;
      mine.forEach((s, i) => {
        const a = topk(s, K), b = topk(theirs[i], K);
        delta = Math.max(delta, maxAbsDelta(s, theirs[i]));
        if (a.join() === b.join()) same++;
        else mismatches.push({ case: seqCases[i].name, mine: a, theirs: b, sameSet: a.slice().sort().join() === b.slice().sort().join() });
      });
      agreement[m.name] = { cases: mine.length, top20Identical: same, maxAbsDelta: delta, mismatches };
      if (m.name === "session_gru") {
        let ref = 0;
        mine.forEach((s, i) => { if (topk(s, K).join() === gruRef.cases[i].top20.map((t) => t.index).join()) ref++; });
        agreement[m.name].top20IdenticalToPythonReference = ref;
      }
    }
    result.runtimes[id].agreementWith = base;
    result.runtimes[id].agreement = agreement;
  }
  result.resources = performance.getEntriesByType("resource").map((e) => ({ name: new URL(e.name).pathname, bytes: e.encodedBodySize }));
  report(result);
}

main().catch(fail);
