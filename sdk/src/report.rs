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

use crate::capture::Event;
use crate::privacy::mechanism::{Hcms, HcmsReport, KaryRr, Randomness};
use crate::store::StoredEvent;

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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
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

/// What a day of the visitor's behaviour contributes, before randomization.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaySummary {
    pub viewed_items: Vec<String>,
    pub transitions: Vec<String>,
    pub categories: Vec<String>,
    pub max_intent: Option<f32>,
    /// Items shown in today's recommendations.
    pub recommended: Vec<String>,
    pub rec_stage: RecStage,
    /// One entry per running experiment: its name, mechanism and the true joint value
    /// (`experiment::encode_value(variant, stage)`).
    pub experiments: Vec<(String, KaryRr, u32)>,
}

/// An item a placement returned, when it was first returned today, and the placement and
/// experiment variant that showed it (attribution stays on the device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub item: String,
    pub at: f64,
    #[serde(default = "for_you")]
    pub placement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<usize>,
}

fn for_you() -> String {
    "forYou".into()
}

/// How far the shown items led: a click (a `click` naming a placement, or a click or product
/// view of a shown item), an add to cart or a purchase of a shown item — each counted only
/// after the item was shown and within `window_ms` of it.
pub fn stage_reached<'a>(events: impl IntoIterator<Item = &'a StoredEvent>, shown: &[&Shown], window_ms: f64) -> RecStage {
    if shown.is_empty() {
        return RecStage::NoneShown;
    }
    let was_shown = |id: &str, at: f64| shown.iter().any(|r| r.item == id && r.at < at && at - r.at <= window_ms);
    let clicked_placement = |p: &str, at: f64| shown.iter().any(|r| r.placement == p && r.at < at && at - r.at <= window_ms);
    let mut stage = RecStage::Shown;
    for e in events {
        let reached = match &e.event {
            Event::Click { item_id, placement } if was_shown(item_id, e.at) || placement.as_deref().is_some_and(|p| clicked_placement(p, e.at)) => {
                RecStage::Clicked
            }
            Event::ProductView { item_id, .. } if was_shown(item_id, e.at) => RecStage::Clicked,
            Event::AddToCart { item_id, .. } if was_shown(item_id, e.at) => RecStage::Added,
            Event::Purchase { items, .. } if items.iter().any(|l| was_shown(&l.item_id, e.at)) => RecStage::Bought,
            _ => RecStage::NoneShown,
        };
        stage = stage.max(reached);
    }
    stage
}

impl DaySummary {
    /// From the events of one UTC day (oldest first): product views, steps between
    /// consecutive distinct viewed items within a session, viewed categories; and how far the
    /// recommendations shown today led (`stage_reached`, no window).
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a StoredEvent> + Clone, max_intent: Option<f32>, shown: &[Shown]) -> Self {
        let mut s = DaySummary { max_intent, ..Default::default() };
        s.recommended = shown.iter().map(|r| r.item.clone()).collect();
        let all: Vec<&Shown> = shown.iter().collect();
        s.rec_stage = stage_reached(events.clone(), &all, f64::INFINITY);
        let mut categories = HashSet::new();
        let mut last: Option<(&str, u32)> = None;
        for e in events {
            if let Event::ProductView { item_id, category, .. } = &e.event {
                s.viewed_items.push(item_id.clone());
                if let Some(c) = category {
                    if categories.insert(c.clone()) {
                        s.categories.push(c.clone());
                    }
                }
                if let Some((prev, session)) = last {
                    if session == e.session && prev != item_id {
                        s.transitions.push(format!("{prev}>{item_id}"));
                    }
                }
                last = Some((item_id.as_str(), e.session));
            }
        }
        s
    }
}

