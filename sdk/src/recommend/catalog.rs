//! The catalog as the SDK reads it: the recommender's vocabulary, popularity and trend as
//! scores, and each item's attributes for the rules.

use crate::contract::manifest::CatalogItem;
use crate::error::{Error, Result};
use crate::features::Vocabulary;

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
