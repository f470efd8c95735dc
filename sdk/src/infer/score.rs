//! Scoring a visitor vector against an item-embedding matrix: `score_i = u · x_i + b_i`, then
//! the `k` best items that are not masked. This is the CPU path and the reference the WebGPU
//! path (`gpu`, feature `webgpu`) is held to: the GPU only *selects* candidates, every score
//! the SDK returns is computed here, so both paths give the same items and the same scores.
//!
//! Order everywhere: higher score first, the lower index on equal scores.

use thiserror::Error;

use super::topk::Selection;
use crate::contract::bundle::Bundle;
use crate::contract::manifest::EmbeddingSection;
use crate::error::BundleError;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ScoreError {
    #[error("the item matrix has {got} values, expected {rows} rows × {dims} dims = {}", rows * dims)]
    Shape { rows: usize, dims: usize, got: usize },
    #[error("the item matrix needs at least one dimension")]
    NoDims,
    #[error("item {row} has a non-finite value in dimension {dim}")]
    NonFiniteItem { row: usize, dim: usize },
    #[error("the item bias has {got} values for {rows} items")]
    BiasShape { rows: usize, got: usize },
    #[error("item {row}'s bias is not finite")]
    NonFiniteBias { row: usize },
    #[error("the visitor vector has {got} dims, the item matrix {dims}")]
    UserDims { dims: usize, got: usize },
    #[error("the visitor vector is not finite in dimension {dim} (the model produced NaN or ∞)")]
    NonFiniteUser { dim: usize },
    #[error("an f16 matrix is given as {got} bytes, not 2 per value")]
    OddBytes { got: usize },
}

/// Which path scores item embeddings (config `scoring`): `auto` measures both at init and
/// keeps the faster; `gpu` needs the SDK's WebGPU build and a WebGPU adapter, else the CPU
/// scores and `scoring()` says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    #[default]
    Auto,
    Cpu,
    Gpu,
}

crate::json::unit_variants!(Preference { "auto" => Preference::Auto, "cpu" => Preference::Cpu, "gpu" => Preference::Gpu });

impl std::str::FromStr for Preference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Preference::Auto),
            "cpu" => Ok(Preference::Cpu),
            "gpu" => Ok(Preference::Gpu),
            other => Err(format!("`{other}` is not a scoring path: use \"auto\", \"cpu\" or \"gpu\"")),
        }
    }
}

/// How the matrix is stored: f16 halves the bytes (and the GPU upload) at ~3 significant digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
}

impl Dtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }
}

/// Items to leave out (history, cart, out of stock), one bit per item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemMask {
    words: Vec<u32>,
}

impl ItemMask {
    pub fn new(rows: usize) -> Self {
        ItemMask { words: vec![0; rows.div_ceil(32)] }
    }

    pub fn from_items(rows: usize, items: impl IntoIterator<Item = usize>) -> Self {
        let mut mask = ItemMask::new(rows);
        for i in items {
            mask.set(i);
        }
        mask
    }

    pub fn from_bools(excluded: &[bool]) -> Self {
        Self::from_items(excluded.len(), excluded.iter().enumerate().filter(|p| *p.1).map(|p| p.0))
    }

    /// Out-of-range items are ignored: nothing to mask.
    pub fn set(&mut self, item: usize) {
        if let Some(w) = self.words.get_mut(item / 32) {
            *w |= 1 << (item % 32);
        }
    }

