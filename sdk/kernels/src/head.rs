//! A recurrent recommender's top-k without scoring every item exactly. An i16 copy of the
//! scoring head (per-item scales) is scored with integer dot products — on wasm one
//! `i32x4.dot_i16x8_s` does 8 multiply-adds where f32 needs 4 multiplies and 4 adds, from half
//! the bytes — and only the items that could still be in the top-k, given a rigorous bound on
//! the quantization error, are rescored exactly. The answer is bit-for-bit the exact head's:
//! same items, same order, same scores.

/// A recommender's scoring head `scores = h · matrix + bias`, `matrix` `hidden × items`
/// row-major (the layout of an ONNX `MatMul`'s constant operand), shared by the SDK's own
/// models (GRU, attention). Scores every item exactly, or picks the top k through the i16 copy.
#[derive(Debug, Clone)]
pub struct LinearHead {
    hidden: usize,
    items: usize,
    matrix: Vec<f32>,
    bias: Vec<f32>,
    /// What [`LinearHead::top_k_into`] needs, built on its first call (the SDK's own
    /// `recommend` scores every item exactly and never pays for it).
    selection: std::sync::OnceLock<Selector>,
}

/// Reused buffers of [`LinearHead::top_k_into`]: once they have grown to a head's size, a
/// call allocates nothing.
#[derive(Debug)]
pub struct TopKScratch {
    approx: Vec<f32>,
    packed: Vec<i32>,
    selection: crate::topk::Selection,
}

impl Default for TopKScratch {
    fn default() -> Self {
        TopKScratch { approx: Vec::new(), packed: Vec::new(), selection: crate::topk::Selection::new(0) }
    }
}

/// The head in i16 and item-major (`items × hidden`): rescoring a few items reads a few rows
/// instead of a strided column each.
#[derive(Debug, Clone)]
struct Selector {
    quick: QuantizedHead,
    rows: Vec<f32>,
}

impl LinearHead {
    /// `matrix.len()` must be `hidden · items` and `bias.len()` `items` (the callers check
    /// shapes against their specs before building one).
    pub fn new(hidden: usize, items: usize, matrix: Vec<f32>, bias: Vec<f32>) -> Self {
        debug_assert!(matrix.len() == hidden * items && bias.len() == items);
        LinearHead { hidden, items, matrix, bias, selection: std::sync::OnceLock::new() }
    }

