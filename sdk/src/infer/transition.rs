//! The windowed-transition recommender `foresight-export train` writes, on the SDK's own
//! kernels (bundle format `transition`): no graph runtime, so the browser never fetches tract
//! for it.
//!
//! The query is `q = Σ_p w[p] E[x_p]` over the last `w.len()` positions (`w` oldest first,
//! aligned so the newest position gets the last weight) `+ history_weight · mean_p E[x_p]`
//! over the whole input; the scores are `q · Vᵀ + bias`, the scoring [`LinearHead`] the GRU and
//! attention models share (so the exact i16 top-k works here too). A repeat term, when the
//! spec has one, then adds `repeat_weights[p]` to the score of the item at each of the last
//! positions (the newest gets the last weight). The sums run in the
//! order the ONNX graph's `MatMul` and `ReduceMean` do; the model keeps no running state (a
//! query costs `(window + len) · dim` multiply-adds before the head).

use crate::error::ModelError;
use crate::infer::head::LinearHead;

pub use crate::contract::manifest::TransitionSpec;

const KIND: &str = "recommender";

fn prepare_err(detail: impl Into<String>) -> ModelError {
    ModelError::Prepare { model: KIND, detail: detail.into() }
}

fn run_err(detail: impl Into<String>) -> ModelError {
    ModelError::Run { model: KIND, detail: detail.into() }
}

/// The weights: item factors `E` [items, dim] and the head (`Vᵀ` [dim, items] and the
/// popularity bias).
#[derive(Debug, Clone)]
pub struct TransitionModel {
    pub spec: TransitionSpec,
    factors: Vec<f32>,
    head: LinearHead,
}

impl TransitionModel {
    /// From the weight blob: `E`, `Vᵀ`, bias in [`TransitionSpec`]'s `sizes` order.
    pub fn new(spec: TransitionSpec, blob: &[f32]) -> Result<Self, ModelError> {
        let (Some([ne, nv, nb]), Some(total)) = (spec.sizes(), spec.total()) else {
            return Err(prepare_err(format!("transition shape {} items × {} dims is too large to address", spec.items, spec.dim)));
        };
        if spec.items == 0 || spec.dim == 0 || spec.recency_weights.is_empty() {
            return Err(prepare_err(format!(
                "unusable transition shape: {} items, {} dims, a window of {}",
                spec.items,
                spec.dim,
                spec.recency_weights.len()
            )));
        }
        if !spec.history_weight.is_finite() || spec.recency_weights.iter().chain(&spec.repeat_weights).any(|w| !w.is_finite()) {
            return Err(prepare_err("the transition model's recency, history or repeat weights are not finite"));
        }
        if blob.len() != total {
            return Err(prepare_err(format!("transition weights hold {} floats, the spec needs {total}", blob.len())));
        }
        let (factors, rest) = blob.split_at(ne);
        let (matrix, bias) = rest.split_at(nv);
        debug_assert_eq!(bias.len(), nb);
        let head = LinearHead::new(spec.dim, spec.items, matrix.to_vec(), bias.to_vec());
        Ok(TransitionModel { factors: factors.to_vec(), head, spec })
    }