/// Builds one day's report: one sampled value per statistic, randomized.
pub fn build(site: &str, day: &str, summary: &DaySummary, mechanisms: &Mechanisms, rng: &mut impl Randomness) -> Report {
    let mut pick = |values: &[String]| -> String {
        if values.is_empty() {
            NOTHING.to_owned()
        } else {
            values[rng.below(values.len() as u64) as usize].clone()
        }
    };
    let item = pick(&summary.viewed_items);
    let transition = pick(&summary.transitions);
    let category = pick(&summary.categories);
    let recommended = pick(&summary.recommended);
    let bucket = match summary.max_intent {
        Some(p) if p.is_finite() => ((p.clamp(0.0, 1.0) * INTENT_BUCKETS as f32) as u32).min(INTENT_BUCKETS - 1),
        _ => INTENT_BUCKETS,
    };
    let contributions = vec![
        Contribution::ItemView { mechanism: mechanisms.item_view, report: mechanisms.item_view.encode(&item, rng) },
        Contribution::ItemTransition {
            mechanism: mechanisms.item_transition,
            report: mechanisms.item_transition.encode(&transition, rng),
        },
        Contribution::CategoryView { mechanism: mechanisms.category_view, report: mechanisms.category_view.encode(&category, rng) },
        Contribution::IntentBucket { mechanism: mechanisms.intent_bucket, value: mechanisms.intent_bucket.encode(bucket, rng) },
        Contribution::RecOutcome {
            mechanism: mechanisms.rec_outcome,
            value: mechanisms.rec_outcome.encode(summary.rec_stage as u32, rng),
        },
        Contribution::RecItem { mechanism: mechanisms.rec_item, report: mechanisms.rec_item.encode(&recommended, rng) },
    ];
    let mut contributions = contributions;
    for (name, mechanism, value) in &summary.experiments {
        contributions.push(Contribution::ExperimentOutcome { experiment: name.clone(), mechanism: *mechanism, value: mechanism.encode(*value, rng) });
    }
    let key: String = (0..2).map(|_| format!("{:016x}", rng.next_u64())).collect();
    Report {
        version: REPORT_VERSION,
        site: site.to_owned(),
        idempotency_key: key,
        day: day.to_owned(),
        epsilon: contributions.iter().map(Contribution::epsilon).sum(),
        contributions,
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
    let d = report.day.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || !report.day.bytes().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit()) {
        return Err(format!("day `{}` is not YYYY-MM-DD", report.day));
    }
    let total: f64 = report.contributions.iter().map(Contribution::epsilon).sum();
    // Sums of decimal ε's land a rounding step either side of the limit they were chosen for.
    if !(report.epsilon > 0.0 && report.epsilon <= max_epsilon + 1e-9) {
        return Err(format!("epsilon {} is outside (0, {max_epsilon}]", report.epsilon));
    }
    if (total - report.epsilon).abs() > 1e-9 {
        return Err(format!("epsilon {} does not equal the contributions' sum {total}", report.epsilon));
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
            let name_ok = !experiment.is_empty() && experiment.len() <= 64 && experiment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok || mechanism.k % RecStage::COUNT != 0 || mechanism.k / RecStage::COUNT < 2 {
                return Err(format!("experiment_outcome `{experiment}` has a malformed name or domain"));
            }
        }
        let ok = match c {
            Contribution::ItemView { mechanism, report }
            | Contribution::ItemTransition { mechanism, report }
            | Contribution::CategoryView { mechanism, report }
            | Contribution::RecItem { mechanism, report } => {
                mechanism.validate().is_ok() && report.hash < mechanism.hashes && report.coord < mechanism.width && report.sign.abs() == 1
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
    use crate::privacy::mechanism::{HcmsSketch, SeededRandomness};

    fn stored(at: f64, session: u32, id: &str, category: &str) -> StoredEvent {
        let event = Event::from_json(&serde_json::json!({"type": "product_view", "itemId": id, "category": category})).expect("valid");
        StoredEvent { at, session, event }
    }

    #[test]
    fn summary_keeps_transitions_within_sessions() {
        let events = [stored(0.0, 0, "a", "c1"), stored(1.0, 0, "b", "c2"), stored(2.0, 0, "b", "c2"), stored(3.0, 1, "c", "c1")];
        let s = DaySummary::from_events(&events, Some(0.4), &[]);
        assert_eq!(s.viewed_items, ["a", "b", "b", "c"]);
        assert_eq!(s.transitions, ["a>b"]);
        assert_eq!(s.categories, ["c1", "c2"]);
    }

    /// Every report the SDK can produce: same shape, no identifier, no event, no sequence,
    /// no time finer than a day.
    #[test]
    fn payload_audit_over_many_reports() {
        let mut rng = SeededRandomness(42);
        let mechanisms = Mechanisms::default();
        let mut shapes = HashSet::new();
        for v in 0..2000u32 {
            let shown: Vec<Shown> = (0..(v % 4)).map(|i| Shown { item: format!("secret-rec-{v}-{i}"), at: 0.0, placement: "forYou".into(), variant: None }).collect();
            let items: Vec<StoredEvent> = (0..(v % 7)).map(|i| stored(f64::from(i), 0, &format!("secret-item-{v}-{i}"), "secret-category")).collect();
            let summary = DaySummary::from_events(&items, (v % 3 == 0).then_some(0.7), &shown);
            let report = build("shop-1", "2026-11-30", &summary, &mechanisms, &mut rng);
            validate(&report, 1.0).expect("valid");
            let text = serde_json::to_string(&report).expect("json");
            assert!(!text.contains("secret"), "a raw value leaked: {text}");
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            // Timestamps are numbers around 1.7e12 (ms) or 1.7e9 (s); nothing here comes close.
            fn max_number(v: &serde_json::Value) -> f64 {
                match v {
                    serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::INFINITY).abs(),
                    serde_json::Value::Array(a) => a.iter().map(max_number).fold(0.0, f64::max),
                    serde_json::Value::Object(o) => o.values().map(max_number).fold(0.0, f64::max),
                    _ => 0.0,
                }
            }
            assert!(max_number(&value) < 1e6, "no timestamps or ids as numbers: {text}");
            let keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
            assert_eq!(keys, ["contributions", "day", "epsilon", "idempotencyKey", "site", "version"]);
            assert!(value["contributions"].as_array().expect("list").iter().all(|c| !c.to_string().contains('>')));
            // Shape: which fields, and the JSON length up to the digits of small integers.
            let shape: Vec<String> = value["contributions"].as_array().expect("list").iter().map(|c| c["statistic"].to_string()).collect();
            shapes.insert(shape);
            assert!((report.epsilon - mechanisms.epsilon()).abs() < 1e-12);
        }
        assert_eq!(shapes.len(), 1, "every report has the same statistics in the same order");
    }

    #[test]
    fn reports_are_refused_for_specific_reasons() {
        let mut rng = SeededRandomness(1);
        let good = build("s", "2026-11-30", &DaySummary::default(), &Mechanisms::default(), &mut rng);
        let mut r = good.clone();
        r.epsilon = 5.0;
        assert!(validate(&r, 1.0).unwrap_err().contains("epsilon"));
        let mut r = good.clone();
        r.day = "2026-11-30T10:00".into();
        assert!(validate(&r, 1.0).unwrap_err().contains("day"));
        let mut r = good.clone();
        r.idempotency_key = "user-42".into();
        assert!(validate(&r, 1.0).unwrap_err().contains("idempotencyKey"));
        let mut r = good.clone();
        r.contributions.push(r.contributions[0].clone());
        assert!(validate(&r, 2.0).is_err());
    }

    /// 10,000 simulated visitors with known item popularity report through the real encoding;
    /// the debiased estimates fall within their stated 95% intervals (up to the 5% the
    /// intervals allow) at the default ε.
    #[test]
    fn simulated_population_is_estimated_within_its_intervals() {
        let mechanisms = Mechanisms::default();
        let mut rng = SeededRandomness(2026);
        let mut sketch = HcmsSketch::new(mechanisms.item_view);
        let mut intents = vec![0u64; (INTENT_BUCKETS + 1) as usize];
        let catalog: Vec<String> = (0..50).map(|i| format!("item-{i}")).collect();
        let mut truth = vec![0u64; catalog.len()];
        let mut true_buckets = vec![0u64; (INTENT_BUCKETS + 1) as usize];
        for v in 0..10_000u64 {
            // Zipf-like: item i viewed with weight 1/(i+1); one item per visitor for a clean truth.
            let r = rng.unit() * 4.4992;
            let mut acc = 0.0;
            let i = (0..catalog.len()).find(|&i| { acc += 1.0 / (i as f64 + 1.0); acc >= r }).unwrap_or(catalog.len() - 1);
            truth[i] += 1;
            let events = [stored(0.0, 0, &catalog[i], "c")];
            let p = ((v % 10) as f32 + 0.5) / 10.0;
            true_buckets[(v % 10) as usize] += 1;
            let report = build("s", "2026-11-30", &DaySummary::from_events(&events, Some(p), &[]), &mechanisms, &mut rng);
            for c in &report.contributions {
                match c {
                    Contribution::ItemView { report, .. } => sketch.add(report).expect("in range"),
                    Contribution::IntentBucket { value, .. } => intents[*value as usize] += 1,
                    _ => {}
                }
            }
        }
        let t = sketch.transformed();
        let mut inside = 0;
        for (item, &count) in catalog.iter().zip(&truth) {
            let (lo, hi) = sketch.estimate(&t, item).interval(1.96);
            inside += usize::from(lo <= count as f64 && count as f64 <= hi);
        }
        assert!(inside >= 45, "{inside}/50 item estimates within their 95% intervals");
        let est = mechanisms.intent_bucket.estimate(&intents);
        let inside = est.iter().zip(&true_buckets).filter(|(e, &t)| {
            let (lo, hi) = e.interval(1.96);
            lo <= t as f64 && t as f64 <= hi
        }).count();
        assert!(inside >= 9, "{inside}/11 intent buckets within their 95% intervals");
    }
}
