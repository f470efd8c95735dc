//! The f32 arithmetic of the SDK's own models (GRU, attention, scoring heads): explicit 128-bit
//! SIMD on wasm32 with `simd128` (the SDK's build), portable code LLVM vectorises elsewhere.
//! Both sum in the same order, so results are identical on every target.

/// `scores[j] += Σ_k h[k] · m[k·n + j]` for row-major `m` of `h.len()` rows and `n` columns: a
/// vector times a matrix, reading `m` once, in blocks of columns whose accumulators stay in
/// registers (scoring heads and the input-major linear layers of ONNX `MatMul`s).
pub fn vecmat(h: &[f32], m: &[f32], n: usize, scores: &mut [f32]) {
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

/// Little-endian f32s (the bundle's weight parts), or `None` when the length is not whole floats.
pub fn f32s_from_le(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
