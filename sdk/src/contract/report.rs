//! The aggregate report: the only thing that leaves the device. Versioned; an idempotency key
//! per report so retries never double-count; the UTC day as its only time; the ε it spent and
//! each mechanism's parameters so the collector can debias. Every report has the same shape —
//! one contribution per statistic, a reserved "nothing" value when the visitor has none — so
//! its size and structure say nothing about the visitor either.
//!
//! No field can hold a user id, a raw event or a sequence: item ids only appear hashed and
//! randomized inside HCMS reports (a hash index, a coordinate, a sign).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Num;
use crate::json::{self, Fields, FromJson};
use crate::privacy::mechanism::{Hcms, HcmsReport, KaryRr};

pub const REPORT_VERSION: u32 = 1;
/// The value reported when a visitor has nothing for a statistic (padding).
pub const NOTHING: &str = "\u{2205}";
/// Intent probability is reported as one of this many equal-width buckets.
pub const INTENT_BUCKETS: u32 = 10;

/// How far today's on-device recommendations led the visitor: the deepest stage reached by any
/// recommended item (a funnel, so "added" implies "clicked" implies "shown").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum RecStage {
    #[default]
    NoneShown = 0,
    Shown = 1,
    Clicked = 2,
    Added = 3,
    Bought = 4,
}

impl RecStage {
    pub const COUNT: u32 = 5;
    pub const LABELS: [&'static str; 5] = ["none shown", "shown", "clicked", "added to cart", "bought"];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    pub version: u32,
    /// The shop's public site id (from the SDK config), not the visitor's.
    pub site: String,
    /// Random, 32 hex characters, new for every report.
    pub idempotency_key: String,
    /// UTC `YYYY-MM-DD`.
    pub day: String,
    /// Total ε of the contributions (sequential composition).
    pub epsilon: f64,
    pub contributions: Vec<Contribution>,
}

/// One privatized statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "statistic", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Contribution {
    /// One item viewed today, sampled uniformly among them.
    ItemView { mechanism: Hcms, report: HcmsReport },
    /// One item→item step of today's browsing, as `"a>b"`, sampled uniformly.
    ItemTransition { mechanism: Hcms, report: HcmsReport },
    /// One category viewed today.
    CategoryView { mechanism: Hcms, report: HcmsReport },
    /// The bucket of today's highest purchase-intent score (`INTENT_BUCKETS` + 1 values; the
    /// last means "no score").
    IntentBucket { mechanism: KaryRr, value: u32 },
    /// The deepest `RecStage` today's recommendations reached (`RecStage::COUNT` values).
    RecOutcome { mechanism: KaryRr, value: u32 },
    /// One item shown in today's recommendations, sampled uniformly (catalog coverage).
    RecItem { mechanism: Hcms, report: HcmsReport },
    /// A running experiment: the visitor's variant and the deepest stage its placement's lists
    /// reached today, jointly randomized (`experiment::encode_value`). The name is the shop's
    /// own label, the same for every visitor.
    ExperimentOutcome { experiment: String, mechanism: KaryRr, value: u32 },
}

impl Contribution {
    pub fn epsilon(&self) -> f64 {
        match self {
            Contribution::ItemView { mechanism, .. }
            | Contribution::ItemTransition { mechanism, .. }
            | Contribution::CategoryView { mechanism, .. }
            | Contribution::RecItem { mechanism, .. } => mechanism.epsilon,
            Contribution::IntentBucket { mechanism, .. }
            | Contribution::RecOutcome { mechanism, .. }
            | Contribution::ExperimentOutcome { mechanism, .. } => mechanism.epsilon,
        }
    }

    pub fn statistic(&self) -> &'static str {
        match self {
            Contribution::ItemView { .. } => "item_view",
            Contribution::ItemTransition { .. } => "item_transition",
            Contribution::CategoryView { .. } => "category_view",
            Contribution::IntentBucket { .. } => "intent_bucket",
            Contribution::RecOutcome { .. } => "rec_outcome",
            Contribution::RecItem { .. } => "rec_item",
            Contribution::ExperimentOutcome { .. } => "experiment_outcome",
        }
    }
}

