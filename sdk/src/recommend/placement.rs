//! The placements a shop puts on a page, as the page requests them: `forYou`, `similarTo`,
//! `boughtTogether`, `popular`, `trending`, `recentlyViewed`, `buyAgain` and `rerank`. The
//! client answers them (`client::place`); experiments name them.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{DEFAULT_K, MAX_K};
use crate::error::{Error, Result};
use crate::json::{kind_of, quoted};

/// One placement request, as the page sends it (`{type: "similarTo", itemId, k}`). Read by
/// [`Placement::from_json`], which its `Deserialize` calls: derived, this tagged enum's
/// deserializer was the largest function of the shipped wasm (~37 KB).
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    ForYou {
        k: Option<usize>,
        exclude: Vec<String>,
    },
    SimilarTo {
        item_id: String,
        k: Option<usize>,
        exclude: Vec<String>,
    },
    BoughtTogether {
        item_ids: Vec<String>,
        k: Option<usize>,
        exclude: Vec<String>,
    },
    Popular {
        category: Option<String>,
        k: Option<usize>,
        exclude: Vec<String>,
    },
    Trending {
        category: Option<String>,
        k: Option<usize>,
        exclude: Vec<String>,
    },
    RecentlyViewed {
        k: Option<usize>,
        exclude: Vec<String>,
    },
    /// What the visitor is likely to buy again, from their own purchases (`repeat`).
    BuyAgain {
        k: Option<usize>,
        exclude: Vec<String>,
    },
    /// Personal reordering of the page's own list: a permutation of `itemIds`.
    Rerank {
        item_ids: Vec<String>,
        /// 0 keeps the shop's order, 1 is the model's order; default 0.5.
        blend: Option<f32>,
    },
}

pub const PLACEMENTS: [&str; 8] = ["forYou", "similarTo", "boughtTogether", "popular", "trending", "recentlyViewed", "buyAgain", "rerank"];

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Placement::from_json(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A request's fields; messages keep serde's `unknown field `x`` / `missing field `x``, which
/// the web layer turns into the error's `field`. Absent and `null` are the same.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn wrong(name: &str, v: &Value, expected: &str) -> String {
        format!("`{name}` must be {expected}, got {}", kind_of(v))
    }

    fn text(&self, name: &str) -> std::result::Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(Self::wrong(name, v, "a string")),
        }
    }

    fn required_text(&self, name: &str) -> std::result::Result<String, String> {
        self.text(name)?.ok_or_else(|| format!("missing field `{name}`"))
    }

    fn texts(&self, name: &str) -> std::result::Result<Option<Vec<String>>, String> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let list = v.as_array().ok_or_else(|| Self::wrong(name, v, "an array of strings"))?;
        list.iter()
            .enumerate()
            .map(|(i, s)| s.as_str().map(str::to_owned).ok_or_else(|| Self::wrong(&format!("{name}[{i}]"), s, "a string")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some)
    }

    fn exclude(&self) -> std::result::Result<Vec<String>, String> {
        Ok(self.texts("exclude")?.unwrap_or_default())
    }

    fn k(&self) -> std::result::Result<Option<usize>, String> {
        match self.get("k") {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().and_then(|k| usize::try_from(k).ok()).map(Some).ok_or_else(|| format!("`k` must be a whole number, got {n}"))
            }
            Some(v) => Err(Self::wrong("k", v, "a whole number")),
        }
    }
}

