//! Capture: the events a storefront reports, one typed variant per kind, and their validation.
//!
//! Events arrive as loose JSON from the page. `Event::from_json` checks every field by hand so
//! that an error names the exact field and what is wrong with it (serde's messages do not).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Num;
use crate::error::{Error, ErrorKind, Result};
use crate::json::kind_of;

/// Largest accepted event, as JSON text. Events carry ids and a few numbers; anything bigger is
/// almost certainly a page mistakenly passing a DOM node or a whole product record.
pub const MAX_EVENT_BYTES: usize = 4096;
pub const MAX_ID_CHARS: usize = 128;
pub const MAX_QUERY_CHARS: usize = 256;
pub const MAX_PATH_CHARS: usize = 512;
pub const MAX_QUANTITY: u32 = 10_000;
pub const MAX_PRICE: f64 = 1e9;
pub const MAX_DWELL_SECONDS: f64 = 86_400.0;
pub const MAX_PURCHASE_LINES: usize = 200;

/// The event kinds, by the name used in `{"type": ...}`.
pub const EVENT_TYPES: [&str; 8] = ["page_view", "product_view", "search", "click", "add_to_cart", "remove_from_cart", "purchase", "dwell"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseLine {
    pub item_id: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// One thing the visitor did. Read with [`Event::from_json`], also as its `Deserialize`: a
/// derived deserializer for this tagged enum would be ~30 KB of the shipped wasm, and would
/// accept what `from_json` refuses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Event {
    PageView {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    ProductView {
        item_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price: Option<f64>,
    },
    Search {
        query: String,
    },
    Click {
        item_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placement: Option<String>,
    },
    AddToCart {
        item_id: String,
        quantity: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
    },
    RemoveFromCart {
        item_id: String,
        quantity: u32,
    },
    Purchase {
        items: Vec<PurchaseLine>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<f64>,
    },
    Dwell {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<String>,
        seconds: f64,
    },
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Event::from_json(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Event {
    /// Parses and validates an event given as JSON by the page.
    pub fn from_json(value: &Value) -> Result<Event> {
        let size = serde_json::to_string(value).map(|s| s.len()).unwrap_or(usize::MAX);
        if size > MAX_EVENT_BYTES {
            return Err(Error::event("event", format!("is {size} bytes as JSON; the limit is {MAX_EVENT_BYTES}")));
        }
        let obj = value.as_object().ok_or_else(|| Error::event("event", format!("must be an object, got {}", kind_of(value))))?;
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => return Err(Error::event("type", format!("must be a string, got {}", kind_of(other)))),
            None => return Err(Error::event("type", format!("is missing; use one of {}", EVENT_TYPES.join(", ")))),
        };
        let f = Fields { obj, ty };
        let event = match ty {
            "page_view" => {
                f.allow(&["path"])?;
                Event::PageView { path: f.opt_text("path", MAX_PATH_CHARS)? }
            }
            "product_view" => {
                f.allow(&["itemId", "category", "price"])?;
                Event::ProductView { item_id: f.id("itemId")?, category: f.opt_id("category")?, price: f.opt_price("price")? }
            }
            "search" => {
                f.allow(&["query"])?;
                let query = f.opt_text("query", MAX_QUERY_CHARS)?.unwrap_or_default();
                if query.trim().is_empty() {
                    return Err(Error::event("query", "must be a non-empty string"));
                }
                Event::Search { query }
            }
            "click" => {
                f.allow(&["itemId", "placement"])?;
                Event::Click { item_id: f.id("itemId")?, placement: f.opt_id("placement")? }
            }
            "add_to_cart" => {
                f.allow(&["itemId", "quantity", "price", "category"])?;
                Event::AddToCart {
                    item_id: f.id("itemId")?,
                    quantity: f.quantity("quantity")?,
                    price: f.opt_price("price")?,
                    category: f.opt_id("category")?,
                }
            }
            "remove_from_cart" => {
                f.allow(&["itemId", "quantity"])?;
                Event::RemoveFromCart { item_id: f.id("itemId")?, quantity: f.quantity("quantity")? }
            }
            "purchase" => {
                f.allow(&["items", "total"])?;
                Event::Purchase { items: f.purchase_lines()?, total: f.opt_price("total")? }
            }
            "dwell" => {
                f.allow(&["itemId", "seconds"])?;
                let seconds = f.opt_number("seconds")?.ok_or_else(|| Error::event("seconds", "is missing"))?;
                if !(0.0..=MAX_DWELL_SECONDS).contains(&seconds) {
                    return Err(Error::event("seconds", format!("must be between 0 and {}, got {}", Num(MAX_DWELL_SECONDS), Num(seconds))));
                }
                Event::Dwell { item_id: f.opt_id("itemId")?, seconds }
            }
            other => return Err(Error::event("type", format!("`{other}` is not an event type; use one of {}", EVENT_TYPES.join(", ")))),
        };
        Ok(event)
    }

    /// The `type` name of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::PageView { .. } => "page_view",
            Event::ProductView { .. } => "product_view",
            Event::Search { .. } => "search",
            Event::Click { .. } => "click",
            Event::AddToCart { .. } => "add_to_cart",
            Event::RemoveFromCart { .. } => "remove_from_cart",
            Event::Purchase { .. } => "purchase",
            Event::Dwell { .. } => "dwell",
        }
    }

    /// Items this event shows interest in, in the order a session recommender should see them.
    /// Clicks and dwell are left out: a click on a tile is followed by that product's view, and
    /// counting both would double the item in the sequence.
    pub fn interest_items(&self) -> Vec<&str> {
        match self {
            Event::ProductView { item_id, .. } | Event::AddToCart { item_id, .. } => vec![item_id],
            Event::Purchase { items, .. } => items.iter().map(|l| l.item_id.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Field accessors that produce errors naming the field.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    ty: &'a str,
}

impl Fields<'_> {
    fn allow(&self, known: &[&str]) -> Result<()> {
        for key in self.obj.keys() {
            if key != "type" && !known.contains(&key.as_str()) {
                let hint = if known.is_empty() {
                    format!("`{}` events take no other fields", self.ty)
                } else {
                    format!("`{}` events take {}", self.ty, known.join(", "))
                };
                return Err(Error::event(key.clone(), format!("is not a known field; {hint}")));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    fn opt_text(&self, name: &str, max: usize) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n > max {
                    return Err(Error::event(name, format!("is {n} characters; the limit is {max}")));
                }
                if s.chars().any(char::is_control) {
                    return Err(Error::event(name, "contains control characters"));
                }
                Ok(Some(s.clone()))
            }
            Some(other) => Err(Error::event(name, format!("must be a string, got {}", kind_of(other)))),
        }
    }

    fn opt_id(&self, name: &str) -> Result<Option<String>> {
        match self.opt_text(name, MAX_ID_CHARS)? {
            Some(s) if s.trim().is_empty() => Err(Error::event(name, "must not be empty")),
            other => Ok(other),
        }
    }

    fn id(&self, name: &str) -> Result<String> {
        self.opt_id(name)?.ok_or_else(|| Error::event(name, format!("is missing (required for `{}`)", self.ty)))
    }

    fn opt_number(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64().filter(|x| x.is_finite()).map(Some).ok_or_else(|| Error::event(name, "must be a finite number"))
            }
            Some(other) => Err(Error::event(name, format!("must be a number, got {}", kind_of(other)))),
        }
    }

    fn opt_price(&self, name: &str) -> Result<Option<f64>> {
        let price = self.opt_number(name)?;
        if let Some(p) = price {
            if p < 0.0 {
                return Err(Error::event(name, format!("must not be negative, got {}", Num(p))));
            }
            if p > MAX_PRICE {
                return Err(Error::event(name, format!("is implausibly large ({})", Num(p))));
            }
        }
        Ok(price)
    }

    fn quantity(&self, name: &str) -> Result<u32> {
        quantity_of(name, self.get(name))
    }

    fn purchase_lines(&self) -> Result<Vec<PurchaseLine>> {
        let items = match self.get("items") {
            Some(Value::Array(a)) => a,
            Some(other) => return Err(Error::event("items", format!("must be an array, got {}", kind_of(other)))),
            None => return Err(Error::event("items", "is missing (required for `purchase`)")),
        };
        if items.is_empty() || items.len() > MAX_PURCHASE_LINES {
            return Err(Error::event("items", format!("must hold 1 to {MAX_PURCHASE_LINES} lines, got {}", items.len())));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let obj = line
                    .as_object()
                    .ok_or_else(|| Error::event(format!("items[{i}]"), format!("must be an object, got {}", kind_of(line))))?;
                let f = Fields { obj, ty: "purchase line" };
                let prefixed = |e: Error| match e.kind() {
                    ErrorKind::InvalidEvent { field, problem } => Error::event(format!("items[{i}].{field}"), problem.clone()),
                    _ => e,
                };
                f.allow(&["itemId", "quantity", "price"]).map_err(prefixed)?;
                Ok(PurchaseLine {
                    item_id: f.id("itemId").map_err(prefixed)?,
                    quantity: f.quantity("quantity").map_err(prefixed)?,
                    price: f.opt_price("price").map_err(prefixed)?,
                })
            })
            .collect()
    }
}

