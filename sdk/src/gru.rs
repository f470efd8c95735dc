//! GRU4Rec-style recommenders on the SDK's own kernels, with incremental session state.
//!
//! A session recommender of the shape `Gather(embedding) → GRU → last hidden → MatMul + bias`
//! recomputes the whole sequence on every call when run as a graph. Events arrive one at a
//! time, so the SDK keeps the hidden state instead: one GRU step per new event (3H×(D+H)
//! multiply-adds) and the scoring head (H×items) — work independent of the history's length.
//!
//! `GruModel::from_onnx` recognises the pattern (both PyTorch exporters and hand-built graphs)
//! and says why when it does not; `foresight-export convert` stores the weights in the bundle
//! (format `gru`), checks them against tract and onnxruntime, and falls back to NNEF otherwise.
//! The kernels are plain Rust written so LLVM vectorises them (eight independent lanes per
//! reduction, contiguous axpy in the head), which on wasm32 with `+simd128` gives SIMD code.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

const KIND: &str = "recommender";

/// Shapes and options of a GRU recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GruSpec {
    /// Catalog items scored by the head.
    pub items: usize,
    /// Rows of the embedding table (≥ items; extra rows are padding the SDK never feeds).
    pub embedding_rows: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    /// ONNX's `linear_before_reset` (PyTorch exports 1).
    pub linear_before_reset: bool,
}

impl GruSpec {
    /// Float counts of the weight blob, in order: embedding, W, R, B, head, bias.
    fn sizes(&self) -> [usize; 6] {
        let (d, h) = (self.input_size, self.hidden_size);
        [self.embedding_rows * d, 3 * h * d, 3 * h * h, 6 * h, h * self.items, self.items]
    }
}

/// The weights, in ONNX's layouts: `w` [3H, D] and `r` [3H, H] with gates z, r, h; `b` =
/// [Wb (3H), Rb (3H)]; `head` [H, items]; `bias` [items].
#[derive(Debug, Clone)]
pub struct GruModel {
    pub spec: GruSpec,
    embedding: Vec<f32>,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Vec<f32>,
    head: Vec<f32>,
    bias: Vec<f32>,
    /// What [`GruModel::top_k_into`] needs, built on its first call (the SDK's own
    /// `recommend` scores every item exactly and never pays for it).
    selection: std::sync::OnceLock<Selector>,
}

/// The head in i16 (`crate::head`) and item-major (`items × hidden`): rescoring a few items
/// reads a few rows instead of a strided column each (2 MB for the 5,000-item fixture).
#[derive(Debug, Clone)]
struct Selector {
    quick: crate::head::QuantizedHead,
    rows: Vec<f32>,
}

/// Reused buffers of one step.
#[derive(Debug, Clone, Default)]
struct StepScratch {
    gx: Vec<f32>,
    gh: Vec<f32>,
    rh: Vec<f32>,
}

fn run_err(detail: impl Into<String>) -> ModelError {
    ModelError::Run { model: KIND, detail: detail.into() }
}

impl GruModel {
    pub fn new(spec: GruSpec, blob: &[f32]) -> Result<Self, ModelError> {
        let sizes = spec.sizes();
        let total: usize = sizes.iter().sum();
        if spec.items == 0 || spec.hidden_size == 0 || spec.input_size == 0 || spec.embedding_rows < spec.items {
            return Err(ModelError::Prepare { model: KIND, detail: format!("unusable GRU shape {spec:?}") });
        }
        if blob.len() != total {
            return Err(ModelError::Prepare { model: KIND, detail: format!("GRU weights hold {} floats, the spec needs {total}", blob.len()) });
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let v = blob[at..at + n].to_vec();
            at += n;
            v
        };
        let (embedding, w, r, b, head, bias) = (take(sizes[0]), take(sizes[1]), take(sizes[2]), take(sizes[3]), take(sizes[4]), take(sizes[5]));
        Ok(GruModel { embedding, w, r, b, head, bias, selection: std::sync::OnceLock::new(), spec })
    }

