//! Linear models and tree ensembles: `convert --kind intent` picks the SDK's own kernels
//! (`linear`, `trees`) for the exports shops make (scikit-learn, LightGBM, XGBoost, PyTorch),
//! the bundles verify, and the kernels reproduce onnxruntime's stored outputs
//! (`tests/fixtures/tabular/`, made by `tests/fixtures/make_tabular.py`). Hand-built ONNX-ML
//! nodes pin onnxruntime's conventions one by one.

use foresight::contract::bundle::Bundle;
use foresight::contract::manifest::ModelFormat;
use foresight::infer::model::IntentModel;
use foresight::infer::tabular::TabularModel;
use prost::Message;
use serde_json::Value;
use tract_onnx::pb;

mod common;
use common::{fixture, run, s};

const TOLERANCE: f32 = 1e-5;

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("tabular/reference.json")).expect("reference")).expect("json")
}

fn features(case: &Value) -> Vec<f32> {
    case["features"].as_array().expect("features").iter().map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32)).collect()
}

/// `expected` null means NaN.
fn delta(got: f32, expected: &Value) -> f32 {
    match expected.as_f64() {
        Some(e) => {
            let d = (got - e as f32).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                d / (e.abs() as f32).max(1.0)
            }
        }
        None if got.is_nan() => 0.0,
        None => f32::INFINITY,
    }
}

