//! Merchandising rules: what the shop declares once and every placement obeys — filters,
//! pinned slots, boosts and burials, exclusions, diversity. Checked against the catalog at
//! `init`: rules that contradict each other (or name what does not exist) are an error there,
//! with every problem listed, never silently ignored.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::error::Num;
use crate::error::{Error, Result};
use crate::infer::topk;
use crate::json::{self, Fields, FromJson};
use crate::recommend::{Catalog, CatalogItem};

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub filter: Filter,
    /// Items placed at a fixed position of every list they are eligible for.
    pub pins: Vec<Pin>,
    /// Score multipliers by category or attribute: above 1 boosts, below 1 buries.
    pub boosts: Vec<Boost>,
    pub exclude_cart: bool,
    pub exclude_purchased: bool,
    /// Never show again what was already recommended today.
    pub exclude_recently_shown: bool,
    /// At most this many items of one category in a list.
    pub max_per_category: Option<usize>,
    /// MMR trade-off in [0, 1]: 1 is relevance only, lower values trade relevance for
    /// variety of categories.
    pub diversity: Option<f32>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            filter: Filter::default(),
            pins: Vec::new(),
            boosts: Vec::new(),
            exclude_cart: true,
            exclude_purchased: true,
            exclude_recently_shown: false,
            max_per_category: None,
            diversity: None,
        }
    }
}

/// One placement's rules over the shop's (`placements: {similarTo: {rules: {…}}}`): each field
/// given replaces the shop-wide one; `null` clears `maxPerCategory` / `diversity`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesPatch {
    pub filter: Option<Filter>,
    pub pins: Option<Vec<Pin>>,
    pub boosts: Option<Vec<Boost>>,
    pub exclude_cart: Option<bool>,
    pub exclude_purchased: Option<bool>,
    pub exclude_recently_shown: Option<bool>,
    pub max_per_category: Option<Option<usize>>,
    pub diversity: Option<Option<f32>>,
}

/// A field that is present, even as `null`: `Fields` reads `null` as absent, but here `null`
/// clears the shop-wide value, where absent keeps it.
fn given<T: FromJson>(v: &Value, name: &str) -> json::Result<Option<Option<T>>> {
    v.get(name).map(|x| Option::<T>::from_json(x).map_err(|e| e.under(name))).transpose()
}

impl RulesPatch {
    /// `base` with this patch's fields in place of its own.
    pub fn over(&self, base: &Rules) -> Rules {
        let p = self.clone();
        Rules {
            filter: p.filter.unwrap_or_else(|| base.filter.clone()),
            pins: p.pins.unwrap_or_else(|| base.pins.clone()),
            boosts: p.boosts.unwrap_or_else(|| base.boosts.clone()),
            exclude_cart: p.exclude_cart.unwrap_or(base.exclude_cart),
            exclude_purchased: p.exclude_purchased.unwrap_or(base.exclude_purchased),
            exclude_recently_shown: p.exclude_recently_shown.unwrap_or(base.exclude_recently_shown),
            max_per_category: p.max_per_category.unwrap_or(base.max_per_category),
            diversity: p.diversity.unwrap_or(base.diversity),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Leave out items marked `inStock: false`.
    pub in_stock_only: bool,
    /// Only these categories (empty: all).
    pub categories: Vec<String>,
    pub exclude_categories: Vec<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Attribute → allowed values.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Items never recommended.
    pub exclude_items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub item_id: String,
    /// 1-based position in the list.
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Boost {
    pub category: Option<String>,
    /// `{"brand": "Acme"}`: items whose attribute has this value.
    pub attribute: Option<BTreeMap<String, String>>,
    pub factor: f64,
}

/// The fields of `Rules`, which a placement's `RulesPatch` may each replace.
const RULE_FIELDS: &[&str] =
    &["filter", "pins", "boosts", "excludeCart", "excludePurchased", "excludeRecentlyShown", "maxPerCategory", "diversity"];

impl FromJson for Rules {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, RULE_FIELDS)?;
        // Absent fields keep the shop-wide defaults, which are not all their types' own
        // (`excludeCart` and `excludePurchased` are on).
        let d = Rules::default();
        Ok(Rules {
            filter: f.or("filter", d.filter)?,
            pins: f.or("pins", d.pins)?,
            boosts: f.or("boosts", d.boosts)?,
            exclude_cart: f.or("excludeCart", d.exclude_cart)?,
            exclude_purchased: f.or("excludePurchased", d.exclude_purchased)?,
            exclude_recently_shown: f.or("excludeRecentlyShown", d.exclude_recently_shown)?,
            max_per_category: f.opt("maxPerCategory")?.or(d.max_per_category),
            diversity: f.opt("diversity")?.or(d.diversity),
        })
    }
}
json::deserialize_with_reader!(Rules);

impl FromJson for RulesPatch {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, RULE_FIELDS)?;
        Ok(RulesPatch {
            filter: f.opt("filter")?,
            pins: f.opt("pins")?,
            boosts: f.opt("boosts")?,
            exclude_cart: f.opt("excludeCart")?,
            exclude_purchased: f.opt("excludePurchased")?,
            exclude_recently_shown: f.opt("excludeRecentlyShown")?,
            max_per_category: given(v, "maxPerCategory")?,
            diversity: given(v, "diversity")?,
        })
    }
}
json::deserialize_with_reader!(RulesPatch);

