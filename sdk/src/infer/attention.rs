//! SASRec-style attention recommenders on the SDK's own kernels, with a key/value cache.
//!
//! Run as a graph, a causal self-attention recommender recomputes every position of the
//! sequence on every call. With causal attention and learned positions counted from the start
//! of the sequence, the keys and values of position p in every block depend only on the items
//! at positions ≤ p, so they are kept ([`KvCache`]): a new event costs one position — its
//! projections, attention over the kept keys and values, the feed-forward — plus the scoring
//! head. Any sequence that shares a prefix with what was consumed reuses that prefix, so an
//! explanation that leaves out one of the last items recomputes only the positions after it.
//! The model reads at most `positions` items: once a session is longer, the window slides,
//! every item changes position, and the whole window is recomputed. That is the model's
//! definition (positions are absolute), not a shortcut left untaken.
//!
//! Whole-sequence scoring is the same per-position code run from an empty cache, so the
//! incremental and the whole answers are bit for bit equal. `from_onnx` recognises the pattern
//! (pre- or post-LayerNorm blocks, fused QKV projection, attention written with MatMul/Softmax,
//! GELU or ReLU feed-forward, an optional final LayerNorm, last position, linear head) and says
//! why when it does not; `foresight-export convert` checks the extracted weights against tract and
//! onnxruntime before writing them (format `attention`).

use crate::contract::manifest::{Activation, AttentionSpec, NormPlacement};
use crate::error::{ModelError, Num};
use crate::infer::head::LinearHead;
use crate::infer::kernels::{vecmat, vecmat_strided};

const KIND: &str = "recommender";

#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A linear layer in ONNX `MatMul` layout: `weight` is `[inputs, outputs]` row-major.
#[derive(Debug, Clone)]
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Linear {
    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        vecmat(x, &self.weight, self.bias.len(), out);
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln1: Norm,
    qkv: Linear,
    proj: Linear,
    ln2: Norm,
    ff1: Linear,
    ff2: Linear,
}

/// The weights (see [`AttentionSpec::total`] for the blob order).
#[derive(Debug, Clone)]
pub struct AttentionModel {
    pub spec: AttentionSpec,
    embedding: Vec<f32>,
    positions: Vec<f32>,
    blocks: Vec<Block>,
    /// The final LayerNorm, when the model has one.
    ln_f: Option<Norm>,
    out: LinearHead,
}

fn run_err(detail: impl Into<String>) -> ModelError {
    ModelError::Run { model: KIND, detail: detail.into() }
}

/// 256 MB of f32: far beyond any recommender a browser should run (SASRec: 2 × 2 × 50 × 64).
const MAX_CACHE_FLOATS: usize = 64 << 20;

fn prepare_err(detail: impl Into<String>) -> ModelError {
    ModelError::Prepare { model: KIND, detail: detail.into() }
}