    pub fn matrix(&self) -> &[f32] {
        &self.matrix
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Every item's score: the matrix is read once, bound by memory bandwidth.
    pub fn scores_into(&self, h: &[f32], scores: &mut Vec<f32>) {
        scores.clear();
        scores.extend_from_slice(&self.bias);
        crate::kernels::vecmat(h, &self.matrix, self.items, scores);
    }

    /// One item's score (explanations need a handful, not all).
    pub fn score_one(&self, h: &[f32], item: usize) -> f32 {
        let n = self.items;
        self.bias[item] + h.iter().enumerate().map(|(k, &hk)| hk * self.matrix[k * n + item]).sum::<f32>()
    }

    /// One item's score exactly as [`LinearHead::scores_into`] computes it (bias first, then
    /// each hidden unit in order): the same bits.
    fn exact_one(&self, rows: &[f32], h: &[f32], item: usize) -> f32 {
        let hs = self.hidden;
        let mut acc = self.bias[item];
        for (&hk, &w) in h.iter().zip(&rows[item * hs..(item + 1) * hs]) {
            acc += hk * w;
        }
        acc
    }

    /// The `k` best unmasked items for `h`, identical to `scores_into` followed by
    /// [`crate::topk::top_k`], without scoring every item exactly: the i16 head ranks them
    /// all, and only the items within twice its error bound of the k-th are rescored.
    /// The picks go to `out`, best first; returns how many items were rescored.
    pub fn top_k_into(&self, h: &[f32], k: usize, excluded: &[bool], scratch: &mut TopKScratch, out: &mut Vec<(usize, f32)>) -> usize {
        let sel_data = self.selection.get_or_init(|| {
            let (hs, n) = (self.hidden, self.items);
            let mut rows = vec![0f32; self.matrix.len()];
            for k in 0..hs {
                for j in 0..n {
                    rows[j * hs + k] = self.matrix[k * n + j];
                }
            }
            Selector { quick: QuantizedHead::new(&self.matrix, hs, n, &self.bias), rows }
        });
        let TopKScratch { approx, packed, selection: sel } = scratch;
        let bound = sel_data.quick.approx_into(h, packed, approx);
        let masked = |j: usize| excluded.get(j).copied().unwrap_or(false);
        let cut = kth_largest(approx, k, excluded).map_or(f64::NEG_INFINITY, |t| t as f64 - 2.0 * bound);
        sel.reset(k);
        let mut rescored = 0;
        // An f32 at or below the cut (rounding moves by under 1e-7 relative): a superset scan,
        // then the exact test.
        let floor = (cut - cut.abs() * 1e-6 - 1e-30) as f32;
        let mut j = 0;
        while j < approx.len() {
            j = next_above(approx, j, floor, true);
            if j == approx.len() {
                break;
            }
            if approx[j] as f64 >= cut && !masked(j) {
                let s = self.exact_one(&sel_data.rows, h, j);
                if !s.is_nan() {
                    sel.offer(j, s);
                }
                rescored += 1;
            }
            j += 1;
        }
        sel.drain_sorted_into(out);
        rescored
    }
}

/// The k-th largest unmasked, non-NaN value, or `None` when there are fewer than k. Only the
/// value matters (ties and order do not), so a small unsorted buffer with its minimum does: most
/// values lose one comparison against it, a new entry costs O(k). Large k use the heap.
fn kth_largest(values: &[f32], k: usize, excluded: &[bool]) -> Option<f32> {
    let masked = |j: usize| excluded.get(j).copied().unwrap_or(false);
    if k == 0 {
        return None;
    }
    if k > 64 {
        let mut sel = crate::topk::Selection::new(k);
        values.iter().enumerate().filter(|&(j, a)| !masked(j) && !a.is_nan()).for_each(|(j, &a)| sel.offer(j, a));
        return sel.threshold();
    }
    let mut top = [0f32; 64];
    let (mut len, mut min, mut at) = (0, f32::NEG_INFINITY, 0);
    let mut j = 0;
    while j < values.len() {
        if len == k {
            j = next_above(values, j, min, false);
            if j == values.len() {
                break;
            }
        }
        let a = values[j];
        j += 1;
        if a.is_nan() || masked(j - 1) {
            continue;
        }
        if len < k {
            top[len] = a;
            len += 1;
            if len < k {
                continue;
            }
        } else {
            top[at] = a;
        }
        (at, min) = top[..k].iter().enumerate().fold((0, f32::INFINITY), |(i, m), (l, &v)| if v < m { (l, v) } else { (i, m) });
    }
    (len == k).then_some(min)
}

/// The first index from `from` on whose value is above `t` (`>=` with `inclusive`), or the
/// length: eight values per comparison on wasm, where most of a catalog is below the cut.
fn next_above(values: &[f32], mut from: usize, t: f32, inclusive: bool) -> usize {
    let above = |a: f32| if inclusive { a >= t } else { a > t };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        let tv = f32x4_splat(t);
        while from + 8 <= values.len() {
            // SAFETY: from + 8 <= len, so both 4-float loads are inside `values`.
            let (a, b) =
                unsafe { (v128_load(values.as_ptr().add(from) as *const v128), v128_load(values.as_ptr().add(from + 4) as *const v128)) };
            let hit = if inclusive { v128_or(f32x4_ge(a, tv), f32x4_ge(b, tv)) } else { v128_or(f32x4_gt(a, tv), f32x4_gt(b, tv)) };
            if v128_any_true(hit) {
                break;
            }
            from += 8;
        }
    }
    while from < values.len() && !above(values[from]) {
        from += 1;
    }
    from
}