impl Placement {
    /// Reads and checks a request as the page sends it: `type` names the placement, and each
    /// takes only its own fields.
    pub fn from_json(value: &Value) -> std::result::Result<Placement, String> {
        let obj = value.as_object().ok_or_else(|| format!("a placement must be an object, got {}", kind_of(value)))?;
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(v) => return Err(Fields::wrong("type", v, "a string")),
            None => return Err(format!("missing field `type`: one of {}", quoted(&PLACEMENTS))),
        };
        let known: &[&str] = match ty {
            "forYou" | "recentlyViewed" | "buyAgain" => &["k", "exclude"],
            "similarTo" => &["itemId", "k", "exclude"],
            "boughtTogether" => &["itemIds", "k", "exclude"],
            "popular" | "trending" => &["category", "k", "exclude"],
            "rerank" => &["itemIds", "blend"],
            other => return Err(format!("unknown variant `{other}`, expected one of {}", quoted(&PLACEMENTS))),
        };
        if let Some(key) = obj.keys().find(|k| *k != "type" && !known.contains(&k.as_str())) {
            return Err(format!("unknown field `{key}`, expected one of {} for `{ty}`", quoted(known)));
        }
        let f = Fields(obj);
        let required_ids = |name: &str| f.texts(name)?.ok_or_else(|| format!("missing field `{name}`"));
        Ok(match ty {
            "forYou" => Placement::ForYou { k: f.k()?, exclude: f.exclude()? },
            "recentlyViewed" => Placement::RecentlyViewed { k: f.k()?, exclude: f.exclude()? },
            "buyAgain" => Placement::BuyAgain { k: f.k()?, exclude: f.exclude()? },
            "similarTo" => Placement::SimilarTo { item_id: f.required_text("itemId")?, k: f.k()?, exclude: f.exclude()? },
            "boughtTogether" => Placement::BoughtTogether { item_ids: required_ids("itemIds")?, k: f.k()?, exclude: f.exclude()? },
            "popular" => Placement::Popular { category: f.text("category")?, k: f.k()?, exclude: f.exclude()? },
            "trending" => Placement::Trending { category: f.text("category")?, k: f.k()?, exclude: f.exclude()? },
            _ => {
                let blend = match f.get("blend") {
                    None => None,
                    Some(Value::Number(n)) => n.as_f64().map(|b| b as f32),
                    Some(v) => return Err(Fields::wrong("blend", v, "a number")),
                };
                Placement::Rerank { item_ids: required_ids("itemIds")?, blend }
            }
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> std::result::Result<Placement, String> {
        let by_hand = Placement::from_json(&v);
        // The same through serde (as the web layer and the config read it).
        assert_eq!(serde_json::from_value::<Placement>(v).map_err(|e| e.to_string()), by_hand);
        by_hand
    }

    #[test]
    fn every_placement_reads_with_its_own_fields() {
        let ids = || vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(read(json!({"type": "forYou"})), Ok(Placement::ForYou { k: None, exclude: vec![] }));
        assert_eq!(read(json!({"type": "forYou", "k": 5, "exclude": ["a", "b"]})), Ok(Placement::ForYou { k: Some(5), exclude: ids() }));
        assert_eq!(read(json!({"type": "recentlyViewed", "k": null})), Ok(Placement::RecentlyViewed { k: None, exclude: vec![] }));
        assert_eq!(read(json!({"type": "buyAgain", "k": 3})), Ok(Placement::BuyAgain { k: Some(3), exclude: vec![] }));
        assert_eq!(
            read(json!({"type": "similarTo", "itemId": "x", "exclude": ["a", "b"]})),
            Ok(Placement::SimilarTo { item_id: "x".into(), k: None, exclude: ids() })
        );
        assert_eq!(
            read(json!({"type": "boughtTogether", "itemIds": ["a", "b"], "k": 2})),
            Ok(Placement::BoughtTogether { item_ids: ids(), k: Some(2), exclude: vec![] })
        );
        assert_eq!(
            read(json!({"type": "popular", "category": "c"})),
            Ok(Placement::Popular { category: Some("c".into()), k: None, exclude: vec![] })
        );
        assert_eq!(read(json!({"type": "trending"})), Ok(Placement::Trending { category: None, k: None, exclude: vec![] }));
        assert_eq!(
            read(json!({"type": "rerank", "itemIds": ["a", "b"], "blend": 0.25})),
            Ok(Placement::Rerank { item_ids: ids(), blend: Some(0.25) })
        );
    }

    #[test]
    fn a_wrong_request_says_which_field_and_why() {
        let err = |v: Value| read(v).expect_err("refused");
        assert!(err(json!({"type": "sideways"})).starts_with("unknown variant `sideways`, expected one of `forYou`"));
        assert!(err(json!({"k": 3})).starts_with("missing field `type`"));
        assert!(err(json!({"type": 3})).contains("`type` must be a string, got a number"));
        assert!(err(json!("forYou")).contains("must be an object, got a string"));
        // Each placement takes only its own fields.
        assert!(err(json!({"type": "forYou", "itemId": "x"}))
            .starts_with("unknown field `itemId`, expected one of `k`, `exclude` for `forYou`"));
        assert!(err(json!({"type": "rerank", "itemIds": [], "k": 2})).starts_with("unknown field `k`"));
        assert_eq!(err(json!({"type": "similarTo"})), "missing field `itemId`");
        assert_eq!(err(json!({"type": "boughtTogether"})), "missing field `itemIds`");
        assert!(err(json!({"type": "forYou", "k": 2.5})).contains("`k` must be a whole number, got 2.5"));
        assert!(err(json!({"type": "forYou", "k": -1})).contains("`k` must be a whole number"));
        assert!(err(json!({"type": "forYou", "k": "5"})).contains("got a string"));
        assert!(err(json!({"type": "forYou", "exclude": "a"})).contains("`exclude` must be an array of strings"));
        assert!(err(json!({"type": "boughtTogether", "itemIds": ["a", 7]})).contains("`itemIds[1]` must be a string, got a number"));
        assert!(err(json!({"type": "rerank", "itemIds": ["a"], "blend": "high"})).contains("`blend` must be a number"));
    }
}