impl AttentionModel {
    pub fn new(spec: AttentionSpec, blob: &[f32]) -> Result<Self, ModelError> {
        let s = &spec;
        if s.items == 0
            || s.dim == 0
            || s.heads == 0
            || !s.dim.is_multiple_of(s.heads)
            || s.blocks == 0
            || s.ffn == 0
            || s.positions == 0
            || s.embedding_rows < s.items
        {
            return Err(prepare_err(format!("unusable attention shape ({})", shape(s))));
        }
        if ![s.embedding_scale, s.attention_scale, s.epsilon].iter().all(|v| v.is_finite()) || s.epsilon < 0.0 {
            return Err(prepare_err(format!(
                "unusable attention constants: embedding scale {}, attention scale {}, epsilon {}",
                Num(s.embedding_scale),
                Num(s.attention_scale),
                Num(s.epsilon)
            )));
        }
        let (Some(total), Some(z)) = (s.total(), s.block_sizes()) else {
            return Err(prepare_err(format!("attention shape ({}) is too large to address", shape(s))));
        };
        if blob.len() != total {
            return Err(prepare_err(format!("attention weights hold {} floats, the spec needs {total}", blob.len())));
        }
        // The key/value cache holds keys and values of every block at every position: bounded
        // here, so a crafted manifest is refused instead of exhausting memory at the first event.
        let cache = s.blocks.checked_mul(s.positions).and_then(|n| n.checked_mul(s.dim)).and_then(|n| n.checked_mul(2));
        if cache.is_none_or(|n| n > MAX_CACHE_FLOATS) {
            return Err(prepare_err(format!(
                "its key/value cache ({} blocks × {} positions × {} dims × 2) exceeds {MAX_CACHE_FLOATS} floats",
                s.blocks, s.positions, s.dim
            )));
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let v = blob[at..at + n].to_vec();
            at += n;
            v
        };
        let d = s.dim;
        let embedding = take(s.embedding_rows * d);
        let positions = take(s.positions * d);
        let mut blocks = Vec::with_capacity(s.blocks);
        for _ in 0..s.blocks {
            let ln1 = Norm { gamma: take(z[0]), beta: take(z[1]) };
            let qkv = Linear { weight: take(z[2]), bias: take(z[3]) };
            let proj = Linear { weight: take(z[4]), bias: take(z[5]) };
            let ln2 = Norm { gamma: take(z[6]), beta: take(z[7]) };
            let ff1 = Linear { weight: take(z[8]), bias: take(z[9]) };
            let ff2 = Linear { weight: take(z[10]), bias: take(z[11]) };
            blocks.push(Block { ln1, qkv, proj, ln2, ff1, ff2 });
        }
        let ln_f = s.final_norm.then(|| Norm { gamma: take(d), beta: take(d) });
        let head = take(d * s.items);
        let bias = take(s.items);
        let out = LinearHead::new(d, s.items, head, bias);
        Ok(AttentionModel { embedding, positions, blocks, ln_f, out, spec })
    }

