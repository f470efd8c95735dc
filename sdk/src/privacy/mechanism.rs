//! Local differential-privacy mechanisms: what each visitor's browser applies before anything
//! leaves it, and the collector's unbiased estimators (with standard errors) for the same
//! parameters. One definition serves both sides.
//!
//! - [`KaryRr`]: k-ary randomized response, for small known domains (intent buckets, outcome
//!   counts). ε-LDP: a report is at most e^ε times likelier under one true value than another.
//! - [`Hcms`]: Hadamard count-mean sketch (Apple's HCMS), for open domains (item ids, item→item
//!   transitions): one bit per report, ε-LDP, frequencies estimated for any candidate value.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Num;
use crate::json::{self, Fields, FromJson};

pub use crate::platform::{Randomness, SeededRandomness};

/// An estimate with its standard error; `interval(z)` gives estimate ± z·se.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    pub value: f64,
    pub std_error: f64,
}

impl Estimate {
    pub fn interval(&self, z: f64) -> (f64, f64) {
        (self.value - z * self.std_error, self.value + z * self.std_error)
    }
}

/// k-ary randomized response over `0..k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KaryRr {
    pub k: u32,
    pub epsilon: f64,
}

impl FromJson for KaryRr {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["k", "epsilon"])?;
        Ok(KaryRr { k: f.req("k")?, epsilon: f.req("epsilon")? })
    }
}
json::deserialize_with_reader!(KaryRr);

impl KaryRr {
    /// Probability of reporting the true value.
    pub fn p(&self) -> f64 {
        let e = self.epsilon.exp();
        e / (e + f64::from(self.k) - 1.0)
    }

    /// Probability of reporting one particular other value.
    pub fn q(&self) -> f64 {
        1.0 / (self.epsilon.exp() + f64::from(self.k) - 1.0)
    }

    pub fn validate(&self) -> Result<(), String> {
        // Whoever pools reports keeps a tally of k counters per mechanism it sees, from
        // reports anyone with the page's site key can send; the largest real domain is an
        // experiment's (4 variants × 5 stages).
        if !(2..=MAX_RR_DOMAIN).contains(&self.k) {
            return Err(format!("k-ary randomized response needs k from 2 to {MAX_RR_DOMAIN}, got {}", self.k));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(format!("ε must be positive, got {}", Num(self.epsilon)));
        }
        Ok(())
    }

    /// The value to report for the true `value` (clamped into the domain).
    pub fn encode(&self, value: u32, rng: &mut impl Randomness) -> u32 {
        let value = value.min(self.k - 1);
        if rng.unit() < self.p() {
            value
        } else {
            // One of the k-1 other values, uniformly.
            let other = rng.below(u64::from(self.k - 1)) as u32;
            if other >= value {
                other + 1
            } else {
                other
            }
        }
    }

    /// Unbiased counts of each true value from the tallies of reported values.
    pub fn estimate(&self, tallies: &[u64]) -> Vec<Estimate> {
        let n: u64 = tallies.iter().sum();
        let (p, q) = (self.p(), self.q());
        let n = n as f64;
        (0..self.k as usize)
            .map(|v| {
                let c = tallies.get(v).copied().unwrap_or(0) as f64;
                let value = (c - n * q) / (p - q);
                // Var(c) = Σ_r π_r(1−π_r) with π_r ∈ {p, q}; bounded using the estimate.
                // Not `clamp`, whose panic would format floats (see `error::Num`).
                let f = value.max(0.0).min(n);
                let var = (f * p * (1.0 - p) + (n - f) * q * (1.0 - q)) / (p - q).powi(2);
                Estimate { value, std_error: var.sqrt() }
            })
            .collect()
    }

