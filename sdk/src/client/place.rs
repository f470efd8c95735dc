//! Placements: every kind of recommendation list a shop puts on a page, each one call, each
//! item with an explanation, all under the shop's merchandising rules, none ever empty unless
//! the rules leave nothing.
//!
//! The session recommender serves three of them: `forYou` (the visitor's history), `similarTo`
//! (the model's answer to a history of that one item: what visitors look at next) and
//! `boughtTogether` (the answer to a history of the given items, e.g. the cart). The catalog's
//! popularity and trend tables serve `popular` and `trending`; the visitor's own history
//! serves `recentlyViewed`, their own purchases `buyAgain` (`recommend::repeat`); `rerank`
//! reorders a list the page already has.

use super::Client;
use crate::error::Num;
use crate::error::{Error, Result};
use crate::features;
use crate::infer::score::{ItemMask, ItemMatrix};
use crate::infer::topk::sort_best_first;
use crate::platform::{Clock, Storage};
use crate::recommend::placement::Placement;
use crate::recommend::{self, Explanation, Recommendation, Recommendations, Source};

/// Candidates worth handing to the rules: the head of the ranking (partial selection), wide
/// enough for caps and filters; everything when the catalog is small.
fn head(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let width = head_width(k);
    if scores.len() <= width {
        scores.iter().copied().enumerate().collect()
    } else {
        crate::infer::topk::top_k(scores, width, &[])
    }
}

fn head_width(k: usize) -> usize {
    k.saturating_mul(50).max(2000)
}

/// A placement's items, where they came from, and why it fell back, when it did.
type Placed = (Vec<Recommendation>, Source, Option<String>);

/// What selecting a visitor tower's `forYou` candidates takes — on the GPU, say — outside the
/// client: the visitor vector, how many, which items are excluded.
#[derive(Debug, Clone)]
pub struct TowerRequest {
    pub items: std::sync::Arc<ItemMatrix>,
    /// Padded for [`ItemMatrix`] scoring.
    pub user: Vec<f32>,
    pub width: usize,
    pub mask: ItemMask,
    /// The history and options it was made for: stale candidates are not used.
    key: String,
}

impl<S: Storage, C: Clock> Client<S, C> {
    /// The candidate selection `recommend(options)` would do now for a visitor tower, or `None`
    /// when that call would not score one (no tower, no history, no consent, an answer already
    /// precomputed, a popularity variant). Hand the selected candidates to
    /// [`Client::recommend_with_candidates`].
    pub fn tower_request(&mut self, options: &crate::recommend::RecommendOptions) -> Result<Option<TowerRequest>> {
        let k = Placement::ForYou { k: options.k, exclude: options.exclude.clone() }.k()?;
        let key = self.precompute_key(options);
        if self.precompute.ready.as_ref().is_some_and(|(cached, _)| *cached == key)
            || self.variant_is_popularity("forYou").is_some()
            || !self.personalizing()
        {
            return Ok(None);
        }
        let Some(rec) = self.recommender.as_ref() else { return Ok(None) };
        if rec.model.items().is_none() {
            return Ok(None);
        }
        let seq: Vec<usize> =
            features::item_sequence(self.log.events(), self.catalog.vocab(), rec.max_seq_len).iter().map(|s| s.index).collect();
        if seq.is_empty() {
            return Ok(None);
        }
        // Under the rules `forYou` answers with (its own, or none for a variant without them).
        let mask = self.with_placement_rules("forYou", |c| ItemMask::from_bools(&c.excluded(&options.exclude)));
        let Some(rec) = self.recommender.as_mut() else { return Ok(None) };
        // A failing model is reported by the call itself, on its normal path.
        let Ok(user) = rec.model.visitor_vector(&seq) else { return Ok(None) };
        let Some(items) = rec.model.items().cloned() else { return Ok(None) };
        Ok(Some(TowerRequest { items, user, width: head_width(k), mask, key }))
    }

    /// The item embeddings when the recommender is a visitor tower.
    pub fn tower_items(&self) -> Option<std::sync::Arc<ItemMatrix>> {
        self.recommender.as_ref().and_then(|r| r.model.items().cloned())
    }