    /// From the bundle part: little-endian f32 in `GruSpec::sizes` order.
    pub fn from_bytes(spec: GruSpec, bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() % 4 != 0 {
            return Err(ModelError::Prepare { model: KIND, detail: "GRU weights are not whole float32s".into() });
        }
        let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Self::new(spec, &floats)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.embedding, &self.w, &self.r, &self.b, &self.head, &self.bias].iter().flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes())).collect()
    }

    pub fn hidden_size(&self) -> usize {
        self.spec.hidden_size
    }

    /// A new session's state.
    pub fn zero_state(&self) -> Vec<f32> {
        vec![0.0; self.spec.hidden_size]
    }

    /// One GRU step: `h` ← GRU(embedding[item], h), ONNX semantics (gates z, r, h; sigmoid, tanh).
    fn step_with(&self, item: usize, h: &mut [f32], s: &mut StepScratch) -> Result<(), ModelError> {
        let (d, hs) = (self.spec.input_size, self.spec.hidden_size);
        if item >= self.spec.embedding_rows {
            return Err(run_err(format!("item index {item} is outside the embedding table ({} rows)", self.spec.embedding_rows)));
        }
        let x = &self.embedding[item * d..(item + 1) * d];
        s.gx.resize(3 * hs, 0.0);
        s.gh.resize(3 * hs, 0.0);
        matvec(&self.w, x, &mut s.gx);
        matvec(&self.r, h, &mut s.gh);
        let (wb, rb) = self.b.split_at(3 * hs);
        for i in 0..2 * hs {
            s.gx[i] = sigmoid(s.gx[i] + wb[i] + s.gh[i] + rb[i]);
        }
        let (z, rest) = s.gx.split_at_mut(hs);
        let (r, xh) = rest.split_at_mut(hs);
        if self.spec.linear_before_reset {
            for i in 0..hs {
                xh[i] = (xh[i] + wb[2 * hs + i] + r[i] * (s.gh[2 * hs + i] + rb[2 * hs + i])).tanh();
            }
        } else {
            s.rh.resize(hs, 0.0);
            for i in 0..hs {
                s.rh[i] = r[i] * h[i];
            }
            let rh_rows = &self.r[2 * hs * hs..];
            for i in 0..hs {
                let rec = dot(&rh_rows[i * hs..(i + 1) * hs], &s.rh);
                xh[i] = (xh[i] + wb[2 * hs + i] + rec + rb[2 * hs + i]).tanh();
            }
        }
        for i in 0..hs {
            h[i] = (1.0 - z[i]) * xh[i] + z[i] * h[i];
        }
        Ok(())
    }

    /// Scores of every item for hidden state `h`: `h · head + bias`. The head is read once,
    /// in blocks of items whose accumulators stay in registers: the call is bound by the
    /// bandwidth of reading `hidden × items` floats.
    pub fn head_into(&self, h: &[f32], scores: &mut Vec<f32>) {
        scores.clear();
        scores.extend_from_slice(&self.bias);
        kernels::head(h, &self.head, self.spec.items, scores);
    }

    /// One item's score for hidden state `h` (explanations need a handful, not all).
    pub fn score_one(&self, h: &[f32], item: usize) -> f32 {
        let n = self.spec.items;
        self.bias[item] + h.iter().enumerate().map(|(k, &hk)| hk * self.head[k * n + item]).sum::<f32>()
    }

    /// One item's score exactly as [`GruModel::head_into`] computes it (bias first, then each
    /// hidden unit in order): the same bits.
    fn head_one(&self, rows: &[f32], h: &[f32], item: usize) -> f32 {
        let hs = self.spec.hidden_size;
        let mut acc = self.bias[item];
        for (&hk, &w) in h.iter().zip(&rows[item * hs..(item + 1) * hs]) {
            acc += hk * w;
        }
        acc
    }

    /// The `k` best unmasked items for hidden state `h`, identical to `head_into` followed by
    /// [`crate::recommend::top_k`], without scoring every item exactly: the i16 head ranks them
    /// all, and only the items within twice its error bound of the k-th are rescored.
    /// `approx` is a reused buffer. Returns the picks and how many items were rescored.
    pub fn top_k_into(&self, h: &[f32], k: usize, excluded: &[bool], approx: &mut Vec<f32>) -> (Vec<(usize, f32)>, usize) {
        let sel_data = self.selection.get_or_init(|| {
            let (hs, n) = (self.spec.hidden_size, self.spec.items);
            let mut rows = vec![0f32; self.head.len()];
            for k in 0..hs {
                for j in 0..n {
                    rows[j * hs + k] = self.head[k * n + j];
                }
            }
            Selector { quick: crate::head::QuantizedHead::new(&self.head, hs, n, &self.bias), rows }
        });
        let bound = sel_data.quick.approx_into(h, &self.bias, approx);
        let masked = |j: usize| excluded.get(j).copied().unwrap_or(false);
        let mut first = crate::score::Selection::new(k);
        for (j, &a) in approx.iter().enumerate() {
            if !masked(j) {
                first.offer(j, a);
            }
        }
        let cut = first.threshold().map_or(f64::NEG_INFINITY, |t| t as f64 - 2.0 * bound);
        let mut sel = crate::score::Selection::new(k);
        let mut rescored = 0;
        for (j, &a) in approx.iter().enumerate() {
            if !masked(j) && a as f64 >= cut {
                let s = self.head_one(&sel_data.rows, h, j);
                if !s.is_nan() {
                    sel.offer(j, s);
                }
                rescored += 1;
            }
        }
        (sel.into_sorted(), rescored)
    }

    /// The whole-sequence answer from a zero state (what the graph computes).
    pub fn scores_into(&self, sequence: &[usize], scores: &mut Vec<f32>) -> Result<(), ModelError> {
        if sequence.is_empty() {
            return Err(run_err("the item sequence is empty"));
        }
        let mut h = self.zero_state();
        let mut s = StepScratch::default();
        for &i in sequence {
            self.step_with(i, &mut h, &mut s)?;
        }
        self.head_into(&h, scores);
        Ok(())
    }

    /// The hidden state after `sequence`, from a zero state.
    pub fn state_after(&self, sequence: &[usize]) -> Result<Vec<f32>, ModelError> {
        let mut h = self.zero_state();
        let mut s = StepScratch::default();
        for &i in sequence {
            self.step_with(i, &mut h, &mut s)?;
        }
        Ok(h)
    }
}