    /// From the bundle part: little-endian f32.
    pub fn from_bytes(spec: TransitionSpec, bytes: &[u8]) -> Result<Self, ModelError> {
        // Check the length before decoding: a hostile part never makes a spec-sized allocation.
        let want = spec.total().and_then(|n| n.checked_mul(4));
        if want.is_some_and(|w| w != bytes.len()) {
            return Err(prepare_err(format!("transition weights are {} bytes, the spec needs {}", bytes.len(), want.unwrap_or_default())));
        }
        let floats = crate::infer::kernels::f32s_from_le(bytes).ok_or_else(|| prepare_err("transition weights are not whole float32s"))?;
        Self::new(spec, &floats)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.factors[..], self.head.matrix(), self.head.bias()].iter().flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes())).collect()
    }

    /// The scoring head (query → item scores).
    pub fn head(&self) -> &LinearHead {
        &self.head
    }

    fn row(&self, item: usize) -> Result<&[f32], ModelError> {
        let d = self.spec.dim;
        if item >= self.spec.items {
            return Err(run_err(format!("item index {item} is out of range for {} items", self.spec.items)));
        }
        Ok(&self.factors[item * d..(item + 1) * d])
    }

    /// The query vector for `sequence` (oldest first): what the head scores.
    pub fn query(&self, sequence: &[usize]) -> Result<Vec<f32>, ModelError> {
        if sequence.is_empty() {
            return Err(run_err("the item sequence is empty"));
        }
        let d = self.spec.dim;
        let weights = &self.spec.recency_weights;
        // The recent window: the last `weights.len()` positions, the newest with the last weight.
        let recent_from = sequence.len().saturating_sub(weights.len());
        let offset = weights.len() - (sequence.len() - recent_from);
        let mut recent = vec![0f32; d];
        for (&item, &w) in sequence[recent_from..].iter().zip(&weights[offset..]) {
            for (r, &e) in recent.iter_mut().zip(self.row(item)?) {
                *r += w * e;
            }
        }
        // The whole input's mean.
        let mut sum = vec![0f32; d];
        for &item in sequence {
            for (s, &e) in sum.iter_mut().zip(self.row(item)?) {
                *s += e;
            }
        }
        let n = sequence.len() as f32;
        Ok(recent.iter().zip(&sum).map(|(&r, &s)| r + s / n * self.spec.history_weight).collect())
    }

    /// Every item's score for `sequence` (oldest first).
    pub fn scores_into(&self, sequence: &[usize], out: &mut Vec<f32>) -> Result<(), ModelError> {
        let q = self.query(sequence)?;
        self.head.scores_into(&q, out);
        // In position order, as the graph's MatMul over the one-hot rows sums them.
        let weights = &self.spec.repeat_weights;
        let from = sequence.len().saturating_sub(weights.len());
        let offset = weights.len() - (sequence.len() - from);
        for (&item, &w) in sequence[from..].iter().zip(&weights[offset..]) {
            out[item] += w;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(items: usize, dim: usize) -> TransitionSpec {
        TransitionSpec { items, dim, recency_weights: vec![0.25, 0.5, 1.0], history_weight: 0.5, repeat_weights: vec![] }
    }

    /// A small model with distinct, deterministic weights.
    fn model(items: usize, dim: usize) -> TransitionModel {
        let s = spec(items, dim);
        let blob: Vec<f32> = (0..s.total().unwrap()).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        TransitionModel::new(s, &blob).expect("valid")
    }

    /// The model's definition, written out naively (padding with zero rows as the graph does).
    fn reference(m: &TransitionModel, seq: &[usize]) -> Vec<f32> {
        let (n, d, w) = (m.spec.items, m.spec.dim, &m.spec.recency_weights);
        let mut padded = vec![None; w.len()];
        padded.extend(seq.iter().copied().map(Some));
        let recent = &padded[padded.len() - w.len()..];
        let mut q = vec![0f64; d];
        for (c, qc) in q.iter_mut().enumerate() {
            for (p, x) in recent.iter().enumerate() {
                if let Some(x) = x {
                    *qc += w[p] as f64 * m.factors[x * d + c] as f64;
                }
            }
            let mean = seq.iter().map(|&x| m.factors[x * d + c] as f64).sum::<f64>() / seq.len() as f64;
            *qc += m.spec.history_weight as f64 * mean;
        }
        let mut scores: Vec<f64> =
            (0..n).map(|j| m.head.bias()[j] as f64 + (0..d).map(|c| q[c] * m.head.matrix()[c * n + j] as f64).sum::<f64>()).collect();
        let r = &m.spec.repeat_weights;
        for (age, &x) in seq.iter().rev().enumerate().take(r.len()) {
            scores[x] += r[r.len() - 1 - age] as f64;
        }
        scores.into_iter().map(|s| s as f32).collect()
    }

    #[test]
    fn the_repeat_term_adds_each_recent_item_its_weight() {
        let plain = model(11, 4);
        let spec = TransitionSpec { repeat_weights: vec![0.5, 2.0], ..plain.spec.clone() };
        let m = TransitionModel::from_bytes(spec, &plain.to_bytes()).expect("valid");
        let (mut with, mut without) = (Vec::new(), Vec::new());
        // Item 5 twice, older than the window's two positions except once; 7 newest.
        let seq = [5, 3, 5, 7];
        m.scores_into(&seq, &mut with).expect("runs");
        plain.scores_into(&seq, &mut without).expect("runs");
        let lift: Vec<f32> = with.iter().zip(&without).map(|(a, b)| a - b).collect();
        assert!((lift[7] - 2.0).abs() < 1e-5 && (lift[5] - 0.5).abs() < 1e-5, "{lift:?}");
        assert!(lift.iter().enumerate().all(|(i, l)| i == 5 || i == 7 || l.abs() < 1e-6), "{lift:?}");
        for (a, b) in with.iter().zip(&reference(&m, &seq)) {
            assert!((a - b).abs() < 1e-4);
        }
        // A one-item input gets the newest weight only.
        m.scores_into(&[2], &mut with).expect("runs");
        plain.scores_into(&[2], &mut without).expect("runs");
        assert!((with[2] - without[2] - 2.0).abs() < 1e-5);
    }

    #[test]
    fn scores_match_the_definition_for_short_and_long_sequences() {
        let m = model(11, 4);
        let mut out = Vec::new();
        for seq in [&[3usize][..], &[1, 2], &[0, 10, 4], &[5, 5, 6, 7, 8, 9, 1, 2, 3]] {
            m.scores_into(seq, &mut out).expect("runs");
            let want = reference(&m, seq);
            assert_eq!(out.len(), 11);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{seq:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn exact_top_k_agrees_with_the_full_scores() {
        let m = model(50, 6);
        let seq = [4, 8, 15, 16, 23, 42];
        let (mut scores, mut picks) = (Vec::new(), Vec::new());
        m.scores_into(&seq, &mut scores).unwrap();
        let q = m.query(&seq).unwrap();
        m.head().top_k_into(&q, 5, &[], &mut Default::default(), &mut picks);
        let mut order: Vec<usize> = (0..50).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        assert_eq!(picks.iter().map(|p| p.0).collect::<Vec<_>>(), order[..5]);
    }

    #[test]
    fn bytes_round_trip() {
        let m = model(7, 3);
        let back = TransitionModel::from_bytes(m.spec.clone(), &m.to_bytes()).expect("round trip");
        assert_eq!(back.to_bytes(), m.to_bytes());
    }

    #[test]
    fn bad_sequences_are_errors() {
        let m = model(7, 3);
        let mut out = Vec::new();
        assert!(m.scores_into(&[], &mut out).is_err());
        assert!(m.scores_into(&[1, 7], &mut out).unwrap_err().to_string().contains("out of range"));
        assert!(m.query(&[usize::MAX]).is_err());
    }

    #[test]
    fn hostile_bytes_and_specs_are_refused() {
        let m = model(7, 3);
        let bytes = m.to_bytes();
        // Truncated, extended, not whole floats, empty.
        for b in [&bytes[..bytes.len() - 4], &[&bytes[..], &[0u8; 4]].concat()[..], &bytes[..bytes.len() - 1], &[][..]] {
            assert!(TransitionModel::from_bytes(m.spec.clone(), b).is_err());
        }
        // Shapes that overflow, or are empty, or non-finite constants.
        for s in [
            TransitionSpec { items: usize::MAX, dim: 2, ..spec(1, 1) },
            TransitionSpec { items: 1 << 40, dim: 1 << 40, ..spec(1, 1) },
            TransitionSpec { items: usize::MAX / 2 + 1, dim: 1, ..spec(1, 1) },
            TransitionSpec { items: 0, dim: 3, ..spec(1, 1) },
            TransitionSpec { items: 7, dim: 0, ..spec(1, 1) },
            TransitionSpec { recency_weights: vec![], ..spec(7, 3) },
            TransitionSpec { history_weight: f32::NAN, ..spec(7, 3) },
            TransitionSpec { recency_weights: vec![f32::INFINITY], ..spec(7, 3) },
            TransitionSpec { repeat_weights: vec![1.0, f32::NAN], ..spec(7, 3) },
        ] {
            assert!(TransitionModel::from_bytes(s.clone(), &bytes).is_err(), "{s:?}");
            assert!(TransitionModel::from_bytes(s, &[]).is_err());
        }
        // Garbage of every small length never panics.
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 97 % 256) as u8).collect();
            let _ = TransitionModel::from_bytes(spec(2, 3), &junk);
        }
    }
}
