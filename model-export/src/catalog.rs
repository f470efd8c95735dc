//! Reading the shop's item catalog (JSON or CSV) in model-index order.

use std::path::Path;

use anyhow::{bail, Context, Result};
use foresight::recommend::CatalogItem;

pub fn read(path: &Path) -> Result<Vec<CatalogItem>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the catalog {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) || text.trim_start().starts_with(['[', '{']);
    let items = if is_json { from_json(&text) } else { from_csv(&text) }.with_context(|| format!("catalog {}", path.display()))?;
    if items.is_empty() {
        bail!("catalog {} lists no items", path.display());
    }
    // The SDK's own checks (unique ids, non-negative popularity) with its messages.
    foresight::recommend::Catalog::new(items.clone()).map_err(|e| anyhow::anyhow!("catalog {}: {e}", path.display()))?;
    Ok(items)
}

fn from_json(text: &str) -> Result<Vec<CatalogItem>> {
    let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
    let items = match value {
        serde_json::Value::Array(_) => value,
        serde_json::Value::Object(ref o) if o.contains_key("items") => o["items"].clone(),
        _ => bail!("expected a list of items or {{\"items\": [...]}}"),
    };
    let list = items.as_array().context("`items` must be a list")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        out.push(
            serde_json::from_value(item.clone()).with_context(|| format!("item {i}: expected {{id, category?, price?, popularity?}}"))?,
        );
    }
    Ok(out)
}

fn from_csv(text: &str) -> Result<Vec<CatalogItem>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let id = column("id").or_else(|| column("item_id")).context("the CSV header must name an `id` (or `item_id`) column")?;
    let (category, price, popularity) = (column("category"), column("price"), column("popularity"));
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("line {line}"))?;
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).filter(|s| !s.is_empty());
        let number = |c: Option<usize>, name: &str| -> Result<Option<f64>> {
            field(c).map(|s| s.parse::<f64>().with_context(|| format!("line {line}, column `{name}`: `{s}` is not a number"))).transpose()
        };
        out.push(CatalogItem {
            id: field(Some(id)).with_context(|| format!("line {line}: empty id"))?.to_owned(),
            category: field(category).map(str::to_owned),
            price: number(price, "price")?,
            popularity: number(popularity, "popularity")?.unwrap_or(0.0),
            trend: number(column("trend"), "trend")?,
            in_stock: match field(column("in_stock")) {
                None => None,
                Some(v) => Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => bail!("line {line}, column `in_stock`: `{other}` is not true/false"),
                }),
            },
            ..Default::default()
        });
    }
    Ok(out)
}
