//! Features: the visitor's history turned into model inputs.
//!
//! Two inputs, each defined here once:
//! - the recommender's item sequence (model indices, oldest first, at most `max_len`);
//! - the intent feature vector, whose ordered definition (`INTENT_FEATURES`) is also exported as
//!   JSON (`foresight-export feature-spec`) and computed for training data by the same code
//!   (`foresight-export features`), so training and serving cannot drift apart.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::capture::Event;
use crate::store::StoredEvent;

/// Default number of most recent items the recommender sees.
pub const DEFAULT_MAX_SEQ_LEN: usize = 50;

/// Maps the shop's item ids to model indices and back.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    ids: Vec<String>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    /// Builds the vocabulary; index `i` is `ids[i]`. Returns the first duplicated id on error.
    pub fn new(ids: Vec<String>) -> Result<Self, String> {
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.clone(), i).is_some() {
                return Err(id.clone());
            }
        }
        Ok(Vocabulary { ids, index })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn id(&self, index: usize) -> Option<&str> {
        self.ids.get(index).map(String::as_str)
    }
}

/// One position of the recommender's input: the model index and the event it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeqItem<'a> {
    pub index: usize,
    pub item_id: &'a str,
    pub event: &'a Event,
}

/// The recommender's input: items the visitor showed interest in (views, cart adds, purchases),
/// oldest first, the last `max_len` of them. Items the model does not know are skipped, and an
/// item repeated back-to-back (viewed, then added to the cart) counts once.
pub fn item_sequence<'a>(events: impl IntoIterator<Item = &'a StoredEvent>, vocab: &Vocabulary, max_len: usize) -> Vec<SeqItem<'a>> {
    let mut seq: Vec<SeqItem<'a>> = Vec::new();
    for stored in events {
        for item_id in stored.event.interest_items() {
            let Some(index) = vocab.index_of(item_id) else { continue };
            if seq.last().is_some_and(|last| last.index == index) {
                continue;
            }
            seq.push(SeqItem { index, item_id, event: &stored.event });
        }
    }
    let start = seq.len().saturating_sub(max_len);
    seq.split_off(start)
}

/// How a raw count or amount is squashed before it reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// `ln(1 + x)`
    Log1p,
    /// the value as is
    Identity,
}

/// One entry of the intent feature vector.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FeatureDef {
    pub name: &'static str,
    pub description: &'static str,
    pub transform: Transform,
}

macro_rules! features {
    ($($name:literal, $transform:ident, $desc:literal;)*) => {
        /// The intent feature vector, in order. Append only; bump `INTENT_FEATURES_VERSION` on
        /// any change, since trained models depend on the order.
        pub const INTENT_FEATURES: &[FeatureDef] = &[
            $(FeatureDef { name: $name, description: $desc, transform: Transform::$transform },)*
        ];
    };
}

pub const INTENT_FEATURES_VERSION: u32 = 1;

features! {
    "session_events", Log1p, "events in the current session";
    "session_minutes", Log1p, "minutes from the current session's first event to now";
    "minutes_since_last_event", Log1p, "minutes since the visitor's last event (0 with no history)";
    "product_views", Log1p, "product_view events in the current session";
    "distinct_items_viewed", Log1p, "distinct items viewed in the current session";
    "searches", Log1p, "search events in the current session";
    "clicks", Log1p, "click events in the current session";
    "add_to_cart", Log1p, "add_to_cart events in the current session";
    "remove_from_cart", Log1p, "remove_from_cart events in the current session";
    "cart_items", Log1p, "units in the cart now (adds minus removes since the last purchase, any session)";
    "cart_value", Log1p, "value of the cart now, from the prices given with add_to_cart";
    "dwell_seconds", Log1p, "seconds of dwell reported in the current session";
    "viewed_categories", Log1p, "distinct categories among product views in the current session";
    "mean_price_viewed", Log1p, "mean price of products viewed in the current session (0 if none had a price)";
    "prior_sessions", Log1p, "sessions before the current one still in the log";
    "prior_purchases", Log1p, "purchase events before the current session";
    "days_since_prior_session", Log1p, "days from the previous session's last event to now (0 if none)";
    "cart_to_view_ratio", Identity, "add_to_cart events / max(1, product_view events), current session";
}

/// The feature spec as exported for training code.
#[derive(Debug, Serialize)]
pub struct FeatureSpec {
    pub version: u32,
    pub features: &'static [FeatureDef],
}

pub fn intent_feature_spec() -> FeatureSpec {
    FeatureSpec { version: INTENT_FEATURES_VERSION, features: INTENT_FEATURES }
}

