//! Idle-time precomputation: after a `track`, the browser layer asks for the next `forYou`
//! answer while the page is idle, so `recommend` usually returns at once. A precomputed list is
//! keyed by everything it depends on and counts as shown only when it is handed out.

use super::Client;
use crate::error::Result;
use crate::platform::{Clock, Storage};
use crate::recommend::placement::Placement;
use crate::recommend::{RecommendOptions, Recommendations};

#[derive(Debug, Default)]
pub(crate) struct Precompute {
    /// The config's `precompute`.
    pub(crate) enabled: bool,
    /// A `forYou` list computed ahead, with the key of what it was computed for.
    pub(crate) ready: Option<(String, Recommendations)>,
    /// `recommend` calls answered from `ready`.
    pub(crate) hits: u64,
    /// While precomputing: nothing is remembered as shown.
    pub(crate) quiet: bool,
}

impl<S: Storage, C: Clock> Client<S, C> {
    /// The precomputed `forYou` list for these options, if it is still the right one.
    pub(crate) fn take_precomputed(&mut self, options: &RecommendOptions) -> Option<Recommendations> {
        let key = self.precompute_key(options);
        if let Some((cached_key, mut recs)) = self.precompute.ready.take() {
            if cached_key == key {
                // Computed in idle time for exactly this history and these options: only now
                // is it shown, so only now does it get an id and count as shown.
                let now = self.clock.now_ms();
                self.lists += 1;
                recs.id = format!("{:x}-{}", now as u64, self.lists);
                let variant = self.variant_of(recs.placement).map(|p| p.1);
                self.remember_shown(&recs, variant, now);
                self.precompute.hits += 1;
                return Some(recs);
            }
        }
        None
    }

    /// Computes the `forYou` list `recommend(options)` would return now and keeps it for the
    /// next call with the same options and history (the browser layer calls this when the page
    /// is idle after a `track`). Nothing counts as shown until `recommend` hands it out.
    pub fn precompute(&mut self, options: &RecommendOptions) -> Result<()> {
        let key = self.precompute_key(options);
        if self.precompute.ready.as_ref().is_some_and(|(k, _)| *k == key) {
            return Ok(());
        }
        self.precompute.quiet = true;
        let recs = self.place_computed(&Placement::ForYou { k: options.k, exclude: options.exclude.clone() });
        self.precompute.quiet = false;
        self.precompute.ready = Some((key, recs?));
        Ok(())
    }

    /// Whether the config asks for idle-time precomputation.
    pub fn precompute_enabled(&self) -> bool {
        self.precompute.enabled
    }

    /// How many `recommend` calls were answered from a precomputed list.
    pub fn precompute_hits(&self) -> u64 {
        self.precompute.hits
    }

    /// What a precomputed list depends on: the options, the history (its length and newest
    /// event), consent and the variant; anything else changing drops it.
    pub(crate) fn precompute_key(&self, options: &RecommendOptions) -> String {
        // The time as its bits: formatting a float would link `core::fmt`'s float printer.
        let last = self.log.events().back().map_or(0, |e| e.at.to_bits());
        format!(
            "{:?}|{:?}|{}|{last}|{:?}|{:?}",
            options.k,
            options.exclude,
            self.log.events().len(),
            self.consent,
            self.variant_of("forYou")
        )
    }
}