#[test]
fn exports_convert_to_the_sdks_kernels_and_match_onnxruntime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = reference();
    let mut figures = Vec::new();
    for m in reference["models"].as_array().expect("models").iter().filter(|m| m["edge"].is_null()) {
        let name = m["model"].as_str().expect("name");
        let want = m["format"].as_str().expect("format");
        let positive = m["positive_index"].as_u64().expect("positive") as usize;
        let out = dir.path().join(name.replace(".onnx", ".fsb"));
        let (code, stdout, err) = run(&[
            "convert",
            s(&fixture(&format!("tabular/{name}"))),
            "--kind",
            "intent",
            "--positive-index",
            &positive.to_string(),
            "--out",
            s(&out),
            "--json",
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
        assert_eq!(summary["format"], want, "{name}: {summary}");
        let (code, _, err) = run(&["verify", s(&out), "--against", s(&fixture(&format!("tabular/{name}")))]);
        assert_eq!(code, 0, "{name}: verify --against: {err}");
        if want == "nnef" {
            let notes = summary["notes"].to_string();
            assert!(notes.contains("not a linear model or tree ensemble") && notes.contains("`/Relu` (Relu)"), "{name}: {notes}");
            continue;
        }
        // Every parity check the converter ran (onnxruntime when python3 has it) is within 1e-5.
        for p in summary["parity"].as_array().expect("parity") {
            if p["reference"].as_str().is_some_and(|r| r.starts_with("onnxruntime")) {
                assert!(p["maxAbsDelta"].as_f64().expect("delta") <= TOLERANCE as f64, "{name}: {p}");
            }
        }

        let bundle = Bundle::parse(std::fs::read(&out).expect("bundle"), None).expect("valid bundle");
        let format = if want == "linear" { ModelFormat::Linear } else { ModelFormat::Trees };
        assert_eq!(bundle.manifest.model.format, format, "{name}");
        let tabular = TabularModel::from_bytes(bundle.model_bytes().expect("model")).expect("parses");
        let mut intent = IntentModel::from_tabular(tabular.clone(), positive).expect("loads");
        let (mut worst, mut worst_p) = (0f32, 0f32);
        let mut row = vec![0f32; tabular.n_outputs()];
        for case in m["cases"].as_array().expect("cases") {
            let x = features(case);
            let expected = case["output"].as_array().expect("output");
            tabular.predict_into(&x, &mut row).expect("runs");
            assert_eq!(row.len(), expected.len(), "{name}: output width");
            for (got, e) in row.iter().zip(expected) {
                worst = worst.max(delta(*got, e));
            }
            let column = if expected.len() > 1 { positive } else { 0 };
            worst_p = worst_p.max(delta(intent.probability(&x).expect("probability"), &expected[column]));
        }
        assert!(worst <= TOLERANCE && worst_p <= TOLERANCE, "{name}: max |Δ| {worst:e} (all columns), {worst_p:e} (probability)");
        figures.push(format!("{name}: {want}, {} bytes, max |Δ| vs onnxruntime {worst:.1e}", bundle.model_bytes().expect("model").len()));
    }
    eprintln!("{}", figures.join("\n"));
}

#[test]
fn onnxruntime_conventions_are_reproduced_node_by_node() {
    let reference = reference();
    let mut failures = Vec::new();
    let mut n = 0;
    for m in reference["models"].as_array().expect("models").iter().filter(|m| m["edge"].as_bool() == Some(true)) {
        let name = m["model"].as_str().expect("name");
        let bytes = std::fs::read(fixture(&format!("tabular/{name}"))).expect("model");
        let model = match foresight::import::tabular::from_onnx(&bytes) {
            Ok(model) => model,
            Err(why) => {
                failures.push(format!("{name}: not recognised: {why}"));
                continue;
            }
        };
        let mut row = vec![0f32; model.n_outputs()];
        let mut worst = 0f32;
        for case in m["cases"].as_array().expect("cases") {
            let expected = case["output"].as_array().expect("output");
            if row.len() != expected.len() {
                failures.push(format!("{name}: {} outputs, onnxruntime {}", row.len(), expected.len()));
                break;
            }
            model.predict_into(&features(case), &mut row).expect("runs");
            for (got, e) in row.iter().zip(expected) {
                worst = worst.max(delta(*got, e));
            }
        }
        n += 1;
        if worst > TOLERANCE {
            failures.push(format!("{name}: max |Δ| {worst:e}"));
        }
    }
    assert!(n >= 20, "edge fixtures: {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The MLP is not linear: auto falls back to NNEF (above); an explicit format fails with why.
#[test]
fn explicit_formats_fail_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.fsb");
    let convert = |model: &str, format: &str| {
        run(&["convert", s(&fixture(&format!("tabular/{model}"))), "--kind", "intent", "--format", format, "--out", s(&out)])
    };
    let (code, _, err) = convert("torch_mlp.onnx", "trees");
    assert_ne!(code, 0);
    assert!(err.contains("--format trees:") && err.contains("`/Relu` (Relu)"), "{err}");
    let (code, _, err) = convert("logreg.onnx", "trees");
    assert_ne!(code, 0);
    assert!(err.contains("is a linear model: convert with --format linear"), "{err}");
    let (code, _, err) = convert("gbc.onnx", "linear");
    assert_ne!(code, 0);
    assert!(err.contains("is a trees model: convert with --format trees"), "{err}");
    assert!(!out.exists(), "nothing is written on failure");

    // The recommender fixture is no intent model.
    let (code, _, err) = run(&[
        "convert",
        s(&fixture("session_gru.onnx")),
        "--kind",
        "recommender",
        "--catalog",
        s(&fixture("catalog.json")),
        "--format",
        "linear",
        "--out",
        s(&out),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--format linear and trees are for intent models"), "{err}");
}

fn edit(model: &str, change: impl FnOnce(&mut pb::NodeProto)) -> Vec<u8> {
    let bytes = std::fs::read(fixture(&format!("tabular/{model}"))).expect("model");
    let mut proto = pb::ModelProto::decode(bytes.as_slice()).expect("onnx");
    let graph = proto.graph.as_mut().expect("graph");
    let node = graph.node.iter_mut().find(|n| n.domain == "ai.onnx.ml").expect("an ONNX-ML node");
    change(node);
    proto.encode_to_vec()
}

fn attr<'a>(node: &'a mut pb::NodeProto, name: &str) -> &'a mut pb::AttributeProto {
    node.attribute.iter_mut().find(|a| a.name == name).expect("attribute")
}

/// What the recogniser cannot reproduce it names: the node and the attribute.
#[test]
fn unrecognised_attributes_are_named() {
    let why = |bytes: Vec<u8>| foresight::import::tabular::from_onnx(&bytes).expect_err("refused");

    let e = why(edit("gbc.onnx", |n| attr(n, "nodes_modes").strings[0] = b"BRANCH_XYZ".to_vec()));
    assert!(e.contains("(TreeEnsembleClassifier) uses nodes_modes BRANCH_XYZ"), "{e}");
    let e = why(edit("gbc.onnx", |n| attr(n, "post_transform").s = b"SQUARE".to_vec()));
    assert!(e.contains("uses post_transform SQUARE"), "{e}");
    // A child pointing back at the root: onnxruntime would loop forever; refused.
    let e = why(edit("gbc.onnx", |n| {
        // The first leaf becomes a branch whose children are the root.
        let leaf = attr(n, "nodes_modes").strings.iter().position(|m| m == b"LEAF").expect("a leaf");
        attr(n, "nodes_modes").strings[leaf] = b"BRANCH_LEQ".to_vec();
        attr(n, "nodes_truenodeids").ints[leaf] = 0;
        attr(n, "nodes_falsenodeids").ints[leaf] = 0;
    }));
    assert!(e.contains("loops back"), "{e}");
    let e = why(edit("gbc.onnx", |n| attr(n, "class_ids").ints[0] = 7));
    assert!(e.contains("class 7 of 2"), "{e}");
    let e = why(edit("xgb.onnx", |n| attr(n, "nodes_featureids").ints[0] = 40));
    assert!(e.contains("feature 40"), "{e}");
    let e = why(edit("logreg.onnx", |n| attr(n, "coefficients").floats.truncate(20)));
    assert!(e.contains("coefficients"), "{e}");

    // Trained on other features: the converter names the counts.
    let dir = tempfile::tempdir().expect("tempdir");
    let narrow = dir.path().join("narrow.onnx");
    std::fs::write(&narrow, std::fs::read(fixture("tabular/edge_binary_logistic.onnx")).expect("edge")).expect("write");
    let (code, _, err) = run(&["convert", s(&narrow), "--kind", "intent", "--format", "trees", "--out", s(&dir.path().join("n.fsb"))]);
    assert_ne!(code, 0);
    assert!(err.contains("4 features, not 18"), "{err}");
}