impl FromJson for Filter {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["inStockOnly", "categories", "excludeCategories", "minPrice", "maxPrice", "attributes", "excludeItems"])?;
        Ok(Filter {
            in_stock_only: f.or_default("inStockOnly")?,
            categories: f.or_default("categories")?,
            exclude_categories: f.or_default("excludeCategories")?,
            min_price: f.opt("minPrice")?,
            max_price: f.opt("maxPrice")?,
            attributes: f.or_default("attributes")?,
            exclude_items: f.or_default("excludeItems")?,
        })
    }
}
json::deserialize_with_reader!(Filter);

impl FromJson for Pin {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["itemId", "position"])?;
        Ok(Pin { item_id: f.req("itemId")?, position: f.req("position")? })
    }
}
json::deserialize_with_reader!(Pin);

impl FromJson for Boost {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["category", "attribute", "factor"])?;
        Ok(Boost { category: f.opt("category")?, attribute: f.opt("attribute")?, factor: f.req("factor")? })
    }
}
json::deserialize_with_reader!(Boost);

impl Boost {
    fn applies(&self, item: &CatalogItem) -> bool {
        self.category.as_ref().is_none_or(|c| item.category.as_ref() == Some(c))
            && self.attribute.as_ref().is_none_or(|a| a.iter().all(|(k, v)| item.attributes.get(k) == Some(v)))
    }
}

impl Filter {
    pub fn allows(&self, item: &CatalogItem) -> bool {
        if self.in_stock_only && item.in_stock == Some(false) {
            return false;
        }
        let category = item.category.as_deref();
        if !self.categories.is_empty() && !category.is_some_and(|c| self.categories.iter().any(|x| x == c)) {
            return false;
        }
        if category.is_some_and(|c| self.exclude_categories.iter().any(|x| x == c)) {
            return false;
        }
        // An item without a price cannot be shown to be in a price range.
        if self.min_price.is_some() || self.max_price.is_some() {
            let Some(p) = item.price else { return false };
            if self.min_price.is_some_and(|m| p < m) || self.max_price.is_some_and(|m| p > m) {
                return false;
            }
        }
        for (key, allowed) in &self.attributes {
            if !item.attributes.get(key).is_some_and(|v| allowed.contains(v)) {
                return false;
            }
        }
        !self.exclude_items.contains(&item.id)
    }
}

/// Rules checked against one catalog, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    pub rules: Rules,
    /// Catalog indices the filter leaves out.
    filtered: Vec<bool>,
    /// Additive score offset per catalog index (log of the product of the boost factors).
    boost: Vec<f32>,
    /// (catalog index, 0-based position), by position.
    pins: Vec<(usize, usize)>,
}

