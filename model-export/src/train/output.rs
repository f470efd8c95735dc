//! What a training run writes: files, the model's ONNX metadata, derived catalog prices.

use std::path::Path;

use anyhow::{Context, Result};

use super::args::TrainArgs;
use super::model::Model;

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The documented price rule (see `--out-catalog`).
pub(super) fn derived_price(year: Option<i32>, popularity: u64, max_popularity: u64) -> f64 {
    let age_term = 0.10 * (year.unwrap_or(1965) as f64 - 1930.0).clamp(0.0, 70.0);
    let pop_term = if max_popularity > 0 { 4.00 * popularity as f64 / max_popularity as f64 } else { 0.0 };
    round2(3.99 + age_term + pop_term)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn metadata(model: &Model, args: &TrainArgs, trained_on: &str) -> Vec<(&'static str, String)> {
    vec![
        ("foresight.kind", "recommender".into()),
        ("foresight.model", "windowed-transitions-randomized-svd".into()),
        ("foresight.items", model.n.to_string()),
        ("foresight.rank", model.k.to_string()),
        ("foresight.max_seq_len", args.max_seq_len.to_string()),
        ("foresight.window", args.window.to_string()),
        ("foresight.recency", model.query.recency.to_string()),
        ("foresight.history_weight", model.query.history_weight.to_string()),
        ("foresight.popularity_weight", model.query.popularity_weight.to_string()),
        ("foresight.repeat_weight", model.query.repeat_weight.to_string()),
        ("foresight.repeat_decay", model.query.repeat_decay.to_string()),
        ("foresight.trained_on", trained_on.into()),
    ]
}
