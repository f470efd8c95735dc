//! The placements a shop puts on a page, as the page requests them: `forYou`, `similarTo`,
//! `boughtTogether`, `popular`, `trending`, `recentlyViewed`, `buyAgain` and `rerank`. The
//! client answers them (`client::place`); experiments name them.

use serde::Deserialize;

use super::{DEFAULT_K, MAX_K};
use crate::error::{Error, Result};

/// One placement request, as the page sends it (`{type: "similarTo", itemId, k}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Placement {
    ForYou {
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    SimilarTo {
        item_id: String,
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    BoughtTogether {
        item_ids: Vec<String>,
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    Popular {
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    Trending {
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    RecentlyViewed {
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    /// What the visitor is likely to buy again, from their own purchases (`repeat`).
    BuyAgain {
        #[serde(default)]
        k: Option<usize>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    /// Personal reordering of the page's own list: a permutation of `itemIds`.
    Rerank {
        item_ids: Vec<String>,
        /// 0 keeps the shop's order, 1 is the model's order; default 0.5.
        #[serde(default)]
        blend: Option<f32>,
    },
}

pub const PLACEMENTS: [&str; 8] = ["forYou", "similarTo", "boughtTogether", "popular", "trending", "recentlyViewed", "buyAgain", "rerank"];

impl Placement {
    pub fn name(&self) -> &'static str {
        match self {
            Placement::ForYou { .. } => "forYou",
            Placement::SimilarTo { .. } => "similarTo",
            Placement::BoughtTogether { .. } => "boughtTogether",
            Placement::Popular { .. } => "popular",
            Placement::Trending { .. } => "trending",
            Placement::RecentlyViewed { .. } => "recentlyViewed",
            Placement::BuyAgain { .. } => "buyAgain",
            Placement::Rerank { .. } => "rerank",
        }
    }

    pub(crate) fn k(&self) -> Result<usize> {
        let k = match self {
            Placement::ForYou { k, .. }
            | Placement::SimilarTo { k, .. }
            | Placement::BoughtTogether { k, .. }
            | Placement::Popular { k, .. }
            | Placement::Trending { k, .. }
            | Placement::RecentlyViewed { k, .. }
            | Placement::BuyAgain { k, .. } => k.unwrap_or(DEFAULT_K),
            Placement::Rerank { item_ids, .. } => return Ok(item_ids.len()),
        };
        match k {
            1..=MAX_K => Ok(k),
            _ => Err(Error::option("k", format!("must be from 1 to {MAX_K}, got {k}"))),
        }
    }

    pub(crate) fn exclude(&self) -> &[String] {
        match self {
            Placement::ForYou { exclude, .. }
            | Placement::SimilarTo { exclude, .. }
            | Placement::BoughtTogether { exclude, .. }
            | Placement::Popular { exclude, .. }
            | Placement::Trending { exclude, .. }
            | Placement::RecentlyViewed { exclude, .. }
            | Placement::BuyAgain { exclude, .. } => exclude,
            Placement::Rerank { .. } => &[],
        }
    }
}