    /// `recommend(options)` with the candidates selected for `request` (the k best by the
    /// same order [`ItemMatrix::top_k`] uses). If the history changed since the request, they
    /// are dropped and the CPU selects.
    pub fn recommend_with_candidates(
        &mut self,
        options: &crate::recommend::RecommendOptions,
        request: TowerRequest,
        candidates: Vec<(usize, f32)>,
    ) -> Result<Recommendations> {
        if request.key == self.precompute_key(options) {
            self.tower_candidates = Some((request.user, candidates));
        }
        let recs = self.recommend(options);
        self.tower_candidates = None;
        recs
    }

    /// One placement's list under the shop's rules (or, for an experiment variant that turns
    /// them off, without them).
    pub fn place(&mut self, placement: &Placement) -> Result<Recommendations> {
        if let Placement::ForYou { k, exclude } = placement {
            let options = crate::recommend::RecommendOptions { k: *k, exclude: exclude.clone() };
            if let Some(recs) = self.take_precomputed(&options) {
                return Ok(recs);
            }
        }
        self.place_computed(placement)
    }

    /// `place` without the precomputed answer.
    pub(crate) fn place_computed(&mut self, placement: &Placement) -> Result<Recommendations> {
        let name = placement.name();
        self.with_placement_rules(name, |c| c.place_under_rules(placement))
    }

    fn place_under_rules(&mut self, placement: &Placement) -> Result<Recommendations> {
        let k = placement.k()?;
        if let Some(reason) = self.variant_is_popularity(placement.name()) {
            if !matches!(
                placement,
                Placement::Rerank { .. } | Placement::RecentlyViewed { .. } | Placement::BuyAgain { .. } | Placement::Popular { .. }
            ) {
                let mask = self.excluded(placement.exclude());
                let items = self.ranked(self.catalog.popularity(), k, &mask, |_| Explanation::popular());
                return Ok(self.finish(placement.name(), items, Source::Popularity, Some(reason)));
            }
        }
        let mask = self.excluded(placement.exclude());
        let (items, source, fallback) = match placement {
            Placement::Rerank { item_ids, blend } => return self.rerank(item_ids, blend.unwrap_or(0.5)),
            Placement::ForYou { .. } => self.place_for_you(k, &mask)?,
            Placement::SimilarTo { item_id, .. } => self.place_similar_to(item_id, k, mask)?,
            Placement::BoughtTogether { item_ids, .. } => self.place_bought_together(item_ids, k, mask)?,
            Placement::Popular { category, .. } => self.place_popular(category.as_deref(), k, mask)?,
            Placement::Trending { category, .. } => self.place_trending(category.as_deref(), k, mask)?,
            Placement::RecentlyViewed { .. } => self.place_recently_viewed(placement.exclude(), k, mask)?,
            Placement::BuyAgain { .. } => self.place_buy_again(placement.exclude(), k, mask),
        };
        Ok(self.finish(placement.name(), items, source, fallback))
    }

