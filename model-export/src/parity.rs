//! Parity: the bundled model against the original, on generated and user-given inputs — with
//! tract on the original ONNX, and with onnxruntime when Python has it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use foresight::contract::manifest::ParityReport;
use foresight::infer::model::{IntentModel, RecommenderModel};
use foresight::platform::{Randomness, SeededRandomness};
use serde::Deserialize;

pub const TOP_K: usize = 10;

/// A model under comparison: either kind, one input in, one score vector out.
// One or two per conversion: the smaller variant's padding costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Runner {
    Recommender(RecommenderModel),
    Intent(IntentModel),
}

impl Runner {
    pub fn run(&mut self, input: &Input) -> Result<Vec<f32>> {
        match (self, input) {
            (Runner::Recommender(m), Input::Sequence(seq)) => {
                let mut scores = Vec::new();
                m.scores_into(seq, &mut scores)?;
                Ok(scores)
            }
            (Runner::Intent(m), Input::Features(f)) => Ok(vec![m.probability(f)?]),
            _ => bail!("input kind does not match the model kind"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Input {
    Sequence(Vec<usize>),
    Features(Vec<f32>),
}

/// Sequences over a spread of lengths (1 up to `max_len`), so recurrent models and anything
/// that depends on the symbolic length are exercised.
pub fn sequences(n_items: usize, max_len: usize, cases: usize) -> Vec<Input> {
    // Seeded: parity inputs (and so the manifest) are the same on every run.
    let mut rng = SeededRandomness(0x9E37_79B9_7F4A_7C15);
    let lengths = [1, 2, 3, 5, 8, 13, 21, 34, 50, 100, 200];
    (0..cases)
        .map(|i| {
            let len = lengths[i % lengths.len()].min(max_len).max(1);
            Input::Sequence((0..len).map(|_| rng.below(n_items as u64) as usize).collect())
        })
        .collect()
}

/// Feature vectors in the ranges the SDK produces (log1p counts: 0 to ~6).
pub fn features(n_features: usize, cases: usize) -> Vec<Input> {
    let mut rng = SeededRandomness(0xD1B5_4A32_D192_ED03);
    (0..cases).map(|_| Input::Features((0..n_features).map(|_| rng.below(6000) as f32 / 1000.0).collect())).collect()
}

/// User-supplied inputs: `{"sequences": [[index or "item id", ...]]}` or `{"features": [[...]]}`.
pub fn from_file(path: &Path, ids: &dyn Fn(&str) -> Option<usize>) -> Result<Vec<Input>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        sequences: Vec<Vec<serde_json::Value>>,
        #[serde(default)]
        features: Vec<Vec<f32>>,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected {{\"sequences\": [[...]]}} or {{\"features\": [[...]]}}", path.display()))?;
    let mut out = Vec::new();
    for (i, seq) in file.sequences.iter().enumerate() {
        let indices = seq
            .iter()
            .map(|v| match v {
                serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize).context("indices must be non-negative integers"),
                serde_json::Value::String(s) => ids(s).with_context(|| format!("item `{s}` is not in the catalog")),
                _ => bail!("use item indices or item ids"),
            })
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{}: sequences[{i}]", path.display()))?;
        if indices.is_empty() {
            bail!("{}: sequences[{i}] is empty", path.display());
        }
        out.push(Input::Sequence(indices));
    }
    out.extend(file.features.into_iter().map(Input::Features));
    Ok(out)
}

/// Compares two runners input by input.
pub fn compare(reference: &str, a: &mut Runner, b: &mut Runner, inputs: &[Input]) -> Result<ParityReport> {
    let mut outputs_a = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        outputs_a.push(a.run(input).with_context(|| format!("parity case {i} ({})", describe(input)))?);
    }
    let mut outputs_b = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        outputs_b.push(b.run(input).with_context(|| format!("parity case {i} ({}) on the bundled model", describe(input)))?);
    }
    Ok(report(reference, &outputs_a, &outputs_b, matches!(inputs.first(), Some(Input::Sequence(_)))))
}

pub fn report(reference: &str, a: &[Vec<f32>], b: &[Vec<f32>], ranked: bool) -> ParityReport {
    let mut max_abs_delta = 0f32;
    let mut agree = 0usize;
    for (x, y) in a.iter().zip(b) {
        let delta = if x.len() != y.len() {
            f32::INFINITY
        } else {
            x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) })
        };
        max_abs_delta = max_abs_delta.max(delta);
        if ranked && top(x) == top(y) {
            agree += 1;
        }
    }
    ParityReport {
        reference: reference.to_owned(),
        cases: a.len(),
        max_abs_delta,
        top_k_agreement: ranked.then(|| agree as f32 / a.len().max(1) as f32),
        top_k: ranked.then_some(TOP_K),
    }
}

fn top(scores: &[f32]) -> Vec<usize> {
    foresight::infer::topk::top_k(scores, TOP_K, &[]).into_iter().map(|(i, _)| i).collect()
}

pub fn describe(input: &Input) -> String {
    match input {
        Input::Sequence(s) => format!("sequence of length {}", s.len()),
        Input::Features(f) => format!("{} features", f.len()),
    }
}

/// onnxruntime on the original file through `python3` (or `$FORESIGHT_PYTHON`); `Ok(None)` when
/// Python or onnxruntime is not there.
pub fn onnxruntime(
    model: &Path,
    kind: &str,
    input: Option<&str>,
    output: &str,
    inputs: &[Input],
) -> Result<Option<(String, Vec<Vec<f32>>)>> {
    let python = std::env::var("FORESIGHT_PYTHON").unwrap_or_else(|_| "python3".into());
    let available = Command::new(&python).args(["-c", "import onnxruntime, numpy"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !available {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("ort_parity.py");
    std::fs::write(&script, include_str!("ort_parity.py"))?;
    let request = dir.path().join("request.json");
    let response = dir.path().join("response.json");
    let payload: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| match i {
            Input::Sequence(s) => serde_json::json!(s),
            Input::Features(f) => serde_json::json!(f),
        })
        .collect();
    let model_path = std::fs::canonicalize(model)?;
    std::fs::write(
        &request,
        serde_json::to_vec(&serde_json::json!({"model": model_path, "kind": kind, "input": input, "output": output, "inputs": payload}))?,
    )?;
    let out = Command::new(&python).arg(&script).arg(&request).arg(&response).output().context("running python3 for onnxruntime")?;
    // The script reports its own failures as one sentence and a fix; anything else (the
    // interpreter itself dying) is reduced to its last line — never a traceback.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Response {
        Ran { version: String, outputs: Vec<Vec<f64>> },
        Failed { error: String, fix: String },
    }
    let parsed = std::fs::read(&response).ok().and_then(|bytes| serde_json::from_slice::<Response>(&bytes).ok());
    match parsed {
        Some(Response::Ran { version, outputs }) if out.status.success() => {
            Ok(Some((format!("onnxruntime {version}"), outputs.into_iter().map(|v| v.into_iter().map(|x| x as f32).collect()).collect())))
        }
        Some(Response::Failed { error, fix }) => bail!("onnxruntime could not check the original model: {error}; {fix}"),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
            bail!("the python running onnxruntime failed ({last}); pass --no-onnxruntime to compare with tract only")
        }
    }
}