/// Computes the intent feature vector at `now_ms` from the log (oldest first). The current
/// session is the last one if its last event is within `session_gap_ms` of now; otherwise the
/// visitor is starting a new, still empty, session.
pub fn intent_features(events: &[&StoredEvent], now_ms: f64, session_gap_ms: f64) -> Vec<f32> {
    let last = events.last();
    let current_session = last.filter(|e| now_ms - e.at <= session_gap_ms).map(|e| e.session);
    let (current, prior): (Vec<&StoredEvent>, Vec<&StoredEvent>) = events.iter().copied().partition(|e| Some(e.session) == current_session);

    let mut views = 0usize;
    let mut distinct = HashSet::new();
    let mut categories = HashSet::new();
    let (mut searches, mut clicks, mut adds, mut removes) = (0usize, 0usize, 0usize, 0usize);
    let (mut dwell, mut price_sum, mut priced) = (0f64, 0f64, 0usize);
    for e in &current {
        match &e.event {
            Event::ProductView { item_id, category, price } => {
                views += 1;
                distinct.insert(item_id.as_str());
                if let Some(c) = category {
                    categories.insert(c.as_str());
                }
                if let Some(p) = price {
                    price_sum += p;
                    priced += 1;
                }
            }
            Event::Search { .. } => searches += 1,
            Event::Click { .. } => clicks += 1,
            Event::AddToCart { .. } => adds += 1,
            Event::RemoveFromCart { .. } => removes += 1,
            Event::Dwell { seconds, .. } => dwell += seconds,
            Event::PageView { .. } | Event::Purchase { .. } => {}
        }
    }
    let cart = Cart::from_events(events.iter().map(|e| &e.event));
    let prior_sessions: HashSet<u32> = prior.iter().map(|e| e.session).collect();
    let prior_purchases = prior.iter().filter(|e| matches!(e.event, Event::Purchase { .. })).count();
    let session_minutes = current.first().map_or(0.0, |e| (now_ms - e.at) / 60_000.0);
    let since_last = last.map_or(0.0, |e| (now_ms - e.at) / 60_000.0);
    let days_since_prior = prior.last().map_or(0.0, |e| (now_ms - e.at) / 86_400_000.0);

    let raw = [
        current.len() as f64,
        session_minutes,
        since_last,
        views as f64,
        distinct.len() as f64,
        searches as f64,
        clicks as f64,
        adds as f64,
        removes as f64,
        cart.units() as f64,
        cart.value(),
        dwell,
        categories.len() as f64,
        if priced > 0 { price_sum / priced as f64 } else { 0.0 },
        prior_sessions.len() as f64,
        prior_purchases as f64,
        days_since_prior,
        adds as f64 / views.max(1) as f64,
    ];
    debug_assert_eq!(raw.len(), INTENT_FEATURES.len());
    raw.iter()
        .zip(INTENT_FEATURES)
        .map(|(&x, def)| {
            // Negative durations only arise from a clock set back; treat them as zero (and
            // normalise -0.0, which an empty float sum yields).
            let x = if x > 0.0 { x } else { 0.0 };
            (match def.transform {
                Transform::Log1p => x.ln_1p(),
                Transform::Identity => x,
            }) as f32
        })
        .collect()
}

/// The cart as the events describe it: adds minus removes since the last purchase.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cart {
    lines: Vec<(String, u32, Option<f64>)>,
}

impl Cart {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Cart {
        let mut cart = Cart::default();
        for e in events {
            match e {
                Event::AddToCart { item_id, quantity, price, .. } => match cart.lines.iter_mut().find(|l| &l.0 == item_id) {
                    Some(line) => {
                        line.1 = line.1.saturating_add(*quantity);
                        line.2 = price.or(line.2);
                    }
                    None => cart.lines.push((item_id.clone(), *quantity, *price)),
                },
                Event::RemoveFromCart { item_id, quantity } => {
                    if let Some(pos) = cart.lines.iter().position(|l| &l.0 == item_id) {
                        let line = &mut cart.lines[pos];
                        line.1 = line.1.saturating_sub(*quantity);
                        if line.1 == 0 {
                            cart.lines.remove(pos);
                        }
                    }
                }
                Event::Purchase { .. } => cart.lines.clear(),
                _ => {}
            }
        }
        cart
    }

