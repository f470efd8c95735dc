//! The SDK's GRU kernels and incremental session state against tract running the original ONNX
//! graph, over thousands of random sessions.
#![cfg(not(target_arch = "wasm32"))]

use foresight::infer::gru::SessionState;
use foresight::infer::model::{RecommenderIo, RecommenderModel};
use foresight::infer::topk::top_k;
use foresight::platform::{Randomness, SeededRandomness};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn max_delta(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn ids(v: &[(usize, f32)]) -> Vec<usize> {
    v.iter().map(|p| p.0).collect()
}

/// Top-k agreement that tolerates only genuine near-ties (scores within 1e-5) swapping places.
fn same_top_k(a: &[f32], b: &[f32], k: usize) -> bool {
    let none = vec![false; a.len()];
    let (ta, tb) = (top_k(a, k, &none), top_k(b, k, &none));
    ids(&ta) == ids(&tb) || ta.iter().zip(&tb).all(|(x, y)| x.0 == y.0 || (a[x.0] - a[y.0]).abs() < 1e-5)
}

#[test]
fn recognised_graphs_match_tract_on_random_sessions() {
    for (name, lbr) in [("session_gru.onnx", false), ("torch/gru_legacy.onnx", true)] {
        let bytes = read(name);
        let g = foresight::import::gru::from_onnx(&bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(g.spec.linear_before_reset, lbr, "{name}");
        let n = g.spec.items;
        let mut tract = RecommenderModel::load(&bytes, &RecommenderIo::default(), n).expect("tract loads it");
        let mut ours = RecommenderModel::from_gru(g);
        let mut rng = SeededRandomness(17);
        let (mut worst, mut disagreements) = (0f32, 0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for case in 0..1500 {
            let len = 1 + rng.below(if case % 10 == 0 { 200 } else { 50 }) as usize;
            let seq: Vec<usize> = (0..len).map(|_| rng.below(n as u64) as usize).collect();
            tract.scores_into(&seq, &mut a).expect("tract runs");
            ours.scores_stateless_into(&seq, &mut b).expect("kernels run");
            worst = worst.max(max_delta(&a, &b));
            disagreements += usize::from(!same_top_k(&a, &b, 20.min(n)));
        }
        println!("{name}: max |Δ| {worst:.2e} over 1,500 sessions");
        assert!(worst <= 1e-4, "{name}: max |Δ| {worst}");
        assert_eq!(disagreements, 0, "{name}: top-20 differs");
    }
}

#[test]
fn incremental_state_equals_the_whole_sequence_and_survives_a_reload() {
    let bytes = read("session_gru.onnx");
    let g = foresight::import::gru::from_onnx(&bytes, None).expect("recognised");
    let n = g.spec.items;
    let mut rng = SeededRandomness(5);
    let (mut whole, mut inc) = (Vec::new(), Vec::new());
    let mut worst = 0f32;
    for _ in 0..2000 {
        // A session growing one event at a time, sometimes erased and started over.
        let mut state = SessionState::default();
        let mut seq = Vec::new();
        for _ in 0..1 + rng.below(40) {
            if rng.below(30) == 0 {
                let was = seq.clone();
                seq.clear();
                seq.push(rng.below(n as u64) as usize);
                state.advance(&g, &seq).expect("advance");
                let prefix = was.len() <= 1 && was.first().is_none_or(|&i| i == seq[0]);
                assert_eq!(state.last_rebuilt, !prefix, "an erased history starts over");
                continue;
            }
            seq.push(rng.below(n as u64) as usize);
            let h = state.advance(&g, &seq).expect("advance").to_vec();
            assert!(state.last_steps <= 1 || state.last_rebuilt, "one step per new event");
            // The state itself at every event; the scores (the same head on it) now and then.
            worst = worst.max(max_delta(&h, &g.state_after(&seq).expect("whole")));
            if seq.len() % 8 == 0 {
                g.head_into(&h, &mut inc);
                g.scores_into(&seq, &mut whole).expect("whole");
                worst = worst.max(max_delta(&inc, &whole));
            }
        }
        // A reload: the snapshot restores the same state; a stale one is refused.
        let snap = state.snapshot().expect("snapshot");
        let mut reloaded = SessionState::default();
        assert!(reloaded.restore(&snap, &seq, g.hidden_size()));
        assert_eq!(reloaded.hidden(), state.hidden());
        let mut other = seq.clone();
        other[0] = (other[0] + 1) % n;
        assert!(!SessionState::default().restore(&snap, &other, g.hidden_size()));
        // Occlusion of a recent item from the kept states: bounded work, and equal to
        // recomputing without it when it is not also older than the kept states.
        let recent = seq[seq.len() - 1];
        let kept_from = seq.len().saturating_sub(15);
        if !seq[..kept_from].contains(&recent) {
            let without: Vec<usize> = seq.iter().copied().filter(|&i| i != recent).collect();
            let got = state.without_recent(&g, recent).expect("without recent");
            let expected = if without.is_empty() { g.zero_state() } else { g.state_after(&without).expect("state") };
            assert!(max_delta(&got, &expected) <= 1e-5);
        }
        // Occlusion from the kept states equals recomputing without the item.
        let probe = seq[seq.len() / 2];
        let without: Vec<usize> = seq.iter().copied().filter(|&i| i != probe).collect();
        let occluded = state.without(&g, probe).expect("without");
        if !without.is_empty() {
            let expected = g.state_after(&without).expect("state");
            assert!(max_delta(&occluded, &expected) <= 1e-5);
        }
    }
    println!("incremental vs whole: max |Δ| {worst:.2e} over 2,000 sessions");
    assert!(worst <= 1e-4);
}

#[test]
fn unrecognised_graphs_say_why() {
    let err = foresight::import::gru::from_onnx(&read("intent_logreg.onnx"), None).expect_err("not a GRU recommender");
    assert!(err.contains("scoring head") || err.contains("MatMul"), "{err}");
    let err = foresight::import::gru::from_onnx(b"not a protobuf at all", None).expect_err("garbage");
    assert!(err.contains("not an ONNX protobuf") || err.contains("no graph"), "{err}");
}

/// The client on the committed GRU bundle (format `gru`): the same lists and explanations as
/// tract on the ONNX file for every reference session, event by event, and after a reload the
/// stored state is used, not rebuilt.
#[test]
fn the_client_on_a_gru_bundle_recommends_like_the_onnx_graph() {
    use foresight::client::{Config, RecommenderConfig};
    use foresight::platform::{ManualClock, MemoryStorage, Storage};
    use foresight::recommend::{CatalogItem, RecommendOptions};
    use foresight::Client;
    use std::rc::Rc;

    let reference: serde_json::Value = serde_json::from_slice(&read("session_gru.reference.json")).expect("reference");
    let catalog: serde_json::Value = serde_json::from_slice(&read("catalog.json")).expect("catalog");
    let catalog: Vec<CatalogItem> = serde_json::from_value(catalog["items"].clone()).expect("catalog");
    let public_key = String::from_utf8(read("bundles/test-signing.pub")).expect("key");
    let bundle_config = || Config {
        bundles: vec![serde_bytes::ByteBuf::from(read("bundles/session_gru.fsb"))],
        public_key: Some(public_key.trim().to_owned()),
        ..Config::default()
    };
    let onnx_config =
        || Config { catalog: catalog.clone(), recommender: Some(RecommenderConfig::new(read("session_gru.onnx"))), ..Config::default() };
    let options = RecommendOptions { k: Some(20), ..Default::default() };
    for case in reference["cases"].as_array().expect("cases") {
        let ids: Vec<String> = serde_json::from_value(case["item_ids"].clone()).expect("ids");
        let clock = Rc::new(ManualClock::new(1.7e12));
        let (mut gru, _) = Client::new(bundle_config(), MemoryStorage::default(), clock.clone()).expect("bundle loads");
        let (mut tract, _) = Client::new(onnx_config(), MemoryStorage::default(), clock.clone()).expect("onnx loads");
        for id in &ids {
            clock.advance_ms(10_000.0);
            let event = serde_json::json!({"type": "product_view", "itemId": id});
            gru.track(&event).expect("event");
            tract.track(&event).expect("event");
            let (a, b) = (gru.recommend(&options).expect("gru"), tract.recommend(&options).expect("tract"));
            let pairs: Vec<(&str, &str)> = a.items.iter().zip(&b.items).map(|(x, y)| (x.item_id.as_str(), y.item_id.as_str())).collect();
            assert!(pairs.iter().all(|(x, y)| x == y), "{}: {pairs:?}", case["name"]);
            for (x, y) in a.items.iter().zip(&b.items) {
                assert!((x.score - y.score).abs() <= 1e-4);
                assert_eq!(x.because, y.because, "{}: same explanation for {}", case["name"], x.item_id);
            }
        }
        let want: Vec<String> = case["top20"].as_array().expect("top20").iter().map(|r| r["id"].as_str().expect("id").to_owned()).collect();
        let got: Vec<String> = gru.recommend(&options).expect("recs").items.into_iter().map(|r| r.item_id).collect();
        // The reference feeds the sequence as given; the SDK collapses back-to-back repeats.
        if !ids.windows(2).any(|w| w[0] == w[1]) {
            assert_eq!(got, want, "{}", case["name"]);
        }
        // Reload: the stored state is this history's, so nothing is recomputed.
        let storage = gru.into_storage();
        assert!(storage.get("foresight.events.state").expect("readable").is_some());
        let (mut again, _) = Client::new(bundle_config(), storage, clock.clone()).expect("reload");
        let after: Vec<String> = again.recommend(&options).expect("recs").items.into_iter().map(|r| r.item_id).collect();
        assert_eq!(after, got);
        assert_eq!(again.session_steps(), Some((0, false)), "restored, not rebuilt");
    }
}

/// The i16 head's top-k (`LinearHead::top_k_into`) is bit-for-bit the exact head's, on real GRU
/// states of thousands of random sessions and on adversarial ones, masks included — while
/// rescoring only a small share of the catalog.
#[test]
fn quantized_head_top_k_is_the_exact_top_k() {
    for name in ["session_gru.onnx", "torch/gru_legacy.onnx"] {
        let g = foresight::import::gru::from_onnx(&read(name), None).expect("recognised");
        let n = g.spec.items;
        let mut rng = SeededRandomness(23);
        let (mut scores, mut scratch, mut got) = (Vec::new(), foresight::infer::head::TopKScratch::default(), Vec::new());
        let mut rescored_total = 0;
        let mut runs = 0;
        for case in 0..2000 {
            let len = 1 + rng.below(60) as usize;
            let seq: Vec<usize> = (0..len).map(|_| rng.below(n as u64) as usize).collect();
            let mut h = g.state_after(&seq).expect("state");
            match case % 50 {
                // Adversarial states: all zero (every score is its bias), one unit saturated,
                // tiny values near the subnormals.
                0 => h.iter_mut().for_each(|x| *x = 0.0),
                1 => h.iter_mut().enumerate().for_each(|(i, x)| *x = if i == 3 { 1.0 } else { 0.0 }),
                2 => h.iter_mut().for_each(|x| *x *= 1e-30),
                _ => {}
            }
            let excluded: Vec<bool> = (0..n).map(|j| case % 3 == 0 && (j + case) % 11 == 0).collect();
            g.head_into(&h, &mut scores);
            for k in [1, 20, 100] {
                let want = top_k(&scores, k, &excluded);
                let rescored = g.head().top_k_into(&h, k, &excluded, &mut scratch, &mut got);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!(a.0 == b.0 && a.1.to_bits() == b.1.to_bits(), "{name}, case {case}, k {k}: {got:?} vs {want:?}");
                }
                if k == 20 {
                    rescored_total += rescored;
                    runs += 1;
                }
            }
        }
        let mean = rescored_total as f64 / runs as f64;
        println!("{name}: {mean:.1} of {n} items rescored per top-20 on average");
        if n >= 1000 {
            assert!(mean < 60.0, "{name}: the bound lets {mean} of {n} items through");
        }
    }
}
