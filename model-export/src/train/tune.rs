//! Choosing the query weights (step 3 of the `train` module docs) on held-out validation targets.

use super::evaluate::{self, Case, Metrics};
use super::model::{add_repeat, dot, recent_and_mean, repeat_weights, Model, Query};
use super::steps::Steps;

/// Grids searched on the validation targets (`tune`).
const RECENCY_GRID: [f64; 4] = [0.3, 0.5, 0.7, 0.9];
const HISTORY_WEIGHT_GRID: [f64; 3] = [0.0, 0.5, 2.0];
/// Relative to the typical top score of a query, so the grid means the same on any data.
const POPULARITY_WEIGHT_GRID: [f64; 4] = [1e-4, 0.02, 0.1, 0.3];
/// The repeat term's weight, relative like the popularity grid (0: none), and its decay per
/// position.
const REPEAT_WEIGHT_GRID: [f64; 7] = [0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
const REPEAT_DECAY_GRID: [f64; 3] = [0.9, 0.95, 0.99];

/// What `tune` chose and how the choice did on the validation targets.
pub(super) struct Tuned {
    pub(super) query: Query,
    pub(super) relative_popularity_weight: f64,
    pub(super) relative_repeat_weight: f64,
    pub(super) validation: Metrics,
}

/// Picks recency, history weight and popularity weight by NDCG@10 on the validation cases
/// (history → second-to-last item), computed from the Rust factors: each score vector is
/// `a_recency + β c + λ b`, so one pass over the users evaluates the whole grid.
pub(super) fn tune(model: &Model, cases: &[Case], max_len: usize, progress: &Steps) -> Option<Tuned> {
    if cases.is_empty() {
        return None;
    }
    let (n, k) = (model.n, model.k);
    let scores_of = |q: &[f32]| -> Vec<f32> { (0..n).map(|j| dot(q, &model.v[j * k..][..k])).collect() };
    // The scale the popularity grid is relative to: the mean top score of a plain query.
    let mut scale = 0.0;
    for case in cases {
        let (recent, _) = recent_and_mean(&model.e, k, case.input(max_len), 0.5);
        scale += scores_of(&recent).iter().copied().fold(f32::MIN, f32::max) as f64;
    }
    scale = (scale / cases.len() as f64).abs().max(1e-12);

    let combos = RECENCY_GRID.len() * HISTORY_WEIGHT_GRID.len() * POPULARITY_WEIGHT_GRID.len();
    let mut acc = vec![Metrics::default(); combos];
    let mut excluded = vec![false; n];
    let mut total = vec![0f32; n];
    for case in cases {
        let input = case.input(max_len);
        let (_, mean) = recent_and_mean(&model.e, k, input, 0.0);
        let c = scores_of(&mean);
        evaluate::mark(&mut excluded, case, true);
        let mut ix = 0;
        for &recency in &RECENCY_GRID {
            let (recent, _) = recent_and_mean(&model.e, k, input, recency);
            let a = scores_of(&recent);
            for &beta in &HISTORY_WEIGHT_GRID {
                for &lambda in &POPULARITY_WEIGHT_GRID {
                    let (b, l) = (beta as f32, (lambda * scale) as f32);
                    for j in 0..n {
                        total[j] = a[j] + b * c[j] + l * model.pop_unit[j];
                    }
                    acc[ix].add(&total, case.target, &excluded);
                    ix += 1;
                }
            }
        }
        evaluate::mark(&mut excluded, case, false);
        progress.tick();
    }
    let mut best = 0;
    for (i, m) in acc.iter().enumerate() {
        if m.ndcg10() > acc[best].ndcg10() + 1e-12 {
            best = i;
        }
    }
    let pi = best % POPULARITY_WEIGHT_GRID.len();
    let hi = (best / POPULARITY_WEIGHT_GRID.len()) % HISTORY_WEIGHT_GRID.len();
    let ri = best / (POPULARITY_WEIGHT_GRID.len() * HISTORY_WEIGHT_GRID.len());
    let query = Query {
        recency: RECENCY_GRID[ri],
        history_weight: HISTORY_WEIGHT_GRID[hi],
        popularity_weight: POPULARITY_WEIGHT_GRID[pi] * scale,
        repeat_weight: 0.0,
        repeat_decay: 1.0,
    };
    let (query, relative_repeat_weight, validation) = tune_repeat(model, query, scale, cases, max_len, acc.swap_remove(best));
    Some(Tuned { query, relative_popularity_weight: POPULARITY_WEIGHT_GRID[pi], relative_repeat_weight, validation })
}

/// The second stage: the repeat term's weight and decay, the other weights fixed (the term
/// only lifts items already in the input, so it barely interacts with them). Keeps no term
/// unless one does better on the validation targets. Not tried where the history is excluded
/// from the ranking (leave-one-out on films): there the term could only lift a target that
/// repeats an excluded item, a win the protocol does not mean to count.
fn tune_repeat(model: &Model, query: Query, scale: f64, cases: &[Case], max_len: usize, without: Metrics) -> (Query, f64, Metrics) {
    if cases.iter().any(|c| c.exclude_history) {
        return (query, 0.0, without);
    }
    let grid: Vec<(f64, f64)> = REPEAT_WEIGHT_GRID.iter().skip(1).flat_map(|&w| REPEAT_DECAY_GRID.iter().map(move |&d| (w, d))).collect();
    let weights: Vec<_> = grid.iter().map(|&(w, d)| repeat_weights(w * scale, d)).collect();
    let mut acc = vec![Metrics::default(); grid.len()];
    let (mut excluded, mut total) = (vec![false; model.n], vec![0f32; model.n]);
    for case in cases {
        let input = case.input(max_len);
        let base = model.scores_with(&query, input);
        evaluate::mark(&mut excluded, case, true);
        for (m, w) in acc.iter_mut().zip(&weights) {
            total.copy_from_slice(&base);
            add_repeat(&mut total, input, w);
            m.add(&total, case.target, &excluded);
        }
        evaluate::mark(&mut excluded, case, false);
    }
    let mut best: Option<usize> = None;
    for (i, m) in acc.iter().enumerate() {
        if m.ndcg10() > best.map_or(without.ndcg10(), |b| acc[b].ndcg10()) + 1e-12 {
            best = Some(i);
        }
    }
    match best {
        None => (query, 0.0, without),
        Some(b) => {
            let (w, d) = grid[b];
            (Query { repeat_weight: w * scale, repeat_decay: d, ..query }, w, acc.swap_remove(b))
        }
    }
}