/// One visitor's running state: the sequence consumed so far and the hidden state after it,
/// with the states of the last few positions for explanations.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    consumed: Vec<usize>,
    /// `states[i]` is the state after `consumed[..start + i + 1]`.
    states: std::collections::VecDeque<Vec<f32>>,
    start: usize,
    scratch: StepScratch,
    work: Vec<f32>,
    /// Steps taken by the last `advance` (0 when nothing was new): for tests and benchmarks.
    pub last_steps: usize,
    /// Whether the last `advance` had to start over (a history that is not an extension).
    pub last_rebuilt: bool,
}

/// States kept for explanations: occluding one of the last few items restarts from here.
const KEPT_STATES: usize = 16;

impl SessionState {
    /// Brings the state to `sequence`: only the new suffix when it extends what was consumed,
    /// from the start otherwise (an erased or evicted history).
    pub fn advance(&mut self, model: &GruModel, sequence: &[usize]) -> Result<&[f32], ModelError> {
        let extends = self.consumed.len() <= sequence.len() && sequence[..self.consumed.len()] == self.consumed[..];
        self.last_rebuilt = !extends;
        if !extends {
            self.consumed.clear();
            self.states.clear();
            self.start = 0;
        }
        let from = self.consumed.len();
        // No allocation once the ring is full: the oldest kept state's buffer is reused.
        let mut h = std::mem::take(&mut self.work);
        h.clear();
        match self.states.back() {
            Some(last) => h.extend_from_slice(last),
            None => h.resize(model.spec.hidden_size, 0.0),
        }
        for &item in &sequence[from..] {
            model.step_with(item, &mut h, &mut self.scratch)?;
            self.consumed.push(item);
            let mut slot = if self.states.len() == KEPT_STATES {
                self.start += 1;
                self.states.pop_front().unwrap_or_default()
            } else {
                Vec::with_capacity(h.len())
            };
            slot.clear();
            slot.extend_from_slice(&h);
            self.states.push_back(slot);
        }
        self.work = h;
        self.last_steps = sequence.len() - from;
        match self.states.back() {
            Some(h) => Ok(h),
            None => Err(run_err("the item sequence is empty")),
        }
    }

