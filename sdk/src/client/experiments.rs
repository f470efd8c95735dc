//! Experiments on the device: each visitor's variant drawn once and kept (never sent), the
//! variant a placement serves, and its rules or popularity source.

use super::keys::Kept;
use super::Client;
use crate::experiment::VariantSource;
use crate::platform::{Clock, Randomness, Storage};

impl<S: Storage, C: Clock> Client<S, C> {
    /// Draws the visitor's variant of every experiment not yet assigned, and keeps it on the
    /// device (the browser passes `crypto.getRandomValues`).
    pub fn assign_experiments(&mut self, rng: &mut impl Randomness) {
        let mut changed = false;
        for (i, e) in self.experiments.iter().enumerate() {
            if self.assigned[i].is_none() {
                self.assigned[i] = Some(e.assign(rng));
                changed = true;
            }
        }
        if changed {
            // Built by insertion: collecting into a map sorts first, a sort instance of its own.
            let mut map = serde_json::Map::new();
            for (e, a) in self.experiments.iter().zip(&self.assigned) {
                if let Some(v) = a {
                    map.insert(e.name.clone(), e.variants[*v].name.clone().into());
                }
            }
            let text = serde_json::Value::Object(map).to_string();
            let _ = self.log.storage_mut().set(&self.keys.of(Kept::Variants), &text);
        }
    }

    /// Reads earlier assignments; a variant that no longer exists is drawn again.
    pub(super) fn load_assignments(&mut self) {
        let stored: std::collections::BTreeMap<String, String> =
            crate::platform::read_json(self.log.storage(), &self.keys.of(Kept::Variants)).unwrap_or_default();
        for (i, e) in self.experiments.iter().enumerate() {
            self.assigned[i] = stored.get(&e.name).and_then(|name| e.variants.iter().position(|v| &v.name == name));
        }
    }

    /// The (experiment, variant) the visitor sees on a placement.
    pub(crate) fn variant_of(&self, placement: &str) -> Option<(usize, usize)> {
        let e = self.experiments.iter().position(|e| e.placement == placement)?;
        Some((e, self.assigned[e]?))
    }

    /// The visitor's variants, `experiment → variant` (on the device only).
    pub fn variants(&self) -> Vec<(String, Option<String>)> {
        self.experiments.iter().zip(&self.assigned).map(|(e, a)| (e.name.clone(), a.map(|v| e.variants[v].name.clone()))).collect()
    }

    /// Runs `f` with the rules `placement` is under: none when the visitor's variant of it
    /// turns them off, else its own (`placements` in the config), else the shop's.
    pub(crate) fn with_placement_rules<T>(&mut self, placement: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let off = self.variant_of(placement).is_some_and(|(e, v)| !self.experiments[e].variants[v].rules);
        let own = if off { None } else { self.placement_rules.iter().position(|(name, _)| *name == placement) };
        let swap = |c: &mut Self| match own {
            Some(i) => std::mem::swap(&mut c.rules, &mut c.placement_rules[i].1),
            None if off => std::mem::swap(&mut c.rules, &mut c.plain_rules),
            None => {}
        };
        swap(self);
        let out = f(self);
        swap(self);
        out
    }

    /// Whether the visitor's variant of `placement` is the popularity control.
    pub(crate) fn variant_is_popularity(&self, placement: &str) -> Option<String> {
        let (e, v) = self.variant_of(placement)?;
        let exp = &self.experiments[e];
        (exp.variants[v].source == VariantSource::Popularity)
            .then(|| format!("experiment `{}`: variant `{}` answers from popularity", exp.name, exp.variants[v].name))
    }
}