impl CompiledRules {
    /// Checks the rules against the catalog; every contradiction is listed in one error.
    pub fn new(rules: Rules, catalog: &Catalog) -> Result<Self> {
        let mut problems = Vec::new();
        let f = &rules.filter;
        if let (Some(lo), Some(hi)) = (f.min_price, f.max_price) {
            if lo > hi {
                problems.push(format!("filter.minPrice {} is above filter.maxPrice {}: no item could pass", Num(lo), Num(hi)));
            }
        }
        for (name, v) in [("minPrice", f.min_price), ("maxPrice", f.max_price)] {
            if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                problems.push(format!("filter.{name} must be a non-negative number"));
            }
        }
        for c in &f.categories {
            if f.exclude_categories.contains(c) {
                problems.push(format!("category `{c}` is both required (filter.categories) and excluded (filter.excludeCategories)"));
            }
        }
        let known: HashSet<&str> = (0..catalog.len()).filter_map(|i| catalog.item(i)).filter_map(|i| i.category.as_deref()).collect();
        for c in f.categories.iter().chain(&f.exclude_categories).chain(rules.boosts.iter().filter_map(|b| b.category.as_ref())) {
            if !catalog.is_empty() && !known.contains(c.as_str()) {
                problems.push(format!("category `{c}` is not in the catalog"));
            }
        }
        let mut boost = vec![0f32; catalog.len()];
        for (i, b) in rules.boosts.iter().enumerate() {
            if !(b.factor.is_finite() && b.factor > 0.0) {
                problems
                    .push(format!("boosts[{i}].factor must be a positive number (below 1 buries, above 1 boosts), got {}", Num(b.factor)));
                continue;
            }
            if b.category.is_none() && b.attribute.is_none() {
                problems.push(format!("boosts[{i}] names neither a category nor an attribute"));
                continue;
            }
            if let Some(c) = &b.category {
                if f.exclude_categories.contains(c) || (!f.categories.is_empty() && !f.categories.contains(c)) {
                    problems.push(format!("boosts[{i}] changes category `{c}`, which the filter leaves out"));
                }
            }
            for (j, slot) in boost.iter_mut().enumerate() {
                if catalog.item(j).is_some_and(|item| b.applies(item)) {
                    *slot += b.factor.ln() as f32;
                }
            }
        }
        // A boost and a burial of the same thing cancel out: almost certainly a mistake.
        let mut directions: HashMap<String, (bool, bool)> = HashMap::new();
        for b in rules.boosts.iter().filter(|b| b.factor.is_finite() && b.factor > 0.0 && b.factor != 1.0) {
            let key = format!("{:?}{:?}", b.category, b.attribute);
            let e = directions.entry(key).or_default();
            if b.factor > 1.0 {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
        if directions.values().any(|&(up, down)| up && down) {
            problems.push("the same category or attribute is both boosted and buried".into());
        }
        if rules.max_per_category == Some(0) {
            problems.push("maxPerCategory 0 would leave every list empty; leave it out for no limit".into());
        }
        if let Some(d) = rules.diversity {
            if !(0.0..=1.0).contains(&d) {
                problems.push(format!("diversity must be in [0, 1] (1 = relevance only), got {}", Num(d)));
            }
        }
        let filtered: Vec<bool> = (0..catalog.len()).map(|i| catalog.item(i).is_some_and(|item| !f.allows(item))).collect();
        if !catalog.is_empty() && filtered.iter().all(|&x| x) {
            problems.push("the filter leaves out every catalog item".into());
        }
        let mut pins = Vec::new();
        let mut positions = HashMap::new();
        for (i, p) in rules.pins.iter().enumerate() {
            if p.position == 0 {
                problems.push(format!("pins[{i}].position is 1-based: 0 is not a position"));
                continue;
            }
            if let Some(other) = positions.insert(p.position, &p.item_id) {
                problems.push(format!("`{}` and `{other}` are both pinned to position {}", p.item_id, p.position));
            }
            match catalog.vocab().index_of(&p.item_id) {
                None => problems.push(format!("pinned item `{}` is not in the catalog", p.item_id)),
                Some(index) if filtered[index] => problems.push(format!("pinned item `{}` is left out by the filter", p.item_id)),
                Some(index) => {
                    if pins.iter().any(|&(j, _)| j == index) {
                        problems.push(format!("`{}` is pinned twice", p.item_id));
                    }
                    pins.push((index, p.position - 1));
                }
            }
        }
        pins.sort_by_key(|&(_, pos)| pos);
        if !problems.is_empty() {
            return Err(Error::option("rules", problems.join("; ")));
        }
        Ok(CompiledRules { rules, filtered, boost, pins })
    }

    /// Whether the filter leaves the item out.
    pub fn filtered(&self, index: usize) -> bool {
        self.filtered.get(index).copied().unwrap_or(false)
    }

    /// Picks `k` items from scored candidates (catalog index, score; any order) under the
    /// rules: masked items skipped, boosts applied (in units of the candidates' score spread,
    /// so a factor means the same for logits and for counts), per-category caps or MMR
    /// diversity, then pins at their positions. Returns (index, score, pinned), best first.
    pub fn select(&self, catalog: &Catalog, candidates: &[(usize, f32)], k: usize, mask: &[bool]) -> Vec<(usize, f32, bool)> {
        self.select_with(catalog, candidates, k, mask, true)
    }

    /// `select`, with or without the pins (the visitor's own history list has none).
    pub fn select_with(
        &self,
        catalog: &Catalog,
        candidates: &[(usize, f32)],
        k: usize,
        mask: &[bool],
        with_pins: bool,
    ) -> Vec<(usize, f32, bool)> {
        let no_pins = Vec::new();
        let pins = if with_pins { &self.pins } else { &no_pins };
        let blocked = |i: usize| self.filtered(i) || mask.get(i).copied().unwrap_or(false);
        let mut pool: Vec<(usize, f32)> = candidates.iter().copied().filter(|&(i, s)| !s.is_nan() && !blocked(i)).collect();
        if pool.is_empty() && pins.is_empty() {
            return Vec::new();
        }
        let spread = std_dev(pool.iter().map(|p| p.1)).max(1e-6);
        for p in &mut pool {
            p.1 += self.boost.get(p.0).copied().unwrap_or(0.0) * spread;
        }
        let pinned: Vec<usize> = pins.iter().filter(|&&(i, pos)| pos < k && !mask.get(i).copied().unwrap_or(false)).map(|p| p.0).collect();
        let free = k.saturating_sub(pinned.len());
        // Only the head needs an order: what MMR looks at, or, for the greedy pass, a margin
        // for caps and pins; the rest is sorted only if the greedy pass runs out.
        let needed =
            if self.rules.diversity.is_some_and(|d| d < 1.0) { free.saturating_mul(20).max(200) } else { (free + pinned.len()) * 4 + 16 };
        let sorted_to = needed.min(pool.len());
        topk::sort_head_best_first(&mut pool, sorted_to);
        let category = |i: usize| catalog.item(i).and_then(|it| it.category.as_deref());
        let mut picked: Vec<(usize, f32)> = Vec::with_capacity(free);
        match self.rules.diversity.filter(|&d| d < 1.0) {
            Some(lambda) => {
                // MMR over the head of the ranking: relevance rescaled to [0, 1], similarity 1
                // between items of one category.
                let head = &pool[..pool.len().min(free.saturating_mul(20).max(200))];
                let (hi, lo) = (head.first().map_or(0.0, |p| p.1), head.last().map_or(0.0, |p| p.1));
                let rel = |s: f32| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
                let mut used = vec![false; head.len()];
                while picked.len() < free {
                    let best = head
                        .iter()
                        .enumerate()
                        .filter(|(j, p)| !used[*j] && !pinned.contains(&p.0) && self.under_cap(&picked, p.0, &category))
                        .map(|(j, p)| {
                            let similar = picked.iter().any(|q| category(q.0).is_some() && category(q.0) == category(p.0));
                            (j, lambda * rel(p.1) - (1.0 - lambda) * f32::from(u8::from(similar)))
                        })
                        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
                    let Some((j, _)) = best else { break };
                    used[j] = true;
                    picked.push(head[j]);
                }
            }
            None => {
                let greedy = |pool: &[(usize, f32)], picked: &mut Vec<(usize, f32)>| {
                    for &p in pool {
                        if picked.len() == free {
                            break;
                        }
                        if !pinned.contains(&p.0) && self.under_cap(picked, p.0, &category) {
                            picked.push(p);
                        }
                    }
                };
                greedy(&pool[..sorted_to], &mut picked);
                if picked.len() < free && sorted_to < pool.len() {
                    topk::sort_best_first(&mut pool[sorted_to..]);
                    greedy(&pool[sorted_to..], &mut picked);
                }
            }
        }
        let mut out: Vec<(usize, f32, bool)> = picked.into_iter().map(|(i, s)| (i, s, false)).collect();
        for &(i, pos) in pins {
            if pos < k && !mask.get(i).copied().unwrap_or(false) {
                let at = pos.min(out.len());
                let score = out.get(at).or(out.last()).map_or(0.0, |p| p.1);
                out.insert(at, (i, score, true));
            }
        }
        out.truncate(k);
        out
    }

    fn under_cap<'a>(&self, picked: &[(usize, f32)], index: usize, category: &impl Fn(usize) -> Option<&'a str>) -> bool {
        match (self.rules.max_per_category, category(index)) {
            (Some(cap), Some(c)) => picked.iter().filter(|p| category(p.0) == Some(c)).count() < cap,
            _ => true,
        }
    }
}