    /// The hidden state now (after `advance`).
    pub fn hidden(&self) -> Option<&[f32]> {
        self.states.back().map(Vec::as_slice)
    }

    pub fn consumed(&self) -> &[usize] {
        &self.consumed
    }

    /// The state after the consumed sequence with every occurrence of `item` left out —
    /// restarting from the kept state just before its first occurrence when there is one.
    pub fn without(&mut self, model: &GruModel, item: usize) -> Result<Vec<f32>, ModelError> {
        let Some(first) = self.consumed.iter().position(|&i| i == item) else {
            return Ok(self.hidden().map(<[f32]>::to_vec).unwrap_or_else(|| model.zero_state()));
        };
        let mut h = if first == 0 {
            model.zero_state()
        } else if first - 1 >= self.start {
            self.states[first - 1 - self.start].clone()
        } else {
            let prefix: Vec<usize> = self.consumed[..first].to_vec();
            model.state_after(&prefix)?
        };
        for k in first + 1..self.consumed.len() {
            let i = self.consumed[k];
            if i != item {
                model.step_with(i, &mut h, &mut self.scratch)?;
            }
        }
        Ok(h)
    }

    /// The state with `item` left out of the recent events only — those whose state is kept
    /// (the last 16) — replaying at most that many steps: what explanations need ("because you
    /// viewed X" is about recent events), at a bounded cost however long the history is. Equals
    /// `without` while the whole history is kept.
    pub fn without_recent(&mut self, model: &GruModel, item: usize) -> Result<Vec<f32>, ModelError> {
        if self.start == 0 {
            return self.without(model, item);
        }
        let earliest = self.start + 1;
        let Some(first) = self.consumed[earliest..].iter().position(|&i| i == item).map(|p| p + earliest) else {
            return Ok(self.hidden().map(<[f32]>::to_vec).unwrap_or_else(|| model.zero_state()));
        };
        let mut h = self.states[first - 1 - self.start].clone();
        for k in first + 1..self.consumed.len() {
            let i = self.consumed[k];
            if i != item {
                model.step_with(i, &mut h, &mut self.scratch)?;
            }
        }
        Ok(h)
    }

    /// Serializable form, to keep on the device with the store.
    pub fn snapshot(&self) -> Option<Snapshot> {
        Some(Snapshot { consumed: self.consumed.len(), fingerprint: fingerprint(&self.consumed), hidden: self.hidden()?.to_vec() })
    }

    /// Restores a snapshot taken over the same sequence; `false` (and nothing changed) when it
    /// does not match, so the caller rebuilds from history.
    pub fn restore(&mut self, snapshot: &Snapshot, sequence: &[usize], hidden_size: usize) -> bool {
        if snapshot.consumed != sequence.len() || snapshot.fingerprint != fingerprint(sequence) || snapshot.hidden.len() != hidden_size {
            return false;
        }
        self.consumed = sequence.to_vec();
        self.states.clear();
        self.states.push_back(snapshot.hidden.clone());
        self.start = sequence.len() - 1;
        true
    }
}

/// A session state as stored: which sequence it follows (length and an FNV-1a fingerprint) and
/// the hidden vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub consumed: usize,
    pub fingerprint: u64,
    pub hidden: Vec<f32>,
}