    /// From the bundle part: little-endian f32 in blob order.
    pub fn from_bytes(spec: AttentionSpec, bytes: &[u8]) -> Result<Self, ModelError> {
        let floats = crate::infer::kernels::f32s_from_le(bytes).ok_or_else(|| prepare_err("attention weights are not whole float32s"))?;
        Self::new(spec, &floats)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut parts: Vec<&[f32]> = vec![&self.embedding, &self.positions];
        for b in &self.blocks {
            parts.extend([&b.ln1.gamma, &b.ln1.beta, &b.qkv.weight, &b.qkv.bias, &b.proj.weight, &b.proj.bias].map(Vec::as_slice));
            parts.extend([&b.ln2.gamma, &b.ln2.beta, &b.ff1.weight, &b.ff1.bias, &b.ff2.weight, &b.ff2.bias].map(Vec::as_slice));
        }
        if let Some(n) = &self.ln_f {
            parts.extend([n.gamma.as_slice(), n.beta.as_slice()]);
        }
        parts.extend([self.out.matrix(), self.out.bias()]);
        parts.iter().flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes())).collect()
    }

    /// The scoring head (visitor vector → item scores).
    pub fn head(&self) -> &LinearHead {
        &self.out
    }

    /// The whole-sequence answer (what the graph computes), from an empty cache.
    pub fn scores_into(&self, sequence: &[usize], scores: &mut Vec<f32>) -> Result<(), ModelError> {
        let mut cache = KvCache::default();
        let h = cache.advance(self, sequence)?;
        self.out.scores_into(h, scores);
        Ok(())
    }

    /// Position `p` holding `item`: appends its keys and values to the cache, and with `last`
    /// writes the visitor vector (its output, through the final LayerNorm when there is one).
    fn position(&self, p: usize, item: usize, cache: &mut KvCache, last: bool) {
        let s = &self.spec;
        let (d, dh, cap) = (s.dim, s.dim / s.heads, s.positions);
        let KvCache { keys, values, hidden, work, .. } = cache;
        let Work { x, y, qkv, att, mix, ff } = work;
        x.clear();
        let (e, pos) = (&self.embedding[item * d..(item + 1) * d], &self.positions[p * d..(p + 1) * d]);
        x.extend(e.iter().zip(pos).map(|(&e, &q)| e * s.embedding_scale + q));
        let post = s.norm == NormPlacement::Post;
        for (b, blk) in self.blocks.iter().enumerate() {
            // Pre-LN: the attention reads LN1(x). Post-LN: it reads x; LN1 follows the add.
            let input: &[f32] = if post {
                x
            } else {
                layer_norm(x, &blk.ln1, s.epsilon, y);
                y
            };
            blk.qkv.apply(input, qkv);
            mix.clear();
            mix.resize(d, 0.0);
            for h in 0..s.heads {
                let (kt, v) = (&mut keys[b * s.heads + h], &mut values[b * s.heads + h]);
                for (i, &x) in qkv[d + h * dh..d + (h + 1) * dh].iter().enumerate() {
                    kt[i * cap + p] = x;
                }
                v[p * dh..(p + 1) * dh].copy_from_slice(&qkv[2 * d + h * dh..2 * d + (h + 1) * dh]);
                // q·k for every kept position at once (keys transposed), then the softmax
                // weights times the values (position-major).
                att.clear();
                att.resize(p + 1, 0.0);
                vecmat_strided(&qkv[h * dh..(h + 1) * dh], kt, cap, p + 1, att);
                att.iter_mut().for_each(|a| *a *= s.attention_scale);
                softmax(att);
                vecmat(att, &v[..(p + 1) * dh], dh, &mut mix[h * dh..(h + 1) * dh]);
            }
            blk.proj.apply(mix, y);
            x.iter_mut().zip(y.iter()).for_each(|(x, y)| *x += y);
            if post {
                layer_norm(x, &blk.ln1, s.epsilon, y);
                x.clone_from(y);
                blk.ff1.apply(x, ff);
            } else {
                layer_norm(x, &blk.ln2, s.epsilon, y);
                blk.ff1.apply(y, ff);
            }
            activate(s.activation, ff);
            blk.ff2.apply(ff, y);
            x.iter_mut().zip(y.iter()).for_each(|(x, y)| *x += y);
            if post {
                layer_norm(x, &blk.ln2, s.epsilon, y);
                x.clone_from(y);
            }
        }
        if last {
            match &self.ln_f {
                Some(n) => layer_norm(x, n, s.epsilon, hidden),
                None => hidden.clone_from(x),
            }
        }
    }
}

/// The spec's sizes, for messages. (Not `{:?}`: the spec's floats would link `core::fmt`'s float
/// printer into the core; `error::Num` says why.)
fn shape(s: &AttentionSpec) -> String {
    format!(
        "{} items, {} embedding rows, dim {}, {} heads, {} blocks, ffn {}, {} positions",
        s.items, s.embedding_rows, s.dim, s.heads, s.blocks, s.ffn, s.positions
    )
}

fn layer_norm(x: &[f32], n: &Norm, eps: f32, out: &mut Vec<f32>) {
    let len = x.len() as f32;
    let mean = x.iter().sum::<f32>() / len;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len;
    let inv = 1.0 / (var + eps).sqrt();
    out.clear();
    out.extend(x.iter().zip(&n.gamma).zip(&n.beta).map(|((&v, &g), &b)| (v - mean) * inv * g + b));
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    v.iter_mut().for_each(|x| *x -= max);
    crate::infer::kernels::exp_in_place(v);
    let sum: f32 = v.iter().sum();
    v.iter_mut().for_each(|x| *x /= sum);
}

fn activate(a: Activation, v: &mut [f32]) {
    match a {
        Activation::GeluErf => crate::infer::kernels::gelu_erf_in_place(v),
        Activation::GeluTanh => {
            let c = (2.0 / std::f32::consts::PI).sqrt();
            v.iter_mut().for_each(|x| *x = 0.5 * *x * (1.0 + (c * (*x + 0.044715 * *x * *x * *x)).tanh()))
        }
        Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
    }
}

