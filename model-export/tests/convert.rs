//! `convert` → bundle → SDK, and every refusal, through the real binary and real files.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use foresight::client::Config;
use foresight::contract::bundle::Bundle;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::{RecommendOptions, Source};
use foresight::Client;
use serde_json::{json, Value};

mod common;
use common::{fixture, run, s};

fn catalog_of(n: usize, dir: &Path) -> PathBuf {
    let path = dir.join(format!("catalog{n}.csv"));
    let mut text = String::from("id,category,price,popularity\n");
    for i in 0..n {
        text.push_str(&format!("item-{i},c{},{}.5,{}\n", i % 4, i + 1, 100 - i % 100));
    }
    std::fs::write(&path, text).expect("write catalog");
    path
}

#[test]
fn committed_bundles_are_reproduced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = fixture("bundles/test-signing.key");
    for (model, kind, bundle, extra) in [
        ("session_gru.onnx", "recommender", "session_gru.fsb", &[][..]),
        ("intent_logreg.onnx", "intent", "intent_logreg.fsb", &[]),
        ("session_gru.onnx", "recommender", "session_tower.fsb", &["--split-head", "--embedding-dtype", "f16"]),
    ] {
        let out = dir.path().join(bundle);
        let catalog = fixture("catalog.json");
        let mut args = vec!["convert", s(&fixture(model)), "--kind", kind, "--signing-key", s(&key), "--no-onnxruntime", "--out", s(&out)]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<String>>();
        if kind == "recommender" {
            args.extend(["--catalog".to_owned(), s(&catalog).to_owned()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        let committed = std::fs::read(fixture(&format!("bundles/{bundle}"))).expect("committed bundle");
        let written = std::fs::read(&out).expect("written");
        if written != committed {
            // The measured parity depends on the CPU tract's kernels pick (FMA, vector width):
            // everything else — parts, their hashes, the rest of the manifest — must match.
            let without_parity = |bytes: Vec<u8>| {
                let mut b = Bundle::parse(bytes, None).expect("valid bundle");
                b.manifest.parity.clear();
                b.manifest
            };
            assert_eq!(
                without_parity(written),
                without_parity(committed),
                "{model}: run tests/fixtures/bundles/make_bundles.sh to refresh the committed bundle"
            );
        }
    }
}

#[test]
fn sdk_loads_the_signed_bundles_and_matches_onnxruntime() {
    let key = std::fs::read_to_string(fixture("bundles/test-signing.pub")).expect("key");
    let config = Config {
        bundles: vec![
            std::fs::read(fixture("bundles/session_gru.fsb")).expect("gru").into(),
            std::fs::read(fixture("bundles/intent_logreg.fsb")).expect("intent").into(),
        ],
        public_key: Some(key.trim().to_owned()),
        ..Config::default()
    };
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (mut client, warnings) = Client::new(config, MemoryStorage::default(), clock.clone()).expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let reference: Value = serde_json::from_slice(&std::fs::read(fixture("session_gru.reference.json")).expect("ref")).expect("json");
    let case = &reference["cases"][2];
    for id in case["item_ids"].as_array().expect("ids") {
        clock.advance_ms(10_000.0);
        client.track(&json!({"type": "product_view", "itemId": id})).expect("track");
    }
    let recs = client.recommend(&RecommendOptions { k: Some(20), exclude: vec![] }).expect("recommend");
    assert_eq!(recs.source, Source::Model);
    for (r, t) in recs.items.iter().zip(case["top20"].as_array().expect("top20")) {
        assert_eq!(r.item_id, t["id"].as_str().expect("id"));
        assert!((r.score as f64 - t["score"].as_f64().expect("score")).abs() <= 1e-4);
    }
    let p = client.intent().expect("intent from the bundle").probability;
    assert!((0.0..=1.0).contains(&p));
}

#[test]
fn pytorch_exports_convert_or_fail_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog_of(50, dir.path());
    let out = dir.path().join("out.fsb");
    let convert = |model: &str| {
        run(&[
            "convert",
            s(&fixture(&format!("torch/{model}"))),
            "--kind",
            "recommender",
            "--catalog",
            s(&catalog),
            "--out",
            s(&out),
            "--json",
        ])
    };

    let (code, _, err) = convert("embedding_bag.onnx");
    assert_eq!(code, 2);
    assert!(err.contains("Loop") && err.contains("/bag/Loop") && err.contains("nn.Embedding"), "{err}");

    let (code, _, err) = convert("mha_legacy_fixed_seq.onnx");
    assert_eq!(code, 2);
    assert!(err.contains("Reshape") && err.contains("dynamo"), "{err}");

    // Both exporters, the dynamo one with external weights (.onnx.data), and every format; the
    // default (auto) recognises both as GRU recommenders for the SDK's own kernels.
    for model in ["gru_legacy.onnx", "gru_dynamo.onnx"] {
        let (code, stdout, err) = convert(model);
        assert_eq!(code, 0, "{model}: {err}");
        let summary: Value = serde_json::from_str(&stdout).expect("json summary");
        assert_eq!(summary["format"], "gru", "{model}: {summary}");
        for format in ["nnef", "onnx", "gru"] {
            let (code, stdout, err) = run(&[
                "convert",
                s(&fixture(&format!("torch/{model}"))),
                "--kind",
                "recommender",
                "--catalog",
                s(&catalog),
                "--out",
                s(&out),
                "--format",
                format,
                "--json",
            ]);
            assert_eq!(code, 0, "{model} {format}: {err}");
            let summary: Value = serde_json::from_str(&stdout).expect("json summary");
            // tract against itself is exact; the SDK's kernels sum in another order.
            let tolerance = if format == "gru" { 1e-5 } else { 0.0 };
            assert!(summary["parity"][0]["maxAbsDelta"].as_f64().expect("delta") <= tolerance, "{summary}");
            let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid bundle");
            let reference: Value = serde_json::from_slice(
                &std::fs::read(fixture(&format!("torch/{}", model.replace(".onnx", ".reference.json")))).expect("ref"),
            )
            .expect("json");
            let mut m = match bundle.manifest.model.format {
                foresight::contract::manifest::ModelFormat::Nnef => {
                    foresight::infer::model::RecommenderModel::load_nnef(bundle.model_bytes().expect("model"), 50)
                }
                foresight::contract::manifest::ModelFormat::Onnx => {
                    foresight::infer::model::RecommenderModel::load(bundle.model_bytes().expect("model"), &Default::default(), 50)
                }
                _ => foresight::infer::model::RecommenderModel::from_kernel_bundle(&bundle.manifest, bundle.model_bytes().expect("model"))
                    .map_err(|e| foresight::ModelError::Run { model: "recommender", detail: e.to_string() }),
            }
            .expect("loads like the SDK");
            for case in reference["cases"].as_array().expect("cases") {
                let seq: Vec<usize> = serde_json::from_value(case["indices"].clone()).expect("indices");
                let mut scores = Vec::new();
                m.scores_into(&seq, &mut scores).expect("runs");
                let want: Vec<f32> = serde_json::from_value(case["scores"].clone()).expect("scores");
                let delta = scores.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(delta <= 1e-4, "{model} {format}: max |Δ| {delta} vs onnxruntime");
            }
        }
    }

    // LightGBM: the SDK's own tree kernel by default, tract NNEF when asked; both reproduce
    // onnxruntime's probabilities.
    let reference: Value = serde_json::from_slice(&std::fs::read(fixture("torch/lgbm_intent.reference.json")).expect("ref")).expect("json");
    for format in ["auto", "nnef"] {
        let (code, stdout, err) =
            run(&["convert", s(&fixture("torch/lgbm_intent.onnx")), "--kind", "intent", "--format", format, "--out", s(&out), "--json"]);
        assert_eq!(code, 0, "{err}");
        let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid");
        let bytes = bundle.model_bytes().expect("model");
        let mut m = match bundle.manifest.model.format {
            foresight::contract::manifest::ModelFormat::Trees if format == "auto" => {
                let trees = foresight::infer::tabular::TabularModel::from_bytes(bytes).expect("parses");
                foresight::infer::model::IntentModel::from_tabular(trees, 1).expect("loads")
            }
            foresight::contract::manifest::ModelFormat::Nnef if format == "nnef" => {
                foresight::infer::model::IntentModel::load_nnef(bytes, 18, 1).expect("loads")
            }
            other => panic!("--format {format} wrote {other:?}"),
        };
        for case in reference["cases"].as_array().expect("cases") {
            let f: Vec<f32> = serde_json::from_value(case["features"].clone()).expect("features");
            let want = case["probabilities"][1].as_f64().expect("p") as f32;
            assert!((m.probability(&f).expect("runs") - want).abs() <= 1e-5, "{stdout}");
        }
    }
}

#[test]
fn catalog_and_argument_mistakes_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.fsb");
    let (code, _, err) = run(&[
        "convert",
        s(&fixture("session_gru.onnx")),
        "--kind",
        "recommender",
        "--catalog",
        s(&catalog_of(4999, dir.path())),
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("scores 5000 items but the catalog lists 4999"), "{err}");

    let (code, _, err) = run(&["convert", s(&fixture("session_gru.onnx")), "--kind", "recommender", "--out", s(&out)]);
    assert_eq!(code, 2);
    assert!(err.contains("--catalog"), "{err}");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,price\na,1\nb,cheap\n").expect("write");
    let (code, _, err) =
        run(&["convert", s(&fixture("session_gru.onnx")), "--kind", "recommender", "--catalog", s(&bad), "--out", s(&out)]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3") && err.contains("price") && err.contains("cheap"), "{err}");

    let (code, _, err) = run(&["convert", s(&fixture("catalog.json")), "--kind", "intent", "--out", s(&out)]);
    assert_eq!(code, 2);
    assert!(err.contains("catalog.json") && err.contains("ONNX"), "{err}");
    assert!(!out.exists(), "nothing is written on failure");
}

#[test]
fn verify_refuses_each_kind_of_damage_specifically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(fixture("bundles/intent_logreg.fsb")).expect("bundle");
    let public = fixture("bundles/test-signing.pub");
    let (code, stdout, err) = run(&[
        "verify",
        s(&fixture("bundles/intent_logreg.fsb")),
        "--public-key",
        s(&public),
        "--against",
        s(&fixture("intent_logreg.onnx")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("signature valid"), "{stdout}");

    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let mut part = good.clone();
    let last = part.len() - 1;
    part[last] ^= 0xff;
    let mut manifest = good.clone();
    let pos = manifest.windows(9).position(|w| w == b"createdBy").expect("manifest field") + 13;
    manifest[pos] ^= 0x01;
    let mut version = good.clone();
    version[8] = 2;
    let (_, _, _) = run(&["keygen", "--out", s(&dir.path().join("other"))]);
    let unsigned_out = dir.path().join("unsigned.fsb");
    let (code, _, err) =
        run(&["convert", s(&fixture("intent_logreg.onnx")), "--kind", "intent", "--no-onnxruntime", "--out", s(&unsigned_out)]);
    assert_eq!(code, 0, "{err}");

    let cases: Vec<(PathBuf, String, &str)> = vec![
        (write("part.fsb", &part), s(&public).to_owned(), "does not match its SHA-256"),
        (write("manifest.fsb", &manifest), s(&public).to_owned(), "signature does not match"),
        (write("truncated.fsb", &good[..good.len() / 2]), s(&public).to_owned(), "truncated"),
        (write("version.fsb", &version), s(&public).to_owned(), "format version 2 is not supported"),
        (fixture("bundles/intent_logreg.fsb"), s(&dir.path().join("other.pub")).to_owned(), "signed by another key"),
        (unsigned_out.clone(), s(&public).to_owned(), "not signed"),
        (write("html.fsb", b"<!doctype html><title>404</title>"), s(&public).to_owned(), "not a Foresight bundle"),
    ];
    for (path, key, expected) in cases {
        let (code, _, err) = run(&["verify", s(&path), "--public-key", &key]);
        assert_eq!(code, 2, "{}", path.display());
        assert!(err.contains(expected), "{}: {err}", path.display());
    }
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("shop");
    assert_eq!(run(&["keygen", "--out", s(&prefix)]).0, 0);
    let first = std::fs::read(prefix.with_extension("key")).expect("key");
    let (code, _, err) = run(&["keygen", "--out", s(&prefix)]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(prefix.with_extension("key")).expect("key"), first, "the old key is kept");
}

#[test]
fn f16_weights_keep_the_ranking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("f16.fsb");
    let (code, stdout, err) = run(&[
        "convert",
        s(&fixture("session_gru.onnx")),
        "--kind",
        "recommender",
        "--catalog",
        s(&fixture("catalog.json")),
        "--quantize",
        "f16",
        "--no-onnxruntime",
        "--json",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("json");
    let parity = &summary["parity"][0];
    let delta = parity["maxAbsDelta"].as_f64().expect("delta");
    assert!(delta > 0.0 && delta < 1e-2, "weights are rounded, scores move a little: {parity}");
    assert!(parity["topKAgreement"].as_f64().expect("agreement") >= 0.9, "{parity}");
    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid");
    assert_eq!(bundle.manifest.model.quantization, foresight::contract::manifest::Quantization::F16);

    let (code, _, err) = run(&[
        "convert",
        s(&fixture("session_gru.onnx")),
        "--kind",
        "recommender",
        "--catalog",
        s(&fixture("catalog.json")),
        "--quantize",
        "f16",
        "--format",
        "onnx",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("NNEF"), "{err}");
}

/// A SASRec-style ONNX model converts to the `attention` format (the SDK's kernels, a
/// key/value cache), with parity against tract and onnxruntime; the SDK then recommends from
/// it what tract computes on the original graph, also after the session outgrows the model's
/// 50 learned positions; asking for the format on another model says why it cannot be.
#[test]
fn attention_recommenders_convert_to_the_sdk_kernels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/models/sasrec_5000.onnx");
    let (catalog, key, out) = (fixture("catalog.json"), fixture("bundles/test-signing.key"), dir.path().join("sasrec.fsb"));
    let (code, stdout, err) = run(&[
        "convert",
        s(&model),
        "--kind",
        "recommender",
        "--catalog",
        s(&catalog),
        "--signing-key",
        s(&key),
        "--max-seq-len",
        "80",
        "--out",
        s(&out),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("json summary");
    for p in summary["parity"].as_array().expect("parity") {
        assert!(p["maxAbsDelta"].as_f64().expect("delta") <= 1e-5, "{summary}");
        assert_eq!(p["topKAgreement"].as_f64(), Some(1.0), "{summary}");
    }
    assert!(summary.to_string().contains("lowered to the model's 50 learned positions"), "{summary}");
    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid bundle");
    assert_eq!(bundle.manifest.model.format, foresight::contract::manifest::ModelFormat::Attention);
    assert_eq!(bundle.manifest.max_seq_len, Some(50));
    let (code, text, _) = run(&["inspect", s(&out)]);
    assert_eq!(code, 0);
    assert!(text.contains("attention on the SDK's kernels: 2 blocks, dim 64, 2 heads"), "{text}");

    let pubkey = std::fs::read_to_string(fixture("bundles/test-signing.pub")).expect("key");
    let config = Config {
        bundles: vec![std::fs::read(&out).expect("bundle").into()],
        public_key: Some(pubkey.trim().to_owned()),
        ..Config::default()
    };
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (mut client, warnings) = Client::new(config, MemoryStorage::default(), clock.clone()).expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let ids: Vec<String> = serde_json::from_slice::<Value>(&std::fs::read(&catalog).expect("catalog")).expect("json")["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    let mut tract = foresight::infer::model::RecommenderModel::load(&std::fs::read(&model).expect("onnx"), &Default::default(), ids.len())
        .expect("tract");
    let mut seen = Vec::new();
    for step in 0..60 {
        let item = (step * 7919 + 13) % ids.len();
        seen.push(item);
        clock.advance_ms(10_000.0);
        client.track(&json!({"type": "product_view", "itemId": ids[item]})).expect("track");
        if step % 10 != 4 && step != 59 {
            continue;
        }
        let recs = client.recommend(&RecommendOptions { k: Some(10), exclude: vec![] }).expect("recommend");
        assert_eq!(recs.source, Source::Model);
        let window = &seen[seen.len().saturating_sub(50)..];
        let mut want = Vec::new();
        tract.scores_into(window, &mut want).expect("tract runs");
        for r in &recs.items {
            let i = ids.iter().position(|id| *id == r.item_id).expect("a catalog item");
            assert!((r.score - want[i]).abs() <= 1e-4, "step {step}: {} {} vs {}", r.item_id, r.score, want[i]);
        }
        // Ranked by the model: nothing left out scores above the last pick unless excluded.
        let last = recs.items.last().expect("picks").score;
        let shown: Vec<&str> = recs.items.iter().map(|r| r.item_id.as_str()).collect();
        let above = want.iter().enumerate().filter(|(i, &w)| w > last + 1e-4 && !shown.contains(&ids[*i].as_str())).count();
        assert!(above <= 10 * (step / 10 + 1), "step {step}: {above} better items left out");
    }

    let (code, _, err) = run(&[
        "convert",
        s(&fixture("session_gru.onnx")),
        "--kind",
        "recommender",
        "--catalog",
        s(&catalog),
        "--format",
        "attention",
        "--out",
        s(&dir.path().join("x.fsb")),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--format attention: the scoring head reads"), "{err}");
}

/// Without `--kind`, the input says which: item indices → recommender, a float feature vector
/// → intent; the inference is printed and kept among the bundle's notes.
#[test]
fn kind_is_inferred_from_the_input_and_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("gru.fsb");
    let catalog = fixture("catalog.json");
    let (code, _, err) = run(&["convert", s(&fixture("session_gru.onnx")), "--catalog", s(&catalog), "--no-onnxruntime", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--kind recommender: input") && err.contains("item indices"), "{err}");
    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid");
    assert_eq!(bundle.manifest.kind, foresight::contract::manifest::ModelKind::Recommender);

    let out = dir.path().join("intent.fsb");
    let (code, stdout, err) = run(&["convert", s(&fixture("intent_logreg.onnx")), "--no-onnxruntime", "--json", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(summary["kind"], "intent", "{summary}");
    assert!(summary["notes"].to_string().contains("--kind intent inferred"), "{summary}");

    // Told otherwise, the converter believes the flag and says what does not fit.
    let (code, _, err) =
        run(&["convert", s(&fixture("intent_logreg.onnx")), "--kind", "recommender", "--catalog", s(&catalog), "--out", s(&out)]);
    assert_ne!(code, 0);
    assert!(err.contains("item indices need int64 or int32"), "{err}");
}

/// When onnxruntime itself fails, the converter says so in one sentence with the fix — never
/// with a Python traceback. (An onnxruntime that cannot load any model stands in for a model
/// it cannot load.)
#[test]
fn an_onnxruntime_failure_is_one_sentence_and_a_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("site");
    std::fs::create_dir_all(fake.join("onnxruntime")).expect("mkdir");
    std::fs::write(
        fake.join("onnxruntime/__init__.py"),
        "__version__ = '0.0'\nclass InferenceSession:\n    def __init__(self, *a, **k):\n        raise RuntimeError('[ONNXRuntimeError] : 10 : INVALID_GRAPH : opset 99 is not supported\\nmore detail')\n",
    )
    .expect("write fake onnxruntime");
    let out = dir.path().join("gru.fsb");
    let (gru, catalog) = (fixture("session_gru.onnx"), fixture("catalog.json"));
    let (code, _, err) = common::run_env(
        &["convert", s(&gru), "--kind", "recommender", "--catalog", s(&catalog), "--out", s(&out)],
        &[("PYTHONPATH", s(&fake))],
    );
    assert_ne!(code, 0);
    assert!(!err.contains("Traceback") && !err.contains("more detail"), "{err}");
    assert!(err.contains("onnxruntime cannot load the model (RuntimeError: [ONNXRuntimeError] : 10 : INVALID_GRAPH"), "{err}");
    assert!(err.contains("--no-onnxruntime"), "the fix is named: {err}");
    assert!(!out.exists(), "no bundle is written when the check could not run");
}

/// A recommender exported for serving ends in `TopK` (or `ArgMax`) over its scores. The
/// converter strips it, says so, and the rest goes as for the plain model: the GRU is still
/// recognised for the SDK's kernels, and onnxruntime checks the scores underneath.
#[test]
fn a_trailing_topk_or_argmax_is_stripped_and_said() {
    use prost::Message;
    use tract_onnx::pb;
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = fixture("catalog.json");
    for op in ["TopK", "ArgMax"] {
        let mut model = pb::ModelProto::decode(&std::fs::read(fixture("session_gru.onnx")).expect("fixture")[..]).expect("ONNX");
        let graph = model.graph.as_mut().expect("graph");
        let node = if op == "TopK" {
            graph.initializer.push(pb::TensorProto {
                name: "k".into(),
                dims: vec![1],
                data_type: pb::tensor_proto::DataType::Int64 as i32,
                int64_data: vec![20],
                ..Default::default()
            });
            pb::NodeProto {
                op_type: "TopK".into(),
                name: "serve_topk".into(),
                input: vec!["scores".into(), "k".into()],
                output: vec!["top_scores".into(), "top_items".into()],
                ..Default::default()
            }
        } else {
            pb::NodeProto {
                op_type: "ArgMax".into(),
                name: "serve_argmax".into(),
                input: vec!["scores".into()],
                output: vec!["best_item".into()],
                attribute: vec![pb::AttributeProto {
                    name: "axis".into(),
                    r#type: pb::attribute_proto::AttributeType::Int as i32,
                    i: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }
        };
        graph.output = node.output.iter().map(|o| pb::ValueInfoProto { name: o.clone(), ..Default::default() }).collect();
        graph.node.push(node);
        let path = dir.path().join(format!("{op}.onnx"));
        std::fs::write(&path, model.encode_to_vec()).expect("write model");
        let out = dir.path().join(format!("{op}.fsb"));
        let (code, stdout, err) = run(&["convert", s(&path), "--catalog", s(&catalog), "--json", "--out", s(&out)]);
        assert_eq!(code, 0, "{op}: {err}");
        let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
        let notes = summary["notes"].to_string();
        assert!(notes.contains(&format!("the model ends in {op}")) && notes.contains("from `scores`"), "{op}: {notes}");
        if op == "TopK" {
            assert!(notes.contains("(k = 20)"), "{notes}");
        }
        assert_eq!(summary["format"], "gru", "{op}: still recognised for the SDK's kernels: {summary}");
        let parity = summary["parity"].as_array().expect("parity");
        assert!(
            parity.iter().any(|p| p["reference"].as_str().is_some_and(|r| r.starts_with("onnxruntime")) && p["topKAgreement"] == 1.0),
            "{op}: onnxruntime checked the scores: {summary}"
        );
        let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid");
        assert_eq!(bundle.manifest.items.len(), 5000, "every item is scored");
    }
}

#[test]
fn a_graph_tract_cannot_write_as_nnef_goes_as_onnx_within_its_positions() {
    // A SASRec with erf-GELU cut at its visitor vector (`--split-head`): the graph runs on tract,
    // whose NNEF writer has no serializer for GeluExact, and its 20 learned positions stop short
    // of the default 50-event parity sequences. Auto format must still give a working bundle.
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog_of(60, dir.path());
    let out = dir.path().join("tower.fsb");
    let model = fixture("exports/sasrec_pre_gelu_tied.legacy.onnx");
    let (code, stdout, err) = run(&["convert", s(&model), "--split-head", "--catalog", s(&catalog), "--json", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(summary["format"], "onnx", "{summary}");
    let notes = summary["notes"].to_string();
    assert!(notes.contains("cannot write this graph as NNEF") && notes.contains("GeluExact"), "{notes}");
    assert!(notes.contains("max_seq_len 50 lowered to 20"), "{notes}");
    for p in summary["parity"].as_array().expect("parity") {
        assert!(p["maxAbsDelta"].as_f64().is_some_and(|d| d <= 1e-5) && p["topKAgreement"] == 1.0, "{p}");
    }
    let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid");
    assert_eq!(bundle.manifest.max_seq_len, Some(20), "the bundle asks for no more events than the model has positions");

    // Asked for by name, NNEF still refuses, with the way out.
    let (code, _, err) = run(&["convert", s(&model), "--split-head", "--format", "nnef", "--catalog", s(&catalog), "--out", s(&out)]);
    assert_ne!(code, 0);
    assert!(err.contains("GeluExact") && err.contains("--format onnx"), "{err}");
}
