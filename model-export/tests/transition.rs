//! The model `foresight-export train` writes converts to the SDK's own `transition` kernel by
//! default (no tract download in the browser), with parity against tract on the original graph.

mod common;

use std::path::{Path, PathBuf};

use common::{run, s, Lcg};
use foresight::contract::bundle::Bundle;
use foresight::contract::manifest::ModelFormat;
use foresight::infer::model::{RecommenderIo, RecommenderModel};
use serde_json::Value;

const ITEMS: u64 = 120;

/// 600 users over 120 items; item k is followed by k+1 or k+2 most of the time, popular items
/// (low k) more often at random.
fn planted_csv(dir: &Path) -> PathBuf {
    let mut rng = Lcg(11);
    let mut text = String::from("user_id,item_id,timestamp\n");
    for user in 0..600 {
        let mut k = rng.below(ITEMS);
        let mut t = 1_700_000_000u64;
        for _ in 0..5 + rng.below(20) {
            text.push_str(&format!("u{user},item-{k:03},{t}\n"));
            t += 1 + rng.below(600);
            k = match rng.below(10) {
                0..=5 => (k + 1) % ITEMS,
                6 | 7 => (k + 2) % ITEMS,
                _ => rng.below(ITEMS).min(rng.below(ITEMS)),
            };
        }
    }
    let path = dir.join("planted.csv");
    std::fs::write(&path, text).expect("write");
    path
}

fn top(scores: &[f32], k: usize) -> Vec<usize> {
    foresight::infer::topk::top_k(scores, k, &[]).into_iter().map(|(i, _)| i).collect()
}

