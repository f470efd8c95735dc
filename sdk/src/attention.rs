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
//! (pre-LayerNorm blocks, fused QKV projection, attention written with MatMul/Softmax, GELU or
//! ReLU feed-forward, final LayerNorm, last position, linear head) and says why when it does
//! not; `foresight-export convert` checks the extracted weights against tract and
//! onnxruntime before writing them (format `attention`).

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::head::LinearHead;
use crate::kernels::{vecmat, vecmat_strided};

const KIND: &str = "recommender";

/// The feed-forward's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x·Φ(x)` with the exact normal CDF (PyTorch's default `gelu`, ONNX `Erf`).
    GeluErf,
    /// The tanh approximation of GELU.
    GeluTanh,
    Relu,
}

/// Shapes and constants of an attention recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttentionSpec {
    /// Catalog items scored by the head.
    pub items: usize,
    /// Rows of the embedding table (≥ items; extra rows are padding the SDK never feeds).
    pub embedding_rows: usize,
    pub dim: usize,
    pub heads: usize,
    pub blocks: usize,
    /// Width of the feed-forward's hidden layer.
    pub ffn: usize,
    /// Learned positions: the longest sequence the model reads.
    pub positions: usize,
    /// The embedding is multiplied by this before the positions are added (SASRec: √dim).
    pub embedding_scale: f32,
    /// Attention logits are `q·k · attention_scale` (usually `1/√(dim/heads)`).
    pub attention_scale: f32,
    /// The LayerNorms' epsilon.
    pub epsilon: f32,
    pub activation: Activation,
}

impl AttentionSpec {
    /// Float counts of one block, in blob order: ln1 γ, β; QKV weight [dim, 3·dim], bias;
    /// projection [dim, dim], bias; ln2 γ, β; ff1 [dim, ffn], bias; ff2 [ffn, dim], bias.
    fn block_sizes(&self) -> [usize; 12] {
        let (d, f) = (self.dim, self.ffn);
        [d, d, d * 3 * d, 3 * d, d * d, d, d, d, d * f, f, f * d, d]
    }

    /// Float count of the whole blob: embedding, positions, blocks, final LayerNorm, head
    /// [dim, items], item bias.
    fn total(&self) -> usize {
        let d = self.dim;
        self.embedding_rows * d + self.positions * d + self.blocks * self.block_sizes().iter().sum::<usize>() + 2 * d + d * self.items + self.items
    }
}

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
    ln_f: Norm,
    out: LinearHead,
}

fn run_err(detail: impl Into<String>) -> ModelError {
    ModelError::Run { model: KIND, detail: detail.into() }
}

fn prepare_err(detail: impl Into<String>) -> ModelError {
    ModelError::Prepare { model: KIND, detail: detail.into() }
}

impl AttentionModel {
    pub fn new(spec: AttentionSpec, blob: &[f32]) -> Result<Self, ModelError> {
        let s = &spec;
        if s.items == 0 || s.dim == 0 || s.heads == 0 || !s.dim.is_multiple_of(s.heads) || s.blocks == 0 || s.ffn == 0 || s.positions == 0 || s.embedding_rows < s.items {
            return Err(prepare_err(format!("unusable attention shape {spec:?}")));
        }
        if ![s.embedding_scale, s.attention_scale, s.epsilon].iter().all(|v| v.is_finite()) || s.epsilon < 0.0 {
            return Err(prepare_err(format!("unusable attention constants {spec:?}")));
        }
        if blob.len() != s.total() {
            return Err(prepare_err(format!("attention weights hold {} floats, the spec needs {}", blob.len(), s.total())));
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
            let z = s.block_sizes();
            let ln1 = Norm { gamma: take(z[0]), beta: take(z[1]) };
            let qkv = Linear { weight: take(z[2]), bias: take(z[3]) };
            let proj = Linear { weight: take(z[4]), bias: take(z[5]) };
            let ln2 = Norm { gamma: take(z[6]), beta: take(z[7]) };
            let ff1 = Linear { weight: take(z[8]), bias: take(z[9]) };
            let ff2 = Linear { weight: take(z[10]), bias: take(z[11]) };
            blocks.push(Block { ln1, qkv, proj, ln2, ff1, ff2 });
        }
        let ln_f = Norm { gamma: take(d), beta: take(d) };
        let head = take(d * s.items);
        let bias = take(s.items);
        let out = LinearHead::new(d, s.items, head, bias);
        Ok(AttentionModel { embedding, positions, blocks, ln_f, out, spec })
    }

