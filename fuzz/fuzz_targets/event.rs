//! Event JSON → validation, as `track` does it, then into a client's log and the features and
//! recommendations computed from it.
#![no_main]

use foresight::capture::Event;
use foresight::client::{Client, Config};
use foresight::features::Cart;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::CatalogItem;
use foresight::RecommendOptions;
use foresight_fuzz::NOW_MS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(event) = Event::from_json(&value) else {
        return;
    };
    let _ = event.interest_items();
    // A validated event survives its own storage format.
    let text = serde_json::to_string(&event).expect("an event serializes");
    serde_json::from_str::<Event>(&text).expect("a stored event parses");
    let _ = Cart::from_events([&event]).value();

    let catalog = ["a", "b", "c"].iter().map(|id| CatalogItem { id: (*id).into(), popularity: 1.0, ..Default::default() }).collect();
    let config = Config { catalog, ..Config::default() };
    let Ok((mut client, _)) = Client::new(config, MemoryStorage::default(), ManualClock::new(NOW_MS)) else {
        return;
    };
    for _ in 0..3 {
        let _ = client.track(&value);
        client.clock().advance_ms(60_000.0);
    }
    let _ = client.recommend(&RecommendOptions::default());
    let _ = client.intent_features();
});
