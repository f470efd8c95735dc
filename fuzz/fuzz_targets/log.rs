//! Stored state → recovery: what a client finds in the visitor's storage (a log written by an
//! older SDK, a truncated write, another script's junk) when it opens. The first byte picks
//! which of the client's keys holds the rest; the client then opens, takes an event, answers
//! and prepares a report, which reads and rewrites every kept key.
#![no_main]

use foresight::client::{Client, Config};
use foresight::platform::{ManualClock, MemoryStorage, SeededRandomness, Storage};
use foresight::privacy::budget::OptOutSignals;
use foresight::recommend::CatalogItem;
use foresight::store::{EventLog, StoreConfig};
use foresight::sync::SyncConfig;
use foresight::RecommendOptions;
use foresight_fuzz::NOW_MS;
use libfuzzer_sys::fuzz_target;

const BASE: &str = "foresight.events";
/// The suffixes of the client's kept keys (`client::keys`).
const SUFFIXES: [&str; 7] = ["", ".state", ".shown", ".variants", ".consent", ".outbox", ".outbox.budget"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let key = format!("{BASE}{}", SUFFIXES[which as usize % SUFFIXES.len()]);
    let mut storage = MemoryStorage::default();
    // Consent granted, unless the input is the consent: reports are then prepared and queued,
    // which reads the outbox and the budget.
    if storage.set(&format!("{BASE}.consent"), "\"granted\"").is_err() || storage.set(&key, &text).is_err() {
        return;
    }

    // The log alone, as `EventLog::open` recovers it.
    let (mut log, _) = EventLog::open(storage.clone(), BASE, StoreConfig::default(), NOW_MS);
    if let Ok(event) = foresight::capture::Event::from_json(&serde_json::json!({"type": "product_view", "itemId": "a"})) {
        log.append(event, NOW_MS + 1.0);
    }

    // A whole client over the same storage.
    let catalog = ["a", "b", "c"].iter().map(|id| CatalogItem { id: (*id).into(), popularity: 1.0, ..Default::default() }).collect();
    let collector = SyncConfig {
        url: "https://collect.example/v1/reports".into(),
        site: "shop".into(),
        key: "shop-key-1".into(),
        epsilon_per_day: 1.0,
        mechanisms: Default::default(),
        honour_opt_out_signals: true,
        max_queued: 30,
    };
    let config = Config { catalog, collector: Some(collector), ..Config::default() };
    let Ok((mut client, _)) = Client::new(config, storage, ManualClock::new(NOW_MS)) else {
        return;
    };
    let _ = client.track(&serde_json::json!({"type": "product_view", "itemId": "b"}));
    let _ = client.recommend(&RecommendOptions::default());
    let _ = client.intent_features();
    let _ = client.prepare_report(OptOutSignals::default(), &mut SeededRandomness(3));
    let _ = client.due_reports();
    let _ = client.privacy_status(OptOutSignals::default());
    let _ = client.forget();
});
