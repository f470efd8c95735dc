//! Fitting: windowed transition counts (step 1 of the `train` module docs), their damping, and
//! the factors and popularity bias of a [`Model`]. Both training paths (interactions and
//! aggregates) end here.

use std::collections::HashMap;
use std::time::Instant;

use super::model::{Model, Query};
use super::steps::{secs, Steps};
use super::svd::{randomized_svd, Csr};

/// Skip-transition decay per extra step of distance.
pub(super) const WINDOW_DECAY: f64 = 0.8;
/// Weight of "came before" relative to "came after".
pub(super) const BACKWARD_WEIGHT: f64 = 0.5;
/// Row damping exponent: `T[i, j] = C[i, j] / rowsum_i^ROW_DAMPING`.
pub(super) const ROW_DAMPING: f64 = 0.5;
/// Used when no user has the three interactions a validation target needs.
const DEFAULT_QUERY: (f64, f64, f64) = (0.5, 0.0, 1e-4);

/// Transition weights `rows[a][b]`, before damping.
pub type Counts = Vec<HashMap<u32, f64>>;

/// The windowed transition weights of the sequences.
fn windowed_counts(sequences: &[Vec<u32>], n: usize, window: usize) -> Counts {
    let mut rows: Counts = vec![HashMap::new(); n];
    for seq in sequences {
        for t in 0..seq.len() {
            let mut w = 1.0;
            for d in 1..=window {
                let Some(&next) = seq.get(t + d) else { break };
                add_step(&mut rows, seq[t], next, w);
                w *= WINDOW_DECAY;
            }
        }
    }
    rows
}

/// One step `a → b` of weight `w`: "came after" for `a`, the weaker "came before" for `b`.
pub fn add_step(rows: &mut Counts, a: u32, b: u32, w: f64) {
    if a != b {
        *rows[a as usize].entry(b).or_default() += w;
        *rows[b as usize].entry(a).or_default() += BACKWARD_WEIGHT * w;
    }
}

/// The damped transition matrix.
fn damped(rows: Counts) -> Csr {
    let n = rows.len();
    let mut row_start = Vec::with_capacity(n + 1);
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    row_start.push(0);
    for row in rows {
        // Sorted before summing: the same data gives the same bits, whatever the hash order.
        let mut entries: Vec<(u32, f64)> = row.into_iter().filter(|e| e.1 > 0.0).collect();
        entries.sort_unstable_by_key(|e| e.0);
        let sum: f64 = entries.iter().map(|e| e.1).sum();
        let scale = if sum > 0.0 { sum.powf(-ROW_DAMPING) } else { 0.0 };
        for (j, c) in entries {
            cols.push(j);
            vals.push(c * scale);
        }
        row_start.push(cols.len());
    }
    Csr { n, row_start, cols, vals }
}

/// Fits the factors and the popularity bias; the query weights are set afterwards.
pub fn fit(sequences: &[Vec<u32>], n: usize, dim: usize, window: usize, seed: u64, progress: &Steps) -> Model {
    let started = Instant::now();
    let rows = windowed_counts(sequences, n, window);
    let mut counts = vec![0u64; n];
    for s in sequences {
        for &i in s {
            counts[i as usize] += 1;
        }
    }
    fit_counts(rows, counts, dim, seed, started, progress)
}

/// Fits from transition weights and item counts directly (e.g. debiased aggregates).
pub fn fit_counts(rows: Counts, counts: Vec<u64>, dim: usize, seed: u64, started: Instant, progress: &Steps) -> Model {
    let n = rows.len();
    let t = damped(rows);
    progress.step(format!("{} item pairs counted ({})", t.cols.len(), secs(started.elapsed())));
    let started = Instant::now();
    let (e, v, k, singular_values) = randomized_svd(&t, dim.min(n), seed, progress);
    progress.step(format!("rank {k} factorization ({})", secs(started.elapsed())));
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let pop_unit = counts.iter().map(|&c| if max > 0.0 { ((c as f64).ln_1p() / max.ln_1p()) as f32 } else { 0.0 }).collect();
    let (recency, history_weight, popularity_weight) = DEFAULT_QUERY;
    Model {
        n,
        k,
        e: e.into_iter().map(|x| x as f32).collect(),
        v: v.into_iter().map(|x| x as f32).collect(),
        pop_unit,
        counts,
        query: Query { recency, history_weight, popularity_weight, repeat_weight: 0.0, repeat_decay: 1.0 },
        singular_values,
    }
}