    /// Unbiased count of visitors whose true value is in `values` (e.g. "at least clicked" in a
    /// funnel), with the standard error of the pooled estimate — not a sum of per-value
    /// standard errors, which would overstate it.
    pub fn estimate_set(&self, tallies: &[u64], values: &[u32]) -> Estimate {
        let n = tallies.iter().sum::<u64>() as f64;
        let s = values.len() as f64;
        let (p, q) = (self.p(), self.q());
        let c: f64 = values.iter().map(|&v| tallies.get(v as usize).copied().unwrap_or(0) as f64).sum();
        // A report lands in the set with probability a (true value inside) or b (outside).
        let (a, b) = (p + (s - 1.0) * q, s * q);
        let value = (c - n * b) / (a - b);
        // Not `clamp`, whose panic would format floats (see `error::Num`).
        let f = value.max(0.0).min(n);
        let var = (f * a * (1.0 - a) + (n - f) * b * (1.0 - b)) / (a - b).powi(2);
        Estimate { value, std_error: var.sqrt() }
    }
}

/// The largest domain of a k-ary randomized response.
pub const MAX_RR_DOMAIN: u32 = 1024;

/// The most counters (hashes × width) an HCMS sketch may have: 8 MiB as i64.
pub const MAX_SKETCH_CELLS: u64 = 1 << 20;

/// Hadamard count-mean sketch: `hashes` hash functions into `width` buckets (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hcms {
    pub hashes: u32,
    pub width: u32,
    pub epsilon: f64,
}

impl FromJson for Hcms {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["hashes", "width", "epsilon"])?;
        Ok(Hcms { hashes: f.req("hashes")?, width: f.req("width")?, epsilon: f.req("epsilon")? })
    }
}
json::deserialize_with_reader!(Hcms);

/// One HCMS report: which hash, which Hadamard coefficient, and the randomized sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HcmsReport {
    pub hash: u32,
    pub coord: u32,
    /// +1 or -1.
    pub sign: i8,
}

impl Hcms {
    pub fn validate(&self) -> Result<(), String> {
        if self.hashes == 0 || self.hashes > 1024 {
            return Err(format!("hashes must be 1 to 1024, got {}", self.hashes));
        }
        if !self.width.is_power_of_two() || self.width < 2 || self.width > 1 << 20 {
            return Err(format!("width must be a power of two from 2 to 2^20, got {}", self.width));
        }
        // A sketch holds hashes × width counters (i64), and whoever pools reports allocates
        // one per mechanism it sees — from reports anyone with the page's site key can send.
        // 1024 × 2^20 would be 8 GiB; the default sketch is 16 × 1024.
        if u64::from(self.hashes) * u64::from(self.width) > MAX_SKETCH_CELLS {
            return Err(format!("hashes × width must be at most 2^20, got {} × {}", self.hashes, self.width));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(format!("ε must be positive, got {}", Num(self.epsilon)));
        }
        Ok(())
    }

    /// Bucket of `value` under hash function `j`. SHA-256 keeps it identical in every build
    /// and unpredictable enough that items do not collide systematically.
    pub fn bucket(&self, j: u32, value: &str) -> u32 {
        let mut h = Sha256::new();
        h.update(j.to_le_bytes());
        h.update(value.as_bytes());
        let d = h.finalize();
        u32::from_le_bytes([d[0], d[1], d[2], d[3]]) & (self.width - 1)
    }

    /// 1/E[sign·true sign]: the factor that makes one report unbiased.
    pub fn c(&self) -> f64 {
        let e = self.epsilon.exp();
        (e + 1.0) / (e - 1.0)
    }

    pub fn encode(&self, value: &str, rng: &mut impl Randomness) -> HcmsReport {
        let hash = rng.below(u64::from(self.hashes)) as u32;
        let coord = rng.below(u64::from(self.width)) as u32;
        let truth = hadamard(self.bucket(hash, value), coord);
        let keep = rng.unit() < self.epsilon.exp() / (1.0 + self.epsilon.exp());
        HcmsReport { hash, coord, sign: if keep { truth } else { -truth } }
    }
}

/// Entry (row, col) of the Sylvester–Hadamard matrix: (−1)^popcount(row & col).
pub fn hadamard(row: u32, col: u32) -> i8 {
    if (row & col).count_ones().is_multiple_of(2) {
        1
    } else {
        -1
    }
}