fn std_dev(values: impl Iterator<Item = f32> + Clone) -> f32 {
    let n = values.clone().count();
    if n < 2 {
        return 0.0;
    }
    let mean = values.clone().map(f64::from).sum::<f64>() / n as f64;
    let var = values.map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    var.sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let items = (0..40)
            .map(|i| CatalogItem {
                id: format!("i{i}"),
                category: Some(format!("c{}", i % 4)),
                price: Some(f64::from(i)),
                popularity: f64::from(40 - i),
                in_stock: Some(i % 10 != 3),
                attributes: [("brand".to_owned(), if i % 2 == 0 { "acme" } else { "other" }.to_owned())].into(),
                ..Default::default()
            })
            .collect();
        Catalog::new(items).expect("catalog")
    }

    fn rules(json: serde_json::Value) -> Result<CompiledRules> {
        CompiledRules::new(serde_json::from_value(json).expect("rules JSON"), &catalog())
    }

    fn scored() -> Vec<(usize, f32)> {
        (0..40).map(|i| (i, 100.0 - i as f32)).collect()
    }

    #[test]
    fn contradictions_are_all_reported_at_init() {
        let err = rules(serde_json::json!({
            "filter": {"minPrice": 30, "maxPrice": 10, "categories": ["c1"], "excludeCategories": ["c1", "nope"]},
            "pins": [{"itemId": "i1", "position": 1}, {"itemId": "i5", "position": 1}, {"itemId": "ghost", "position": 2}],
            "boosts": [{"category": "c2", "factor": 2.0}, {"category": "c2", "factor": 0.5}, {"factor": 0}],
            "maxPerCategory": 0,
            "diversity": 3
        }))
        .expect_err("contradictory");
        let text = err.to_string();
        for expected in [
            "minPrice 30 is above filter.maxPrice 10",
            "category `c1` is both required",
            "category `nope` is not in the catalog",
            "both pinned to position 1",
            "pinned item `ghost` is not in the catalog",
            "boosts[0] changes category `c2`, which the filter leaves out",
            "both boosted and buried",
            "boosts[2].factor must be a positive number",
            "maxPerCategory 0",
            "diversity must be in [0, 1]",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in: {text}");
        }
        assert_eq!(err.code(), "invalid_option");
        let err = rules(serde_json::json!({"filter": {"excludeItems": ["i7"]}, "pins": [{"itemId": "i7", "position": 2}]}))
            .expect_err("pin filtered");
        assert!(err.to_string().contains("pinned item `i7` is left out by the filter"));
    }

    #[test]
    fn filters_caps_boosts_and_pins_hold() {
        let c = catalog();
        let r = rules(serde_json::json!({
            "filter": {"inStockOnly": true, "minPrice": 2, "maxPrice": 30, "attributes": {"brand": ["acme"]}},
            "maxPerCategory": 2,
            "pins": [{"itemId": "i20", "position": 3}]
        }))
        .expect("valid");
        let picks = r.select(&c, &scored(), 6, &[false; 40]);
        // Only even items in categories c0 and c2 pass the filter: two per category plus the
        // pin is all the rules allow, so the list is shorter than asked.
        assert_eq!(picks.len(), 5);
        assert_eq!(picks[2], (20, picks[2].1, true), "pinned at position 3");
        for &(i, _, _) in &picks {
            let item = c.item(i).expect("item");
            assert!(item.in_stock != Some(false) && (2.0..=30.0).contains(&item.price.expect("price")));
            assert_eq!(item.attributes["brand"], "acme");
        }
        let mut per = HashMap::new();
        for &(i, _, pinned) in &picks {
            if !pinned {
                *per.entry(c.item(i).expect("item").category.clone()).or_insert(0) += 1;
            }
        }
        assert!(per.values().all(|&n| n <= 2), "{per:?}");

        // A burial pushes a category down, a boost pulls another up.
        let r = rules(serde_json::json!({"boosts": [{"category": "c0", "factor": 0.01}, {"attribute": {"brand": "other"}, "factor": 50}]}))
            .expect("valid");
        let picks = r.select(&c, &scored(), 10, &[false; 40]);
        assert!(picks.iter().all(|&(i, _, _)| i % 4 != 0), "c0 buried out of the top 10");
        assert!(picks.iter().take(5).all(|&(i, _, _)| i % 2 == 1), "brand `other` boosted to the top");
        // The mask (cart, purchases) wins over pins.
        let r = rules(serde_json::json!({"pins": [{"itemId": "i9", "position": 1}]})).expect("valid");
        let mut mask = vec![false; 40];
        mask[9] = true;
        assert!(r.select(&c, &scored(), 5, &mask).iter().all(|p| p.0 != 9));
    }

    #[test]
    fn absent_fields_take_the_shop_defaults_and_misspelt_ones_are_refused() {
        let r = Rules::from_json(&serde_json::json!({"filter": {"inStockOnly": true}, "maxPerCategory": null})).expect("reads");
        assert_eq!(r, Rules { filter: Filter { in_stock_only: true, ..Filter::default() }, ..Rules::default() });
        assert!(r.exclude_cart && r.exclude_purchased, "on unless the shop turns them off");
        let err = Rules::from_json(&serde_json::json!({"pins": [{"itemId": "a", "postion": 1}]})).expect_err("misspelt");
        assert_eq!(err.path(), "pins[0].postion");
        assert_eq!(err.to_string(), "`pins[0].postion`: unknown field, expected one of `itemId`, `position`");
        let err = Rules::from_json(&serde_json::json!({"boosts": [{"category": "c0"}]})).expect_err("no factor");
        assert_eq!(err.to_string(), "`boosts[0].factor`: missing field");
        // Through serde too, for `foresight-export` and other serde users.
        let err = serde_json::from_value::<Rules>(serde_json::json!({"filter": {"minPrice": "1"}})).expect_err("a string");
        assert_eq!(err.to_string(), "`filter.minPrice`: must be a number, got a string");
    }

    #[test]
    fn a_patch_tells_null_from_absent() {
        let base = Rules { max_per_category: Some(2), diversity: Some(0.5), ..Rules::default() };
        let patch = RulesPatch::from_json(&serde_json::json!({"maxPerCategory": null, "excludeCart": false})).expect("reads");
        assert_eq!(patch.max_per_category, Some(None));
        assert_eq!(patch.diversity, None);
        let r = patch.over(&base);
        assert_eq!((r.max_per_category, r.diversity, r.exclude_cart), (None, Some(0.5), false));
        let err = RulesPatch::from_json(&serde_json::json!({"diversity": "high"})).expect_err("a string");
        assert_eq!(err.path(), "diversity");
        assert!(RulesPatch::from_json(&serde_json::json!({"exclude": []})).is_err());
    }

    #[test]
    fn diversity_spreads_categories() {
        let c = catalog();
        // Scores that favour category c0 heavily.
        let scored: Vec<(usize, f32)> = (0..40).map(|i| (i, if i % 4 == 0 { 100.0 - i as f32 * 0.01 } else { 50.0 - i as f32 })).collect();
        let plain = rules(serde_json::json!({})).expect("valid").select(&c, &scored, 4, &[false; 40]);
        assert!(plain.iter().all(|&(i, _, _)| i % 4 == 0));
        let diverse = rules(serde_json::json!({"diversity": 0.3})).expect("valid").select(&c, &scored, 4, &[false; 40]);
        let cats: HashSet<usize> = diverse.iter().map(|&(i, _, _)| i % 4).collect();
        assert_eq!(cats.len(), 4, "{diverse:?}");
        assert_eq!(diverse[0].0, 0, "the most relevant item still leads");
    }
}