#[test]
fn trained_models_convert_to_the_transition_kernel_with_parity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, catalog, out) = (dir.path().join("model.onnx"), dir.path().join("catalog.json"), dir.path().join("model.fsb"));
    let data = planted_csv(dir.path());
    let (code, _, err) =
        run(&["train", "--interactions", s(&data), "--out-model", s(&model), "--out-catalog", s(&catalog), "--dim", "16", "--quiet"]);
    assert_eq!(code, 0, "{err}");

    // Default arguments: the recogniser picks `transition`.
    let (code, stdout, err) = run(&["convert", s(&model), "--catalog", s(&catalog), "--json", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("json summary");
    let parity = summary["parity"].as_array().expect("parity");
    assert!(parity.iter().any(|p| p["reference"].as_str().is_some_and(|r| r.contains("tract"))), "{summary}");
    for p in parity {
        assert!(p["maxAbsDelta"].as_f64().expect("delta") <= 1e-4, "{summary}");
        assert_eq!(p["topKAgreement"].as_f64(), Some(1.0), "{summary}");
    }
    assert!(summary.to_string().contains("format transition"), "the note says so: {summary}");
    eprintln!("parity: {}", Value::Array(parity.clone()));

    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid bundle");
    assert_eq!(bundle.manifest.model.format, ModelFormat::Transition);
    let spec = bundle.manifest.transition.clone().expect("a transition section");
    assert_eq!((spec.items, spec.dim, spec.recency_weights.len()), (ITEMS as usize, 16, 8));
    let (code, text, _) = run(&["inspect", s(&out)]);
    assert_eq!(code, 0);
    assert!(text.contains("windowed transitions on the SDK's kernels: dim 16, a window of 8"), "{text}");
    let (code, _, err) = run(&["verify", s(&out)]);
    assert_eq!(code, 0, "{err}");

    // The bundle's kernel against tract on the original graph: top-20 identical, scores close.
    let n = bundle.manifest.items.len();
    let mut kernel = RecommenderModel::from_kernel_bundle(&bundle.manifest, bundle.model_bytes().expect("model")).expect("loads");
    assert!(!kernel.incremental() && kernel.advance(&[1]).is_err());
    let mut tract = RecommenderModel::load(&std::fs::read(&model).expect("onnx"), &RecommenderIo::default(), n).expect("tract");
    let mut rng = Lcg(3);
    let mut worst = 0f32;
    for len in [1, 2, 7, 8, 9, 20, 50] {
        let seq: Vec<usize> = (0..len).map(|_| rng.below(ITEMS) as usize).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        kernel.scores_into(&seq, &mut a).expect("kernel runs");
        tract.scores_into(&seq, &mut b).expect("tract runs");
        assert_eq!(a.len(), n);
        worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        assert_eq!(top(&a, 20), top(&b, 20), "length {len}");
        // The exact i16 top-k through the head gives the same picks.
        let t = kernel.transition().expect("a transition model");
        let mut picks = Vec::new();
        t.head().top_k_into(&t.query(&seq).expect("query"), 20, &[], &mut Default::default(), &mut picks);
        assert_eq!(picks.iter().map(|p| p.0).collect::<Vec<_>>(), top(&a, 20), "length {len}");
        let mut stateless = Vec::new();
        kernel.scores_stateless_into(&seq, &mut stateless).expect("runs");
        assert_eq!(stateless, a);
        let mut some = Vec::new();
        kernel.scores_of(&seq, &[0, 5, 119], &mut some).expect("runs");
        assert_eq!(some, [a[0], a[5], a[119]]);
    }
    eprintln!("kernel vs tract, max |Δ| over 7 sequences: {worst:.2e}");
    assert!(worst <= 1e-4, "{worst}");
    assert!(kernel.scores_into(&[n], &mut Vec::new()).is_err());

    // Explicitly asked for, a model that is not one fails with the reason.
    let gru = common::fixture("session_gru.onnx");
    let (code, _, err) = run(&[
        "convert",
        s(&gru),
        "--kind",
        "recommender",
        "--catalog",
        s(&common::fixture("catalog.json")),
        "--format",
        "transition",
        "--out",
        s(&dir.path().join("x.fsb")),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--format transition: "), "{err}");
}

/// 300 shoppers over 60 days; each has three staples and buys two of them, plus a random item,
/// in every basket (a basket a day, every few days): a shop where what you bought is what you
/// buy next.
fn staples_csv(dir: &Path) -> PathBuf {
    let mut rng = Lcg(5);
    let mut text = String::from("user_id,item_id,timestamp\n");
    for user in 0..300 {
        let staples: Vec<u64> = (0..3).map(|_| rng.below(ITEMS)).collect();
        let mut day = rng.below(4);
        while day < 60 {
            let basket = [staples[rng.below(3) as usize], rng.below(ITEMS), staples[rng.below(3) as usize]];
            for (second, item) in basket.into_iter().enumerate() {
                text.push_str(&format!("u{user},item-{item:03},{}\n", 1_700_000_000 + day * 86_400 + second as u64));
            }
            day += 1 + rng.below(5);
        }
    }
    let path = dir.join("staples.csv");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn a_shop_with_repeat_purchases_gets_the_repeat_term_on_the_kernel_with_parity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, catalog, out) = (dir.path().join("model.onnx"), dir.path().join("catalog.json"), dir.path().join("model.fsb"));
    let data = staples_csv(dir.path());
    let (code, stdout, err) = run(&[
        "train",
        "--interactions",
        s(&data),
        "--out-model",
        s(&model),
        "--out-catalog",
        s(&catalog),
        "--dim",
        "16",
        "--test-days",
        "5",
        "--json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert!(report["model"]["repeat_weight"].as_f64().expect("repeat weight") > 0.0, "{}", report["model"]);
    let rows = report["evaluation"]["models"].as_array().expect("models");
    let ndcg = |name: &str| rows.iter().find(|r| r["model"].as_str().is_some_and(|m| m.starts_with(name))).expect(name)["ndcg@10"].as_f64();
    // Staples dominate the targets: with the term the model beats every baseline.
    for baseline in ["popularity", "markov", "item-knn", "sknn", "v-sknn"] {
        assert!(ndcg("transition-svd") > ndcg(baseline), "{baseline}: {rows:?}");
    }

    let (code, stdout, err) = run(&["convert", s(&model), "--catalog", s(&catalog), "--json", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("json summary");
    assert!(summary.to_string().contains("a repeat term over the last 50 items"), "{summary}");
    for p in summary["parity"].as_array().expect("parity") {
        assert!(p["maxAbsDelta"].as_f64().expect("delta") <= 1e-4, "{summary}");
        assert_eq!(p["topKAgreement"].as_f64(), Some(1.0), "{summary}");
    }
    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid bundle");
    assert_eq!(bundle.manifest.model.format, ModelFormat::Transition);
    let spec = bundle.manifest.transition.clone().expect("a transition section");
    assert_eq!(spec.repeat_weights.len(), 50);
    assert!(spec.repeat_weights.windows(2).all(|w| w[0] <= w[1]), "the newest weighs most: {:?}", spec.repeat_weights);
    let (code, text, _) = run(&["inspect", s(&out)]);
    assert_eq!(code, 0);
    assert!(text.contains("repeat term: the last 50 items"), "{text}");

    // Kernel against tract on the original graph, inputs shorter and longer than the window;
    // an item the visitor had gains on the kernel exactly what it gains in the graph.
    let n = bundle.manifest.items.len();
    let mut kernel = RecommenderModel::from_kernel_bundle(&bundle.manifest, bundle.model_bytes().expect("model")).expect("loads");
    let mut tract = RecommenderModel::load(&std::fs::read(&model).expect("onnx"), &RecommenderIo::default(), n).expect("tract");
    let mut rng = Lcg(9);
    for len in [1, 3, 49, 50, 51, 80] {
        let seq: Vec<usize> = (0..len).map(|_| rng.below(ITEMS) as usize).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        kernel.scores_into(&seq, &mut a).expect("kernel runs");
        tract.scores_into(&seq, &mut b).expect("tract runs");
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "length {len}: {worst}");
        assert_eq!(top(&a, 20), top(&b, 20), "length {len}");
    }
}
