//! `buyAgain`: the visitor's own purchases, scored on the device (`recommend::repeat`), with
//! popularity after them; what the other placements leave out (bought items) is its point.
#![cfg(not(target_arch = "wasm32"))]

use std::rc::Rc;

use foresight::client::Graphs;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::placement::Placement;
use foresight::recommend::{Explanation, Source};
use foresight::{Client, Config};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn client() -> (Client<MemoryStorage, Rc<ManualClock>>, Rc<ManualClock>) {
    let key = String::from_utf8(read("bundles/test-signing.pub")).expect("utf-8");
    let mut config: Config = serde_json::from_value(json!({"publicKey": key.trim()})).expect("config");
    config.bundles = vec![serde_bytes::ByteBuf::from(read("bundles/session_gru.fsb"))];
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (c, _) = Client::with_graphs(config, MemoryStorage::default(), clock.clone(), Graphs::builtin()).expect("client");
    (c, clock)
}

fn buy_again(k: usize, exclude: &[&str]) -> Placement {
    Placement::BuyAgain { k: Some(k), exclude: exclude.iter().map(|s| s.to_string()).collect() }
}

fn ids(r: &foresight::recommend::Recommendations) -> Vec<&str> {
    r.items.iter().map(|i| i.item_id.as_str()).collect()
}

#[test]
fn nothing_bought_yet_is_popular_and_says_why() {
    let (mut c, _) = client();
    let r = c.place(&buy_again(10, &[])).expect("a list");
    assert_eq!(r.placement, "buyAgain");
    assert_eq!(r.items.len(), 10);
    assert_eq!(r.source, Source::Popularity);
    assert_eq!(r.fallback_reason.as_deref(), Some("nothing bought yet"));
}

#[test]
fn the_most_rebought_item_leads_the_cart_and_exclusions_hold_and_popular_fills() {
    let (mut c, clock) = client();
    let orders: [&[&str]; 4] = [&["sku-00042", "sku-00003"], &["sku-00042"], &["sku-00101"], &["sku-00042", "sku-00017"]];
    for order in orders {
        clock.advance_ms(86_400_000.0);
        let lines: Vec<_> = order.iter().map(|id| json!({"itemId": id})).collect();
        c.track(&json!({"type": "purchase", "items": lines})).expect("tracked");
    }
    // In the cart now: being bought already, so not suggested again.
    c.track(&json!({"type": "add_to_cart", "itemId": "sku-00017", "quantity": 1})).expect("tracked");

    let r = c.place(&buy_again(10, &["sku-00101"])).expect("a list");
    assert_eq!(r.source, Source::History);
    assert!(r.fallback_reason.is_none());
    let got = ids(&r);
    // sku-00042 (popularity 34 of the catalog's top 89,748) leads: bought in three of four
    // orders, the last one included. The catalog's most popular item comes next (the default
    // blend gives popularity the other half), then sku-00003, bought once, long ago, after
    // the items popular enough to outweigh it.
    assert_eq!(got[0], "sku-00042", "{got:?}");
    assert_eq!(got[1], "sku-03214", "{got:?}");
    let old = got.iter().position(|&i| i == "sku-00003").expect("the other bought item is listed");
    assert!(old > 1, "{got:?}");
    assert!(!got.contains(&"sku-00017"), "in the cart: {got:?}");
    assert!(!got.contains(&"sku-00101"), "excluded by the caller: {got:?}");
    assert_eq!(got.len(), 10, "popularity fills the list");
    for (n, item) in r.items.iter().enumerate() {
        let bought = n == 0 || n == old;
        assert_eq!(matches!(item.because, Explanation::BoughtBefore { .. }), bought, "{item:?}");
        assert_eq!(matches!(item.because, Explanation::PopularNow { .. }), !bought, "{item:?}");
    }

    // forYou leaves bought items out (excludePurchased); buyAgain is where they go.
    let for_you = c.place(&Placement::ForYou { k: Some(20), exclude: vec![] }).expect("a list");
    assert!(!ids(&for_you).contains(&"sku-00042"));
}
