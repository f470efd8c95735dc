//! The f32 arithmetic of the SDK's own models (GRU, attention, scoring heads): explicit 128-bit
//! SIMD on wasm32 with `simd128` (the SDK's build), portable code LLVM vectorises elsewhere.
//! Both sum in the same order, so results are identical on every target.

/// `scores[j] += Σ_k h[k] · m[k·n + j]` for row-major `m` of `h.len()` rows and `n` columns: a
/// vector times a matrix, reading `m` once, in blocks of columns whose accumulators stay in
/// registers (scoring heads and the input-major linear layers of ONNX `MatMul`s).
pub fn vecmat(h: &[f32], m: &[f32], n: usize, scores: &mut [f32]) {
    vecmat_strided(h, m, n, n, scores);
}

/// [`vecmat`] over the first `n` columns of a matrix whose rows are `stride` apart.
pub fn vecmat_strided(h: &[f32], m: &[f32], stride: usize, n: usize, scores: &mut [f32]) {
    const BLOCK: usize = 32;
    let full = n - n % BLOCK;
    let mut j = 0;
    while j < full {
        block(h, m, stride, j, &mut scores[j..j + BLOCK]);
        j += BLOCK;
    }
    for (k, &hk) in h.iter().enumerate() {
        for jj in full..n {
            scores[jj] += hk * m[k * stride + jj];
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

/// Little-endian f32s (the bundle's weight parts), or `None` when the length is not whole floats.
pub fn f32s_from_le(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// `e^x` for each value, the Cephes single-precision method (range reduction by ln 2, a
/// degree-6 polynomial, the exponent set by bits): within ~2 ulp of the true value, four lanes
/// at a time on wasm where libm's scalar `expf` is a call per value. The formulas below are
/// written once over [`f4`]'s operations — four lanes on wasm, one `f32` elsewhere — so every
/// target runs the same operations in the same order and gets the same bits.
pub fn exp_in_place(v: &mut [f32]) {
    map4(v, exp4);
}

/// `1 / (1 + e^-x)` for each value.
pub fn sigmoid_in_place(v: &mut [f32]) {
    map4(v, |x| f4::div(f4::splat(1.0), f4::add(f4::splat(1.0), exp4(f4::neg(x)))));
}

/// `tanh x` for each value, as `1 − 2 / (e^{2x} + 1)` (absolute error ~1e-7).
pub fn tanh_in_place(v: &mut [f32]) {
    map4(v, |x| f4::sub(f4::splat(1.0), f4::div(f4::splat(2.0), f4::add(exp4(f4::add(x, x)), f4::splat(1.0)))));
}

/// GELU with the exact normal CDF, `x · ½(1 + erf(x/√2))`, erf by Abramowitz & Stegun 7.1.26
/// (absolute error ≤ 1.5e-7) on the exponential above.
pub fn gelu_erf_in_place(v: &mut [f32]) {
    map4(v, gelu4);
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];
const ERF_P: f32 = 0.327_591_1;
const ERF_A: [f32; 5] = [1.061_405_4, -1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6];

fn exp4(x: f4::V) -> f4::V {
    use f4::*;
    let x = clamp(x, -87.3, 88.0);
    let n = nearest(mul(x, splat(LOG2E)));
    let r = sub(sub(x, mul(n, splat(LN2_HI))), mul(n, splat(LN2_LO)));
    let mut p = splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = add(mul(p, r), splat(c));
    }
    let y = add(add(mul(p, mul(r, r)), r), splat(1.0));
    mul(y, pow2(n))
}

fn gelu4(x: f4::V) -> f4::V {
    use f4::*;
    let z = mul(x, splat(std::f32::consts::FRAC_1_SQRT_2));
    let a = abs(z);
    let t = div(splat(1.0), add(splat(1.0), mul(splat(ERF_P), a)));
    let mut p = splat(ERF_A[0]);
    for &c in &ERF_A[1..] {
        p = add(mul(p, t), splat(c));
    }
    let e = sub(splat(1.0), mul(mul(p, t), exp4(neg(mul(a, a)))));
    // erf is odd.
    let erf = negate_where_negative(e, z);
    mul(mul(splat(0.5), x), add(splat(1.0), erf))
}

/// Four f32 lanes of wasm SIMD.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod f4 {
    use core::arch::wasm32::*;
    pub use core::arch::wasm32::{
        f32x4_abs as abs, f32x4_add as add, f32x4_div as div, f32x4_mul as mul, f32x4_nearest as nearest, f32x4_neg as neg,
        f32x4_splat as splat, f32x4_sub as sub, v128 as V,
    };

    pub fn clamp(x: V, lo: f32, hi: f32) -> V {
        f32x4_pmax(f32x4_pmin(x, f32x4_splat(hi)), f32x4_splat(lo))
    }

    /// `2^n` for whole `n` in the normal exponent range, by bits.
    pub fn pow2(n: V) -> V {
        i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23)
    }

    pub fn negate_where_negative(v: V, sign_of: V) -> V {
        v128_bitselect(f32x4_neg(v), v, f32x4_lt(sign_of, f32x4_splat(0.0)))
    }
}

/// The scalar stand-in for the four lanes, so the same formulas compile everywhere.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod f4 {
    pub type V = f32;
    pub fn add(a: V, b: V) -> V {
        a + b
    }
    pub fn sub(a: V, b: V) -> V {
        a - b
    }
    pub fn mul(a: V, b: V) -> V {
        a * b
    }
    pub fn div(a: V, b: V) -> V {
        a / b
    }
    pub fn neg(a: V) -> V {
        -a
    }
    pub fn abs(a: V) -> V {
        a.abs()
    }
    pub fn splat(a: f32) -> V {
        a
    }
    pub fn nearest(a: V) -> V {
        a.round_ties_even()
    }
    pub fn clamp(x: V, lo: f32, hi: f32) -> V {
        x.clamp(lo, hi)
    }
    pub fn pow2(n: V) -> V {
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }
    pub fn negate_where_negative(v: V, sign_of: V) -> V {
        if sign_of < 0.0 {
            -v
        } else {
            v
        }
    }
}