    pub fn item_ids(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|l| l.0.as_str())
    }

    pub fn units(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.1)).sum()
    }

    pub fn value(&self) -> f64 {
        self.lines.iter().filter_map(|l| l.2.map(|p| p * f64::from(l.1))).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: f64 = 1_700_000_000_000.0;
    const MIN: f64 = 60_000.0;

    fn ev(at: f64, session: u32, v: serde_json::Value) -> StoredEvent {
        StoredEvent { at, session, event: Event::from_json(&v).expect("valid event") }
    }

    fn vocab() -> Vocabulary {
        Vocabulary::new(["a", "b", "c", "d"].map(String::from).to_vec()).expect("unique")
    }

    #[test]
    fn sequence_skips_unknown_collapses_repeats_and_keeps_the_latest() {
        let log = [
            ev(T0, 0, json!({"type": "product_view", "itemId": "a"})),
            ev(T0, 0, json!({"type": "click", "itemId": "b"})),
            ev(T0, 0, json!({"type": "product_view", "itemId": "zzz"})),
            ev(T0, 0, json!({"type": "product_view", "itemId": "b"})),
            ev(T0, 0, json!({"type": "add_to_cart", "itemId": "b"})),
            ev(T0, 0, json!({"type": "product_view", "itemId": "a"})),
            ev(T0, 0, json!({"type": "purchase", "items": [{"itemId": "c"}, {"itemId": "d"}]})),
        ];
        let seq: Vec<usize> = item_sequence(&log, &vocab(), 50).iter().map(|s| s.index).collect();
        assert_eq!(seq, [0, 1, 0, 2, 3]);
        let seq: Vec<usize> = item_sequence(&log, &vocab(), 2).iter().map(|s| s.index).collect();
        assert_eq!(seq, [2, 3]);
        assert!(Vocabulary::new(vec!["x".into(), "x".into()]).is_err());
    }

    #[test]
    fn spec_and_vector_agree_in_length() {
        assert_eq!(intent_features(&[], T0, 30.0 * MIN).len(), INTENT_FEATURES.len());
        let names: HashSet<_> = INTENT_FEATURES.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), INTENT_FEATURES.len(), "feature names are unique");
    }

    #[test]
    fn intent_features_follow_the_definitions() {
        let log = [
            ev(T0 - 3.0 * 86_400_000.0, 0, json!({"type": "purchase", "items": [{"itemId": "x"}]})),
            ev(T0, 1, json!({"type": "product_view", "itemId": "a", "category": "c1", "price": 10.0})),
            ev(T0 + MIN, 1, json!({"type": "product_view", "itemId": "b", "category": "c2", "price": 30.0})),
            ev(T0 + 2.0 * MIN, 1, json!({"type": "product_view", "itemId": "a", "category": "c1"})),
            ev(T0 + 3.0 * MIN, 1, json!({"type": "add_to_cart", "itemId": "a", "quantity": 2, "price": 10.0})),
            ev(T0 + 4.0 * MIN, 1, json!({"type": "remove_from_cart", "itemId": "a"})),
            ev(T0 + 5.0 * MIN, 1, json!({"type": "dwell", "seconds": 40})),
            ev(T0 + 6.0 * MIN, 1, json!({"type": "search", "query": "q"})),
        ];
        let refs: Vec<&StoredEvent> = log.iter().collect();
        let now = T0 + 10.0 * MIN;
        let f = intent_features(&refs, now, 30.0 * MIN);
        let get = |name: &str| {
            let i = INTENT_FEATURES.iter().position(|d| d.name == name).expect("known feature");
            f[i] as f64
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(close(get("session_events"), 7f64.ln_1p()));
        assert!(close(get("session_minutes"), 10f64.ln_1p()));
        assert!(close(get("minutes_since_last_event"), 4f64.ln_1p()));
        assert!(close(get("product_views"), 3f64.ln_1p()));
        assert!(close(get("distinct_items_viewed"), 2f64.ln_1p()));
        assert!(close(get("cart_items"), 1f64.ln_1p()));
        assert!(close(get("cart_value"), 10f64.ln_1p()));
        assert!(close(get("dwell_seconds"), 40f64.ln_1p()));
        assert!(close(get("viewed_categories"), 2f64.ln_1p()));
        assert!(close(get("mean_price_viewed"), 20f64.ln_1p()));
        assert!(close(get("prior_sessions"), 1f64.ln_1p()));
        assert!(close(get("prior_purchases"), 1f64.ln_1p()));
        assert!(close(get("cart_to_view_ratio"), 1.0 / 3.0));
        // Two hours later the session is over: the visitor is starting a fresh one.
        let later = intent_features(&refs, T0 + 130.0 * MIN, 30.0 * MIN);
        assert_eq!(later[0], 0.0);
        assert!(
            (later[INTENT_FEATURES.iter().position(|d| d.name == "prior_sessions").expect("known")] as f64 - 2f64.ln_1p()).abs() < 1e-5
        );
    }

    #[test]
    fn purchase_empties_the_cart() {
        let events = [
            Event::from_json(&json!({"type": "add_to_cart", "itemId": "a", "price": 5})).expect("valid"),
            Event::from_json(&json!({"type": "purchase", "items": [{"itemId": "a"}]})).expect("valid"),
            Event::from_json(&json!({"type": "add_to_cart", "itemId": "b", "quantity": 3})).expect("valid"),
        ];
        let cart = Cart::from_events(&events);
        assert_eq!(cart.item_ids().collect::<Vec<_>>(), ["b"]);
        assert_eq!(cart.units(), 3);
        assert_eq!(cart.value(), 0.0);
    }
}
