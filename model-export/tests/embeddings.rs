//! Visitor-tower bundles: `convert --split-head` and `convert --item-embeddings`, loaded by the
//! SDK, must recommend what the whole model does; bad embeddings are refused with the reason.

use std::path::Path;
use std::rc::Rc;

use foresight::client::Config;
use foresight::contract::bundle::Bundle;
use foresight::infer::model::RecommenderModel;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::{Explanation, RecommendOptions, Source};
use foresight::Client;
use npyz::WriterBuilder;
use serde_json::{json, Value};

mod common;
use common::{fixture, run, s};

fn convert(extra: &[&str], out: &Path) -> (i32, String, String) {
    let gru = fixture("session_gru.onnx");
    let catalog = fixture("catalog.json");
    let mut args = vec!["convert", s(&gru), "--kind", "recommender", "--catalog", s(&catalog), "--no-onnxruntime", "--out", s(out)];
    args.extend_from_slice(extra);
    run(&args)
}

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], values: &[T]) {
    let mut file = std::fs::File::create(path).expect("create npy");
    let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut file).begin_nd().expect("npy header");
    w.extend(values.iter().copied()).expect("npy data");
    w.finish().expect("npy finish");
}

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(fixture("session_gru.reference.json")).expect("reference")).expect("json");
    v["cases"].as_array().expect("cases").clone()
}

fn tower_model(bundle: &Path) -> RecommenderModel {
    let b = Bundle::parse(std::fs::read(bundle).expect("bundle"), None).expect("parses");
    let section = b.manifest.embeddings.clone().expect("an embeddings section");
    let items = foresight::infer::score::ItemMatrix::from_bundle(&section, &b).expect("item matrix");
    RecommenderModel::load_nnef_tower(b.model_bytes().expect("model"), items).expect("tower loads")
}

#[test]
fn split_head_bundle_recommends_what_the_whole_model_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tower.fsb");
    let (code, stdout, stderr) = convert(&["--split-head"], &out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("item embeddings: 5000 × 64 f32"), "{stdout}");
    let b = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("parses");
    let e = b.manifest.embeddings.clone().expect("embeddings");
    assert_eq!((e.rows, e.dims, e.dtype.as_str(), e.bias.as_deref()), (5000, 64, "f32", Some("item_bias")));
    assert_eq!(b.manifest.model.outputs[0].name, "hidden");
    let (code, shown, _) = run(&["inspect", s(&out)]);
    assert_eq!(code, 0);
    assert!(shown.contains("item embeddings: 5000 × 64 f32 in part items, bias in part item_bias"), "{shown}");

    // The model level: the reference scores of the whole GRU (onnxruntime), to 1e-4.
    let mut tower = tower_model(&out);
    let mut scores = Vec::new();
    for case in cases() {
        let indices: Vec<usize> = case["indices"].as_array().expect("indices").iter().map(|v| v.as_u64().expect("i") as usize).collect();
        tower.scores_into(&indices, &mut scores).expect("runs");
        let reference: Vec<f32> = case["scores"].as_array().expect("scores").iter().map(|v| v.as_f64().expect("f") as f32).collect();
        let delta = scores.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(delta <= 1e-4, "{}: max |Δ| {delta}", case["name"]);
    }

    // The client level: the same top-20 as the reference, explained by the history.
    let config: Config = serde_json::from_value(json!({})).expect("default config");
    let config = Config { bundles: vec![std::fs::read(&out).expect("bundle").into()], ..config };
    let clock = Rc::new(ManualClock::new(1.7e12));
    let (mut c, warnings) = Client::new(config, MemoryStorage::default(), clock.clone()).expect("client");
    assert!(warnings.is_empty(), "{warnings:?}");
    let case = cases().into_iter().find(|c| c["item_ids"].as_array().is_some_and(|a| a.len() >= 3)).expect("a case");
    let ids: Vec<String> = serde_json::from_value(case["item_ids"].clone()).expect("ids");
    for id in &ids {
        clock.advance_ms(20_000.0);
        c.track(&json!({"type": "product_view", "itemId": id})).expect("track");
    }
    let recs = c.recommend(&RecommendOptions { k: Some(20), exclude: vec![] }).expect("recommend");
    assert_eq!(recs.source, Source::Model);
    let got: Vec<&str> = recs.items.iter().map(|r| r.item_id.as_str()).collect();
    let expected: Vec<&str> = case["top20"].as_array().expect("top20").iter().map(|t| t["id"].as_str().expect("id")).collect();
    assert_eq!(got, expected);
    assert!(recs.items.iter().all(|r| matches!(&r.because, Explanation::RecentEvent { item_id, .. } if ids.contains(item_id))));
}