fn quantity_of(name: &str, value: Option<&Value>) -> Result<u32> {
    match value {
        None => Ok(1),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(q) if (1..=u64::from(MAX_QUANTITY)).contains(&q) => Ok(q as u32),
            _ => Err(Error::event(name, format!("must be a whole number from 1 to {MAX_QUANTITY}, got {n}"))),
        },
        Some(other) => Err(Error::event(name, format!("must be a number, got {}", kind_of(other)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> (String, String) {
        match Event::from_json(&v) {
            Err(e) => match e.into_kind() {
                ErrorKind::InvalidEvent { field, problem } => (field, problem),
                other => panic!("expected a validation error, got {other:?}"),
            },
            Ok(event) => panic!("expected a validation error, got {event:?}"),
        }
    }

    #[test]
    fn parses_every_kind() {
        let cases = [
            json!({"type": "page_view", "path": "/"}),
            json!({"type": "product_view", "itemId": "a", "category": "c", "price": 9.5}),
            json!({"type": "search", "query": "red shoes"}),
            json!({"type": "click", "itemId": "a", "placement": "home"}),
            json!({"type": "add_to_cart", "itemId": "a", "quantity": 2, "price": 1}),
            json!({"type": "remove_from_cart", "itemId": "a"}),
            json!({"type": "purchase", "items": [{"itemId": "a", "quantity": 1, "price": 3}], "total": 3}),
            json!({"type": "dwell", "itemId": "a", "seconds": 12.5}),
        ];
        for (case, ty) in cases.iter().zip(EVENT_TYPES) {
            let e = Event::from_json(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(e.type_name(), ty);
            // What is stored is what the page sent, after defaults.
            let back: Event = serde_json::from_value(serde_json::to_value(&e).expect("serialize")).expect("roundtrip");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err(json!({"type": "product_view", "itemId": ""})).0, "itemId");
        assert_eq!(err(json!({"type": "product_view"})).0, "itemId");
        let (f, p) = err(json!({"type": "product_view", "itemId": "a", "price": -1}));
        assert_eq!(f, "price");
        assert!(p.contains("negative"), "{p}");
        let (f, p) = err(json!({"type": "teleport"}));
        assert_eq!(f, "type");
        assert!(p.contains("teleport") && p.contains("product_view"), "{p}");
        assert_eq!(err(json!({"itemId": "a"})).0, "type");
        assert_eq!(err(json!({"type": "product_view", "itemID": "a"})).0, "itemID");
        assert_eq!(err(json!({"type": "add_to_cart", "itemId": "a", "quantity": 0})).0, "quantity");
        assert_eq!(err(json!({"type": "add_to_cart", "itemId": "a", "quantity": 1.5})).0, "quantity");
        assert_eq!(err(json!({"type": "search", "query": "  "})).0, "query");
        assert_eq!(err(json!({"type": "dwell", "seconds": -3})).0, "seconds");
        assert_eq!(err(json!({"type": "purchase", "items": []})).0, "items");
        assert_eq!(err(json!({"type": "purchase", "items": [{"itemId": "a", "price": "x"}]})).0, "items[0].price");
        assert_eq!(err(json!("product_view")).0, "event");
        assert_eq!(err(json!({"type": "product_view", "itemId": "a\u{0}b"})).0, "itemId");
    }

    #[test]
    fn oversized_payload_is_refused() {
        let (f, p) = err(json!({"type": "search", "query": "x".repeat(MAX_EVENT_BYTES)}));
        assert_eq!(f, "event");
        assert!(p.contains("bytes"), "{p}");
        let (f, _) = err(json!({"type": "search", "query": "x".repeat(MAX_QUERY_CHARS + 1)}));
        assert_eq!(f, "query");
    }

    #[test]
    fn interest_items_skip_clicks_and_follow_purchase_lines() {
        let p = Event::from_json(&json!({"type": "purchase", "items": [{"itemId": "a"}, {"itemId": "b"}]})).unwrap();
        assert_eq!(p.interest_items(), vec!["a", "b"]);
        let c = Event::from_json(&json!({"type": "click", "itemId": "a"})).unwrap();
        assert!(c.interest_items().is_empty());
    }
}