/// How a day's ε is split between the statistics; the sum is what one report spends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mechanisms {
    pub item_view: Hcms,
    pub item_transition: Hcms,
    pub category_view: Hcms,
    pub intent_bucket: KaryRr,
    pub rec_outcome: KaryRr,
    pub rec_item: Hcms,
}

impl Default for Mechanisms {
    /// ε 1.0 in all: most to the item statistics retraining needs, the rest to the small
    /// domains, whose estimates are tight even at low ε.
    fn default() -> Self {
        let sketch = |epsilon| Hcms { hashes: 16, width: 1024, epsilon };
        Mechanisms {
            item_view: sketch(0.3),
            item_transition: sketch(0.25),
            category_view: Hcms { hashes: 8, width: 256, epsilon: 0.1 },
            intent_bucket: KaryRr { k: INTENT_BUCKETS + 1, epsilon: 0.1 },
            rec_outcome: KaryRr { k: RecStage::COUNT, epsilon: 0.15 },
            rec_item: sketch(0.1),
        }
    }
}

impl FromJson for Mechanisms {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["itemView", "itemTransition", "categoryView", "intentBucket", "recOutcome", "recItem"])?;
        // A statistic left out keeps its default share of ε, not a zeroed mechanism.
        let d = Mechanisms::default();
        Ok(Mechanisms {
            item_view: f.or("itemView", d.item_view)?,
            item_transition: f.or("itemTransition", d.item_transition)?,
            category_view: f.or("categoryView", d.category_view)?,
            intent_bucket: f.or("intentBucket", d.intent_bucket)?,
            rec_outcome: f.or("recOutcome", d.rec_outcome)?,
            rec_item: f.or("recItem", d.rec_item)?,
        })
    }
}
json::deserialize_with_reader!(Mechanisms);

impl Mechanisms {
    pub fn epsilon(&self) -> f64 {
        self.item_view.epsilon
            + self.item_transition.epsilon
            + self.category_view.epsilon
            + self.intent_bucket.epsilon
            + self.rec_outcome.epsilon
            + self.rec_item.epsilon
    }

    pub fn validate(&self) -> Result<(), String> {
        self.item_view.validate().map_err(|e| format!("itemView: {e}"))?;
        self.item_transition.validate().map_err(|e| format!("itemTransition: {e}"))?;
        self.category_view.validate().map_err(|e| format!("categoryView: {e}"))?;
        self.intent_bucket.validate().map_err(|e| format!("intentBucket: {e}"))?;
        self.rec_outcome.validate().map_err(|e| format!("recOutcome: {e}"))?;
        self.rec_item.validate().map_err(|e| format!("recItem: {e}"))?;
        if self.intent_bucket.k != INTENT_BUCKETS + 1 {
            return Err(format!("intentBucket.k must be {}", INTENT_BUCKETS + 1));
        }
        if self.rec_outcome.k != RecStage::COUNT {
            return Err(format!("recOutcome.k must be {}", RecStage::COUNT));
        }
        Ok(())
    }
}

