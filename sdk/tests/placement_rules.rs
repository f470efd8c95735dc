//! Rules per placement (`placements: {similarTo: {rules: {…}}}`): each field given replaces
//! the shop-wide one for that placement only, so a carousel gets its own caps and filters
//! without reshaping "Recommended for you".
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::rc::Rc;

use foresight::client::Graphs;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::placement::Placement;
use foresight::recommend::CatalogItem;
use foresight::{Client, Config};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A refused config: its code, field and message.
type Refusal = (&'static str, Option<String>, String);

/// A client on the fixture GRU bundle with `extra` merged into the config JSON.
fn client(extra: Value) -> Result<Client<MemoryStorage, Rc<ManualClock>>, Refusal> {
    let mut config = json!({"publicKey": String::from_utf8(read("bundles/test-signing.pub")).expect("utf-8").trim()});
    for (k, v) in extra.as_object().expect("an object") {
        config[k] = v.clone();
    }
    let mut config: Config = serde_json::from_value(config).map_err(|e| ("invalid_option", None, e.to_string()))?;
    config.bundles = vec![serde_bytes::ByteBuf::from(read("bundles/session_gru.fsb"))];
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (mut c, _) = Client::with_graphs(config, MemoryStorage::default(), clock, Graphs::builtin())
        .map_err(|e| (e.code(), e.field().map(str::to_owned), e.to_string()))?;
    for item in ["sku-00003", "sku-00017", "sku-00042", "sku-00101"] {
        c.track(&json!({"type": "product_view", "itemId": item})).expect("tracked");
    }
    Ok(c)
}

fn categories() -> HashMap<String, String> {
    let v: Value = serde_json::from_slice(&read("catalog.json")).expect("catalog JSON");
    let items: Vec<CatalogItem> = serde_json::from_value(v["items"].clone()).expect("catalog");
    items.into_iter().map(|i| (i.id, i.category.unwrap_or_default())).collect()
}

/// The most items of one category in a list.
fn most_of_one(c: &mut Client<MemoryStorage, Rc<ManualClock>>, placement: &Placement) -> (usize, Vec<String>) {
    let cats = categories();
    let items: Vec<String> = c.place(placement).expect("a list").items.into_iter().map(|r| r.item_id).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in &items {
        *counts.entry(cats[i].as_str()).or_default() += 1;
    }
    (counts.values().copied().max().unwrap_or(0), items.iter().map(|i| cats[i].clone()).collect())
}

fn for_you() -> Placement {
    Placement::ForYou { k: Some(20), exclude: Vec::new() }
}

fn similar() -> Placement {
    Placement::SimilarTo { item_id: "sku-00042".into(), k: Some(20), exclude: Vec::new() }
}

#[test]
fn a_placement_cap_shapes_that_placement_only() {
    let mut plain = client(json!({})).expect("client");
    let (uncapped_for_you, _) = most_of_one(&mut plain, &for_you());
    let (uncapped_similar, _) = most_of_one(&mut plain, &similar());
    assert!(uncapped_for_you > 1 && uncapped_similar > 1, "the fixture lists repeat categories ({uncapped_for_you}, {uncapped_similar})");

    let mut c = client(json!({"placements": {"similarTo": {"rules": {"maxPerCategory": 1}}}})).expect("client");
    assert_eq!(most_of_one(&mut c, &similar()).0, 1, "similarTo is capped");
    assert_eq!(most_of_one(&mut c, &for_you()).0, uncapped_for_you, "forYou is not");

    // The other way round: a shop-wide cap lifted for one placement with `null`.
    let mut c =
        client(json!({"rules": {"maxPerCategory": 1}, "placements": {"forYou": {"rules": {"maxPerCategory": null}}}})).expect("client");
    assert_eq!(most_of_one(&mut c, &for_you()).0, uncapped_for_you, "forYou's own rules lift the cap");
    assert_eq!(most_of_one(&mut c, &similar()).0, 1, "the shop-wide cap holds elsewhere");
}

#[test]
fn fields_not_given_keep_the_shop_wide_rules() {
    // A filter for similarTo; the shop-wide cap still applies to it.
    let mut c = client(json!({
        "rules": {"maxPerCategory": 2},
        "placements": {"similarTo": {"rules": {"filter": {"categories": ["cat-14", "cat-11"]}}}}
    }))
    .expect("client");
    let (most, cats) = most_of_one(&mut c, &similar());
    assert!(cats.iter().all(|c| c == "cat-14" || c == "cat-11"), "{cats:?}");
    assert!(most <= 2, "{cats:?}");
    let (_, cats) = most_of_one(&mut c, &for_you());
    assert!(cats.iter().any(|c| c != "cat-14" && c != "cat-11"), "forYou is not filtered: {cats:?}");
}

#[test]
fn unknown_placements_and_contradictions_name_the_field() {
    let err = |extra: Value| match client(extra) {
        Err(refusal) => refusal,
        Ok(_) => panic!("accepted"),
    };
    let (code, field, text) = err(json!({"placements": {"carousel": {"rules": {"maxPerCategory": 1}}}}));
    assert_eq!((code, field.as_deref()), ("invalid_option", Some("placements.carousel")));
    assert!(text.contains("similarTo"), "{text}");
    let (_, field, _) = err(json!({"placements": {"similarTo": {"rules": {"filter": {"minPrice": 9, "maxPrice": 1}}}}}));
    assert_eq!(field.as_deref(), Some("placements.similarTo.rules"));
    let (_, _, text) = err(json!({"placements": {"similarTo": {"rules": {"maxPerCategorie": 1}}}}));
    assert!(text.contains("maxPerCategorie"), "{text}");
}
