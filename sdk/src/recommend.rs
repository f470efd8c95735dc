//! Recommend: top-k from the session model with exclusions, a popularity fallback, and one
//! explanation per recommended item.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::capture::Event;
use crate::error::{Error, ModelError, Result};
use crate::features::{SeqItem, Vocabulary};
use crate::model::RecommenderModel;

pub const DEFAULT_K: usize = 10;
pub const MAX_K: usize = 100;
/// How many of the most recent distinct items are probed when explaining a recommendation.
pub const EXPLAIN_PROBES: usize = 5;

/// One item of the shop's catalog. Its position in the catalog is its model index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Any non-negative popularity measure (views, sales); orders the fallback.
    #[serde(default)]
    pub popularity: f64,
    /// Recent popularity (e.g. the last weeks' interactions); orders `trending`. Absent: the
    /// `trending` placement falls back to `popularity` and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<f64>,
    /// `false` when out of stock (merchandising rules can filter on it); absent means in stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_stock: Option<bool>,
    /// Free-form attributes for rules (`{"brand": "Acme"}`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The catalog: the recommender's vocabulary and what the rules and the popularity placements read.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    vocab: Vocabulary,
    items: Vec<CatalogItem>,
    /// `popularity` per index, as scores (built once: every popularity list reads it).
    popularity: Vec<f32>,
    /// `trend` per index, when any item has one.
    trend: Option<Vec<f32>>,
}

impl Catalog {
    pub fn new(items: Vec<CatalogItem>) -> Result<Self> {
        for (i, item) in items.iter().enumerate() {
            if item.id.is_empty() {
                return Err(Error::option(format!("catalog[{i}].id"), "must not be empty"));
            }
            if !(item.popularity.is_finite() && item.popularity >= 0.0) {
                return Err(Error::option(format!("catalog[{i}].popularity"), "must be a non-negative number"));
            }
            if item.trend.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                return Err(Error::option(format!("catalog[{i}].trend"), "must be a non-negative number"));
            }
            if item.price.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
                return Err(Error::option(format!("catalog[{i}].price"), "must be a non-negative number"));
            }
        }
        let vocab = Vocabulary::new(items.iter().map(|i| i.id.clone()).collect())
            .map_err(|dup| Error::option("catalog", format!("lists item `{dup}` twice")))?;
        let popularity = items.iter().map(|i| i.popularity as f32).collect();
        let trend = items.iter().any(|i| i.trend.is_some()).then(|| items.iter().map(|i| i.trend.unwrap_or(0.0) as f32).collect());
        Ok(Catalog { vocab, items, popularity, trend })
    }

    pub fn popularity(&self) -> &[f32] {
        &self.popularity
    }

    pub fn trend(&self) -> Option<&[f32]> {
        self.trend.as_deref()
    }

    pub fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn item(&self, index: usize) -> Option<&CatalogItem> {
        self.items.get(index)
    }

    pub fn get(&self, id: &str) -> Option<&CatalogItem> {
        self.vocab.index_of(id).and_then(|i| self.items.get(i))
    }
}

/// What the page asks of `recommend`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RecommendOptions {
    /// How many items (1 to 100; default 10).
    pub k: Option<usize>,
    /// Item ids never to recommend, besides what is in the cart or was bought.
    pub exclude: Vec<String>,
}

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
        Explanation::RecentEvent {
            event: event.type_name(),
            item_id: item_id.to_owned(),
            text: format!("because you {verb} {item_id}"),
        }
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

/// The `k` best (index, score) pairs, best first, skipping excluded and NaN scores; ties go to
/// the lower index so results are deterministic. Partial selection, not a full sort.
pub fn top_k(scores: &[f32], k: usize, excluded: &[bool]) -> Vec<(usize, f32)> {
    // Few picks from many scores (a recommendation's top-k): one pass that compares each score
    // with the current k-th and allocates only the answer. Many picks: select, then sort.
    if k.saturating_mul(16) < scores.len() {
        let mut sel = crate::score::Selection::new(k);
        for (i, &s) in scores.iter().enumerate() {
            if !s.is_nan() && !excluded.get(i).copied().unwrap_or(false) {
                sel.offer(i, s);
            }
        }
        return sel.into_sorted();
    }
    let mut candidates: Vec<(usize, f32)> = scores
        .iter()
        .copied()
        .enumerate()
        .filter(|&(i, s)| !s.is_nan() && !excluded.get(i).copied().unwrap_or(false))
        .collect();
    let better = |a: &(usize, f32), b: &(usize, f32)| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then(a.0.cmp(&b.0));
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k, better);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(better);
    candidates
}

/// Attribution by occlusion: for each of the last few distinct items in the sequence, rerun
/// the model without it; a recommendation is explained by the item whose removal lowers its
/// score most (the most recent one on ties). Works for any model, with a handful of extra runs.
pub(crate) fn explain(
    model: &mut RecommenderModel,
    seq: &[SeqItem<'_>],
    picks: &[(usize, f32)],
    scratch: &mut Vec<f32>,
) -> Result<Vec<Explanation>, ModelError> {
    let mut probes: Vec<&SeqItem<'_>> = Vec::new();
    for item in seq.iter().rev() {
        if probes.len() == EXPLAIN_PROBES {
            break;
        }
        if !probes.iter().any(|p| p.index == item.index) {
            probes.push(item);
        }
    }
    let Some(&latest) = probes.first() else { return Ok(Vec::new()) };
    let mut best: Vec<(f32, &SeqItem<'_>)> = picks.iter().map(|_| (f32::NEG_INFINITY, latest)).collect();
    if probes.len() > 1 {
        let indices: Vec<usize> = picks.iter().map(|p| p.0).collect();
        for probe in &probes {
            let rest: Vec<usize> = seq.iter().filter(|s| s.index != probe.index).map(|s| s.index).collect();
            if rest.is_empty() {
                continue;
            }
            model.scores_of(&rest, &indices, scratch)?;
            for ((&(_, score), b), &without) in picks.iter().zip(best.iter_mut()).zip(scratch.iter()) {
                let drop = score - without;
                if drop > b.0 {
                    *b = (drop, probe);
                }
            }
        }
    }
    Ok(best.into_iter().map(|(_, p)| Explanation::because(p.event, p.item_id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