fn fingerprint(sequence: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &i in sequence {
        for b in (i as u64).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

use kernels::matvec;
pub(crate) use kernels::dot;

/// The arithmetic: explicit 128-bit SIMD on wasm32 with `simd128` (the SDK's build), portable
/// code LLVM vectorises elsewhere. Both sum in the same order, so results are identical.
mod kernels {
    /// `scores[j] += Σ_k h[k] · m[k·n + j]` for row-major `m` of `h.len()` rows and `n` columns.
    pub fn head(h: &[f32], m: &[f32], n: usize, scores: &mut [f32]) {
        const BLOCK: usize = 32;
        let full = n - n % BLOCK;
        let mut j = 0;
        while j < full {
            block(h, m, n, j, &mut scores[j..j + BLOCK]);
            j += BLOCK;
        }
        for (k, &hk) in h.iter().enumerate() {
            for jj in full..n {
                scores[jj] += hk * m[k * n + jj];
            }
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn block(h: &[f32], m: &[f32], n: usize, j: usize, out: &mut [f32]) {
        use core::arch::wasm32::*;
        debug_assert!(out.len() == 32 && m.len() >= (h.len() - 1) * n + j + 32);
        // SAFETY: every load reads 4 floats inside `m` (row k, columns j..j+32 < n) or `out`
        // (32 floats), bounds checked by the slicing below; v128 loads need no alignment.
        unsafe {
            let o = out.as_mut_ptr();
            let mut acc = [f32x4_splat(0.0); 8];
            for (i, a) in acc.iter_mut().enumerate() {
                *a = v128_load(o.add(4 * i) as *const v128);
            }
            for (k, &hk) in h.iter().enumerate() {
                let row = &m[k * n + j..k * n + j + 32];
                let p = row.as_ptr();
                let s = f32x4_splat(hk);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = f32x4_add(*a, f32x4_mul(s, v128_load(p.add(4 * i) as *const v128)));
                }
            }
            for (i, a) in acc.iter().enumerate() {
                v128_store(o.add(4 * i) as *mut v128, *a);
            }
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn block(h: &[f32], m: &[f32], n: usize, j: usize, out: &mut [f32]) {
        let mut acc = [0f32; 32];
        acc.copy_from_slice(out);
        for (k, &hk) in h.iter().enumerate() {
            let row = &m[k * n + j..k * n + j + 32];
            for l in 0..32 {
                acc[l] += hk * row[l];
            }
        }
        out.copy_from_slice(&acc);
    }

    /// Dot product in four 4-lane partial sums (lane order as the SIMD version).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let full = n - n % 16;
        // SAFETY: loads at i..i+16 with i + 16 <= full <= n, inside both slices.
        let mut s = unsafe {
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [f32x4_splat(0.0); 4];
            let mut i = 0;
            while i < full {
                for (l, c) in acc.iter_mut().enumerate() {
                    let x = v128_load(pa.add(i + 4 * l) as *const v128);
                    let y = v128_load(pb.add(i + 4 * l) as *const v128);
                    *c = f32x4_add(*c, f32x4_mul(x, y));
                }
                i += 16;
            }
            let t = f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]));
            f32x4_extract_lane::<0>(t) + f32x4_extract_lane::<1>(t) + f32x4_extract_lane::<2>(t) + f32x4_extract_lane::<3>(t)
        };
        for i in full..n {
            s += a[i] * b[i];
        }
        s
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let full = n - n % 16;
        let mut acc = [0f32; 16];
        for i in (0..full).step_by(16) {
            for l in 0..16 {
                acc[l] += a[i + l] * b[i + l];
            }
        }
        let mut t = [0f32; 4];
        for l in 0..4 {
            t[l] = (acc[l] + acc[4 + l]) + (acc[8 + l] + acc[12 + l]);
        }
        let mut s = t[0] + t[1] + t[2] + t[3];
        for i in full..n {
            s += a[i] * b[i];
        }
        s
    }

    /// `out = m · x` for row-major `m` of `out.len()` rows.
    pub fn matvec(m: &[f32], x: &[f32], out: &mut [f32]) {
        let cols = x.len();
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&m[i * cols..(i + 1) * cols], x);
        }
    }
}

#[cfg(feature = "onnx")]
pub use extract::{from_onnx, scoring_head, ScoringHead};

#[cfg(feature = "onnx")]
mod extract {
    //! Recognising the GRU4Rec pattern in an ONNX graph.

    use std::collections::HashMap;

    use prost::Message;
    use tract_onnx::pb;

    use super::{GruModel, GruSpec};