    /// From the bundle part: little-endian f32 in blob order.
    pub fn from_bytes(spec: AttentionSpec, bytes: &[u8]) -> Result<Self, ModelError> {
        let floats = crate::kernels::f32s_from_le(bytes).ok_or_else(|| prepare_err("attention weights are not whole float32s"))?;
        Self::new(spec, &floats)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut parts: Vec<&[f32]> = vec![&self.embedding, &self.positions];
        for b in &self.blocks {
            parts.extend([&b.ln1.gamma, &b.ln1.beta, &b.qkv.weight, &b.qkv.bias, &b.proj.weight, &b.proj.bias].map(Vec::as_slice));
            parts.extend([&b.ln2.gamma, &b.ln2.beta, &b.ff1.weight, &b.ff1.bias, &b.ff2.weight, &b.ff2.bias].map(Vec::as_slice));
        }
        parts.extend([self.ln_f.gamma.as_slice(), self.ln_f.beta.as_slice(), self.out.matrix(), self.out.bias()]);
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
    /// writes the visitor vector (the final LayerNorm of its output).
    fn position(&self, p: usize, item: usize, cache: &mut KvCache, last: bool) {
        let s = &self.spec;
        let (d, dh, cap) = (s.dim, s.dim / s.heads, s.positions);
        let KvCache { keys, values, hidden, work, .. } = cache;
        let Work { x, y, qkv, att, mix, ff } = work;
        x.clear();
        let (e, pos) = (&self.embedding[item * d..(item + 1) * d], &self.positions[p * d..(p + 1) * d]);
        x.extend(e.iter().zip(pos).map(|(&e, &q)| e * s.embedding_scale + q));
        for (b, blk) in self.blocks.iter().enumerate() {
            layer_norm(x, &blk.ln1, s.epsilon, y);
            blk.qkv.apply(y, qkv);
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
            layer_norm(x, &blk.ln2, s.epsilon, y);
            blk.ff1.apply(y, ff);
            activate(s.activation, ff);
            blk.ff2.apply(ff, y);
            x.iter_mut().zip(y.iter()).for_each(|(x, y)| *x += y);
        }
        if last {
            layer_norm(x, &self.ln_f, s.epsilon, hidden);
        }
    }
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
    crate::kernels::exp_in_place(v);
    let sum: f32 = v.iter().sum();
    v.iter_mut().for_each(|x| *x /= sum);
}

fn activate(a: Activation, v: &mut [f32]) {
    match a {
        Activation::GeluErf => crate::kernels::gelu_erf_in_place(v),
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

#[cfg(feature = "onnx")]
pub use extract::from_onnx;

#[cfg(feature = "onnx")]
mod extract {
    //! Recognising a SASRec-style graph, walking back from the scoring head.

    use tract_onnx::pb;

    use super::{Activation, AttentionModel, AttentionSpec};
    use crate::graph::{attr, decode, floats, graph_of, head_of, ints, output_name, Graph, ScoringHead};

    type R<T> = Result<T, String>;

    /// What computes `name`, skipping nodes that pass their input through.
    fn producer<'a>(g: &Graph<'a>, name: &str, what: &str) -> R<&'a pb::NodeProto> {
        let missing = || format!("{what} is not computed by a node");
        let mut n = g.node(name).ok_or_else(missing)?;
        for _ in 0..64 {
            if !matches!(n.op_type.as_str(), "Identity" | "Dropout") {
                return well_formed(n);
            }
            n = g.node(n.input.first().ok_or_else(missing)?).ok_or_else(missing)?;
        }
        Err(format!("{what} passes through a cycle of Identity nodes"))
    }

    /// `n` when it has the inputs its operator needs, so the walk can index them.
    fn well_formed(n: &pb::NodeProto) -> R<&pb::NodeProto> {
        let needs = match n.op_type.as_str() {
            "Where" | "Slice" => 3,
            "MatMul" | "Add" | "Mul" | "Div" | "Gather" | "Reshape" | "LayerNormalization" => 2,
            _ => 1,
        };
        if n.input.len() < needs {
            return Err(format!("node `{}` ({}) has {} inputs; the operator needs {needs}", n.name, n.op_type, n.input.len()));
        }
        Ok(n)
    }

    struct Lin {
        input: String,
        rows: usize,
        cols: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    }

    /// `MatMul(x, W) [+ b]` with constant `W` `[rows, cols]` and `b` `[cols]`, bias on either side.
    fn linear(g: &Graph<'_>, name: &str, what: &str) -> R<Lin> {
        let n = producer(g, name, what)?;
        let (mm, bias) = match n.op_type.as_str() {
            "Add" => {
                let pick = |c: usize| -> Option<(&pb::NodeProto, Vec<f32>)> {
                    let b = g.floats(&n.input[c])?;
                    let m = producer(g, &n.input[1 - c], what).ok()?;
                    (m.op_type == "MatMul").then_some((m, b))
                };
                let (m, b) = pick(1).or_else(|| pick(0)).ok_or_else(|| format!("{what} is an Add that is not MatMul + constant bias"))?;
                (m, Some(b))
            }
            "MatMul" => (n, None),
            other => return Err(format!("{what} comes from {other}, not a linear layer (MatMul + bias)")),
        };
        let w = g.constant(&mm.input[1]).ok_or_else(|| format!("the weight of {what} is not a constant"))?;
        if w.dims.len() != 2 {
            return Err(format!("the weight of {what} is not 2-D"));
        }
        let (rows, cols) = (w.dims[0] as usize, w.dims[1] as usize);
        let weight = floats(w).filter(|v| v.len() == rows * cols).ok_or_else(|| format!("the weight of {what} is not float32 of its shape"))?;
        let bias = bias.unwrap_or_else(|| vec![0.0; cols]);
        if bias.len() != cols {
            return Err(format!("the bias of {what} has {} values for {cols} outputs", bias.len()));
        }
        Ok(Lin { input: mm.input[0].clone(), rows, cols, weight, bias })
    }

    /// `LayerNormalization` over the last axis: (its input, γ, β, ε).
    fn layer_norm(g: &Graph<'_>, name: &str, what: &str) -> R<(String, Vec<f32>, Vec<f32>, f32)> {
        let n = producer(g, name, what)?;
        if n.op_type != "LayerNormalization" {
            return Err(format!("{what} comes from {}, not LayerNormalization", n.op_type));
        }
        if attr(n, "axis").is_some_and(|a| a.i != -1 && a.i != 2) {
            return Err(format!("{what} normalizes an axis other than the last"));
        }
        let gamma = g.floats(&n.input[1]).ok_or_else(|| format!("the scale of {what} is not a float32 constant"))?;
        let beta = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(b) => g.floats(b).ok_or_else(|| format!("the bias of {what} is not a float32 constant"))?,
            None => vec![0.0; gamma.len()],
        };
        let eps = attr(n, "epsilon").map_or(1e-5, |a| a.f);
        Ok((n.input[0].clone(), gamma, beta, eps))
    }