/// The head `hidden × items` (row-major, as [`LinearHead`] keeps it), quantized.
#[derive(Debug, Clone)]
pub struct QuantizedHead {
    hidden: usize,
    pairs: usize,
    items: usize,
    /// Items rounded up to whole blocks of 16.
    padded: usize,
    /// Per block of 16 items, per pair of hidden rows, per 4 items: 8 values
    /// `[w(2p, j), w(2p+1, j), w(2p, j+1), …]` — the operand layout of `dot_i16x8`.
    q: Vec<i16>,
    /// Per item: `w ≈ scale · q`.
    scale: Vec<f32>,
    /// The item bias, padded like `scale`.
    bias: Vec<f32>,
    max_scale: f64,
    /// max over items of `Σ_k |w_kj|`.
    max_colsum: f64,
    max_bias: f64,
    /// Largest quantized magnitude: `2 · pairs · limit²` fits an i32 accumulator.
    limit: f32,
}

const BLOCK: usize = 16;

impl QuantizedHead {
    pub fn new(head: &[f32], hidden: usize, items: usize, bias: &[f32]) -> Self {
        let pairs = hidden.div_ceil(2);
        let padded = items.div_ceil(BLOCK) * BLOCK;
        let limit = ((i32::MAX as f64 / (2 * pairs.max(1)) as f64).sqrt().floor()).min(32767.0) as f32;
        let w = |k: usize, j: usize| if k < hidden && j < items { head[k * items + j] } else { 0.0 };
        let mut scale = vec![0f32; padded];
        let mut max_colsum = 0f64;
        for (j, s) in scale.iter_mut().enumerate().take(items) {
            let max = (0..hidden).map(|k| w(k, j).abs()).fold(0f32, f32::max);
            *s = if max > 0.0 { max / limit } else { 0.0 };
            max_colsum = max_colsum.max((0..hidden).map(|k| w(k, j).abs() as f64).sum());
        }
        let mut q = vec![0i16; padded * pairs * 2];
        for b in 0..padded / BLOCK {
            for p in 0..pairs {
                for sub in 0..4 {
                    for l in 0..4 {
                        let j = b * BLOCK + sub * 4 + l;
                        let at = ((b * pairs + p) * 4 + sub) * 8 + 2 * l;
                        for (o, k) in [(0, 2 * p), (1, 2 * p + 1)] {
                            q[at + o] = if scale[j] > 0.0 { (w(k, j) / scale[j]).round().clamp(-limit, limit) as i16 } else { 0 };
                        }
                    }
                }
            }
        }
        let max_scale = scale.iter().fold(0f32, |a, &b| a.max(b)) as f64;
        let max_bias = bias.iter().fold(0f32, |a, &b| a.max(b.abs())) as f64;
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(padded, 0.0);
        QuantizedHead { hidden, pairs, items, padded, q, scale, bias: padded_bias, max_scale, max_colsum, max_bias, limit }
    }

    /// Approximate scores (`bias` included) into `out`, and a bound on how far any of them is
    /// from the exact head's score.
    pub fn approx_into(&self, h: &[f32], packed: &mut Vec<i32>, out: &mut Vec<f32>) -> f64 {
        let max_h = h.iter().take(self.hidden).fold(0f32, |a, &b| a.max(b.abs()));
        let s_h = if max_h > 0.0 { max_h / self.limit } else { 0.0 };
        // Hidden values in pairs, packed as the i32 lanes `dot_i16x8` multiplies against.
        packed.clear();
        packed.resize(self.pairs, 0);
        let mut l1 = 0f64;
        for (p, slot) in packed.iter_mut().enumerate() {
            let mut half = [0i16; 2];
            for (o, v) in half.iter_mut().enumerate() {
                let k = 2 * p + o;
                let x = if k < self.hidden { h[k] } else { 0.0 };
                l1 += x.abs() as f64;
                let q = if s_h > 0.0 { (x / s_h).round() } else { 0.0 };
                // Not `clamp`: its check of the bounds formats floats when it fails, which links
                // `core::fmt`'s float printer into the core. As with `clamp`, NaN becomes 0.
                *v = if q.is_nan() { 0 } else { q.max(-self.limit).min(self.limit) as i16 };
            }
            *slot = (half[0] as u16 as i32) | ((half[1] as i32) << 16);
        }
        // Every value is written by the kernel: no need to clear what the last call left.
        out.resize(self.padded, 0.0);
        kernels::accumulate(&self.q, packed, self.pairs, (&self.scale, &self.bias, s_h), out);
        out.truncate(self.items);
        // |h·w − ĥŵ·s_h·s_w| ≤ ½·s_w·Σ|ĥ|·s_h + ½·s_h·Σ|w|, with Σ|ĥ|·s_h ≤ Σ|h| + hidden·s_h/2;
        // plus the float rounding of both sides: the exact head's sequential sum (Higham's
        // γ_{hidden+1}) and this side's three roundings, doubled.
        let s_h = s_h as f64;
        let unit = 2f64.powi(-24);
        let n = (self.hidden + 2) as f64;
        let gamma = n * unit / (1.0 - n * unit);
        let magnitude = max_h as f64 * self.max_colsum + self.max_bias;
        0.5 * self.max_scale * (l1 + self.hidden as f64 * s_h)
            + 0.5 * s_h * self.max_colsum
            + 2.0 * (gamma + 4.0 * unit) * magnitude
            + 1e-30
    }
}

