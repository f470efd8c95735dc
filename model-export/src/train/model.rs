//! The trained model and its Rust reference scoring: what the ONNX export must compute, and what
//! tuning and the parity check score with.

/// Positions the recency-weighted part of the query looks at (the graph pads shorter inputs).
pub const RECENT: usize = 8;

/// Positions the repeat term looks at: the evaluation's default input length.
pub const REPEAT_WINDOW: usize = 50;

/// The query-time numbers of the model (see the `train` module docs).
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub recency: f64,
    pub history_weight: f64,
    /// Absolute weight of the normalized log-popularity bias.
    pub popularity_weight: f64,
    /// The repeat term: the newest input item's own score gains `repeat_weight`, the one
    /// before it `repeat_weight · repeat_decay`, … over the last `REPEAT_WINDOW` positions (a
    /// shop's visitors buy again). 0: no term, and none in the graph.
    pub repeat_weight: f64,
    pub repeat_decay: f64,
}

/// A trained model: item factors, popularity bias and query weights.
pub struct Model {
    pub n: usize,
    pub k: usize,
    /// `[n, k]` row-major: the factors of an item as input.
    pub e: Vec<f32>,
    /// `[n, k]` row-major: the factors of an item as a candidate.
    pub v: Vec<f32>,
    /// `log1p(count) / log1p(max count)`, in [0, 1].
    pub pop_unit: Vec<f32>,
    pub counts: Vec<u64>,
    pub query: Query,
    pub singular_values: Vec<f64>,
}

impl Model {
    pub(super) fn recent_weights(&self) -> [f32; RECENT] {
        recent_weights(self.query.recency)
    }

    /// The query vector, exactly as the ONNX graph computes it.
    fn query_vec(&self, query: &Query, seq: &[u32]) -> Vec<f32> {
        let (recent, mean) = recent_and_mean(&self.e, self.k, seq, query.recency);
        let beta = query.history_weight as f32;
        recent.iter().zip(&mean).map(|(r, m)| r + beta * m).collect()
    }

    /// The repeat term's weights, oldest first (the newest position gets the last).
    pub(super) fn repeat_weights(&self) -> [f32; REPEAT_WINDOW] {
        repeat_weights(self.query.repeat_weight, self.query.repeat_decay)
    }

    /// Scores of every item for a non-empty sequence (the reference the graph is checked against).
    pub fn scores(&self, seq: &[u32]) -> Vec<f32> {
        self.scores_with(&self.query, seq)
    }

    /// The scores with other query weights (tuning).
    pub(super) fn scores_with(&self, query: &Query, seq: &[u32]) -> Vec<f32> {
        let q = self.query_vec(query, seq);
        let pw = query.popularity_weight as f32;
        let mut scores: Vec<f32> = (0..self.n).map(|j| dot(&q, &self.v[j * self.k..][..self.k]) + pw * self.pop_unit[j]).collect();
        if query.repeat_weight != 0.0 {
            add_repeat(&mut scores, seq, &repeat_weights(query.repeat_weight, query.repeat_decay));
        }
        scores
    }
}

pub(super) fn repeat_weights(weight: f64, decay: f64) -> [f32; REPEAT_WINDOW] {
    std::array::from_fn(|i| (weight * decay.powi((REPEAT_WINDOW - 1 - i) as i32)) as f32)
}

/// Adds the repeat term (`weights` oldest first, aligned to the newest position) to `scores`.
pub(super) fn add_repeat(scores: &mut [f32], seq: &[u32], weights: &[f32; REPEAT_WINDOW]) {
    for (age, &item) in seq.iter().rev().take(REPEAT_WINDOW).enumerate() {
        scores[item as usize] += weights[REPEAT_WINDOW - 1 - age];
    }
}

/// Recency weights of the last `RECENT` positions, oldest first: the newest has weight 1.
fn recent_weights(recency: f64) -> [f32; RECENT] {
    std::array::from_fn(|i| recency.powi((RECENT - 1 - i) as i32) as f32)
}

/// The two parts of the query: the recency-weighted last `RECENT` items and the mean of all.
pub(super) fn recent_and_mean(e: &[f32], k: usize, seq: &[u32], recency: f64) -> (Vec<f32>, Vec<f32>) {
    let w = recent_weights(recency);
    let mut recent = vec![0f32; k];
    let start = seq.len().saturating_sub(RECENT);
    let offset = RECENT - (seq.len() - start);
    for (p, &item) in seq[start..].iter().enumerate() {
        axpy(&mut recent, w[offset + p], &e[item as usize * k..][..k]);
    }
    let mut mean = vec![0f32; k];
    for &item in seq {
        axpy(&mut mean, 1.0, &e[item as usize * k..][..k]);
    }
    let len = seq.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= len);
    (recent, mean)
}

fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}