/// Applies `four` to the values four at a time (a last partial group padded).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn map4(v: &mut [f32], four: impl Fn(f4::V) -> f4::V) {
    use core::arch::wasm32::*;
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        // SAFETY: `c` is exactly 4 floats; v128 loads and stores need no alignment.
        unsafe {
            let p = c.as_mut_ptr() as *mut v128;
            v128_store(p, four(v128_load(p)));
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut lanes = [0f32; 4];
        lanes[..rest.len()].copy_from_slice(rest);
        // SAFETY: `lanes` is 4 floats.
        unsafe {
            let p = lanes.as_mut_ptr() as *mut v128;
            v128_store(p, four(v128_load(p)));
        }
        rest.copy_from_slice(&lanes[..rest.len()]);
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn map4(v: &mut [f32], four: impl Fn(f4::V) -> f4::V) {
    v.iter_mut().for_each(|x| *x = four(*x));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_gelu_stay_close_to_libm() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
        let mut e = xs.clone();
        exp_in_place(&mut e);
        for (&x, &y) in xs.iter().zip(&e) {
            let want = (x as f64).exp();
            assert!(((y as f64 - want) / want).abs() < 3e-7, "exp({x}) = {y}, want {want}");
        }
        let mut g = xs.clone();
        gelu_erf_in_place(&mut g);
        for (&x, &y) in xs.iter().zip(&g) {
            let want = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((y as f64 - want).abs() < 4e-7 * (1.0 + x.abs() as f64), "gelu({x}) = {y}, want {want}");
        }
        let (mut s, mut t) = (xs.clone(), xs.clone());
        sigmoid_in_place(&mut s);
        tanh_in_place(&mut t);
        for ((&x, &a), &b) in xs.iter().zip(&s).zip(&t) {
            assert!((a as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs() < 2e-7, "sigmoid({x})");
            assert!((b as f64 - (x as f64).tanh()).abs() < 3e-7, "tanh({x})");
        }
        // Far tails saturate instead of overflowing.
        let mut far = vec![-200.0, 200.0, f32::MIN, f32::MAX];
        exp_in_place(&mut far);
        assert!(far.iter().all(|v| v.is_finite()), "{far:?}");
    }
}