    pub fn contains(&self, item: usize) -> bool {
        self.words.get(item / 32).is_some_and(|w| w & (1 << (item % 32)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    pub fn words(&self) -> &[u32] {
        &self.words
    }

    /// From [`ItemMask::words`] (as the GPU module receives a mask), fitted to `rows`: missing
    /// words mask nothing, and bits past the last row are dropped.
    pub fn from_words(rows: usize, words: &[u32]) -> Self {
        let mut mask = ItemMask::new(rows);
        for (w, &v) in mask.words.iter_mut().zip(words) {
            *w = v;
        }
        if let (Some(last), tail @ 1..) = (mask.words.last_mut(), rows % 32) {
            *last &= (1u32 << tail) - 1;
        }
        mask
    }
}

#[derive(Debug, Clone)]
enum Values {
    F32(Vec<f32>),
    /// Raw IEEE half bits; subnormal halves are stored as zero so that a GPU that flushes them
    /// computes on the same numbers as the CPU.
    F16(Vec<u16>),
}

/// The catalog's item vectors, row-major, each row padded with zeros to a multiple of 8 dims
/// (the GPU reads rows in 16-byte lanes). Zero padding changes no dot product.
#[derive(Debug, Clone)]
pub struct ItemMatrix {
    rows: usize,
    dims: usize,
    stride: usize,
    values: Values,
    bias: Option<Vec<f32>>,
    /// Per dimension, the largest |x_ij| over items: bounds any score's rounding error.
    col_max: Vec<f32>,
    bias_max: f32,
}

/// Row stride for `dims`: a multiple of 8 so both f32 (vec4) and f16 (8 per 16 bytes) rows align.
fn stride_for(dims: usize) -> usize {
    dims.div_ceil(8) * 8
}

/// Half → single for the halves a matrix holds (zeros and normal numbers: subnormals are
/// flushed and ±∞/NaN refused when it is built): exact, branch-free, so it vectorises.
#[inline]
fn widen(h: u16) -> f32 {
    let h = h as u32;
    let magnitude = h & 0x7fff;
    let bits = if magnitude == 0 { 0 } else { (magnitude << 13) + 0x3800_0000 };
    f32::from_bits(((h & 0x8000) << 16) | bits)
}

/// Subnormal halves (exponent 0, mantissa ≠ 0) become a zero of the same sign.
fn flush_half(bits: u16) -> u16 {
    if bits & 0x7c00 == 0 {
        bits & 0x8000
    } else {
        bits
    }
}

impl ItemMatrix {
    /// `values` row-major, `rows × dims`.
    pub fn from_f32(rows: usize, dims: usize, values: &[f32], bias: Option<Vec<f32>>) -> Result<Self, ScoreError> {
        Self::check(rows, dims, values.len())?;
        let stride = stride_for(dims);
        let mut padded = vec![0f32; rows * stride];
        for (r, row) in values.chunks_exact(dims).enumerate() {
            if let Some(dim) = row.iter().position(|v| !v.is_finite()) {
                return Err(ScoreError::NonFiniteItem { row: r, dim });
            }
            padded[r * stride..r * stride + dims].copy_from_slice(row);
        }
        Self::finish(rows, dims, stride, Values::F32(padded), bias)
    }

    /// Converts an f32 matrix to f16 (round to nearest even), e.g. for a smaller bundle.
    pub fn from_f32_as_f16(rows: usize, dims: usize, values: &[f32], bias: Option<Vec<f32>>) -> Result<Self, ScoreError> {
        Self::check(rows, dims, values.len())?;
        if let Some(i) = values.iter().position(|v| !v.is_finite() || half::f16::from_f32(*v).is_infinite()) {
            return Err(ScoreError::NonFiniteItem { row: i / dims, dim: i % dims });
        }
        let bits: Vec<u16> = values.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
        Self::from_f16_bits(rows, dims, &bits, bias)
    }

    pub fn from_f16_bits(rows: usize, dims: usize, bits: &[u16], bias: Option<Vec<f32>>) -> Result<Self, ScoreError> {
        Self::check(rows, dims, bits.len())?;
        let stride = stride_for(dims);
        let mut padded = vec![0u16; rows * stride];
        for (r, row) in bits.chunks_exact(dims).enumerate() {
            if let Some(dim) = row.iter().position(|&b| b & 0x7c00 == 0x7c00) {
                return Err(ScoreError::NonFiniteItem { row: r, dim });
            }
            for (o, &b) in padded[r * stride..r * stride + dims].iter_mut().zip(row) {
                *o = flush_half(b);
            }
        }
        Self::finish(rows, dims, stride, Values::F16(padded), bias)
    }

    /// From a bundle part: little-endian f32 or f16, row-major.
    pub fn from_le_bytes(rows: usize, dims: usize, dtype: Dtype, bytes: &[u8], bias: Option<Vec<f32>>) -> Result<Self, ScoreError> {
        match dtype {
            Dtype::F32 => {
                if !bytes.len().is_multiple_of(4) {
                    return Err(ScoreError::Shape { rows, dims, got: bytes.len() / 4 });
                }
                let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                Self::from_f32(rows, dims, &v, bias)
            }
            Dtype::F16 => {
                if !bytes.len().is_multiple_of(2) {
                    return Err(ScoreError::OddBytes { got: bytes.len() });
                }
                let v: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                Self::from_f16_bits(rows, dims, &v, bias)
            }
        }
    }

    /// Little-endian bytes of the unpadded rows, as stored in a bundle.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows * self.dims * 4);
        for r in 0..self.rows {
            let range = r * self.stride..r * self.stride + self.dims;
            match &self.values {
                Values::F32(v) => v[range].iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Values::F16(v) => v[range].iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            }
        }
        out
    }

    fn check(rows: usize, dims: usize, got: usize) -> Result<(), ScoreError> {
        if dims == 0 {
            return Err(ScoreError::NoDims);
        }
        if rows.checked_mul(dims) != Some(got) {
            return Err(ScoreError::Shape { rows, dims, got });
        }
        Ok(())
    }

    fn finish(rows: usize, dims: usize, stride: usize, values: Values, bias: Option<Vec<f32>>) -> Result<Self, ScoreError> {
        if let Some(b) = &bias {
            if b.len() != rows {
                return Err(ScoreError::BiasShape { rows, got: b.len() });
            }
            if let Some(row) = b.iter().position(|v| !v.is_finite()) {
                return Err(ScoreError::NonFiniteBias { row });
            }
        }
        let mut m = ItemMatrix { rows, dims, stride, values, bias, col_max: vec![0.0; dims], bias_max: 0.0 };
        let mut row = vec![0f32; stride];
        for r in 0..rows {
            m.row_into(r, &mut row);
            for (c, &v) in m.col_max.iter_mut().zip(&row) {
                *c = c.max(v.abs());
            }
        }
        m.bias_max = m.bias.as_deref().unwrap_or(&[]).iter().fold(0f32, |a, b| a.max(b.abs()));
        Ok(m)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Padded row length (a multiple of 8).
    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn dtype(&self) -> Dtype {
        match self.values {
            Values::F32(_) => Dtype::F32,
            Values::F16(_) => Dtype::F16,
        }
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// The padded values as the GPU wants them: f32 words or packed f16 pairs.
    pub fn gpu_bytes(&self, rows: std::ops::Range<usize>) -> &[u8] {
        let (s, e) = (rows.start * self.stride, rows.end * self.stride);
        match &self.values {
            Values::F32(v) => f32_bytes(&v[s..e]),
            Values::F16(v) => u16_bytes(&v[s..e]),
        }
    }

    /// Bytes per padded row on the GPU.
    pub fn row_bytes(&self) -> usize {
        self.stride * if self.dtype() == Dtype::F32 { 4 } else { 2 }
    }

    fn row_into(&self, r: usize, out: &mut [f32]) {
        let range = r * self.stride..(r + 1) * self.stride;
        match &self.values {
            Values::F32(v) => out.copy_from_slice(&v[range]),
            Values::F16(v) => widen_row(&v[range], out),
        }
    }

    /// Checks a visitor vector and pads it to the row stride.
    pub fn user(&self, user: &[f32]) -> Result<Vec<f32>, ScoreError> {
        if user.len() != self.dims {
            return Err(ScoreError::UserDims { dims: self.dims, got: user.len() });
        }
        if let Some(dim) = user.iter().position(|v| !v.is_finite()) {
            return Err(ScoreError::NonFiniteUser { dim });
        }
        let mut u = vec![0f32; self.stride];
        u[..self.dims].copy_from_slice(user);
        Ok(u)
    }

    /// Score of one item for a padded visitor vector (from [`ItemMatrix::user`]).
    pub fn score(&self, user: &[f32], item: usize, row: &mut [f32]) -> f32 {
        let s = match &self.values {
            Values::F32(v) => crate::infer::kernels::dot(user, &v[item * self.stride..(item + 1) * self.stride]),
            Values::F16(_) => {
                self.row_into(item, row);
                crate::infer::kernels::dot(user, row)
            }
        };
        let s = s + self.bias.as_ref().map_or(0.0, |b| b[item]);
        if s.is_nan() {
            f32::NEG_INFINITY
        } else {
            s
        }
    }

    /// Every item's score (padded visitor vector), e.g. for rules that need the whole ranking.
    pub fn scores_into(&self, user: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let mut row = vec![0f32; self.stride];
        out.extend((0..self.rows).map(|i| self.score(user, i, &mut row)));
    }

    /// The `k` best unmasked items over all rows.
    pub fn top_k(&self, user: &[f32], k: usize, mask: Option<&ItemMask>) -> Vec<(usize, f32)> {
        let mut sel = Selection::new(k);
        self.select_range(user, 0..self.rows, mask, &mut sel);
        sel.into_sorted()
    }

    /// Adds the scores of rows `range` to a running selection.
    pub fn select_range(&self, user: &[f32], range: std::ops::Range<usize>, mask: Option<&ItemMask>, sel: &mut Selection) {
        let mut row = vec![0f32; self.stride];
        let mask = mask.filter(|m| !m.is_empty());
        for i in range {
            if mask.is_some_and(|m| m.contains(i)) {
                continue;
            }
            sel.offer(i, self.score(user, i, &mut row));
        }
    }

    /// A bound on |GPU score − CPU score| for any item: both are sums of `stride` products in
    /// some order (the GPU may fuse multiply-adds and flush subnormals), so each is within
    /// γ·Σ|u_j·x_ij| of the exact value (Higham's γ_n = n·2⁻²⁴ / (1 − n·2⁻²⁴)), doubled for
    /// safety, plus what flushing subnormals can move. `None` when scores could overflow.
    pub fn error_bound(&self, user: &[f32]) -> Option<f32> {
        let n = (self.stride + 2) as f64;
        let unit = 2f64.powi(-24);
        let gamma = n * unit / (1.0 - n * unit);
        let magnitude: f64 = user.iter().zip(&self.col_max).map(|(&u, &c)| (u as f64).abs() * c as f64).sum::<f64>() + self.bias_max as f64;
        let l1: f64 = user.iter().map(|&u| (u as f64).abs()).sum();
        if !magnitude.is_finite() || magnitude > 1e37 {
            return None;
        }
        let bound = 4.0 * gamma * magnitude + (l1 + n) * 2f64.powi(-125);
        Some(bound as f32)
    }
}

/// [`widen`] over a row; on wasm eight halves per 128-bit load (the bit trick in SIMD).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn widen_row(bits: &[u16], out: &mut [f32]) {
    use core::arch::wasm32::*;
    let n = bits.len().min(out.len());
    let full = n - n % 8;
    // SAFETY: each iteration reads bits[i..i + 8] and writes out[i..i + 8], i + 8 <= full <= n.
    unsafe {
        let mut i = 0;
        while i < full {
            let h = v128_load(bits.as_ptr().add(i) as *const v128);
            for (lanes, at) in [(u32x4_extend_low_u16x8(h), i), (u32x4_extend_high_u16x8(h), i + 4)] {
                let magnitude = v128_and(lanes, u32x4_splat(0x7fff));
                let sign = i32x4_shl(v128_and(lanes, u32x4_splat(0x8000)), 16);
                let value = i32x4_add(i32x4_shl(magnitude, 13), u32x4_splat(0x3800_0000));
                let nonzero = v128_not(i32x4_eq(magnitude, u32x4_splat(0)));
                v128_store(out.as_mut_ptr().add(at) as *mut v128, v128_or(sign, v128_and(value, nonzero)));
            }
            i += 8;
        }
    }
    for i in full..n {
        out[i] = widen(bits[i]);
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn widen_row(bits: &[u16], out: &mut [f32]) {
    for (o, &b) in out.iter_mut().zip(bits) {
        *o = widen(b);
    }
}

/// Plain numbers viewed as their (little-endian, on every target the SDK builds for) bytes:
/// bundle parts and GPU uploads.
pub(crate) fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no invalid bit patterns or padding; the byte view covers the same memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

pub(crate) fn u16_bytes(v: &[u16]) -> &[u8] {
    // SAFETY: as above.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

#[cfg_attr(not(feature = "webgpu"), allow(dead_code))]
pub(crate) fn u32_bytes(v: &[u32]) -> &[u8] {
    // SAFETY: as above.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

impl ItemMatrix {
    /// The item matrix a bundle's embeddings section describes, read from the bundle's parts.
    pub fn from_bundle(section: &EmbeddingSection, bundle: &Bundle) -> Result<ItemMatrix, BundleError> {
        let dtype = match section.dtype.as_str() {
            "f32" => Dtype::F32,
            "f16" => Dtype::F16,
            other => return Err(BundleError::Manifest(format!("item embeddings of dtype `{other}`: expected f32 or f16"))),
        };
        let bias = match &section.bias {
            Some(part) => {
                let bytes = bundle.part(part)?;
                if bytes.len() % 4 != 0 {
                    return Err(BundleError::Manifest(format!("the item bias part `{part}` is not whole f32s")));
                }
                Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            None => None,
        };
        ItemMatrix::from_le_bytes(section.rows, section.dims, dtype, bundle.part(&section.part)?, bias)
            .map_err(|e| BundleError::Manifest(format!("the item embeddings: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn reference(m: &ItemMatrix, user: &[f32], k: usize, mask: Option<&ItemMask>) -> Vec<(usize, f32)> {
        let mut scores = Vec::new();
        m.scores_into(user, &mut scores);
        let excluded: Vec<bool> = (0..m.rows()).map(|i| mask.is_some_and(|x| x.contains(i))).collect();
        crate::infer::topk::top_k(&scores, k, &excluded)
    }

    #[test]
    fn a_mask_survives_its_words_and_foreign_words_are_fitted() {
        let mask = ItemMask::from_items(70, [0, 31, 32, 69]);
        assert_eq!(ItemMask::from_words(70, mask.words()), mask);
        // Too few words mask nothing more; bits past the last row and extra words are dropped.
        let short = ItemMask::from_words(70, &[1]);
        assert_eq!((0..70).filter(|&i| short.contains(i)).collect::<Vec<_>>(), vec![0]);
        let long = ItemMask::from_words(70, &[0, 0, u32::MAX, u32::MAX]);
        assert_eq!((0..100).filter(|&i| long.contains(i)).collect::<Vec<_>>(), (64..70).collect::<Vec<_>>());
        assert_eq!(long.words().len(), 3);
    }

    #[test]
    fn top_k_matches_a_full_ranking_with_ties_masks_and_large_k() {
        let mut seed = 7;
        let (rows, dims) = (3000, 37);
        let mut values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut seed)).collect();
        // Duplicated rows tie exactly: the lower index must come first.
        for r in (0..rows).step_by(10) {
            let (a, b) = values.split_at_mut((r + 1) * dims);
            b[..dims].copy_from_slice(&a[r * dims..]);
        }
        let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut seed) * 0.1).collect();
        let user: Vec<f32> = (0..dims).map(|_| lcg(&mut seed)).collect();
        let mask = ItemMask::from_items(rows, (0..rows).step_by(7));
        for m in [
            ItemMatrix::from_f32(rows, dims, &values, None).unwrap(),
            ItemMatrix::from_f32(rows, dims, &values, Some(bias.clone())).unwrap(),
            ItemMatrix::from_f32_as_f16(rows, dims, &values, Some(bias.clone())).unwrap(),
        ] {
            let u = m.user(&user).unwrap();
            for k in [1, 20, 500, rows + 5] {
                assert_eq!(m.top_k(&u, k, None), reference(&m, &u, k, None));
                let masked = m.top_k(&u, k, Some(&mask));
                assert_eq!(masked, reference(&m, &u, k, Some(&mask)));
                assert!(masked.iter().all(|&(i, _)| i % 7 != 0));
            }
            assert_eq!(m.top_k(&u, rows + 5, Some(&mask)).len(), rows - rows.div_ceil(7));
        }
    }

    #[test]
    fn f16_matrix_keeps_ranking_close_and_flushes_subnormals() {
        let v = [1.0e-6f32, 0.5, -2.0, 3.0e-5];
        let m = ItemMatrix::from_f32_as_f16(2, 2, &v, None).unwrap();
        let u = m.user(&[1.0, 1.0]).unwrap();
        let mut row = vec![0.0; m.stride()];
        assert_eq!(m.score(&u, 0, &mut row), 0.5, "the subnormal 1e-6 is stored as zero");
        assert_eq!(m.to_le_bytes().len(), 8);
        let back = ItemMatrix::from_le_bytes(2, 2, Dtype::F16, &m.to_le_bytes(), None).unwrap();
        assert_eq!(back.top_k(&u, 2, None), m.top_k(&u, 2, None));
    }

    #[test]
    fn widening_a_half_is_exact_for_every_half_a_matrix_can_hold() {
        for bits in 0..=u16::MAX {
            let exponent = bits & 0x7c00;
            let subnormal = exponent == 0 && bits & 0x03ff != 0;
            if exponent == 0x7c00 || subnormal {
                continue;
            }
            assert_eq!(widen(bits).to_bits(), half::f16::from_bits(bits).to_f32().to_bits(), "{bits:#06x}");
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_place() {
        assert_eq!(ItemMatrix::from_f32(2, 3, &[0.0; 5], None).unwrap_err(), ScoreError::Shape { rows: 2, dims: 3, got: 5 });
        assert_eq!(ItemMatrix::from_f32(1, 2, &[0.0, f32::NAN], None).unwrap_err(), ScoreError::NonFiniteItem { row: 0, dim: 1 });
        assert_eq!(ItemMatrix::from_f32(2, 1, &[0.0, 1.0], Some(vec![0.0])).unwrap_err(), ScoreError::BiasShape { rows: 2, got: 1 });
        assert_eq!(ItemMatrix::from_f32_as_f16(1, 1, &[1e6], None).unwrap_err(), ScoreError::NonFiniteItem { row: 0, dim: 0 });
        let m = ItemMatrix::from_f32(1, 2, &[0.0, 1.0], None).unwrap();
        assert_eq!(m.user(&[1.0]).unwrap_err(), ScoreError::UserDims { dims: 2, got: 1 });
        assert_eq!(m.user(&[1.0, f32::INFINITY]).unwrap_err(), ScoreError::NonFiniteUser { dim: 1 });
        assert!(m.error_bound(&[1e30, 1e30]).is_some());
        let big = ItemMatrix::from_f32(1, 2, &[1e30, 1e30], None).unwrap();
        assert_eq!(big.error_bound(&[1e30, 1e30]), None, "scores that may overflow are not bounded");
    }
}
