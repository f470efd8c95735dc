//! A newer bundle swapped in after init (what the browser does when a background revalidation
//! finds a new version): it replaces the model only when it verifies and loads; otherwise the
//! model in use stays, recommendations unchanged.
#![cfg(not(target_arch = "wasm32"))]

use std::rc::Rc;

use foresight::client::{Graphs, ModelStatus};
use foresight::contract::manifest::ModelKind;
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::{RecommendOptions, Source};
use foresight::{Client, Config};
use serde_json::json;

const BUNDLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/bundles");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{BUNDLES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn client(bundles: Vec<Vec<u8>>) -> Client<MemoryStorage, Rc<ManualClock>> {
    let config = Config {
        bundles: bundles.into_iter().map(serde_bytes::ByteBuf::from).collect(),
        public_key: Some(String::from_utf8(read("test-signing.pub")).expect("utf-8").trim().to_owned()),
        ..Config::default()
    };
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    Client::with_graphs(config, MemoryStorage::default(), clock, Graphs::builtin()).expect("client").0
}

/// The same three product views in every test.
fn viewed(client: &mut Client<MemoryStorage, Rc<ManualClock>>) {
    for item in ["sku-00003", "sku-00017", "sku-00042"] {
        client.track(&json!({"type": "product_view", "itemId": item})).expect("tracked");
    }
}

fn top(client: &mut Client<MemoryStorage, Rc<ManualClock>>) -> (Source, Vec<String>) {
    let recs = client.recommend(&RecommendOptions { k: Some(10), ..Default::default() }).expect("recommends");
    (recs.source, recs.items.into_iter().map(|r| r.item_id).collect())
}

/// The bundle with one byte of its model part flipped: the signature still covers the manifest,
/// whose part hash no longer matches.
fn tampered(mut bytes: Vec<u8>) -> Vec<u8> {
    let at = bytes.len() - 100;
    bytes[at] ^= 0x5a;
    bytes
}

#[test]
fn a_tampered_update_is_refused_and_the_model_in_use_keeps_answering() {
    let mut c = client(vec![read("session_gru.fsb")]);
    viewed(&mut c);
    let before = top(&mut c);
    assert_eq!(before.0, Source::Model);

    let err = c.replace_bundle(tampered(read("session_tower.fsb")), Graphs::builtin()).expect_err("a tampered bundle must be refused");
    assert!(err.code().starts_with("bundle_"), "{} {err}", err.code());
    let mut other_key = read("session_gru.fsb");
    other_key[20] ^= 1; // inside the manifest: the signature no longer verifies
    assert!(c.replace_bundle(other_key, Graphs::builtin()).is_err());
    assert!(c.replace_bundle(b"not a bundle".to_vec(), Graphs::builtin()).is_err());

    assert_eq!(*c.recommender_status(), ModelStatus::Ready);
    assert_eq!(top(&mut c), before, "a refused update changed the recommendations");
}

#[test]
fn a_valid_update_swaps_the_recommender_and_its_catalog_in_one_step() {
    let mut c = client(vec![read("session_gru.fsb")]);
    viewed(&mut c);
    let gru = top(&mut c);
    assert!(c.tower_items().is_none(), "the GRU bundle scores the catalog itself");
    // An idle-time list computed for the old model must not be handed out after the swap.
    c.precompute(&RecommendOptions { k: Some(10), ..Default::default() }).expect("precomputes");

    let kind = c.replace_bundle(read("session_tower.fsb"), Graphs::builtin()).expect("the tower bundle verifies and loads");
    assert_eq!(kind, ModelKind::Recommender);
    assert_eq!(*c.recommender_status(), ModelStatus::Ready);
    let tower = top(&mut c);
    assert_eq!(tower.0, Source::Model);
    assert_eq!(tower.1.len(), 10);
    // The fixture tower is the same GRU split at its hidden state: the answers agree, and the
    // item embeddings show it is the new model answering.
    assert!(c.tower_items().is_some(), "the tower's item embeddings were not swapped in");
    assert_eq!(tower.1[..5], gru.1[..5]);

    // The history is kept across the swap, and the new model reads it.
    assert_eq!(c.history().len(), 3);
    let mut fresh = client(vec![read("session_tower.fsb")]);
    viewed(&mut fresh);
    assert_eq!(top(&mut fresh), tower, "a swapped-in model must answer as if it had been loaded at init");
}

#[test]
fn an_intent_update_replaces_only_the_intent_slot_and_init_names_refused_bundles() {
    let mut c = client(vec![b"garbage".to_vec(), read("session_gru.fsb")]);
    assert_eq!(c.refused_bundles(), &[0]);
    assert!(matches!(c.intent().map_err(|e| e.code()), Err("no_model")), "no intent model yet");
    let kind = c.replace_bundle(read("intent_logreg.fsb"), Graphs::builtin()).expect("intent bundle");
    assert_eq!(kind, ModelKind::Intent);
    assert_eq!(*c.intent_status(), ModelStatus::Ready);
    let p = c.intent().expect("intent").probability;
    assert!((0.0..=1.0).contains(&p), "{p}");
    assert_eq!(*c.recommender_status(), ModelStatus::Ready);
}