/// The collector's side of an HCMS: per (hash, coord), the sum of reported signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HcmsSketch {
    pub params: Hcms,
    /// `hashes × width`, row-major: Σ sign.
    pub sums: Vec<i64>,
    pub reports: u64,
}

impl HcmsSketch {
    pub fn new(params: Hcms) -> Self {
        HcmsSketch { params, sums: vec![0; (params.hashes * params.width) as usize], reports: 0 }
    }

    pub fn add(&mut self, r: &HcmsReport) -> Result<(), String> {
        if r.hash >= self.params.hashes || r.coord >= self.params.width || !(r.sign == 1 || r.sign == -1) {
            return Err(format!("report {r:?} is outside the sketch {:?}", self.params));
        }
        self.sums[(r.hash * self.params.width + r.coord) as usize] += i64::from(r.sign);
        self.reports += 1;
        Ok(())
    }

    /// The transformed sketch: row j holds Σ_l sums[j][l]·H[b][l] for every bucket b, so each
    /// candidate's estimate is k lookups (fast Walsh–Hadamard transform, m log m per row).
    pub fn transformed(&self) -> Vec<i64> {
        let m = self.params.width as usize;
        let mut out = self.sums.clone();
        for row in out.chunks_mut(m) {
            let mut h = 1;
            while h < m {
                for i in (0..m).step_by(h * 2) {
                    for j in i..i + h {
                        let (a, b) = (row[j], row[j + h]);
                        row[j] = a + b;
                        row[j + h] = a - b;
                    }
                }
                h *= 2;
            }
        }
        out
    }

