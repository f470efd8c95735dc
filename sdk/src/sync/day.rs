//! One day's report, built on the device: what the day's events contribute before
//! randomization ([`DaySummary`]), how far the recommendations shown led ([`stage_reached`]),
//! and [`build`], which samples and randomizes one value per statistic into the
//! [`Report`](crate::contract::report::Report) contract.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::capture::Event;
use crate::contract::report::{Contribution, Mechanisms, RecStage, Report, INTENT_BUCKETS, NOTHING, REPORT_VERSION};
use crate::json::{self, Fields, FromJson};
use crate::platform::Randomness;
use crate::privacy::mechanism::KaryRr;
use crate::store::StoredEvent;

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub item: String,
    pub at: f64,
    pub placement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<usize>,
}

impl FromJson for Shown {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(Shown {
            item: f.req("item")?,
            at: f.req("at")?,
            // Kept before placements were: those lists were all `forYou`.
            placement: f.or("placement", "forYou".to_owned())?,
            variant: f.opt("variant")?,
        })
    }
}

json::deserialize_with_reader!(Shown);

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
            Event::Click { item_id, placement }
                if was_shown(item_id, e.at) || placement.as_deref().is_some_and(|p| clicked_placement(p, e.at)) =>
            {
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
        Contribution::ItemTransition { mechanism: mechanisms.item_transition, report: mechanisms.item_transition.encode(&transition, rng) },
        Contribution::CategoryView { mechanism: mechanisms.category_view, report: mechanisms.category_view.encode(&category, rng) },
        Contribution::IntentBucket { mechanism: mechanisms.intent_bucket, value: mechanisms.intent_bucket.encode(bucket, rng) },
        Contribution::RecOutcome { mechanism: mechanisms.rec_outcome, value: mechanisms.rec_outcome.encode(summary.rec_stage as u32, rng) },
        Contribution::RecItem { mechanism: mechanisms.rec_item, report: mechanisms.rec_item.encode(&recommended, rng) },
    ];
    let mut contributions = contributions;
    for (name, mechanism, value) in &summary.experiments {
        contributions.push(Contribution::ExperimentOutcome {
            experiment: name.clone(),
            mechanism: *mechanism,
            value: mechanism.encode(*value, rng),
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::report::validate;
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
            let shown: Vec<Shown> = (0..(v % 4))
                .map(|i| Shown { item: format!("secret-rec-{v}-{i}"), at: 0.0, placement: "forYou".into(), variant: None })
                .collect();
            let items: Vec<StoredEvent> =
                (0..(v % 7)).map(|i| stored(f64::from(i), 0, &format!("secret-item-{v}-{i}"), "secret-category")).collect();
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
            let i = (0..catalog.len())
                .find(|&i| {
                    acc += 1.0 / (i as f64 + 1.0);
                    acc >= r
                })
                .unwrap_or(catalog.len() - 1);
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
        let inside = est
            .iter()
            .zip(&true_buckets)
            .filter(|(e, &t)| {
                let (lo, hi) = e.interval(1.96);
                lo <= t as f64 && t as f64 <= hi
            })
            .count();
        assert!(inside >= 9, "{inside}/11 intent buckets within their 95% intervals");
    }
}
