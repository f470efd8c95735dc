//! A/B experiments measured privately. The shop declares variants per placement; each visitor
//! is assigned on the device (stable, random, never sent); the deepest outcome the placement's
//! lists reached today travels, together with the variant, through one k-ary randomized
//! response over (variant × stage); the collector debiases the joint counts and compares the
//! variants (`analyze`). The same code serves the SDK and `foresight-export aggregates`.

use serde::Serialize;
use serde_json::Value;

use crate::contract::report::RecStage;
use crate::json::{self, Fields, FromJson};
use crate::privacy::mechanism::{Estimate, KaryRr, Randomness};
use crate::recommend::placement::PLACEMENTS;

/// One experiment, as the shop declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    /// Sent in the clear with each report (the same for every visitor of the shop): letters,
    /// digits, `-` and `_`, at most 64.
    pub name: String,
    /// The placement under test (`forYou`, `similarTo`, …).
    pub placement: String,
    pub variants: Vec<Variant>,
    /// ε of the experiment's report contribution (on top of the collector's mechanisms; the
    /// sum must fit the daily budget).
    pub epsilon: f64,
}

fn default_epsilon() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub name: String,
    /// Relative share of visitors (default 1).
    pub weight: f64,
    /// What answers the placement: the model, or the popularity control.
    pub source: VariantSource,
    /// Whether the shop's merchandising rules apply (default true).
    pub rules: bool,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantSource {
    #[default]
    Model,
    Popularity,
}

json::unit_variants!(VariantSource { "model" => VariantSource::Model, "popularity" => VariantSource::Popularity });

impl FromJson for Experiment {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["name", "placement", "variants", "epsilon"])?;
        Ok(Experiment {
            name: f.req("name")?,
            placement: f.req("placement")?,
            variants: f.req("variants")?,
            epsilon: f.or("epsilon", default_epsilon())?,
        })
    }
}
json::deserialize_with_reader!(Experiment);

impl FromJson for Variant {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["name", "weight", "source", "rules"])?;
        Ok(Variant { name: f.req("name")?, weight: f.or("weight", one())?, source: f.or_default("source")?, rules: f.or("rules", yes())? })
    }
}
json::deserialize_with_reader!(Variant);

/// The most variants one experiment may have (the randomized domain grows with them).
pub const MAX_VARIANTS: usize = 4;

impl Experiment {
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!("experiment name `{}` must be 1–64 letters, digits, `-` or `_`", self.name));
        }
        if !PLACEMENTS.contains(&self.placement.as_str()) {
            return Err(format!("experiment `{}`: placement `{}` is not one of {PLACEMENTS:?}", self.name, self.placement));
        }
        if !(2..=MAX_VARIANTS).contains(&self.variants.len()) {
            return Err(format!("experiment `{}` needs 2 to {MAX_VARIANTS} variants, has {}", self.name, self.variants.len()));
        }
        for (i, v) in self.variants.iter().enumerate() {
            if v.name.is_empty() || self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(format!("experiment `{}`: variant names must be non-empty and distinct (`{}`)", self.name, v.name));
            }
            if !(v.weight.is_finite() && v.weight > 0.0) {
                return Err(format!("experiment `{}`: variant `{}` weight must be positive", self.name, v.name));
            }
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(format!("experiment `{}`: epsilon must be positive", self.name));
        }
        Ok(())
    }

    /// The mechanism of its report contribution.
    pub fn mechanism(&self) -> KaryRr {
        KaryRr { k: self.variants.len() as u32 * RecStage::COUNT, epsilon: self.epsilon }
    }

    /// Draws a variant by weight.
    pub fn assign(&self, rng: &mut impl Randomness) -> usize {
        let total: f64 = self.variants.iter().map(|v| v.weight).sum();
        let mut r = rng.unit() * total;
        for (i, v) in self.variants.iter().enumerate() {
            r -= v.weight;
            if r < 0.0 {
                return i;
            }
        }
        self.variants.len() - 1
    }
}

/// The joint value a visitor-day reports: variant × stage.
pub fn encode_value(variant: usize, stage: RecStage) -> u32 {
    variant as u32 * RecStage::COUNT + stage as u32
}

/// One variant's debiased outcome counts and rates per assigned visitor-day.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    pub variant: usize,
    /// Visitor-days assigned to the variant.
    pub visitors: Estimate,
    /// At least shown, clicked, added to cart, bought.
    pub stages: Vec<Estimate>,
    /// Click, add-to-cart and purchase rates per assigned visitor-day, with standard errors.
    pub rates: Vec<Estimate>,
}

