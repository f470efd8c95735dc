//! The SDK's attention kernels and key/value cache against tract running the original ONNX graph
//! (`bench/models/sasrec_5000.onnx`: 2 pre-LN blocks, 2 heads, exact GELU, tied head), over
//! thousands of random sessions.
#![cfg(not(target_arch = "wasm32"))]

use foresight::contract::manifest::Activation;
use foresight::infer::attention::KvCache;
use foresight::infer::model::{RecommenderIo, RecommenderModel};
use foresight::infer::topk::top_k;
use foresight::platform::{Randomness, SeededRandomness};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn max_delta(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn top(scores: &[f32], k: usize) -> Vec<usize> {
    top_k(scores, k, &vec![false; scores.len()]).iter().map(|p| p.0).collect()
}

fn session(rng: &mut SeededRandomness, items: usize, max: usize) -> Vec<usize> {
    let len = 1 + rng.below(max as u64) as usize;
    (0..len).map(|_| rng.below(items as u64) as usize).collect()
}

#[test]
fn recognised_sasrec_matches_tract_on_random_sessions() {
    let bytes = read("bench/models/sasrec_5000.onnx");
    let m = foresight::import::attention::from_onnx(&bytes, None).unwrap_or_else(|e| panic!("not recognised: {e}"));
    let s = &m.spec;
    assert_eq!((s.items, s.embedding_rows, s.dim, s.heads, s.blocks, s.ffn, s.positions), (5000, 5001, 64, 2, 2, 128, 50));
    assert_eq!(s.activation, Activation::GeluErf);
    assert!((s.embedding_scale - 8.0).abs() < 1e-6 && (s.attention_scale - 32f32.powf(-0.5)).abs() < 1e-6, "{s:?}");
    let mut tract = RecommenderModel::load(&bytes, &RecommenderIo::default(), s.items).expect("tract loads it");
    let ours = RecommenderModel::from_attention(m.clone());
    let mut rng = SeededRandomness(23);
    let (mut worst, mut a, mut b) = (0f32, Vec::new(), Vec::new());
    for _ in 0..400 {
        let seq = session(&mut rng, s.items, s.positions);
        tract.scores_into(&seq, &mut a).expect("tract runs");
        m.scores_into(&seq, &mut b).expect("kernels run");
        worst = worst.max(max_delta(&a, &b));
        assert_eq!(top(&a, 20), top(&b, 20), "top-20 differs for {seq:?}");
    }
    println!("sasrec: max |Δ| vs tract {worst:.2e} over 400 sessions");
    assert!(worst <= 1e-4, "max |Δ| {worst}");
    // Through the engine, and refusing what the graph cannot read either.
    let mut ours = ours;
    ours.scores_into(&[1, 2, 3], &mut b).expect("engine runs");
    let long: Vec<usize> = (0..51).collect();
    let err = ours.scores_into(&long, &mut b).expect_err("51 items > 50 positions").to_string();
    assert!(err.contains("positions stop at 50"), "{err}");
    let err = ours.scores_into(&[5001], &mut b).expect_err("outside the table").to_string();
    assert!(err.contains("outside the embedding table"), "{err}");
    // Erasing the visitor (`forget`) drops the cache with the history.
    ours.scores_into(&[4, 5, 6], &mut b).expect("engine runs");
    assert_eq!(ours.consumed(), &[4, 5, 6]);
    ours.reset_state();
    assert!(ours.consumed().is_empty());
    ours.state_scores_into(&mut b).expect_err("no state after the reset");
}

/// Incremental (one position per event, any shared prefix reused) equals the whole sequence
/// bit for bit, over thousands of random sessions: extensions, prefixes, one item left out
/// (explanations), unrelated histories and repeats. A cache rebuilt from the stored history
/// (after a reload) equals the one built event by event.
#[test]
fn the_cache_equals_the_whole_sequence() {
    let m = foresight::import::attention::from_onnx(&read("bench/models/sasrec_5000.onnx"), None).expect("recognised");
    let n = m.spec.items;
    let mut rng = SeededRandomness(5);
    let mut cache = KvCache::default();
    let (mut whole, mut inc) = (Vec::new(), Vec::new());
    let mut history: Vec<usize> = Vec::new();
    let mut steps = [0usize; 2];
    for case in 0..3000 {
        let query: Vec<usize> = match case % 6 {
            // A new event (the common case); a fresh session once the window is full.
            0..=2 => {
                if history.len() == m.spec.positions {
                    history.clear();
                }
                history.push(rng.below(n as u64) as usize);
                history.clone()
            }
            // One of the last five left out, as explanations ask.
            3 => {
                let mut q = history.clone();
                if q.len() > 1 {
                    q.remove(q.len() - 1 - rng.below(5.min(q.len() as u64 - 1)) as usize);
                }
                q
            }
            4 => history[..1 + rng.below(history.len() as u64) as usize].to_vec(),
            _ => session(&mut rng, n, m.spec.positions),
        };
        let h = cache.advance(&m, &query).expect("advances").to_vec();
        m.head().scores_into(&h, &mut inc);
        m.scores_into(&query, &mut whole).expect("whole runs");
        assert_eq!(inc, whole, "case {case}: {query:?}");
        // A new event after the previous one costs one position; leaving out one of the last
        // five recomputes only the positions from it on.
        match case % 6 {
            1 | 2 => {
                assert_eq!(cache.last_steps, 1, "case {case}");
                steps[0] += 1;
            }
            3 => {
                assert!(cache.last_steps <= 5, "case {case}: {} positions", cache.last_steps);
                steps[1] += 1;
            }
            _ => {}
        }
    }
    assert_eq!(steps, [1000, 500]);
    // Rebuilt from the stored history, as after a reload.
    let mut reloaded = KvCache::default();
    let again = reloaded.advance(&m, cache.consumed()).expect("rebuilt").to_vec();
    assert_eq!(again, cache.hidden().expect("state"));
    assert_eq!(reloaded.last_steps, cache.consumed().len());
    // Asking again costs nothing.
    cache.advance(&m, &history).expect("advances");
    cache.advance(&m, &history).expect("advances");
    assert_eq!(cache.last_steps, 0);
}

#[test]
fn the_i16_top_k_equals_the_exact_head() {
    let m = foresight::import::attention::from_onnx(&read("bench/models/sasrec_5000.onnx"), None).expect("recognised");
    let mut rng = SeededRandomness(9);
    let (mut cache, mut scores) = (KvCache::default(), Vec::new());
    let (mut scratch, mut got) = (foresight::infer::head::TopKScratch::default(), Vec::new());
    for _ in 0..300 {
        let seq = session(&mut rng, m.spec.items, m.spec.positions);
        let h = cache.advance(&m, &seq).expect("advances").to_vec();
        m.head().scores_into(&h, &mut scores);
        let mut excluded = vec![false; m.spec.items];
        seq.iter().for_each(|&i| excluded[i] = true);
        let want = top_k(&scores, 20, &excluded);
        let rescored = m.head().top_k_into(&h, 20, &excluded, &mut scratch, &mut got);
        assert_eq!(got, want);
        assert!(rescored < 500, "{rescored} of 5,000 rescored");
    }
}

#[test]
fn other_graphs_are_refused_with_a_reason() {
    for (path, why) in [
        ("tests/fixtures/session_gru.onnx", "not the last position"),
        ("tests/fixtures/torch/mha_legacy_fixed_seq.onnx", "not LayerNormalization"),
        ("tests/fixtures/intent_logreg.onnx", "not a MatMul/Gemm scoring head"),
    ] {
        let err = foresight::import::attention::from_onnx(&read(path), None).err().unwrap_or_else(|| panic!("{path} recognised"));
        println!("{path}: {err}");
        assert!(err.contains(why), "{path}: {err}");
    }
    assert!(foresight::import::attention::from_onnx(b"not a protobuf", None).is_err());
}
