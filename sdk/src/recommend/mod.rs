//! Recommend: top-k from the session model with exclusions, a popularity fallback, and one
//! explanation per recommended item.

use serde::Serialize;
use serde_json::Value;

use crate::capture::Event;
use crate::error::{Error, Result};
use crate::json::{self, Fields, FromJson};

pub mod catalog;
pub mod explain;
pub mod placement;
pub mod repeat;
pub mod rules;

pub use crate::contract::manifest::CatalogItem;
pub use catalog::Catalog;
pub use placement::Placement;

pub const DEFAULT_K: usize = 10;
pub const MAX_K: usize = 100;
/// How many of the most recent distinct items are probed when explaining a recommendation.
pub const EXPLAIN_PROBES: usize = 5;

/// What the page asks of `recommend`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecommendOptions {
    /// How many items (1 to 100; default 10).
    pub k: Option<usize>,
    /// Item ids never to recommend, besides what is in the cart or was bought.
    pub exclude: Vec<String>,
}

impl FromJson for RecommendOptions {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["k", "exclude"])?;
        Ok(RecommendOptions { k: f.opt("k")?, exclude: f.or_default("exclude")? })
    }
}
json::deserialize_with_reader!(RecommendOptions);

impl RecommendOptions {
    pub fn k(&self) -> Result<usize> {
        match self.k.unwrap_or(DEFAULT_K) {
            k @ 1..=MAX_K => Ok(k),
            k => Err(Error::option("k", format!("must be from 1 to {MAX_K}, got {k}"))),
        }
    }
}

/// Why an item is recommended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Explanation {
    /// The recent event whose item most raised this item's score.
    RecentEvent { event: &'static str, item_id: String, text: String },
    /// The fallback: what is popular in the shop.
    PopularNow { text: String },
    /// What visitors looked at after this item (`similarTo`).
    SimilarTo { item_id: String, text: String },
    /// Goes with an item the visitor has or looks at (`boughtTogether`).
    GoesWith { item_id: String, text: String },
    /// Rising in the shop lately (`trending`).
    Trending { text: String },
    /// From the visitor's own history (`recentlyViewed`).
    RecentlyViewed { text: String },
    /// The visitor bought it before (`buyAgain`).
    BoughtBefore { text: String },
    /// Placed at this position by the shop's rules.
    Pinned { text: String },
    /// `rerank`: where the shop's list had it.
    Reranked { shop_position: usize, text: String },
}

impl Explanation {
    pub(crate) fn popular() -> Self {
        Explanation::PopularNow { text: "popular now".into() }
    }

    pub(crate) fn because(event: &Event, item_id: &str) -> Self {
        let verb = match event {
            Event::AddToCart { .. } => "added",
            Event::Purchase { .. } => "bought",
            _ => "viewed",
        };
        Explanation::RecentEvent { event: event.type_name(), item_id: item_id.to_owned(), text: format!("because you {verb} {item_id}") }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub item_id: String,
    pub score: f32,
    pub because: Explanation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Model,
    Popularity,
    /// The catalog's recent popularity (`trending`).
    Trend,
    /// The visitor's own history (`recentlyViewed`).
    History,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendations {
    pub items: Vec<Recommendation>,
    pub source: Source,
    /// Why the popularity fallback answered, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The placement that produced the list (`forYou`, `similarTo`, …).
    pub placement: &'static str,
    /// The experiment variant this visitor sees for the placement, if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Identifies this list on the device: clicks, cart adds and purchases of its items are
    /// attributed to it (never sent).
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::topk::top_k;

    #[test]
    fn top_k_is_ordered_deterministic_and_respects_exclusions() {
        let scores = [0.1, 0.9, f32::NAN, 0.5, 0.9, -1.0];
        let excluded = [false, false, false, false, false, false];
        assert_eq!(top_k(&scores, 3, &excluded), vec![(1, 0.9), (4, 0.9), (3, 0.5)]);
        let excluded = [false, true, false, false, false, false];
        assert_eq!(top_k(&scores, 2, &excluded), vec![(4, 0.9), (3, 0.5)]);
        // k larger than what is left: everything valid, ordered, NaN never returned.
        assert_eq!(top_k(&scores, 10, &excluded).len(), 4);
    }

    #[test]
    fn top_k_matches_a_full_sort_with_ties_exclusions_and_nan_on_both_paths() {
        // Ten distinct values over 2,000 items: ties everywhere, lower index first.
        let scores: Vec<f32> = (0..2000u32).map(|i| if i % 97 == 5 { f32::NAN } else { ((i * 31) % 10) as f32 }).collect();
        let excluded: Vec<bool> = (0..2000).map(|i| i % 3 == 0).collect();
        let mut full: Vec<(usize, f32)> = scores.iter().copied().enumerate().filter(|&(i, s)| !s.is_nan() && !excluded[i]).collect();
        full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 20, 124, 125, 1000, 5000] {
            assert_eq!(top_k(&scores, k, &excluded), full[..k.min(full.len())].to_vec(), "k = {k}");
        }
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let scores: Vec<f32> = (0..5000u32).map(|i| ((i * 7919) % 4999) as f32 / 13.0).collect();
        let excluded = vec![false; scores.len()];
        let mut full: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(top_k(&scores, 20, &excluded), full[..20].to_vec());
    }

    #[test]
    fn catalog_ids_are_unique() {
        assert!(Catalog::new(vec![
            CatalogItem { id: "a".into(), popularity: 1.0, ..Default::default() },
            CatalogItem { id: "a".into(), popularity: 1.0, ..Default::default() },
        ])
        .is_err());
    }

    #[test]
    fn k_is_bounded() {
        assert!(RecommendOptions { k: Some(0), ..Default::default() }.k().is_err());
        assert!(RecommendOptions { k: Some(101), ..Default::default() }.k().is_err());
        assert_eq!(RecommendOptions::default().k().expect("default"), DEFAULT_K);
    }

    #[test]
    fn options_read_k_and_exclude_only() {
        let o = RecommendOptions::from_json(&serde_json::json!({"k": null})).expect("reads");
        assert_eq!(o, RecommendOptions::default());
        let o = RecommendOptions::from_json(&serde_json::json!({"k": 3, "exclude": ["a"]})).expect("reads");
        assert_eq!(o, RecommendOptions { k: Some(3), exclude: vec!["a".into()] });
        let err = RecommendOptions::from_json(&serde_json::json!({"count": 3})).expect_err("unknown");
        assert_eq!(err.to_string(), "`count`: unknown field, expected one of `k`, `exclude`");
        assert_eq!(RecommendOptions::from_json(&serde_json::json!({"k": -1})).expect_err("negative").path(), "k");
    }
}