/// Why a report is refused; the collector answers each with a 4xx naming it.
pub fn validate(report: &Report, max_epsilon: f64) -> Result<(), String> {
    if report.version != REPORT_VERSION {
        return Err(format!("report version {} is not {REPORT_VERSION}", report.version));
    }
    if report.idempotency_key.len() != 32 || !report.idempotency_key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("idempotencyKey must be 32 hex characters".into());
    }
    if crate::privacy::budget::day_number(&report.day).is_none() {
        return Err(format!("day `{}` is not a date YYYY-MM-DD", report.day));
    }
    let total: f64 = report.contributions.iter().map(Contribution::epsilon).sum();
    // Sums of decimal ε's land a rounding step either side of the limit they were chosen for.
    if !(report.epsilon > 0.0 && report.epsilon <= max_epsilon + 1e-9) {
        return Err(format!("epsilon {} is outside (0, {}]", Num(report.epsilon), Num(max_epsilon)));
    }
    if (total - report.epsilon).abs() > 1e-9 {
        return Err(format!("epsilon {} does not equal the contributions' sum {}", Num(report.epsilon), Num(total)));
    }
    let mut seen = HashSet::new();
    for c in &report.contributions {
        let key = match c {
            Contribution::ExperimentOutcome { experiment, .. } => format!("experiment {experiment}"),
            other => other.statistic().to_owned(),
        };
        if !seen.insert(key.clone()) {
            return Err(format!("statistic {key} appears twice"));
        }
        if let Contribution::ExperimentOutcome { experiment, mechanism, .. } = c {
            let name_ok = !experiment.is_empty()
                && experiment.len() <= 64
                && experiment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok || mechanism.k % RecStage::COUNT != 0 || mechanism.k / RecStage::COUNT < 2 {
                return Err(format!("experiment_outcome `{experiment}` has a malformed name or domain"));
            }
        }
        let ok = match c {
            Contribution::ItemView { mechanism, report }
            | Contribution::ItemTransition { mechanism, report }
            | Contribution::CategoryView { mechanism, report }
            | Contribution::RecItem { mechanism, report } => {
                // `sign` is an i8 from the wire: `abs()` of -128 overflows, so compare instead.
                mechanism.validate().is_ok()
                    && report.hash < mechanism.hashes
                    && report.coord < mechanism.width
                    && matches!(report.sign, 1 | -1)
            }
            Contribution::IntentBucket { mechanism, value }
            | Contribution::RecOutcome { mechanism, value }
            | Contribution::ExperimentOutcome { mechanism, value, .. } => mechanism.validate().is_ok() && *value < mechanism.k,
        };
        if !ok {
            return Err(format!("{} is malformed or outside its mechanism", c.statistic()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sign: i8) -> Report {
        let mechanism = Hcms { hashes: 16, width: 1024, epsilon: 0.3 };
        Report {
            version: REPORT_VERSION,
            site: "shop".into(),
            idempotency_key: "0123456789abcdef0123456789abcdef".into(),
            day: "2023-11-14".into(),
            epsilon: 0.3,
            contributions: vec![Contribution::ItemView { mechanism, report: HcmsReport { hash: 3, coord: 17, sign } }],
        }
    }

    #[test]
    fn signs_other_than_plus_or_minus_one_are_refused() {
        assert_eq!(validate(&report(1), 1.0), Ok(()));
        assert_eq!(validate(&report(-1), 1.0), Ok(()));
        // -128 panicked ("attempt to negate with overflow" in `i8::abs`) before: found by the
        // `report` fuzz target, tests/fuzz/corpus/report/sign-i8-min.json.
        for sign in [0, 2, -2, i8::MAX, i8::MIN] {
            assert!(validate(&report(sign), 1.0).expect_err("refused").contains("item_view"), "sign {sign}");
        }
    }

    #[test]
    fn mechanisms_left_out_keep_their_defaults() {
        let m = Mechanisms::from_json(&serde_json::json!({"recItem": {"hashes": 8, "width": 512, "epsilon": 0.05}})).expect("reads");
        assert_eq!(m, Mechanisms { rec_item: Hcms { hashes: 8, width: 512, epsilon: 0.05 }, ..Mechanisms::default() });
        let err = Mechanisms::from_json(&serde_json::json!({"intentBucket": {"k": 11}})).expect_err("no epsilon");
        assert_eq!(err.to_string(), "`intentBucket.epsilon`: missing field");
        assert_eq!(Mechanisms::from_json(&serde_json::json!({"itemViews": {}})).expect_err("misspelt").path(), "itemViews");
    }

    /// The collector reads reports with the derived reader, which reaches the mechanisms' own
    /// readers from inside the tagged `Contribution`.
    #[test]
    fn reports_read_back_through_the_mechanism_readers() {
        let r = report(1);
        let text = serde_json::to_string(&r).expect("writes");
        assert_eq!(serde_json::from_str::<Report>(&text).expect("reads"), r);
        let bad = text.replace(r#""hashes":16"#, r#""hashes":16,"seed":1"#);
        let err = serde_json::from_str::<Report>(&bad).expect_err("unknown mechanism field").to_string();
        assert!(err.contains("`seed`: unknown field"), "{err}");
    }
}
