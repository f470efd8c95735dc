//! The scoring-head recogniser (`foresight::import::graph::scoring_head`) on heads as PyTorch
//! exports them (`tests/fixtures/heads/`, written by `make_heads.py`): transposed weights,
//! Gemm's alpha/beta and a scalar scale after the head fold into the matrix and bias, so the
//! head computes numpy's scores; what it cannot fold it refuses, naming the node.
#![cfg(not(target_arch = "wasm32"))]

use foresight::import::graph::{scoring_head, ScoringHead};
use serde_json::Value;

const HEADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/heads");

fn read(name: &str) -> (Vec<u8>, Value) {
    let onnx = std::fs::read(format!("{HEADS}/{name}.onnx")).unwrap_or_else(|e| panic!("{name}.onnx: {e}"));
    let json = std::fs::read(format!("{HEADS}/{name}.json")).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    (onnx, serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{name}.json: {e}")))
}

fn floats(v: &Value, key: &str) -> Vec<f32> {
    v[key].as_array().unwrap_or_else(|| panic!("no `{key}`")).iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

/// `hidden · matrix + bias`, the matrix `hidden × items` row-major.
fn apply(head: &ScoringHead, hidden: &[f32]) -> Vec<f32> {
    (0..head.items)
        .map(|j| {
            let dot: f32 = (0..head.hidden).map(|k| hidden[k] * head.matrix[k * head.items + j]).sum();
            dot + head.bias.as_ref().map_or(0.0, |b| b[j])
        })
        .collect()
}

#[test]
fn exported_heads_fold_into_the_matrix_and_bias() {
    for (name, has_bias) in [("gemm_transb", true), ("matmul_transpose", true), ("div_scalar", false), ("mul_scalar", true)] {
        let (onnx, expected) = read(name);
        let head = scoring_head(&onnx, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((head.hidden, head.items), (8, 12), "{name}");
        assert_eq!((head.input.as_str(), head.output.as_str()), ("hidden", "scores"), "{name}");
        assert_eq!(head.matrix.len(), 8 * 12, "{name}");
        assert_eq!(head.bias.is_some(), has_bias, "{name}");
        let got = apply(&head, &floats(&expected, "hidden"));
        let want = floats(&expected, "scores");
        assert_eq!(got.len(), want.len(), "{name}");
        let delta = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name}: max |Δ| {delta:.2e} vs numpy");
        assert!(delta <= 1e-5, "{name}: max |Δ| {delta} vs numpy\n got {got:?}\nwant {want:?}");
    }
}

#[test]
fn item_rows_transpose_a_folded_matrix_back() {
    // A transB=1 Gemm stores nn.Linear's [items, hidden] weight; item rows are that layout
    // again, scaled by alpha.
    let (onnx, _) = read("gemm_transb");
    let head = scoring_head(&onnx, None).expect("recognised");
    let rows = head.item_rows();
    for j in 0..head.items {
        for k in 0..head.hidden {
            assert_eq!(rows[j * head.hidden + k], head.matrix[k * head.items + j]);
        }
    }
}

#[test]
fn transposed_visitor_is_refused_naming_the_node() {
    let (onnx, expected) = read("gemm_transa");
    let err = scoring_head(&onnx, None).expect_err("transA=1 is refused");
    println!("{err}");
    for key in ["node", "attribute"] {
        let want = expected["refused"][key].as_str().unwrap_or_else(|| panic!("no refused.{key}"));
        assert!(err.contains(want), "`{err}` does not name {want}");
    }
    assert!(err.contains("transA=1"), "{err}");
}

#[test]
fn other_outputs_are_refused_naming_the_node() {
    // The intent model's output is no MatMul/Gemm head; the message still names where it looked.
    let onnx = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/intent_logreg.onnx")).expect("fixture");
    let err = scoring_head(&onnx, None).expect_err("not a head");
    assert!(err.contains("node `") && err.contains("not a MatMul/Gemm scoring head"), "{err}");
    let err = scoring_head(&read("div_scalar").0, Some("nowhere")).expect_err("no such tensor");
    assert!(err.contains("`nowhere`"), "{err}");
}
