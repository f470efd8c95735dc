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

use serde::Serialize;
use serde_json::Value;

use crate::contract::manifest::GruSpec;
use crate::error::ModelError;
use crate::infer::head::LinearHead;
use crate::infer::kernels::{sigmoid_in_place, tanh_in_place, vecmat};
use crate::json::{self, Fields, FromJson};

const KIND: &str = "recommender";

/// The weights. ONNX's `W` [3H, D] and `R` [3H, H] (gates z, r, h) are kept transposed — `wt`
/// [D, 3H], and `R`'s gates split into `rt_zr` [H, 2H] (z and r) and `rt_h` [H, H] — so the
/// step reads each input-major, one contiguous pass per input (`kernels::vecmat`), instead of a
/// dot product per output row; `to_bytes` transposes them back. `b` = [Wb (3H), Rb (3H)].
#[derive(Debug, Clone)]
pub struct GruModel {
    pub spec: GruSpec,
    embedding: Vec<f32>,
    wt: Vec<f32>,
    rt_zr: Vec<f32>,
    rt_h: Vec<f32>,
    b: Vec<f32>,
    out: LinearHead,
}

/// `m` (`rows × cols`, row-major) transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = m[i * cols + j];
        }
    }
    t
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
        let (Some(sizes), Some(total)) = (spec.sizes(), spec.total()) else {
            return Err(ModelError::Prepare { model: KIND, detail: format!("GRU shape {spec:?} is too large to address") });
        };
        if spec.items == 0 || spec.hidden_size == 0 || spec.input_size == 0 || spec.embedding_rows < spec.items {
            return Err(ModelError::Prepare { model: KIND, detail: format!("unusable GRU shape {spec:?}") });
        }
        if blob.len() != total {
            return Err(ModelError::Prepare {
                model: KIND,
                detail: format!("GRU weights hold {} floats, the spec needs {total}", blob.len()),
            });
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let v = blob[at..at + n].to_vec();
            at += n;
            v
        };
        let (embedding, w, r, b, head, bias) =
            (take(sizes[0]), take(sizes[1]), take(sizes[2]), take(sizes[3]), take(sizes[4]), take(sizes[5]));
        let out = LinearHead::new(spec.hidden_size, spec.items, head, bias);
        let hs = spec.hidden_size;
        let wt = transpose(&w, 3 * hs, spec.input_size);
        let rt_zr = transpose(&r[..2 * hs * hs], 2 * hs, hs);
        let rt_h = transpose(&r[2 * hs * hs..], hs, hs);
        Ok(GruModel { embedding, wt, rt_zr, rt_h, b, out, spec })
    }

    /// From the bundle part: little-endian f32 in `GruSpec::sizes` order.
    pub fn from_bytes(spec: GruSpec, bytes: &[u8]) -> Result<Self, ModelError> {
        let floats = crate::infer::kernels::f32s_from_le(bytes)
            .ok_or_else(|| ModelError::Prepare { model: KIND, detail: "GRU weights are not whole float32s".into() })?;
        Self::new(spec, &floats)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let (d, hs) = (self.spec.input_size, self.spec.hidden_size);
        let w = transpose(&self.wt, d, 3 * hs);
        let mut r = transpose(&self.rt_zr, hs, 2 * hs);
        r.extend(transpose(&self.rt_h, hs, hs));
        [&self.embedding, &w, &r, &self.b, self.out.matrix(), self.out.bias()]
            .iter()
            .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
            .collect()
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
        s.gx.clear();
        s.gx.resize(3 * hs, 0.0);
        s.gh.clear();
        s.gh.resize(3 * hs, 0.0);
        vecmat(x, &self.wt, 3 * hs, &mut s.gx);
        vecmat(h, &self.rt_zr, 2 * hs, &mut s.gh[..2 * hs]);
        // Without linear_before_reset the h gate multiplies R by r ⊙ h instead (below).
        if self.spec.linear_before_reset {
            vecmat(h, &self.rt_h, hs, &mut s.gh[2 * hs..]);
        }
        let (wb, rb) = self.b.split_at(3 * hs);
        for i in 0..2 * hs {
            s.gx[i] = s.gx[i] + wb[i] + s.gh[i] + rb[i];
        }
        sigmoid_in_place(&mut s.gx[..2 * hs]);
        let (z, rest) = s.gx.split_at_mut(hs);
        let (r, xh) = rest.split_at_mut(hs);
        if self.spec.linear_before_reset {
            for i in 0..hs {
                xh[i] = xh[i] + wb[2 * hs + i] + r[i] * (s.gh[2 * hs + i] + rb[2 * hs + i]);
            }
        } else {
            s.rh.clear();
            s.rh.extend(r.iter().zip(h.iter()).map(|(r, h)| r * h));
            let rec = &mut s.gh[2 * hs..];
            vecmat(&s.rh, &self.rt_h, hs, rec);
            for i in 0..hs {
                xh[i] = xh[i] + wb[2 * hs + i] + rec[i] + rb[2 * hs + i];
            }
        }
        tanh_in_place(xh);
        for i in 0..hs {
            h[i] = (1.0 - z[i]) * xh[i] + z[i] * h[i];
        }
        Ok(())
    }

    /// The scoring head (hidden state → item scores).
    pub fn head(&self) -> &LinearHead {
        &self.out
    }

    /// Scores of every item for hidden state `h`: `h · head + bias`.
    pub fn head_into(&self, h: &[f32], scores: &mut Vec<f32>) {
        self.out.scores_into(h, scores);
    }

    /// One item's score for hidden state `h` (explanations need a handful, not all).
    pub fn score_one(&self, h: &[f32], item: usize) -> f32 {
        self.out.score_one(h, item)
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
        // Element by element: slice equality on wasm is a byte-wise memcmp, 4× the work over a long
        // history checked at every event.
        let extends = self.consumed.len() <= sequence.len() && self.consumed.iter().zip(sequence).all(|(a, b)| a == b);
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
        } else if first > self.start {
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub consumed: usize,
    pub fingerprint: u64,
    pub hidden: Vec<f32>,
}

impl FromJson for Snapshot {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(Snapshot { consumed: f.req("consumed")?, fingerprint: f.req("fingerprint")?, hidden: f.req("hidden")? })
    }
}

json::deserialize_with_reader!(Snapshot);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_whose_sizes_overflow_are_refused_not_wrapped() {
        // On wasm32 these products wrap a 32-bit usize; here they overflow 64 bits.
        for (rows, d, h, items) in [(usize::MAX / 2, 3, 4, 5), (10, 4, usize::MAX / 3 + 1, 5), (10, 4, 1 << 40, 1 << 40)] {
            let spec = GruSpec { items, embedding_rows: rows.max(items), input_size: d, hidden_size: h, linear_before_reset: true };
            let err = GruModel::new(spec, &[0.0; 16]).expect_err("refused");
            assert!(err.to_string().contains("too large") || err.to_string().contains("needs"), "{err}");
        }
    }
}
