//! Graph models (NNEF/ONNX) need a runtime the core build leaves out: the client asks its
//! `GraphLoader` only for them, and without one a graph model fails with
//! `model_runtime_unavailable` while kernel bundles (gru, linear) load as usual.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::rc::Rc;

use foresight::client::{ModelStatus, RecommenderConfig};
use foresight::error::ModelError;
use foresight::infer::model::{GraphLoader, GraphRunner, GraphSource, Width};
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::recommend::{CatalogItem, RecommendOptions, Source};
use foresight::{Client, Config};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn catalog() -> Vec<CatalogItem> {
    let v: Value = serde_json::from_slice(&read("catalog.json")).expect("catalog JSON");
    serde_json::from_value(v["items"].clone()).expect("catalog")
}

/// A loader that records what it is asked for and refuses everything.
#[derive(Default)]
struct Recording {
    asked: RefCell<Vec<String>>,
}

impl GraphLoader for Recording {
    fn recommender(&self, source: &GraphSource, width: Width) -> Result<Box<dyn GraphRunner>, ModelError> {
        self.asked.borrow_mut().push(format!("recommender {:?} {width:?}", source.format));
        Err(ModelError::Prepare { model: "recommender", detail: "recording only".into() })
    }

    fn intent(&self, source: &GraphSource, n_features: usize) -> Result<Box<dyn GraphRunner>, ModelError> {
        self.asked.borrow_mut().push(format!("intent {:?} {n_features}", source.format));
        Err(ModelError::Prepare { model: "intent", detail: "recording only".into() })
    }
}

fn bundles(names: &[&str]) -> Config {
    Config {
        bundles: names.iter().map(|n| serde_bytes::ByteBuf::from(read(&format!("bundles/{n}")))).collect(),
        public_key: Some(String::from_utf8(read("bundles/test-signing.pub")).expect("utf-8").trim().to_owned()),
        ..Config::default()
    }
}

#[test]
fn kernel_bundles_load_without_asking_for_a_graph_runtime() {
    let loader = Recording::default();
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (mut client, warnings) = Client::with_graphs(
        bundles(&["session_gru.fsb", "intent_logreg.fsb"]),
        MemoryStorage::default(),
        clock,
        foresight::client::Graphs::Loader(&loader),
    )
    .expect("client");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(*client.recommender_status(), ModelStatus::Ready);
    assert_eq!(*client.intent_status(), ModelStatus::Ready);
    assert!(loader.asked.borrow().is_empty(), "asked for {:?}", loader.asked.borrow());
    for item in ["sku-00003", "sku-00017"] {
        client.track(&json!({"type": "product_view", "itemId": item})).expect("tracked");
    }
    let recs = client.recommend(&RecommendOptions { k: Some(5), ..Default::default() }).expect("recommends");
    assert_eq!(recs.source, Source::Model);
    let p = client.intent().expect("intent").probability;
    assert!((0.0..=1.0).contains(&p), "{p}");
}

#[test]
fn a_graph_bundle_asks_the_loader_with_its_format_and_width() {
    let loader = Recording::default();
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let (client, warnings) =
        Client::with_graphs(bundles(&["session_tower.fsb"]), MemoryStorage::default(), clock, foresight::client::Graphs::Loader(&loader))
            .expect("client");
    let asked = loader.asked.borrow();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].starts_with("recommender Nnef Embedding("), "{asked:?}");
    assert!(matches!(client.recommender_status(), ModelStatus::Failed { code: "model_prepare", .. }), "{:?}", client.recommender_status());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn without_a_graph_runtime_an_onnx_model_fails_clearly_and_popularity_serves() {
    let clock = Rc::new(ManualClock::new(1_700_000_000_000.0));
    let config = Config { catalog: catalog(), recommender: Some(RecommenderConfig::new(read("session_gru.onnx"))), ..Config::default() };
    let (mut client, warnings) = Client::with_graphs(
        config,
        MemoryStorage::default(),
        clock,
        foresight::client::Graphs::Unavailable("the tract module could not be loaded (blocked)"),
    )
    .expect("an unavailable runtime is not a config error");
    match client.recommender_status() {
        ModelStatus::Failed { code, error } => {
            assert_eq!(*code, "model_runtime_unavailable");
            assert!(error.contains("ONNX graph") && error.contains("blocked"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(warnings.iter().any(|w| w.contains("popularity")), "{warnings:?}");
    client.track(&json!({"type": "product_view", "itemId": "sku-00003"})).expect("tracked");
    let recs = client.recommend(&RecommendOptions { k: Some(5), ..Default::default() }).expect("recommends");
    assert_eq!(recs.source, Source::Popularity);
    assert_eq!(recs.items.len(), 5);
}