/// `out[j] = bias_j + s_h·scale_j · Σ_k q_kj·ĥ_k`, the sum in i32 (exact: every sum fits) and
/// the scaling in the same pass.
mod kernels {
    use super::BLOCK;

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn accumulate(q: &[i16], packed: &[i32], pairs: usize, (scale, bias, s_h): (&[f32], &[f32], f32), out: &mut [f32]) {
        use core::arch::wasm32::*;
        let blocks = out.len() / BLOCK;
        assert!(q.len() >= blocks * pairs * 32 && packed.len() >= pairs && scale.len() >= out.len() && bias.len() >= out.len());
        let sh = f32x4_splat(s_h);
        for b in 0..blocks {
            // SAFETY: block b reads q[(b·pairs + p)·32 .. + 32] for p < pairs, inside q, and
            // scale, bias and out at b·16 .. b·16 + 16, inside all three (asserted above); v128
            // loads need no alignment.
            unsafe {
                let base = q.as_ptr().add(b * pairs * 32);
                let mut acc = [i32x4_splat(0); 4];
                for (p, &hp) in packed.iter().enumerate().take(pairs) {
                    let h = i32x4_splat(hp);
                    let row = base.add(p * 32);
                    for (s, a) in acc.iter_mut().enumerate() {
                        *a = i32x4_add(*a, i32x4_dot_i16x8(v128_load(row.add(s * 8) as *const v128), h));
                    }
                }
                let o = out.as_mut_ptr().add(b * BLOCK);
                let (sc, bi) = (scale.as_ptr().add(b * BLOCK), bias.as_ptr().add(b * BLOCK));
                for (s, a) in acc.iter().enumerate() {
                    let f = f32x4_mul(f32x4_mul(sh, v128_load(sc.add(4 * s) as *const v128)), f32x4_convert_i32x4(*a));
                    v128_store(o.add(4 * s) as *mut v128, f32x4_add(v128_load(bi.add(4 * s) as *const v128), f));
                }
            }
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub fn accumulate(q: &[i16], packed: &[i32], pairs: usize, (scale, bias, s_h): (&[f32], &[f32], f32), out: &mut [f32]) {
        let blocks = out.len() / BLOCK;
        for b in 0..blocks {
            let mut acc = [0i32; BLOCK];
            for (p, &hp) in packed.iter().enumerate().take(pairs) {
                let (h0, h1) = (hp as i16 as i32, (hp >> 16) as i16 as i32);
                let row = &q[(b * pairs + p) * 32..(b * pairs + p + 1) * 32];
                for (j, a) in acc.iter_mut().enumerate() {
                    *a += row[2 * j] as i32 * h0 + row[2 * j + 1] as i32 * h1;
                }
            }
            for (l, a) in acc.into_iter().enumerate() {
                let j = b * BLOCK + l;
                out[j] = bias[j] + s_h * scale[j] * a as f32;
            }
        }
    }
}