    /// Unbiased count of reports whose true value was `value`. Each report contributes
    /// c·sign·H[h_j(value)][l], whose mean is 1 for the value itself and 1/width for any other
    /// (a hash collision), and whose square is c²; hence the correction and the error.
    pub fn estimate(&self, transformed: &[i64], value: &str) -> Estimate {
        let m = f64::from(self.params.width);
        let c = self.params.c();
        let sum: i64 = (0..self.params.hashes).map(|j| transformed[(j * self.params.width + self.params.bucket(j, value)) as usize]).sum();
        let n = self.reports as f64;
        // Every report sits in exactly one hash row, so the k lookups together read each
        // report once.
        let value_est = (m / (m - 1.0)) * (c * sum as f64 - n / m);
        let var = (m / (m - 1.0)).powi(2) * n * c * c;
        Estimate { value: value_est, std_error: var.sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_too_large_to_pool_are_refused() {
        // Both were accepted before, and `foresight-export aggregates` then allocated a
        // counter per cell for them: 32 GiB for this k, 8 GiB for this sketch (found with the
        // `aggregates` fuzz target; tests/fuzz/corpus/aggregates/{rr-k-4e9,sketch-8gib}).
        assert!(KaryRr { k: 4_000_000_000, epsilon: 0.1 }.validate().is_err());
        assert!(KaryRr { k: MAX_RR_DOMAIN + 1, epsilon: 0.1 }.validate().is_err());
        assert!(KaryRr { k: 20, epsilon: 0.1 }.validate().is_ok());
        assert!(Hcms { hashes: 1024, width: 1 << 20, epsilon: 0.3 }.validate().is_err());
        assert!(Hcms { hashes: 2, width: 1 << 20, epsilon: 0.3 }.validate().is_err());
        assert!(Hcms { hashes: 1, width: 1 << 20, epsilon: 0.3 }.validate().is_ok());
        assert!(Hcms { hashes: 1024, width: 1024, epsilon: 0.3 }.validate().is_ok());
        assert!(Hcms { hashes: 16, width: 1024, epsilon: 0.3 }.validate().is_ok());
    }

    #[test]
    fn kary_rr_is_unbiased_and_its_intervals_cover() {
        let rr = KaryRr { k: 10, epsilon: 1.0 };
        let truth = [4000u64, 2500, 1500, 800, 500, 300, 200, 100, 60, 40];
        let mut covered = 0;
        let trials = 40;
        for t in 0..trials {
            let mut rng = SeededRandomness(t);
            let mut tallies = vec![0u64; 10];
            for (v, &count) in truth.iter().enumerate() {
                for _ in 0..count {
                    tallies[rr.encode(v as u32, &mut rng) as usize] += 1;
                }
            }
            let est = rr.estimate(&tallies);
            covered += est
                .iter()
                .zip(truth)
                .filter(|(e, t)| {
                    let (lo, hi) = e.interval(1.96);
                    lo <= *t as f64 && (*t as f64) <= hi
                })
                .count();
        }
        let rate = covered as f64 / (trials * 10) as f64;
        assert!(rate > 0.92, "95% intervals covered the truth {:.1}% of the time", rate * 100.0);
    }

    /// Funnel counts ("at least stage s") pooled over values: unbiased, intervals that cover,
    /// and tighter than adding the per-value intervals.
    #[test]
    fn kary_rr_set_estimates_cover_the_funnel() {
        let rr = KaryRr { k: 5, epsilon: 0.5 };
        let truth = [6000u64, 3000, 600, 250, 150];
        let (mut covered, trials) = (0, 40);
        for t in 0..trials {
            let mut rng = SeededRandomness(100 + t);
            let mut tallies = vec![0u64; 5];
            for (v, &count) in truth.iter().enumerate() {
                for _ in 0..count {
                    tallies[rr.encode(v as u32, &mut rng) as usize] += 1;
                }
            }
            let per_value = rr.estimate(&tallies);
            for from in 1..5u32 {
                let set: Vec<u32> = (from..5).collect();
                let e = rr.estimate_set(&tallies, &set);
                let naive: f64 = per_value[from as usize..].iter().map(|e| e.value).sum();
                assert!((e.value - naive).abs() < 1e-6, "the pooled estimate equals the sum of the parts");
                let true_count: u64 = truth[from as usize..].iter().sum();
                let (lo, hi) = e.interval(1.96);
                covered += usize::from(lo <= true_count as f64 && true_count as f64 <= hi);
                if from < 4 {
                    let summed_se: f64 = per_value[from as usize..].iter().map(|e| e.std_error).sum();
                    assert!(e.std_error < summed_se);
                }
            }
        }
        let rate = covered as f64 / (trials * 4) as f64;
        assert!(rate > 0.9, "95% intervals covered the funnel counts {:.1}% of the time", rate * 100.0);
    }

    #[test]
    fn hcms_estimates_frequent_items_within_their_intervals() {
        let params = Hcms { hashes: 16, width: 1024, epsilon: 2.0 };
        let mut rng = SeededRandomness(7);
        let mut sketch = HcmsSketch::new(params);
        // 20,000 reports: a few popular items and a long tail.
        let mut truth = std::collections::HashMap::new();
        for i in 0..20_000u32 {
            let item = match i % 10 {
                0..=3 => "popular-a".to_owned(),
                4..=5 => "popular-b".to_owned(),
                6 => "popular-c".to_owned(),
                _ => format!("tail-{}", i % 997),
            };
            *truth.entry(item.clone()).or_insert(0u64) += 1;
            sketch.add(&params.encode(&item, &mut rng)).expect("in range");
        }
        let t = sketch.transformed();
        for item in ["popular-a", "popular-b", "popular-c", "tail-5", "never-seen"] {
            let est = sketch.estimate(&t, item);
            let real = truth.get(item).copied().unwrap_or(0) as f64;
            let (lo, hi) = est.interval(3.0);
            assert!(lo <= real && real <= hi, "{item}: {real} outside {lo:.0}..{hi:.0}");
        }
        let a = sketch.estimate(&t, "popular-a").value;
        let c = sketch.estimate(&t, "popular-c").value;
        assert!(a > c, "ranking of the head survives the noise");
    }

    #[test]
    fn hadamard_rows_are_orthogonal() {
        for a in 0..16 {
            for b in 0..16 {
                let dot: i32 = (0..16).map(|l| i32::from(hadamard(a, l)) * i32::from(hadamard(b, l))).sum();
                assert_eq!(dot, if a == b { 16 } else { 0 });
            }
        }
    }
}