/// One visitor's keys and values per block, head and position, for the items consumed so far.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    consumed: Vec<usize>,
    /// Per block and head (`block · heads + head`), room for every position, allocated once:
    /// keys transposed (`dim/heads × positions`), values position-major (`positions ×
    /// dim/heads`). Entries past `consumed.len()` are stale.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// The visitor vector after the last consumed position.
    hidden: Vec<f32>,
    work: Work,
    /// Positions computed by the last `advance` (0 when nothing changed): for tests and
    /// benchmarks.
    pub last_steps: usize,
}

/// Reused buffers of one position.
#[derive(Debug, Clone, Default)]
struct Work {
    x: Vec<f32>,
    y: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    mix: Vec<f32>,
    ff: Vec<f32>,
}

impl KvCache {
    /// Brings the cache to `sequence` (oldest first) and returns the visitor vector: positions
    /// shared with what was consumed are kept, the rest computed.
    pub fn advance(&mut self, model: &AttentionModel, sequence: &[usize]) -> Result<&[f32], ModelError> {
        let s = &model.spec;
        if sequence.is_empty() {
            return Err(run_err("the item sequence is empty"));
        }
        if sequence.len() > s.positions {
            return Err(run_err(format!("{} items, but the model's learned positions stop at {}", sequence.len(), s.positions)));
        }
        if let Some(&bad) = sequence.iter().find(|&&i| i >= s.embedding_rows) {
            return Err(run_err(format!("item index {bad} is outside the embedding table ({} rows)", s.embedding_rows)));
        }
        let room = s.dim / s.heads * s.positions;
        if self.keys.len() != s.blocks * s.heads || self.keys.first().is_some_and(|k| k.len() != room) {
            let fresh = vec![vec![0f32; room]; s.blocks * s.heads];
            *self = KvCache { keys: fresh.clone(), values: fresh, ..KvCache::default() };
        }
        let shared = self.consumed.iter().zip(sequence).take_while(|(a, b)| a == b).count();
        if shared == sequence.len() && shared == self.consumed.len() && !self.hidden.is_empty() {
            self.last_steps = 0;
            return Ok(&self.hidden);
        }
        // The visitor vector is the last position's: a shorter sequence recomputes its last.
        let start = shared.min(sequence.len() - 1);
        self.consumed.truncate(start);
        self.hidden.clear();
        for (p, &item) in sequence.iter().enumerate().skip(start) {
            model.position(p, item, self, p + 1 == sequence.len());
            self.consumed.push(item);
        }
        self.last_steps = sequence.len() - start;
        Ok(&self.hidden)
    }

    /// The visitor vector after the consumed sequence.
    pub fn hidden(&self) -> Option<&[f32]> {
        (!self.hidden.is_empty()).then_some(self.hidden.as_slice())
    }

    pub fn consumed(&self) -> &[usize] {
        &self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dim: usize, blocks: usize, positions: usize, ffn: usize) -> AttentionSpec {
        AttentionSpec {
            items: 3,
            embedding_rows: 4,
            dim,
            heads: 1,
            blocks,
            ffn,
            positions,
            embedding_scale: 1.0,
            attention_scale: 1.0,
            epsilon: 1e-5,
            activation: Activation::Relu,
            norm: NormPlacement::Pre,
            final_norm: true,
        }
    }

    #[test]
    fn shapes_whose_sizes_overflow_are_refused_not_wrapped() {
        for s in [spec(1 << 33, 1, 1, 1), spec(2, usize::MAX / 4, 1, 1), spec(2, 1, usize::MAX / 2, 1), spec(2, 1, 1, usize::MAX / 2)] {
            let err = AttentionModel::new(s, &[0.0; 64]).expect_err("refused");
            assert!(err.to_string().contains("too large to address"), "{err}");
        }
    }

    #[test]
    fn a_cache_beyond_the_bound_is_refused_before_any_event() {
        // A small blob whose cache would be blocks × positions × dim × 2 = 2^28 floats.
        let s = spec(1, 1 << 10, 1 << 17, 1);
        let total = s.total().expect("fits");
        let err = AttentionModel::new(s, &vec![0.0; total]).expect_err("refused");
        assert!(err.to_string().contains("key/value cache"), "{err}");
    }
}
