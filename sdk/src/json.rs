//! Reading the JSON a shop or a bundle gives (the config, the manifest, stored state) by hand,
//! from a parsed `Value`, instead of through serde's derived deserializers. A derived
//! deserializer is 2–16 KB of wasm per type (about 160 KB for the config's and the manifest's
//! types together), where a reader over `Fields` is a few hundred bytes, and the core's size is
//! what a shop weighs it by. The types keep their `Deserialize` (for `foresight-export` and any
//! serde user) through [`deserialize`], which calls the same reader, so there is one
//! definition of what each type accepts.
//!
//! Errors name the path to the value (`rules.pins[0].position`), which a derived deserializer
//! cannot.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// What was wrong with a value, and where (empty path: the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(Box<Inner>);

// Boxed: every reader returns `Result<T, JsonError>`, and a one-word error keeps those small.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    path: String,
    message: String,
}

pub type Result<T> = std::result::Result<T, JsonError>;

impl JsonError {
    pub fn new(message: impl Into<String>) -> Self {
        JsonError(Box::new(Inner { path: String::new(), message: message.into() }))
    }

    /// Where the value is, from the top (`collector.mechanisms.hcms`); empty for the top itself.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// The path as an error's `field`: `None` when the value itself is wrong.
    pub fn field(&self) -> Option<&str> {
        Some(self.path()).filter(|p| !p.is_empty())
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The same error seen from the object or array holding the value: `segment` is the field
    /// name, or `[i]` for an array element.
    // Out of line: every field read calls it on its error path, and inlined it would be copied
    // into each of them.
    #[cold]
    #[inline(never)]
    pub fn under(mut self, segment: &str) -> Self {
        let path = &mut self.0.path;
        *path = match (path.is_empty(), path.starts_with('[')) {
            (true, _) => segment.to_owned(),
            (false, true) => format!("{segment}{path}"),
            (false, false) => format!("{segment}.{path}"),
        };
        self
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.path.is_empty() {
            f.write_str(&self.0.message)
        } else {
            write!(f, "`{}`: {}", self.0.path, self.0.message)
        }
    }
}

impl std::error::Error for JsonError {}

/// What a JSON value is, for messages (`must be a string, got a number`).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `must be {expected}, got {what v is}`; numbers are shown, since their value is usually why.
#[cold]
#[inline(never)]
pub fn wrong(v: &Value, expected: &str) -> JsonError {
    match v {
        // `Value`'s Display writes through serde_json's float formatting, not core's.
        Value::Number(_) => JsonError::new(format!("must be {expected}, got {v}")),
        _ => JsonError::new(format!("must be {expected}, got {}", kind_of(v))),
    }
}

/// `` `a`, `b`, `c` ``
pub fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// A type read from a JSON value.
pub trait FromJson: Sized {
    fn from_json(v: &Value) -> Result<Self>;
}

/// Parses JSON text and reads a `T` from it.
pub fn from_text<T: FromJson>(text: &str) -> Result<T> {
    let v: Value = serde_json::from_str(text).map_err(|e| JsonError::new(e.to_string()))?;
    T::from_json(&v)
}

/// `Deserialize` for a type with a [`FromJson`] reader: the value is parsed as a `Value` and
/// read by hand, so serde users get what the SDK's readers accept, errors included.
pub fn deserialize<'de, D: serde::Deserializer<'de>, T: FromJson>(d: D) -> std::result::Result<T, D::Error> {
    let v = <Value as serde::Deserialize>::deserialize(d)?;
    T::from_json(&v).map_err(serde::de::Error::custom)
}

/// Implements `Deserialize` through the type's [`FromJson`] reader.
macro_rules! deserialize_with_reader {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                $crate::json::deserialize(d)
            }
        }
    )*};
}
pub(crate) use deserialize_with_reader;

/// Implements [`FromJson`] (and `Deserialize`, through it) for an enum of unit variants
/// spelled as strings.
macro_rules! unit_variants {
    ($t:ty { $($name:literal => $variant:expr),* $(,)? }) => {
        impl $crate::json::FromJson for $t {
            fn from_json(v: &serde_json::Value) -> $crate::json::Result<Self> {
                $crate::json::variant(v, &[$(($name, $variant)),*])
            }
        }
        $crate::json::deserialize_with_reader!($t);
    };
}
pub(crate) use unit_variants;