    struct Graph<'a> {
        init: HashMap<&'a str, &'a pb::TensorProto>,
        producer: HashMap<&'a str, &'a pb::NodeProto>,
        inputs: Vec<&'a str>,
    }

    fn floats(t: &pb::TensorProto) -> Option<Vec<f32>> {
        if t.data_type != pb::tensor_proto::DataType::Float as i32 || !t.external_data.is_empty() {
            return None;
        }
        if !t.float_data.is_empty() {
            return Some(t.float_data.clone());
        }
        (t.raw_data.len() % 4 == 0).then(|| t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn ints(t: &pb::TensorProto) -> Option<Vec<i64>> {
        match t.data_type {
            x if x == pb::tensor_proto::DataType::Int64 as i32 => {
                if !t.int64_data.is_empty() {
                    Some(t.int64_data.clone())
                } else {
                    Some(t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
                }
            }
            x if x == pb::tensor_proto::DataType::Int32 as i32 => {
                if !t.int32_data.is_empty() {
                    Some(t.int32_data.iter().map(|&v| i64::from(v)).collect())
                } else {
                    Some(t.raw_data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))).collect())
                }
            }
            _ => None,
        }
    }

    fn attr<'n>(n: &'n pb::NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
        n.attribute.iter().find(|a| a.name == name)
    }

    impl<'a> Graph<'a> {
        /// A constant tensor: an initializer, or a `Constant` node's value.
        fn constant(&self, name: &str) -> Option<&'a pb::TensorProto> {
            if let Some(t) = self.init.get(name) {
                return Some(t);
            }
            let n = self.producer.get(name)?;
            (n.op_type == "Constant").then(|| attr(n, "value").and_then(|a| a.t.as_ref())).flatten()
        }

        fn node(&self, name: &str) -> Option<&'a pb::NodeProto> {
            self.producer.get(name).copied()
        }
    }

    /// A recommender's scoring head: `scores = input · matrix + bias`, the matrix
    /// `hidden × items` row-major, as found at the end of an ONNX graph.
    #[derive(Debug, Clone)]
    pub struct ScoringHead {
        /// The tensor the head reads: the visitor vector.
        pub input: String,
        /// The tensor it computes: the scores.
        pub output: String,
        pub hidden: usize,
        pub items: usize,
        pub matrix: Vec<f32>,
        pub bias: Option<Vec<f32>>,
    }

    impl ScoringHead {
        /// The matrix as item rows (`items × hidden`), the layout item embeddings use.
        pub fn item_rows(&self) -> Vec<f32> {
            let mut out = vec![0f32; self.items * self.hidden];
            for k in 0..self.hidden {
                for j in 0..self.items {
                    out[j * self.hidden + k] = self.matrix[k * self.items + j];
                }
            }
            out
        }
    }

    fn graph_of(model: &pb::ModelProto) -> Result<Graph<'_>, String> {
        let g = model.graph.as_ref().ok_or("the model has no graph")?;
        Ok(Graph {
            init: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            producer: g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect(),
            inputs: g.input.iter().map(|i| i.name.as_str()).filter(|n| !g.initializer.iter().any(|t| t.name == *n)).collect(),
        })
    }

    /// The `MatMul [+ Add]` or `Gemm` that computes `output` (default: the graph's first
    /// output) from a constant matrix, or why there is none.
    pub fn scoring_head(bytes: &[u8], output: Option<&str>) -> Result<ScoringHead, String> {
        let model = decode(bytes)?;
        let output = output_name(&model, output)?;
        Ok(ScoringHead { output: output.to_owned(), ..head_of(&graph_of(&model)?, output)? })
    }

    fn decode(bytes: &[u8]) -> Result<pb::ModelProto, String> {
        pb::ModelProto::decode(bytes).map_err(|e| format!("not an ONNX protobuf: {e}"))
    }

    /// `output`, or the graph's first output.
    fn output_name<'a>(model: &'a pb::ModelProto, output: Option<&'a str>) -> Result<&'a str, String> {
        match output {
            Some(o) => Ok(o),
            None => model.graph.as_ref().and_then(|g| g.output.first()).map(|o| o.name.as_str()).ok_or_else(|| "the graph has no output".into()),
        }
    }

    fn head_of(graph: &Graph<'_>, out_name: &str) -> Result<ScoringHead, String> {
        // Head: Add(MatMul(hidden, M), bias) in either operand order, or Gemm, or MatMul alone.
        let top = graph.node(out_name).ok_or("the output is not computed by a node")?;
        let (hidden_name, head_name, bias): (&str, &str, Option<Vec<f32>>) = match top.op_type.as_str() {
            "Add" => {
                let (mm, b) = match (graph.node(&top.input[0]), graph.constant(&top.input[1])) {
                    (Some(n), Some(b)) if n.op_type == "MatMul" => (n, b),
                    _ => match (graph.node(&top.input[1]), graph.constant(&top.input[0])) {
                        (Some(n), Some(b)) if n.op_type == "MatMul" => (n, b),
                        _ => return Err("the output is an Add that is not MatMul + constant bias".into()),
                    },
                };
                (&mm.input[0], &mm.input[1], Some(floats(b).ok_or("the bias is not float32")?))
            }
            "MatMul" => (&top.input[0], &top.input[1], None),
            "Gemm" => {
                let get = |n: &str, d: i64| attr(top, n).map_or(d, |a| a.i);
                let getf = |n: &str| attr(top, n).map_or(1.0, |a| a.f);
                if get("transA", 0) != 0 || get("transB", 0) != 0 || getf("alpha") != 1.0 || getf("beta") != 1.0 {
                    return Err("the output Gemm transposes or scales (only the plain form is recognised)".into());
                }
                let bias = match top.input.get(2).filter(|s| !s.is_empty()) {
                    Some(c) => Some(floats(graph.constant(c).ok_or("the Gemm bias is not constant")?).ok_or("the Gemm bias is not float32")?),
                    None => None,
                };
                (&top.input[0], &top.input[1], bias)
            }
            other => return Err(format!("the output comes from {other}, not a MatMul/Gemm scoring head")),
        };
        let head_t = graph.constant(head_name).ok_or("the scoring matrix is not a constant")?;
        if head_t.dims.len() != 2 {
            return Err("the scoring matrix is not 2-D".into());
        }
        let (hs, items) = (head_t.dims[0] as usize, head_t.dims[1] as usize);
        let head = floats(head_t).ok_or("the scoring matrix is not float32")?;
        if head.len() != hs * items {
            return Err("the scoring matrix's data does not match its shape".into());
        }
        if let Some(b) = &bias {
            if b.len() != items {
                return Err(format!("the bias has {} values for {items} items", b.len()));
            }
        }
        Ok(ScoringHead { input: hidden_name.to_owned(), output: out_name.to_owned(), hidden: hs, items, matrix: head, bias })
    }

    /// The weights of a `Gather → [Transpose] → GRU → last hidden → MatMul [+ Add]` graph, or
    /// why the graph is not one.
    pub fn from_onnx(bytes: &[u8], output: Option<&str>) -> Result<GruModel, String> {
        let model = decode(bytes)?;
        let graph = graph_of(&model)?;
        let ScoringHead { input: hidden_name, hidden: hs, items, matrix: head, bias, .. } = head_of(&graph, output_name(&model, output)?)?;
        let bias = bias.unwrap_or_else(|| vec![0.0; items]);

        // Last hidden: Y_h, maybe through Gather(axis 0, index 0), Reshape or Squeeze.
        let mut name = hidden_name.as_str();
        let gru = loop {
            let n = graph.node(name).ok_or("the scoring head's input is not computed by a node")?;
            match n.op_type.as_str() {
                "GRU" => {
                    if n.output.get(1).map(String::as_str) != Some(name) {
                        return Err("the head reads the GRU's full output Y, not its last state Y_h".into());
                    }
                    break n;
                }
                "Gather" => {
                    let index = graph.constant(&n.input[1]).and_then(ints);
                    // Y_h is [num_directions = 1, batch, hidden]: index 0 and -1 are the same.
                    if attr(n, "axis").map_or(0, |a| a.i) != 0 || !matches!(index.as_deref(), Some([0]) | Some([-1])) {
                        return Err("the last hidden state is selected in an unrecognised way".into());
                    }
                    name = &n.input[0];
                }
                "Reshape" | "Squeeze" | "Flatten" | "Identity" => name = &n.input[0],
                other => return Err(format!("{other} between the GRU and the scoring head is not recognised")),
            }
        };
        let hidden = attr(gru, "hidden_size").map(|a| a.i as usize).ok_or("the GRU has no hidden_size")?;
        if hidden != hs {
            return Err(format!("the GRU's hidden size {hidden} does not match the head's {hs} rows"));
        }
        if let Some(d) = attr(gru, "direction") {
            if d.s != b"forward" {
                return Err(format!("the GRU is {} (only forward is recognised)", String::from_utf8_lossy(&d.s)));
            }
        }
        if attr(gru, "activations").is_some() || attr(gru, "clip").is_some() || attr(gru, "layout").is_some_and(|a| a.i != 0) {
            return Err("the GRU sets activations, clip or layout (only the defaults are recognised)".into());
        }
        let lbr = attr(gru, "linear_before_reset").is_some_and(|a| a.i != 0);
        if gru.input.get(4).is_some_and(|s| !s.is_empty()) {
            return Err("the GRU takes sequence_lens".into());
        }
        if let Some(init_h) = gru.input.get(5).filter(|s| !s.is_empty()) {
            let zero = match graph.node(init_h) {
                Some(n) if n.op_type == "ConstantOfShape" => attr(n, "value").and_then(|a| a.t.as_ref()).and_then(floats).is_none_or(|v| v.iter().all(|&x| x == 0.0)),
                _ => graph.constant(init_h).and_then(floats).is_some_and(|v| v.iter().all(|&x| x == 0.0)),
            };
            if !zero {
                return Err("the GRU's initial state is not zero".into());
            }
        }
        let w = floats(graph.constant(&gru.input[1]).ok_or("the GRU's W is not constant")?).ok_or("the GRU's W is not float32")?;
        let r = floats(graph.constant(&gru.input[2]).ok_or("the GRU's R is not constant")?).ok_or("the GRU's R is not float32")?;
        let b = match gru.input.get(3).filter(|s| !s.is_empty()) {
            Some(name) => floats(graph.constant(name).ok_or("the GRU's B is not constant")?).ok_or("the GRU's B is not float32")?,
            None => vec![0.0; 6 * hidden],
        };

        // Input: Transpose(perm 1,0,2) of Gather(embedding, the graph input).
        let x = graph.node(&gru.input[0]).ok_or("the GRU's input is not computed by a node")?;
        let gather = match x.op_type.as_str() {
            "Transpose" if attr(x, "perm").is_some_and(|a| a.ints == [1, 0, 2]) => graph.node(&x.input[0]).ok_or("the Transpose has no producer")?,
            _ => return Err("the GRU's input is not a [1, 0, 2] Transpose of an embedding lookup".into()),
        };
        if gather.op_type != "Gather" || attr(gather, "axis").is_some_and(|a| a.i != 0) {
            return Err("the sequence is not an embedding lookup (Gather on axis 0)".into());
        }
        if !graph.inputs.contains(&gather.input[1].as_str()) {
            return Err("the embedding lookup does not read the graph's input".into());
        }
        let emb_t = graph.constant(&gather.input[0]).ok_or("the embedding table is not a constant")?;
        if emb_t.dims.len() != 2 {
            return Err("the embedding table is not 2-D".into());
        }
        let (rows, input) = (emb_t.dims[0] as usize, emb_t.dims[1] as usize);
        let embedding = floats(emb_t).ok_or("the embedding table is not float32")?;
        if w.len() != 3 * hidden * input || r.len() != 3 * hidden * hidden || b.len() != 6 * hidden {
            return Err("the GRU's weight shapes do not match its sizes".into());
        }
        let spec = GruSpec { items, embedding_rows: rows, input_size: input, hidden_size: hidden, linear_before_reset: lbr };
        let mut blob = embedding;
        for part in [w, r, b, head, bias] {
            blob.extend(part);
        }
        GruModel::new(spec, &blob).map_err(|e| e.to_string())
    }
}