    /// `x + branch` where the branch ends in a linear layer: (x, the branch's output name).
    fn residual<'a>(g: &Graph<'a>, name: &'a str, what: &str) -> R<(&'a str, &'a str)> {
        let n = producer(g, name, what)?;
        if n.op_type != "Add" || n.input.len() != 2 {
            return Err(format!("{what} is {}, not a residual Add", n.op_type));
        }
        let is_linear = |i: usize| g.constant(&n.input[i]).is_none() && linear(g, &n.input[i], what).is_ok();
        match (is_linear(0), is_linear(1)) {
            (false, true) => Ok((&n.input[0], &n.input[1])),
            (true, false) => Ok((&n.input[1], &n.input[0])),
            _ => Err(format!("{what} is not a residual Add of the stream and a linear branch")),
        }
    }

    /// Every node that `from` depends on, back to (not through) LayerNormalization nodes.
    fn subgraph<'a>(g: &Graph<'a>, from: &str) -> Vec<&'a pb::NodeProto> {
        let mut seen: Vec<&pb::NodeProto> = Vec::new();
        let mut todo = vec![from.to_owned()];
        while let Some(name) = todo.pop() {
            let Some(n) = g.node(&name).and_then(|n| well_formed(n).ok()) else { continue };
            if seen.iter().any(|s| std::ptr::eq(*s, n)) {
                continue;
            }
            seen.push(n);
            if n.op_type != "LayerNormalization" {
                todo.extend(n.input.iter().filter(|i| !i.is_empty() && g.constant(i).is_none()).cloned());
            }
        }
        seen
    }

    struct Attn {
        ln_input: String,
        gamma: Vec<f32>,
        beta: Vec<f32>,
        eps: f32,
        qkv: Lin,
        heads: usize,
        scale: f32,
    }

    /// The attention between a block's first LayerNorm and its output projection's input.
    fn attention(g: &Graph<'_>, proj_input: &str, dim: usize) -> R<Attn> {
        let nodes = subgraph(g, proj_input);
        let ops = |t: &str| nodes.iter().filter(|n| n.op_type == t).count();
        if ops("Softmax") != 1 {
            return Err(format!("the attention has {} Softmax nodes (one, over the keys, is recognised)", ops("Softmax")));
        }
        let norms: Vec<_> = nodes.iter().filter(|n| n.op_type == "LayerNormalization").collect();
        if norms.len() != 1 {
            return Err("the attention does not read one LayerNorm (pre-LN blocks are recognised)".into());
        }
        let (ln_input, gamma, beta, eps) = layer_norm(g, &norms[0].output[0], "the attention's LayerNorm")?;
        let split = nodes.iter().find(|n| n.op_type == "Split").ok_or("the queries, keys and values are not one projection Split in three (separate projections are not recognised)")?;
        let qkv = linear(g, &split.input[0], "the QKV projection")?;
        if qkv.rows != dim || qkv.cols != 3 * dim {
            return Err(format!("the QKV projection is {}×{}, expected {dim}×{}", qkv.rows, qkv.cols, 3 * dim));
        }
        if split.output.len() != 3 {
            return Err("the QKV Split does not have three outputs".into());
        }
        // Heads: the Reshape of the projections to [batch, seq, heads, dim/heads].
        let mut heads = None;
        for n in nodes.iter().filter(|n| n.op_type == "Reshape") {
            let shape = match g.constant(&n.input[1]).and_then(ints) {
                Some(s) => s,
                None => match g.node(&n.input[1]) {
                    Some(c) if c.op_type == "Concat" => c.input.iter().map(|i| g.constant(i).and_then(ints).and_then(|v| (v.len() == 1).then(|| v[0])).unwrap_or(0)).collect(),
                    _ => continue,
                },
            };
            if let [.., h, w] = shape[..] {
                if shape.len() == 4 && h > 0 && w > 0 && (h * w) as usize == dim {
                    if heads.is_some_and(|x| x != h as usize) {
                        return Err("the attention reshapes to different head counts".into());
                    }
                    heads = Some(h as usize);
                }
            }
        }
        let heads = heads.ok_or("the number of heads could not be read from a Reshape to [batch, seq, heads, dim/heads]")?;
        // The logits' scale: a scalar Mul or Div between the q·k MatMul and the Softmax.
        let softmax = nodes.iter().find(|n| n.op_type == "Softmax").ok_or("no Softmax")?;
        if attr(softmax, "axis").is_some_and(|a| a.i != -1 && a.i != 3) {
            return Err("the Softmax is not over the last axis".into());
        }
        let mut scale = 1f32;
        let mut name = softmax.input[0].as_str();
        for step in 0.. {
            if step == 64 {
                return Err("the attention logits pass through a cycle".into());
            }
            let n = producer(g, name, "the attention logits")?;
            match n.op_type.as_str() {
                "MatMul" => break,
                "Where" if n.input.len() == 3 => name = if g.constant(&n.input[1]).is_some() { &n.input[2] } else { &n.input[1] },
                "Mul" | "Div" => {
                    let (c, other) = match (g.scalar(&n.input[1]), g.scalar(&n.input[0])) {
                        (Some(c), _) => (c, &n.input[0]),
                        (None, Some(c)) if n.op_type == "Mul" => (c, &n.input[1]),
                        _ => return Err("the attention logits are scaled by a non-constant".into()),
                    };
                    scale *= if n.op_type == "Mul" { c } else { 1.0 / c };
                    name = other;
                }
                "Cast" => name = &n.input[0],
                other => return Err(format!("{other} between the q·k MatMul and the Softmax is not recognised (a causal Where mask and a scale are)")),
            }
        }
        Ok(Attn { ln_input, gamma, beta, eps, qkv, heads, scale })
    }

    /// The activation between ff1's output and ff2's input, from the ops on the way.
    fn activation(g: &Graph<'_>, ff2_input: &str, ff1_out_is: impl Fn(&str) -> bool) -> R<(String, Activation)> {
        let mut ops = Vec::new();
        let mut todo = vec![ff2_input.to_owned()];
        let mut ff1 = None;
        let mut steps = 0;
        while let Some(name) = todo.pop() {
            steps += 1;
            if steps > 32 {
                return Err("the feed-forward's activation is not recognised (too many ops)".into());
            }
            if ff1_out_is(&name) {
                ff1 = Some(name);
                continue;
            }
            let n = producer(g, &name, "the feed-forward's activation")?;
            ops.push(n.op_type.as_str());
            if n.op_type == "Gelu" {
                ops.push(if attr(n, "approximate").is_some_and(|a| a.s == b"tanh") { "Tanh" } else { "Erf" });
            }
            todo.extend(n.input.iter().filter(|i| !i.is_empty() && g.constant(i).is_none()).cloned());
        }
        let ff1 = ff1.ok_or("the feed-forward's second layer does not read its first")?;
        let act = if ops.contains(&"Erf") {
            Activation::GeluErf
        } else if ops.contains(&"Tanh") {
            Activation::GeluTanh
        } else if ops == ["Relu"] {
            Activation::Relu
        } else {
            return Err(format!("the feed-forward's activation ({}) is not GELU or ReLU", ops.join(", ")));
        };
        Ok((ff1, act))
    }

    struct BlockW {
        ln1: (Vec<f32>, Vec<f32>),
        qkv: Lin,
        proj: Lin,
        ln2: (Vec<f32>, Vec<f32>),
        ff1: Lin,
        ff2: Lin,
        eps: f32,
        heads: usize,
        scale: f32,
        act: Activation,
    }

    /// The weights of a SASRec-style graph, or why the graph is not one.
    pub fn from_onnx(bytes: &[u8], output: Option<&str>) -> Result<AttentionModel, String> {
        let model = decode(bytes)?;
        let g = graph_of(&model)?;
        let ScoringHead { input: head_in, hidden: dim, items, matrix: head, bias, .. } = head_of(&g, output_name(&model, output)?)?;
        let bias = bias.unwrap_or_else(|| vec![0.0; items]);

        // The last position: Gather(axis 1, index -1) of the final LayerNorm.
        let last = producer(&g, &head_in, "the scoring head's input")?;
        let index = g.constant(last.input.get(1).map_or("", String::as_str)).and_then(ints);
        if last.op_type != "Gather" || attr(last, "axis").map_or(0, |a| a.i) != 1 || index.as_deref() != Some(&[-1]) {
            return Err(format!("the scoring head reads {}, not the last position (Gather axis 1, index -1)", last.op_type));
        }
        let (mut stream, gf, bf, eps_f) = layer_norm(&g, &last.input[0], "the final LayerNorm")?;

        let mut blocks = Vec::new();
        let (emb_name, scale_e, pos, input) = loop {
            if let Some(found) = embedding_input(&g, &stream)? {
                break found;
            }
            if blocks.len() >= 64 {
                return Err("more than 64 blocks".into());
            }
            let what = format!("block {} (from the end)", blocks.len() + 1);
            let (mid, ff_out) = residual(&g, &stream, &format!("the output of {what}"))?;
            let ff2 = linear(&g, ff_out, &format!("the feed-forward output of {what}"))?;
            // ff1's output is an Add/MatMul whose producer chain is a linear layer from the LN.
            let is_ff1 = |n: &str| linear(&g, n, "ff1").is_ok_and(|l| l.cols == ff2.rows && layer_norm(&g, &l.input, "ln2").is_ok());
            let (ff1_out, act) = activation(&g, &ff2.input, is_ff1)?;
            let ff1 = linear(&g, &ff1_out, &format!("the feed-forward input of {what}"))?;
            let (ln2_in, g2, b2, eps2) = layer_norm(&g, &ff1.input, &format!("the feed-forward's LayerNorm in {what}"))?;
            if ln2_in != mid {
                return Err(format!("the feed-forward of {what} does not read the residual stream through its LayerNorm (post-LN blocks are not recognised)"));
            }
            let (x_in, att_out) = residual(&g, mid, &format!("the attention output of {what}"))?;
            let proj = linear(&g, att_out, &format!("the attention projection of {what}"))?;
            if proj.rows != dim || proj.cols != dim || ff2.cols != dim || ff1.rows != dim {
                return Err(format!("the layer shapes of {what} do not match the head's width {dim}"));
            }
            let a = attention(&g, &proj.input, dim).map_err(|e| format!("{what}: {e}"))?;
            if a.ln_input != x_in {
                return Err(format!("the attention of {what} does not read the residual stream through its LayerNorm"));
            }
            if (a.eps - eps2).abs() > 0.0 || (a.eps - eps_f).abs() > 0.0 {
                return Err("the LayerNorms use different epsilons".into());
            }
            blocks.push(BlockW { ln1: (a.gamma, a.beta), qkv: a.qkv, proj, ln2: (g2, b2), ff1, ff2, eps: a.eps, heads: a.heads, scale: a.scale, act });
            stream = x_in.to_owned();
        };
        blocks.reverse();
        let Some(first) = blocks.first() else { return Err("no attention block before the final LayerNorm".into()) };
        if blocks.iter().any(|b| b.heads != first.heads || b.scale != first.scale || b.act != first.act || b.ff1.cols != first.ff1.cols) {
            return Err("the blocks differ in heads, scale, activation or width (one shape for all is recognised)".into());
        }
        if !g.inputs.contains(&input.as_str()) {
            return Err("the embedding lookup does not read the graph's input".into());
        }
        let emb_t = g.constant(&emb_name).ok_or("the embedding table is not a constant")?;
        if emb_t.dims.len() != 2 || emb_t.dims[1] as usize != dim {
            return Err(format!("the embedding table is not [rows, {dim}]"));
        }
        let embedding = floats(emb_t).ok_or("the embedding table is not float32")?;
        let pos_t = g.constant(&pos).ok_or("the positions are not a constant")?;
        if pos_t.dims.len() != 2 || pos_t.dims[1] as usize != dim {
            return Err(format!("the learned positions are not [positions, {dim}]"));
        }
        let positions = floats(pos_t).ok_or("the positions are not float32")?;
        let spec = AttentionSpec {
            items,
            embedding_rows: emb_t.dims[0] as usize,
            dim,
            heads: first.heads,
            blocks: blocks.len(),
            ffn: first.ff1.cols,
            positions: pos_t.dims[0] as usize,
            embedding_scale: scale_e,
            attention_scale: first.scale,
            epsilon: first.eps,
            activation: first.act,
        };
        let mut blob = embedding;
        blob.extend(positions);
        for b in blocks {
            for part in [b.ln1.0, b.ln1.1, b.qkv.weight, b.qkv.bias, b.proj.weight, b.proj.bias, b.ln2.0, b.ln2.1, b.ff1.weight, b.ff1.bias, b.ff2.weight, b.ff2.bias] {
                blob.extend(part);
            }
        }
        for part in [gf, bf, head, bias] {
            blob.extend(part);
        }
        AttentionModel::new(spec, &blob).map_err(|e| e.to_string())
    }

    /// `Gather(embedding, input) [· scale] + Slice(positions, 0, len)`: (embedding, scale,
    /// positions, input), or `None` when `name` is not that (it is then a block's output).
    fn embedding_input(g: &Graph<'_>, name: &str) -> R<Option<(String, f32, String, String)>> {
        let n = producer(g, name, "the residual stream")?;
        if n.op_type != "Add" || n.input.len() != 2 {
            return Ok(None);
        }
        let slice_of = |i: usize| producer(g, &n.input[i], "positions").ok().filter(|s| s.op_type == "Slice");
        let (slice, other) = match (slice_of(0), slice_of(1)) {
            (Some(s), None) => (s, &n.input[1]),
            (None, Some(s)) => (s, &n.input[0]),
            _ => return Ok(None),
        };
        let starts = g.constant(&slice.input[1]).and_then(ints);
        let axes = slice.input.get(3).and_then(|a| g.constant(a)).and_then(ints);
        if starts.as_deref() != Some(&[0]) || axes.as_deref().is_some_and(|a| a != [0]) || slice.input.get(4).and_then(|s| g.constant(s)).and_then(ints).is_some_and(|s| s != [1]) {
            return Err("the learned positions are not sliced from the first (Slice starts 0, axis 0, step 1)".into());
        }
        let mut scale = 1f32;
        let mut e = producer(g, other, "the item embedding")?;
        for step in 0.. {
            if !matches!(e.op_type.as_str(), "Mul" | "Div") {
                break;
            }
            if step == 64 {
                return Err("the item embedding passes through a cycle".into());
            }
            let (c, rest) = match (g.scalar(&e.input[1]), g.scalar(&e.input[0])) {
                (Some(c), _) => (c, &e.input[0]),
                (None, Some(c)) if e.op_type == "Mul" => (c, &e.input[1]),
                _ => return Err("the item embedding is scaled by a non-constant".into()),
            };
            scale *= if e.op_type == "Mul" { c } else { 1.0 / c };
            e = producer(g, rest, "the item embedding")?;
        }
        if e.op_type != "Gather" || attr(e, "axis").is_some_and(|a| a.i != 0) {
            return Err(format!("the item embedding comes from {}, not an embedding lookup (Gather on axis 0)", e.op_type));
        }
        Ok(Some((e.input[0].clone(), scale, slice.input[0].clone(), e.input[1].clone())))
    }
}