/// One of `variants`, by name.
pub fn variant<T: Copy>(v: &Value, variants: &[(&str, T)]) -> Result<T> {
    let name = v.as_str().ok_or_else(|| wrong(v, "a string"))?;
    match variants.iter().find(|(n, _)| *n == name) {
        Some((_, t)) => Ok(*t),
        None => {
            let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
            Err(JsonError::new(format!("unknown variant `{name}`, expected one of {}", quoted(&names))))
        }
    }
}

/// An object's fields, read by name; every key must be one the type knows.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The fields of `v`, which must be an object holding only keys in `known` (serde's
    /// `deny_unknown_fields`: a misspelt option is an error, not silently ignored).
    pub fn of(v: &'a Value, known: &[&str]) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| wrong(v, "an object"))?;
        if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(JsonError::new(format!("unknown field, expected one of {}", quoted(known))).under(key));
        }
        Ok(Fields { obj })
    }

    /// The fields of `v`, which must be an object; keys it does not read are ignored (state
    /// stored by an older or newer SDK).
    pub fn lenient(v: &'a Value) -> Result<Self> {
        v.as_object().map(|obj| Fields { obj }).ok_or_else(|| wrong(v, "an object"))
    }

    /// The field's value; `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// A field that must be present.
    pub fn req<T: FromJson>(&self, name: &str) -> Result<T> {
        T::from_json(self.present(name)?).map_err(|e| e.under(name))
    }

    fn present(&self, name: &str) -> Result<&'a Value> {
        self.obj.get(name).ok_or_else(|| JsonError::new("missing field").under(name))
    }

    /// A field that may be absent or `null`.
    pub fn opt<T: FromJson>(&self, name: &str) -> Result<Option<T>> {
        self.get(name).map(|v| T::from_json(v).map_err(|e| e.under(name))).transpose()
    }

    /// A field with a default when absent or `null`.
    pub fn or<T: FromJson>(&self, name: &str, default: T) -> Result<T> {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// A field whose default is its type's.
    pub fn or_default<T: FromJson + Default>(&self, name: &str) -> Result<T> {
        Ok(self.opt(name)?.unwrap_or_default())
    }

    /// A field read by `read` rather than by its type's reader (a check of its own, say).
    pub fn with<T>(&self, name: &str, read: impl FnOnce(&Value) -> Result<T>) -> Result<Option<T>> {
        self.get(name).map(|v| read(v).map_err(|e| e.under(name))).transpose()
    }
}

impl FromJson for Value {
    fn from_json(v: &Value) -> Result<Self> {
        Ok(v.clone())
    }
}

impl FromJson for String {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_str().map(str::to_owned).ok_or_else(|| wrong(v, "a string"))
    }
}

impl FromJson for bool {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_bool().ok_or_else(|| wrong(v, "a boolean"))
    }
}

impl FromJson for f64 {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_f64().ok_or_else(|| wrong(v, "a number"))
    }
}

/// Finite only: JSON has no infinity, so a number past f32's range would read as one, and
/// writing it back (a manifest, say) would give `null`, which no reader takes.
impl FromJson for f32 {
    fn from_json(v: &Value) -> Result<Self> {
        let x = f64::from_json(v)? as f32;
        if x.is_finite() {
            Ok(x)
        } else {
            Err(JsonError::new(format!("{v} is not a finite 32-bit float")))
        }
    }
}

/// A whole number from 0 to `max`.
fn unsigned(v: &Value, max: u64, expected: &str) -> Result<u64> {
    v.as_u64().filter(|n| *n <= max).ok_or_else(|| wrong(v, expected))
}

impl FromJson for u64 {
    fn from_json(v: &Value) -> Result<Self> {
        unsigned(v, u64::MAX, "a whole number ≥ 0")
    }
}

impl FromJson for usize {
    fn from_json(v: &Value) -> Result<Self> {
        // usize is 32 bits in wasm: a larger count is refused, never wrapped.
        Ok(unsigned(v, usize::MAX as u64, "a whole number ≥ 0 that fits usize")? as usize)
    }
}