    /// `forYou`: the session model on the visitor's history (its running state when it keeps one), else popular.
    fn place_for_you(&mut self, k: usize, mask: &[bool]) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let personal = self.personalizing();
            let seq_len = self.recommender.as_ref().map_or(0, |r| r.max_seq_len);
            let seq = if personal { features::item_sequence(self.log.events(), self.catalog.vocab(), seq_len) } else { Vec::new() };
            let reason = if !personal {
                Some("personalization waits for the visitor's consent".to_owned())
            } else if self.recommender.is_none() {
                Some(self.no_model_reason())
            } else if seq.is_empty() {
                Some("no history yet".to_owned())
            } else {
                None
            };
            let mut answer = None;
            if reason.is_none() && self.recommender.as_ref().is_some_and(|r| r.model.reads_whole_history()) {
                match self.for_you_incremental(k, mask) {
                    Ok(items) => answer = Some((items, Source::Model)),
                    Err(e) => fallback = Some(format!("the recommender failed: {e}")),
                }
            } else if reason.is_none() && self.recommender.as_ref().is_some_and(|r| r.model.items().is_some()) {
                match self.for_you_tower(k, mask) {
                    Ok(items) => answer = Some((items, Source::Model)),
                    Err(e) => fallback = Some(format!("the recommender failed: {e}")),
                }
            } else if let (None, Some(rec)) = (&reason, self.recommender.as_mut()) {
                let indices: Vec<usize> = seq.iter().map(|s| s.index).collect();
                match rec.model.scores_into(&indices, &mut self.scratch) {
                    Ok(()) => {
                        let picks = self.rules.select(&self.catalog, &head(&self.scratch, k), k, mask);
                        let plain: Vec<(usize, f32)> = picks.iter().map(|p| (p.0, p.1)).collect();
                        let explanations = recommend::explain::explain(&mut rec.model, &seq, &plain, &mut self.scratch)?;
                        let items = picks
                            .iter()
                            .zip(explanations)
                            .map(|(&(i, score, pinned), because)| {
                                self.recommendation(i, score, if pinned { pinned_text() } else { because })
                            })
                            .collect();
                        answer = Some((items, Source::Model));
                    }
                    Err(e) => fallback = Some(format!("the recommender failed: {e}")),
                }
            }
            match answer {
                Some(a) => a,
                None => {
                    fallback = fallback.or(reason);
                    (self.ranked(self.catalog.popularity(), k, mask, |_| Explanation::popular()), Source::Popularity)
                }
            }
        };
        Ok((items, source, fallback))
    }

    /// `similarTo`: the model on that one item, nudged toward its category.
    fn place_similar_to(&mut self, item_id: &str, k: usize, mut mask: Vec<bool>) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let index = self.catalog.vocab().index_of(item_id);
            if let Some(i) = index {
                mask[i] = true;
            }
            let category = self.catalog.get(item_id).and_then(|it| it.category.clone());
            match (index, self.recommender.as_mut()) {
                (Some(i), Some(rec)) => match rec.model.scores_into(&[i], &mut self.scratch) {
                    Ok(()) => {
                        let mut scores = std::mem::take(&mut self.scratch);
                        // Behaviour first, with a nudge toward the film's own category: a
                        // session model alone drifts to whatever is popular next.
                        if let Some(c) = category.as_deref() {
                            let nudge = SAME_CATEGORY_NUDGE * spread(&scores);
                            for (j, s) in scores.iter_mut().enumerate() {
                                if self.catalog.item(j).and_then(|it| it.category.as_deref()) == Some(c) {
                                    *s += nudge;
                                }
                            }
                        }
                        let text = format!("visitors who viewed {item_id} looked at this next");
                        let items =
                            self.ranked(&scores, k, &mask, |_| Explanation::SimilarTo { item_id: item_id.to_owned(), text: text.clone() });
                        self.scratch = scores;
                        (items, Source::Model)
                    }
                    Err(e) => {
                        fallback = Some(format!("the recommender failed: {e}"));
                        (self.popular_in(category.as_deref(), k, &mask), Source::Popularity)
                    }
                },
                (None, _) => {
                    fallback = Some(format!("`{item_id}` is not in the catalog"));
                    (self.popular_in(None, k, &mask), Source::Popularity)
                }
                (Some(_), None) => {
                    fallback = Some(self.no_model_reason());
                    (self.popular_in(category.as_deref(), k, &mask), Source::Popularity)
                }
            }
        };
        Ok((items, source, fallback))
    }

    /// `boughtTogether`: the model on the given items (the cart), each pick credited to one of them.
    fn place_bought_together(&mut self, item_ids: &[String], k: usize, mut mask: Vec<bool>) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let known: Vec<(usize, &String)> =
                item_ids.iter().filter_map(|id| self.catalog.vocab().index_of(id).map(|i| (i, id))).collect();
            for &(i, _) in &known {
                mask[i] = true;
            }
            if known.is_empty() || self.recommender.is_none() {
                fallback = Some(if known.is_empty() { "none of the items is in the catalog".to_owned() } else { self.no_model_reason() });
                let category = known.first().and_then(|&(i, _)| self.catalog.item(i)).and_then(|it| it.category.clone());
                (self.popular_in(category.as_deref(), k, &mask), Source::Popularity)
            } else {
                let indices: Vec<usize> = known.iter().map(|p| p.0).collect();
                let rec = self.recommender.as_mut().ok_or(Error::no_model("recommender"))?;
                rec.model.scores_into(&indices, &mut self.scratch)?;
                let together = std::mem::take(&mut self.scratch);
                // Each pick is explained by the given item that alone scores it highest.
                let probes: Vec<(usize, &String)> = known.iter().rev().take(recommend::EXPLAIN_PROBES).copied().collect();
                let mut single: Vec<Vec<f32>> = Vec::new();
                if probes.len() > 1 {
                    for &(i, _) in &probes {
                        rec.model.scores_into(&[i], &mut self.scratch)?;
                        single.push(self.scratch.clone());
                    }
                }
                let items = self.ranked(&together, k, &mask, |j| {
                    let best = (0..single.len()).max_by(|&a, &b| single[a][j].total_cmp(&single[b][j])).unwrap_or(0);
                    let id = probes[best].1;
                    Explanation::GoesWith { item_id: id.clone(), text: format!("goes with {id}") }
                });
                self.scratch = together;
                (items, Source::Model)
            }
        };
        Ok((items, source, fallback))
    }

    /// `popular`, in a category when the catalog has it.
    fn place_popular(&mut self, category: Option<&str>, k: usize, mask: Vec<bool>) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let category = category.filter(|c| {
                let known = self.has_category(c);
                if !known {
                    fallback = Some(format!("category `{c}` is not in the catalog; popular across the shop"));
                }
                known
            });
            (self.popular_in(category, k, &mask), Source::Popularity)
        };
        Ok((items, source, fallback))
    }

    /// `trending`: the catalog's recent popularity, in a category when the catalog has it.
    fn place_trending(&mut self, category: Option<&str>, k: usize, mask: Vec<bool>) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let category = category.filter(|c| {
                let known = self.has_category(c);
                if !known {
                    fallback = Some(format!("category `{c}` is not in the catalog; trending across the shop"));
                }
                known
            });
            let mask = self.category_mask(category, mask);
            if let Some(trend) = self.catalog.trend() {
                (self.ranked(trend, k, &mask, |_| Explanation::Trending { text: "trending lately".into() }), Source::Trend)
            } else {
                fallback = Some("the catalog has no trend data (`trend`); popular items instead".into());
                (self.ranked(self.catalog.popularity(), k, &mask, |_| Explanation::popular()), Source::Popularity)
            }
        };
        Ok((items, source, fallback))
    }

    /// `recentlyViewed`: the visitor's own views, newest first; popular on a first visit.
    fn place_recently_viewed(&mut self, exclude: &[String], k: usize, mask: Vec<bool>) -> Result<Placed> {
        let mut fallback: Option<String> = None;
        let (items, source) = {
            let personal = self.personalizing();
            let catalog_len = self.catalog.len();
            // Most recent first, each item once: a descending score by recency.
            let mut recency = vec![f32::NAN; catalog_len];
            if personal {
                for (n, e) in self.log.events().iter().rev().enumerate() {
                    if let crate::capture::Event::ProductView { item_id, .. } = &e.event {
                        if let Some(i) = self.catalog.vocab().index_of(item_id) {
                            if recency[i].is_nan() {
                                recency[i] = -(n as f32);
                            }
                        }
                    }
                }
            }
            // The visitor's own list: items they have (cart) stay, only the caller's and the filter's exclusions hold.
            let own_mask = self.excluded_by_caller(exclude);
            // The visitor's own history: the filter and caps hold, the shop's pins do not.
            let items = self.ranked_with(&recency, k, &own_mask, false, |_| Explanation::RecentlyViewed { text: "you viewed this".into() });
            if items.is_empty() {
                // Never an empty widget: a first visit sees what is popular.
                fallback = Some(if personal { "nothing viewed yet" } else { "personalization waits for the visitor's consent" }.into());
                (self.ranked(self.catalog.popularity(), k, &mask, |_| Explanation::popular()), Source::Popularity)
            } else {
                (items, Source::History)
            }
        };
        Ok((items, source, fallback))
    }

    /// `buyAgain`: the visitor's purchases (each `purchase` event one basket, oldest first)
    /// scored by `recommend::repeat`, popularity filling the places they leave; popular when
    /// nothing was bought yet.
    fn place_buy_again(&mut self, exclude: &[String], k: usize, mask: Vec<bool>) -> Placed {
        let vocab = self.catalog.vocab();
        let baskets: Vec<Vec<usize>> = if self.personalizing() {
            self.log
                .events()
                .iter()
                .filter_map(|e| match &e.event {
                    crate::capture::Event::Purchase { items, .. } => {
                        Some(items.iter().filter_map(|l| vocab.index_of(&l.item_id)).collect::<Vec<usize>>())
                    }
                    _ => None,
                })
                .filter(|b| !b.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        if baskets.is_empty() {
            let reason = if self.personalizing() { "nothing bought yet" } else { "personalization waits for the visitor's consent" };
            return (self.ranked(self.catalog.popularity(), k, &mask, |_| Explanation::popular()), Source::Popularity, Some(reason.into()));
        }
        let params = recommend::repeat::BuyAgainParams::default();
        let scores = recommend::repeat::buy_again_scores(&baskets, self.catalog.popularity(), &params);
        let mut bought = vec![false; self.catalog.len()];
        baskets.iter().flatten().for_each(|&i| bought[i] = true);
        // Bought items are what this list is for, so only the caller's exclusions and what is
        // in the cart now (being bought already) hold; the filter and caps still apply.
        let mut own_mask = self.excluded_by_caller(exclude);
        if self.rules.rules.exclude_cart {
            let events = self.log.events().iter().map(|e| &e.event);
            for id in crate::features::Cart::from_events(events).item_ids() {
                if let Some(i) = self.catalog.vocab().index_of(id) {
                    own_mask[i] = true;
                }
            }
        }
        let items = self.ranked_with(&scores, k, &own_mask, false, |i| {
            if bought[i] {
                Explanation::BoughtBefore { text: "you bought this before".into() }
            } else {
                Explanation::popular()
            }
        });
        (items, Source::History, None)
    }

    /// `forYou` on a visitor tower: the vector, then the best unmasked items by embedding
    /// (selected on the GPU when the browser layer passed them in, else here), then rules and
    /// explanations that score only the picks.
    fn for_you_tower(&mut self, k: usize, mask: &[bool]) -> Result<Vec<Recommendation>> {
        let rec = self.recommender.as_mut().ok_or(Error::no_model("recommender"))?;
        let seq = features::item_sequence(self.log.events(), self.catalog.vocab(), rec.max_seq_len);
        let items = rec.model.items().cloned().ok_or(Error::no_model("recommender"))?;
        let (_, candidates) = match self.tower_candidates.take() {
            Some(selected) => selected,
            None => {
                let indices: Vec<usize> = seq.iter().map(|s| s.index).collect();
                let user = rec.model.visitor_vector(&indices)?;
                let selected = items.top_k(&user, head_width(k), Some(&ItemMask::from_bools(mask)));
                (user, selected)
            }
        };
        let picks = self.rules.select(&self.catalog, &candidates, k, mask);
        let plain: Vec<(usize, f32)> = picks.iter().map(|p| (p.0, p.1)).collect();
        let explanations = recommend::explain::explain(&mut rec.model, &seq, &plain, &mut self.scratch)?;
        Ok(picks
            .iter()
            .zip(explanations)
            .map(|(&(i, score, pinned), because)| self.recommendation(i, score, if pinned { pinned_text() } else { because }))
            .collect())
    }

    /// `forYou` on a GRU's running state: the new events only, then the head; explanations
    /// by occlusion from the kept states, scoring just the picks.
    fn for_you_incremental(&mut self, k: usize, mask: &[bool]) -> Result<Vec<Recommendation>> {
        // The whole stored history feeds the state (a GRU carries it); `maxSeqLen` only bounds
        // whole-sequence runs.
        let seq = features::item_sequence(self.log.events(), self.catalog.vocab(), usize::MAX);
        let indices: Vec<usize> = seq.iter().map(|s| s.index).collect();
        let state_key = self.keys.of(super::keys::Kept::State);
        let rec = self.recommender.as_mut().ok_or(Error::no_model("recommender"))?;
        if rec.model.consumed().is_empty() {
            // After a reload: the stored state, when it is this model's and this history's.
            let stored: Option<crate::client::StoredState> = crate::platform::read_json(self.log.storage(), &state_key);
            if let Some(st) = stored.filter(|st| st.model == rec.model_id) {
                rec.model.restore(&st.snapshot, &indices);
            }
        }
        let changed = rec.model.advance(&indices)?.steps > 0;
        rec.model.state_scores_into(&mut self.scratch)?;
        let picks = self.rules.select(&self.catalog, &head(&self.scratch, k), k, mask);
        // Occlusion over the last few distinct items, as the whole-sequence path does.
        let mut probes: Vec<&features::SeqItem<'_>> = Vec::new();
        for item in seq.iter().rev() {
            if probes.len() == recommend::EXPLAIN_PROBES {
                break;
            }
            if !probes.iter().any(|p| p.index == item.index) {
                probes.push(item);
            }
        }
        let mut best: Vec<(f32, usize)> = picks.iter().map(|_| (f32::NEG_INFINITY, 0)).collect();
        if probes.len() > 1 {
            let items: Vec<usize> = picks.iter().map(|p| p.0).collect();
            let mut without = Vec::with_capacity(items.len());
            for (n, probe) in probes.iter().enumerate() {
                rec.model.state_scores_without(probe.index, &items, &mut without)?;
                for ((&(_, score, _), b), &w) in picks.iter().zip(best.iter_mut()).zip(&without) {
                    let drop = score - w;
                    if drop > b.0 {
                        *b = (drop, n);
                    }
                }
            }
        }
        let snapshot = changed
            .then(|| rec.model.snapshot())
            .flatten()
            .map(|snapshot| crate::client::StoredState { model: rec.model_id.clone(), snapshot });
        let items = picks
            .iter()
            .zip(best)
            .map(|(&(i, score, pinned), (_, n))| {
                let because = match probes.get(n) {
                    _ if pinned => pinned_text(),
                    Some(p) => Explanation::because(p.event, p.item_id),
                    None => Explanation::popular(),
                };
                self.recommendation(i, score, because)
            })
            .collect();
        if let Some(st) = snapshot {
            // Losing it only costs a rebuild from history at the next start.
            if let Ok(text) = serde_json::to_string(&st) {
                let _ = self.log.storage_mut().set(&state_key, &text);
            }
        }
        Ok(items)
    }

    fn rerank(&mut self, item_ids: &[String], blend: f32) -> Result<Recommendations> {
        if !(0.0..=1.0).contains(&blend) {
            return Err(Error::option("blend", format!("must be in [0, 1], got {}", Num(blend))));
        }
        if item_ids.len() > 1000 {
            return Err(Error::option("itemIds", format!("at most 1000 items, got {}", item_ids.len())));
        }
        let n = item_ids.len();
        let seq_len = self.recommender.as_ref().map_or(0, |r| r.max_seq_len);
        let seq: Vec<usize> = if self.personalizing() {
            features::item_sequence(self.log.events(), self.catalog.vocab(), seq_len).iter().map(|s| s.index).collect()
        } else {
            Vec::new()
        };
        let mut fallback = None;
        let mut model_rank: Option<Vec<f32>> = None;
        match self.recommender.as_mut() {
            None => fallback = Some(self.no_model_reason()),
            Some(_) if seq.is_empty() => fallback = Some("no history yet; the shop's order is kept".into()),
            Some(rec) => match rec.model.scores_into(&seq, &mut self.scratch) {
                Ok(()) => {
                    // The model's rank among the listed items (unknown items rank last).
                    let score = |id: &String| self.catalog.vocab().index_of(id).map_or(f32::NEG_INFINITY, |i| self.scratch[i]);
                    let mut order: Vec<(usize, f32)> =
                        item_ids.iter().map(score).map(|s| if s.is_nan() { f32::NEG_INFINITY } else { s }).enumerate().collect();
                    sort_best_first(&mut order);
                    let mut rank = vec![0f32; n];
                    for (r, &(i, _)) in order.iter().enumerate() {
                        rank[i] = r as f32;
                    }
                    model_rank = Some(rank);
                }
                Err(e) => fallback = Some(format!("the recommender failed: {e}")),
            },
        }
        // Blend of the two ranks; the shop's position breaks ties, so blend 0 is the identity.
        let blended = |i: usize| (1.0 - blend) * i as f32 + blend * model_rank.as_ref().map_or(i as f32, |r| r[i]);
        // Lowest blend first: the highest negated one, by the rankings' one sort.
        let mut order: Vec<(usize, f32)> = (0..n).map(|i| (i, -blended(i))).collect();
        sort_best_first(&mut order);
        let order: Vec<usize> = order.into_iter().map(|(i, _)| i).collect();
        let items = order
            .iter()
            .enumerate()
            .map(|(new, &i)| {
                let text = match new.cmp(&i) {
                    std::cmp::Ordering::Less => format!("moved up from #{} for you", i + 1),
                    std::cmp::Ordering::Greater => format!("moved down from #{}", i + 1),
                    std::cmp::Ordering::Equal => format!("kept at #{}", i + 1),
                };
                Recommendation {
                    item_id: item_ids[i].clone(),
                    score: -blended(i),
                    because: Explanation::Reranked { shop_position: i + 1, text },
                }
            })
            .collect();
        let source = if model_rank.is_some() { Source::Model } else { Source::Popularity };
        Ok(self.finish("rerank", items, source, fallback))
    }

    /// Picks under the rules and explains each pick (pins say so).
    fn ranked(&self, scores: &[f32], k: usize, mask: &[bool], explain: impl Fn(usize) -> Explanation) -> Vec<Recommendation> {
        self.ranked_with(scores, k, mask, true, explain)
    }

    fn ranked_with(
        &self,
        scores: &[f32],
        k: usize,
        mask: &[bool],
        pins: bool,
        explain: impl Fn(usize) -> Explanation,
    ) -> Vec<Recommendation> {
        self.rules
            .select_with(&self.catalog, &head(scores, k), k, mask, pins)
            .into_iter()
            .map(|(i, score, pinned)| self.recommendation(i, score, if pinned { pinned_text() } else { explain(i) }))
            .collect()
    }

    fn popular_in(&self, category: Option<&str>, k: usize, mask: &[bool]) -> Vec<Recommendation> {
        let popularity = self.catalog.popularity();
        let in_category = self.category_mask(category, mask.to_vec());
        let items = self.ranked(popularity, k, &in_category, |_| Explanation::popular());
        if items.is_empty() && category.is_some() {
            return self.ranked(popularity, k, mask, |_| Explanation::popular());
        }
        items
    }

    fn category_mask(&self, category: Option<&str>, mut mask: Vec<bool>) -> Vec<bool> {
        if let Some(c) = category {
            for (i, m) in mask.iter_mut().enumerate() {
                if self.catalog.item(i).and_then(|it| it.category.as_deref()) != Some(c) {
                    *m = true;
                }
            }
        }
        mask
    }

    fn has_category(&self, c: &str) -> bool {
        (0..self.catalog.len()).any(|i| self.catalog.item(i).and_then(|it| it.category.as_deref()) == Some(c))
    }

    fn recommendation(&self, index: usize, score: f32, because: Explanation) -> Recommendation {
        Recommendation { item_id: self.catalog.vocab().id(index).unwrap_or_default().to_owned(), score, because }
    }
}

/// How far (in standard deviations of the scores) `similarTo` lifts items of the seed's category.
const SAME_CATEGORY_NUDGE: f32 = 0.5;

fn spread(scores: &[f32]) -> f32 {
    let finite = scores.iter().filter(|s| s.is_finite());
    let n = finite.clone().count().max(1) as f32;
    let mean = finite.clone().sum::<f32>() / n;
    (finite.map(|s| (s - mean).powi(2)).sum::<f32>() / n).sqrt()
}

fn pinned_text() -> Explanation {
    Explanation::Pinned { text: "featured by the shop".into() }
}