/// The comparison of one variant with the first (the control), on one rate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub variant: usize,
    /// `click_rate`, `add_rate` or `purchase_rate`.
    pub metric: &'static str,
    pub difference: Estimate,
    pub z: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The 95% interval of the difference excludes zero.
    Significant,
    /// It includes zero and is narrower than `RESOLUTION` either side: no difference worth having.
    NoDifference,
    /// It includes zero and is wider: the population is too small to tell.
    TooSmallToTell,
}

/// A difference narrower than this (in rate points) is "no difference" rather than "can't tell".
pub const RESOLUTION: f64 = 0.05;
pub const METRICS: [&str; 3] = ["click_rate", "add_rate", "purchase_rate"];

/// Debiases the joint tallies and compares every variant with the first at level `z`
/// (1.96 for 95%). Rates are per assigned visitor-day (intention to treat): the denominator
/// is the variant's own debiased count, whose noise is small beside the numerator's.
pub fn analyze(rr: &KaryRr, variants: usize, tallies: &[u64], z: f64) -> (Vec<VariantResult>, Vec<Comparison>) {
    let stages = RecStage::COUNT;
    let results: Vec<VariantResult> = (0..variants)
        .map(|v| {
            let base = v as u32 * stages;
            let all: Vec<u32> = (base..base + stages).collect();
            let visitors = rr.estimate_set(tallies, &all);
            let stage_counts: Vec<Estimate> =
                (1..stages).map(|s| rr.estimate_set(tallies, &(base + s..base + stages).collect::<Vec<_>>())).collect();
            let n = visitors.value.max(1.0);
            // Delta method for c / n, with n's own noise; leaving out their (positive)
            // covariance errs on the wide side.
            let rates = stage_counts[1..]
                .iter()
                .map(|c| {
                    let r = c.value / n;
                    Estimate { value: r, std_error: ((c.std_error / n).powi(2) + (r * visitors.std_error / n).powi(2)).sqrt() }
                })
                .collect();
            VariantResult { variant: v, visitors, stages: stage_counts, rates }
        })
        .collect();
    let mut comparisons = Vec::new();
    // A variant whose own size is not clearly above its noise has no usable rate.
    let sized = |r: &VariantResult| r.visitors.value > 3.0 * r.visitors.std_error;
    if let Some(control) = results.first() {
        for r in &results[1..] {
            for (m, metric) in METRICS.iter().enumerate() {
                let (a, b) = (control.rates[m], r.rates[m]);
                let difference = Estimate { value: b.value - a.value, std_error: (a.std_error.powi(2) + b.std_error.powi(2)).sqrt() };
                let zed = if difference.std_error > 0.0 { difference.value / difference.std_error } else { 0.0 };
                let verdict = if !sized(control) || !sized(r) {
                    Verdict::TooSmallToTell
                } else if zed.abs() >= z {
                    Verdict::Significant
                } else if z * difference.std_error <= RESOLUTION {
                    Verdict::NoDifference
                } else {
                    Verdict::TooSmallToTell
                };
                comparisons.push(Comparison { variant: r.variant, metric, difference, z: zed, verdict });
            }
        }
    }
    (results, comparisons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::SeededRandomness;

    fn experiment(epsilon: f64) -> Experiment {
        serde_json::from_value(serde_json::json!({
            "name": "model-vs-popular", "placement": "forYou", "epsilon": epsilon,
            "variants": [{"name": "popular", "source": "popularity"}, {"name": "model"}],
        }))
        .expect("experiment")
    }

    /// Simulated visitors: assigned by the real draw, a true click rate per variant, the
    /// stage encoded by the real mechanism.
    fn simulate(e: &Experiment, visitors: usize, click_rates: [f64; 2], seed: u64) -> Vec<u64> {
        let rr = e.mechanism();
        let mut rng = SeededRandomness(seed);
        let mut tallies = vec![0u64; rr.k as usize];
        for _ in 0..visitors {
            let v = e.assign(&mut rng);
            let stage = if rng.unit() < click_rates[v] {
                if rng.unit() < 0.3 {
                    RecStage::Added
                } else {
                    RecStage::Clicked
                }
            } else if rng.unit() < 0.9 {
                RecStage::Shown
            } else {
                RecStage::NoneShown
            };
            tallies[rr.encode(encode_value(v, stage), &mut rng) as usize] += 1;
        }
        tallies
    }

    #[test]
    fn a_true_lift_is_detected_and_estimated_within_its_interval() {
        let e = experiment(1.0);
        // At ε 1 the difference of two click rates has a standard error of about 0.04 with
        // 40,000 visitor-days (≈ 0.085 with 10,000): a lift of 0.2 stands out.
        let tallies = simulate(&e, 40_000, [0.10, 0.30], 5);
        let (results, comparisons) = analyze(&e.mechanism(), 2, &tallies, 1.96);
        let click = comparisons.iter().find(|c| c.metric == "click_rate").expect("click");
        assert_eq!(click.verdict, Verdict::Significant, "{click:?}");
        let (lo, hi) = click.difference.interval(1.96);
        assert!(lo <= 0.2 && 0.2 <= hi, "true lift 0.2 within [{lo:.3}, {hi:.3}]");
        assert!((results[0].visitors.value - 20_000.0).abs() < 4.0 * results[0].visitors.std_error);
    }

    #[test]
    fn a_null_experiment_is_significant_about_alpha_of_the_time() {
        let e = experiment(1.0);
        let runs = 300;
        let false_positives = (0..runs)
            .filter(|&r| {
                let tallies = simulate(&e, 10_000, [0.2, 0.2], 1000 + r);
                let (_, comparisons) = analyze(&e.mechanism(), 2, &tallies, 1.96);
                comparisons.iter().find(|c| c.metric == "click_rate").expect("click").verdict == Verdict::Significant
            })
            .count();
        let rate = false_positives as f64 / runs as f64;
        println!("A/A false-positive rate {rate:.3} over {runs} runs");
        // α = 0.05; with 300 runs the rate's own standard error is 1.3 points.
        assert!((0.01..=0.10).contains(&rate), "false-positive rate {rate:.3}");
    }

    /// The 95% interval of the difference covers the true lift at least that often.
    #[test]
    fn intervals_of_the_lift_cover_it() {
        let e = experiment(1.0);
        let mut inside = 0;
        for r in 0..200 {
            let tallies = simulate(&e, 20_000, [0.10, 0.40], 77 + r);
            let (_, comparisons) = analyze(&e.mechanism(), 2, &tallies, 1.96);
            let c = comparisons.iter().find(|c| c.metric == "click_rate").unwrap();
            let (lo, hi) = c.difference.interval(1.96);
            inside += usize::from(lo <= 0.3 && 0.3 <= hi);
        }
        println!("the 95% interval covered the true lift {inside}/200 times");
        assert!(inside >= 186, "the interval covered the true lift {inside}/200 times");
    }

    #[test]
    fn a_small_population_says_so() {
        let e = experiment(0.5);
        let tallies = simulate(&e, 500, [0.2, 0.3], 9);
        let (_, comparisons) = analyze(&e.mechanism(), 2, &tallies, 1.96);
        assert!(comparisons.iter().all(|c| c.verdict == Verdict::TooSmallToTell), "{comparisons:?}");
    }

    #[test]
    fn variants_default_to_the_model_under_the_rules() {
        let e = Experiment::from_json(&serde_json::json!({
            "name": "x", "placement": "forYou", "variants": [{"name": "a"}, {"name": "b", "weight": 2, "source": "popularity", "rules": false}],
        }))
        .expect("reads");
        assert_eq!(e.epsilon, 0.5);
        assert_eq!(e.variants[0], Variant { name: "a".into(), weight: 1.0, source: VariantSource::Model, rules: true });
        assert_eq!(e.variants[1], Variant { name: "b".into(), weight: 2.0, source: VariantSource::Popularity, rules: false });
        let err = Experiment::from_json(&serde_json::json!({
            "name": "x", "placement": "forYou", "variants": [{"name": "a", "source": "random"}],
        }))
        .expect_err("unknown source");
        assert_eq!(err.to_string(), "`variants[0].source`: unknown variant `random`, expected one of `model`, `popularity`");
        let err = Experiment::from_json(&serde_json::json!({"name": "x", "placement": "forYou", "variants": [], "epsilom": 1}))
            .expect_err("misspelt");
        assert_eq!(err.path(), "epsilom");
    }

    #[test]
    fn config_is_checked_and_assignment_follows_weights() {
        assert!(experiment(1.0).validate().is_ok());
        let mut e = experiment(1.0);
        e.placement = "sidebar".into();
        assert!(e.validate().unwrap_err().contains("placement `sidebar`"));
        let mut e = experiment(1.0);
        e.variants.truncate(1);
        assert!(e.validate().unwrap_err().contains("2 to 4 variants"));
        let mut e = experiment(1.0);
        e.name = "has space".into();
        assert!(e.validate().is_err());
        let mut e = experiment(1.0);
        e.variants[1].weight = 3.0;
        let mut rng = SeededRandomness(3);
        let b = (0..40_000).filter(|_| e.assign(&mut rng) == 1).count();
        assert!((b as f64 / 40_000.0 - 0.75).abs() < 0.01);
    }
}