impl FromJson for u32 {
    fn from_json(v: &Value) -> Result<Self> {
        Ok(unsigned(v, u32::MAX as u64, "a whole number from 0 to 4294967295")? as u32)
    }
}

impl FromJson for u8 {
    fn from_json(v: &Value) -> Result<Self> {
        Ok(unsigned(v, u8::MAX as u64, "a whole number from 0 to 255")? as u8)
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(v: &Value) -> Result<Self> {
        if v.is_null() {
            Ok(None)
        } else {
            T::from_json(v).map(Some)
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: &Value) -> Result<Self> {
        let list = v.as_array().ok_or_else(|| wrong(v, "an array"))?;
        list.iter().enumerate().map(|(i, x)| T::from_json(x).map_err(|e| e.under(&format!("[{i}]")))).collect()
    }
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(v: &Value) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| wrong(v, "an object"))?;
        // Inserted one by one: `collect` sorts the pairs first, which puts a sort per `T` in the
        // wasm, though a JSON object's keys already come in order.
        let mut map = BTreeMap::new();
        for (k, x) in obj {
            map.insert(k.clone(), T::from_json(x).map_err(|e| e.under(k))?);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    struct Pin {
        item_id: String,
        position: usize,
        score: Option<f32>,
    }

    impl FromJson for Pin {
        fn from_json(v: &Value) -> Result<Self> {
            let f = Fields::of(v, &["itemId", "position", "score"])?;
            Ok(Pin { item_id: f.req("itemId")?, position: f.or("position", 0)?, score: f.opt("score")? })
        }
    }

    fn err<T: FromJson + fmt::Debug>(v: Value) -> String {
        T::from_json(&v).expect_err("refused").to_string()
    }

    #[test]
    fn errors_name_the_path_to_the_value() {
        assert_eq!(
            err::<Vec<Pin>>(json!([{"itemId": "a"}, {"itemId": "b", "position": -1}])),
            "`[1].position`: must be a whole number ≥ 0 that fits usize, got -1"
        );
        assert_eq!(err::<BTreeMap<String, Pin>>(json!({"top": {"position": 2}})), "`top.itemId`: missing field");
        assert_eq!(
            err::<Pin>(json!({"itemId": "a", "postion": 2})),
            "`postion`: unknown field, expected one of `itemId`, `position`, `score`"
        );
        assert_eq!(err::<Pin>(json!(["a"])), "must be an object, got an array");
        assert_eq!(err::<Pin>(json!({"itemId": 3})), "`itemId`: must be a string, got 3");
    }

    #[test]
    fn null_is_absent_for_optional_fields_only() {
        let pin = Pin::from_json(&json!({"itemId": "a", "position": null, "score": null})).expect("reads");
        assert_eq!(pin, Pin { item_id: "a".into(), position: 0, score: None });
        assert_eq!(err::<Pin>(json!({"itemId": null})), "`itemId`: must be a string, got null");
    }

    #[test]
    fn numbers_are_refused_outside_their_type_not_wrapped_or_rounded() {
        assert_eq!(u32::from_json(&json!(4294967295u64)), Ok(u32::MAX));
        assert!(u32::from_json(&json!(4294967296u64)).is_err());
        assert!(usize::from_json(&json!(1.5)).is_err());
        assert!(u8::from_json(&json!(256)).is_err());
        assert_eq!(err::<f32>(json!(1e39)), "1e+39 is not a finite 32-bit float");
        assert_eq!(f32::from_json(&json!(0.25)), Ok(0.25));
    }

    #[test]
    fn unknown_variants_list_the_known_ones() {
        let read = |v: Value| variant(&v, &[("cpu", 0), ("gpu", 1)]);
        assert_eq!(read(json!("gpu")), Ok(1));
        assert_eq!(read(json!("tpu")).expect_err("refused").to_string(), "unknown variant `tpu`, expected one of `cpu`, `gpu`");
        assert_eq!(read(json!(1)).expect_err("refused").to_string(), "must be a string, got 1");
    }
}