#[test]
fn npy_item_embeddings_score_like_the_split_head_and_f16_halves_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let onnx = std::fs::read(fixture("session_gru.onnx")).expect("onnx");
    let head = foresight::import::graph::scoring_head(&onnx, None).expect("the fixture ends in a scoring head");
    let (items, bias) = (dir.path().join("items.npy"), dir.path().join("bias.npy"));
    // As training code saves them: float64 rows and a float32 bias.
    let rows: Vec<f64> = head.item_rows().iter().map(|&v| v as f64).collect();
    write_npy(&items, &[head.items as u64, head.hidden as u64], &rows);
    write_npy(&bias, &[head.items as u64], head.bias.as_deref().expect("bias"));

    let split = dir.path().join("split.fsb");
    assert_eq!(convert(&["--split-head"], &split).0, 0);
    let from_npy = dir.path().join("npy.fsb");
    let (code, stdout, stderr) = convert(&["--output", "hidden", "--item-embeddings", s(&items), "--item-bias", s(&bias)], &from_npy);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let half = dir.path().join("f16.fsb");
    let (code, stdout, stderr) = convert(&["--split-head", "--embedding-dtype", "f16"], &half);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let (mut a, mut b, mut h) = (tower_model(&split), tower_model(&from_npy), tower_model(&half));
    let (mut sa, mut sb, mut sh) = (Vec::new(), Vec::new(), Vec::new());
    let mut agree = 0;
    let all = cases();
    for case in &all {
        let indices: Vec<usize> = case["indices"].as_array().expect("indices").iter().map(|v| v.as_u64().expect("i") as usize).collect();
        a.scores_into(&indices, &mut sa).expect("split");
        b.scores_into(&indices, &mut sb).expect("npy");
        h.scores_into(&indices, &mut sh).expect("f16");
        assert_eq!(sa, sb, "the same weights from a .npy give the same scores");
        let delta = sa.iter().zip(&sh).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(delta < 5e-3, "f16 embeddings move scores by {delta}");
        let top = |s: &[f32]| foresight::infer::topk::top_k(s, 10, &[]).into_iter().map(|p| p.0).collect::<Vec<_>>();
        agree += usize::from(top(&sa) == top(&sh));
    }
    assert!(agree * 10 >= all.len() * 8, "f16 kept the top-10 in {agree} of {} cases", all.len());
    let size = |p: &Path| std::fs::metadata(p).expect("size").len();
    assert!(size(&split) - size(&half) >= 5000 * 64 * 2 - 4096, "f16 saves two bytes per value");
}

#[test]
fn bad_embeddings_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.fsb");
    let short = dir.path().join("short.npy");
    write_npy(&short, &[4999, 64], &vec![0.5f32; 4999 * 64]);
    let (code, _, err) = convert(&["--output", "hidden", "--item-embeddings", s(&short)], &out);
    assert_ne!(code, 0);
    assert!(err.contains("4999 item embeddings but the catalog lists 5000"), "{err}");

    let narrow = dir.path().join("narrow.npy");
    write_npy(&narrow, &[5000, 32], &vec![0.5f32; 5000 * 32]);
    let (code, _, err) = convert(&["--output", "hidden", "--item-embeddings", s(&narrow)], &out);
    assert_ne!(code, 0);
    assert!(err.contains("is a vector of 64 but the item embeddings have 32 dims"), "{err}");

    let ints = dir.path().join("ints.npy");
    write_npy(&ints, &[5000, 64], &vec![1i32; 5000 * 64]);
    let (code, _, err) = convert(&["--output", "hidden", "--item-embeddings", s(&ints)], &out);
    assert_ne!(code, 0);
    assert!(err.contains("dtype `i4`"), "{err}");

    let huge = dir.path().join("huge.npy");
    write_npy(&huge, &[5000, 64], &vec![1e6f32; 5000 * 64]);
    let (code, _, err) = convert(&["--output", "hidden", "--item-embeddings", s(&huge), "--embedding-dtype", "f16"], &out);
    assert_ne!(code, 0);
    assert!(err.contains("±65504"), "{err}");

    let fine = dir.path().join("fine.npy");
    write_npy(&fine, &[5000, 64], &vec![0.5f32; 5000 * 64]);
    let (code, _, err) = convert(&["--output", "no_such_tensor", "--item-embeddings", s(&fine)], &out);
    assert_ne!(code, 0);
    assert!(err.contains("no_such_tensor"), "{err}");

    let intent = fixture("intent_logreg.onnx");
    let (code, _, err) = run(&["convert", s(&intent), "--kind", "intent", "--split-head", "--no-onnxruntime", "--out", s(&out)]);
    assert_ne!(code, 0);
    assert!(err.contains("item embeddings are for recommenders"), "{err}");
    assert!(!out.exists(), "no bundle is written on error");
}

/// `--output` naming an intermediate tensor: onnxruntime returns only graph outputs, so the
/// converter exposes it as one and still compares with onnxruntime (`make test` installs it).
#[test]
fn an_intermediate_output_is_compared_with_onnxruntime_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let onnx = std::fs::read(fixture("session_gru.onnx")).expect("fixture");
    let head = foresight::import::graph::scoring_head(&onnx, None).expect("the fixture ends in a scoring head");
    let items = dir.path().join("items.npy");
    write_npy(&items, &[head.items as u64, head.hidden as u64], &head.item_rows());
    let out = dir.path().join("tower.fsb");
    let (gru, catalog) = (fixture("session_gru.onnx"), fixture("catalog.json"));
    let (code, stdout, stderr) = run(&[
        "convert",
        s(&gru),
        "--kind",
        "recommender",
        "--catalog",
        s(&catalog),
        "--output",
        "hidden",
        "--item-embeddings",
        s(&items),
        "--json",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
    let parity = summary["parity"].as_array().expect("parity");
    let ort = parity.iter().find(|p| p["reference"].as_str().is_some_and(|r| r.starts_with("onnxruntime"))).unwrap_or_else(|| {
        panic!("no onnxruntime comparison (is onnxruntime installed for python3? scripts/setup.sh installs it): {summary}")
    });
    assert!(ort["maxAbsDelta"].as_f64().expect("delta") < 1e-4, "{ort}");
}
