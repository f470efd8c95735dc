//! The randomized SVD (step 2 of the `train` module docs), kept apart from what is factorized so
//! the linear algebra can be read on its own.

use foresight::privacy::mechanism::{Randomness, SeededRandomness};

use super::steps::Steps;

/// Extra sketch columns and power iterations of the randomized SVD.
const OVERSAMPLE: usize = 10;
const POWER_ITERATIONS: usize = 4;

/// Sparse matrix, compressed rows.
pub(super) struct Csr {
    pub(super) n: usize,
    pub(super) row_start: Vec<usize>,
    pub(super) cols: Vec<u32>,
    pub(super) vals: Vec<f64>,
}

impl Csr {
    /// `Y = A X` for row-major `X` of shape `[n, l]`.
    fn mul(&self, x: &[f64], l: usize) -> Vec<f64> {
        let mut y = vec![0.0; self.n * l];
        for i in 0..self.n {
            let yi = &mut y[i * l..(i + 1) * l];
            for p in self.row_start[i]..self.row_start[i + 1] {
                let (j, a) = (self.cols[p] as usize, self.vals[p]);
                for (y, x) in yi.iter_mut().zip(&x[j * l..(j + 1) * l]) {
                    *y += a * x;
                }
            }
        }
        y
    }

    /// `Y = Aᵀ X` for row-major `X` of shape `[n, l]`.
    fn mul_t(&self, x: &[f64], l: usize) -> Vec<f64> {
        let mut y = vec![0.0; self.n * l];
        for i in 0..self.n {
            let xi = &x[i * l..(i + 1) * l];
            for p in self.row_start[i]..self.row_start[i + 1] {
                let (j, a) = (self.cols[p] as usize, self.vals[p]);
                for (y, x) in y[j * l..(j + 1) * l].iter_mut().zip(xi) {
                    *y += a * x;
                }
            }
        }
        y
    }
}

/// Standard normal noise by Box-Muller over the SDK's seeded generator (deterministic per seed).
fn gaussian(rng: &mut SeededRandomness) -> f64 {
    // Shifted by half a step so the logarithm never sees 0.
    let mut open_unit = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u, v) = (open_unit(), open_unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Orthonormalizes the columns of row-major `[n, l]` in place (modified Gram-Schmidt, twice);
/// columns that vanish become zero.
fn orthonormalize(y: &mut [f64], n: usize, l: usize) {
    let mut cols: Vec<Vec<f64>> = (0..l).map(|c| (0..n).map(|r| y[r * l + c]).collect()).collect();
    for c in 0..l {
        let norm0 = cols[c].iter().map(|x| x * x).sum::<f64>().sqrt();
        for _ in 0..2 {
            for p in 0..c {
                let (done, rest) = cols.split_at_mut(c);
                let proj: f64 = done[p].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
                for (x, q) in rest[0].iter_mut().zip(&done[p]) {
                    *x -= proj * q;
                }
            }
        }
        let norm = cols[c].iter().map(|x| x * x).sum::<f64>().sqrt();
        let keep = norm > 1e-10 * norm0.max(1e-300);
        for x in cols[c].iter_mut() {
            *x = if keep { *x / norm } else { 0.0 };
        }
    }
    for (c, col) in cols.iter().enumerate() {
        for (r, x) in col.iter().enumerate() {
            y[r * l + c] = *x;
        }
    }
}

/// Eigen-decomposition of a symmetric `[l, l]` matrix by cyclic Jacobi rotations:
/// eigenvalues descending, eigenvectors as the columns of the returned row-major matrix.
fn symmetric_eigen(mut a: Vec<f64>, l: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; l * l];
    for i in 0..l {
        v[i * l + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..l).flat_map(|i| (0..l).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * l + j].powi(2)).sum();
        if off <= 1e-26 * total {
            break;
        }
        for p in 0..l {
            for q in p + 1..l {
                let apq = a[p * l + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * l + q] - a[p * l + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..l {
                    let (akp, akq) = (a[k * l + p], a[k * l + q]);
                    a[k * l + p] = c * akp - s * akq;
                    a[k * l + q] = s * akp + c * akq;
                }
                for k in 0..l {
                    let (apk, aqk) = (a[p * l + k], a[q * l + k]);
                    a[p * l + k] = c * apk - s * aqk;
                    a[q * l + k] = s * apk + c * aqk;
                }
                for k in 0..l {
                    let (vkp, vkq) = (v[k * l + p], v[k * l + q]);
                    v[k * l + p] = c * vkp - s * vkq;
                    v[k * l + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|&x, &y| a[y * l + y].total_cmp(&a[x * l + x]));
    let values = order.iter().map(|&i| a[i * l + i]).collect();
    let mut vectors = vec![0.0; l * l];
    for (new, &old) in order.iter().enumerate() {
        for r in 0..l {
            vectors[r * l + new] = v[r * l + old];
        }
    }
    (values, vectors)
}

/// Rank-`k` factors `E, V` (`[n, k]` row-major, `E Vᵀ ~ A`, each carrying `sqrt(σ)`), and σ.
pub(super) fn randomized_svd(a: &Csr, k: usize, seed: u64, progress: &Steps) -> (Vec<f64>, Vec<f64>, usize, Vec<f64>) {
    let n = a.n;
    let l = (k + OVERSAMPLE).min(n);
    let mut rng = SeededRandomness(seed);
    let omega: Vec<f64> = (0..n * l).map(|_| gaussian(&mut rng)).collect();
    let mut q = a.mul(&omega, l);
    orthonormalize(&mut q, n, l);
    for _ in 0..POWER_ITERATIONS {
        let mut z = a.mul_t(&q, l);
        orthonormalize(&mut z, n, l);
        q = a.mul(&z, l);
        orthonormalize(&mut q, n, l);
        progress.tick();
    }
    // B = Qᵀ A, kept as Bᵀ = Aᵀ Q ([n, l]); its Gram matrix B Bᵀ is [l, l].
    let bt = a.mul_t(&q, l);
    let mut gram = vec![0.0; l * l];
    for r in 0..n {
        let row = &bt[r * l..(r + 1) * l];
        for i in 0..l {
            for j in i..l {
                gram[i * l + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..l {
        for j in 0..i {
            gram[i * l + j] = gram[j * l + i];
        }
    }
    let (eig, w) = symmetric_eigen(gram, l);
    let sigma_max = eig.first().copied().unwrap_or(0.0).max(0.0).sqrt();
    let sigma: Vec<f64> = eig.iter().take(k).map(|&e| e.max(0.0).sqrt()).take_while(|&s| s > 1e-9 * sigma_max && s > 0.0).collect();
    let r = sigma.len().max(1);
    // U = Q W, V = Bᵀ W σ⁻¹; E = U σ^½, V' = V σ^½ = Bᵀ W σ^-½.
    let mut e = vec![0.0; n * r];
    let mut v = vec![0.0; n * r];
    for row in 0..n {
        for c in 0..sigma.len() {
            let (mut u_rc, mut b_rc) = (0.0, 0.0);
            for i in 0..l {
                u_rc += q[row * l + i] * w[i * l + c];
                b_rc += bt[row * l + i] * w[i * l + c];
            }
            e[row * r + c] = u_rc * sigma[c].sqrt();
            v[row * r + c] = b_rc / sigma[c].sqrt();
        }
    }
    (e, v, r, sigma)
}
