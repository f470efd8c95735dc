//! The JS-facing API in headless Chromium: real models through tract in wasm, real
//! localStorage, real DOM events.
#![cfg(target_arch = "wasm32")]

use foresight::infer::model::{IntentIo, IntentModel};
use foresight::web::WebForesight;
use js_sys::{Reflect, Uint8Array};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const GRU: &[u8] = include_bytes!("../../tests/fixtures/session_gru.onnx");
const INTENT: &[u8] = include_bytes!("../../tests/fixtures/intent_logreg.onnx");
const CATALOG: &str = include_str!("../../tests/fixtures/catalog.json");
const GRU_REF: &str = include_str!("../../tests/fixtures/session_gru.reference.json");
const INTENT_REF: &str = include_str!("../../tests/fixtures/intent_logreg.reference.json");
const GRU_BUNDLE: &[u8] = include_bytes!("../../tests/fixtures/bundles/session_gru.fsb");
const INTENT_BUNDLE: &[u8] = include_bytes!("../../tests/fixtures/bundles/intent_logreg.fsb");
const TEST_PUBLIC_KEY: &str = include_str!("../../tests/fixtures/bundles/test-signing.pub");

/// A URL the page can fetch, serving these bytes.
fn blob_url(bytes: &[u8]) -> String {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).expect("blob");
    web_sys::Url::create_object_url_with_blob(&blob).expect("object URL")
}

fn js(v: &Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).expect("valid JSON")
}

fn rust(v: &JsValue) -> Value {
    let text: String = js_sys::JSON::stringify(v).expect("stringify").into();
    serde_json::from_str(&text).expect("JSON")
}

fn local_storage() -> web_sys::Storage {
    web_sys::window().expect("window").local_storage().expect("allowed").expect("present")
}

/// Removes everything the SDK keeps for `key`: the log, consent, the outbox and the ε budget.
fn clear_visitor(key: &str) {
    for suffix in ["", ".consent", ".outbox", ".outbox.budget", ".shown"] {
        local_storage().remove_item(&format!("{key}{suffix}")).expect("clean");
    }
}

/// A config with both fixture models, the catalog, and a storage key of its own.
fn config(key: &str, extra: Value) -> JsValue {
    let catalog: Value = serde_json::from_str(CATALOG).expect("catalog");
    let mut cfg = json!({
        "storageKey": key,
        "catalog": catalog["items"],
        "recommender": {"maxSeqLen": 50},
        "intent": {},
    });
    for (k, v) in extra.as_object().expect("object") {
        cfg[k] = v.clone();
    }
    let cfg = js(&cfg);
    let set_model = |field: &str, bytes: &[u8]| {
        if let Ok(obj) = Reflect::get(&cfg, &field.into()) {
            if obj.is_object() {
                Reflect::set(&obj, &"model".into(), &Uint8Array::from(bytes)).expect("set");
            }
        }
    };
    set_model("recommender", GRU);
    set_model("intent", INTENT);
    cfg
}

async fn init(key: &str) -> WebForesight {
    WebForesight::init(config(key, json!({}))).await.map_err(|e| rust(&e)).expect("init")
}

/// The recommender failed with `code`, and recommendations still come, from popularity.
fn assert_popularity_fallback(fs: &WebForesight, code: &str) {
    let status = rust(&fs.status().expect("status"));
    assert_eq!(status["recommender"]["state"], "failed", "{status}");
    assert_eq!(status["recommender"]["code"], code, "{status}");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00001"}))).expect("track");
    let recs = rust(&fs.recommend(JsValue::UNDEFINED).expect("recommend"));
    assert_eq!(recs["source"], "popularity");
    assert_eq!(recs["items"].as_array().expect("items").len(), 10);
    fs.forget().expect("forget");
}

#[track_caller]
fn error_of(result: Result<impl Sized, JsValue>) -> (String, String) {
    let err = result.err().expect("an error");
    let code = Reflect::get(&err, &"code".into()).expect("code").as_string().expect("string code");
    let message = err.dyn_ref::<js_sys::Error>().expect("an Error").message().into();
    (code, message)
}

/// The `field` property of a thrown `ForesightError` (absent for errors that name no field).
#[track_caller]
fn field_of(result: Result<impl Sized, JsValue>) -> Option<String> {
    let err = result.err().expect("an error");
    Reflect::get(&err, &"field".into()).expect("readable").as_string()
}

#[wasm_bindgen_test]
async fn recommendations_match_onnxruntime_through_the_js_api() {
    let reference: Value = serde_json::from_str(GRU_REF).expect("reference");
    let fs = init("fs-test-parity").await;
    let status = rust(&fs.status().expect("status"));
    assert_eq!(status["recommender"]["state"], "ready", "{status}");
    let mut checked = 0;
    for case in reference["cases"].as_array().expect("cases") {
        let ids: Vec<&str> = case["item_ids"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id")).collect();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            continue; // back-to-back repeats are collapsed by design; the native suite covers them
        }
        fs.forget().expect("forget");
        for id in &ids {
            fs.track(js(&json!({"type": "product_view", "itemId": id}))).expect("track");
        }
        let recs = rust(&fs.recommend(js(&json!({"k": 20}))).expect("recommend"));
        assert_eq!(recs["source"], "model");
        let got: Vec<&Value> = recs["items"].as_array().expect("items").iter().collect();
        let want = case["top20"].as_array().expect("top20");
        assert_eq!(got.len(), 20);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["itemId"], w["id"], "{}", case["name"]);
            let delta = (g["score"].as_f64().expect("score") - w["score"].as_f64().expect("score")).abs();
            assert!(delta <= 1e-4, "{}: |Δ| = {delta}", case["name"]);
            assert_eq!(g["because"]["kind"], "recent_event");
        }
        checked += 1;
    }
    assert!(checked >= 4);
    fs.forget().expect("forget");
}

#[wasm_bindgen_test]
fn intent_model_matches_onnxruntime_in_wasm() {
    let reference: Value = serde_json::from_str(INTENT_REF).expect("reference");
    let n = foresight::features::INTENT_FEATURES.len();
    let mut model = IntentModel::load(INTENT, &IntentIo::default(), n).expect("loads in wasm");
    for case in reference["cases"].as_array().expect("cases") {
        let features: Vec<f32> = serde_json::from_value(case["features"].clone()).expect("features");
        let p = model.probability(&features).expect("runs");
        let want = case["probability"].as_f64().expect("p") as f32;
        assert!((p - want).abs() <= 1e-4, "{}: {p} vs {want}", case["name"]);
    }
}

#[wasm_bindgen_test]
async fn intent_through_the_api_rises_with_a_cart() {
    let fs = init("fs-test-intent").await;
    fs.forget().expect("forget");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00001", "price": 20.0, "category": "cat-01"}))).expect("track");
    let browsing = rust(&fs.intent().expect("intent"));
    for _ in 0..3 {
        fs.track(js(&json!({"type": "add_to_cart", "itemId": "sku-00002", "price": 25.0}))).expect("track");
    }
    let carting = rust(&fs.intent().expect("intent"));
    let p0 = browsing["probability"].as_f64().expect("p");
    let p1 = carting["probability"].as_f64().expect("p");
    assert!((0.0..=1.0).contains(&p0) && (0.0..=1.0).contains(&p1));
    assert!(p1 > p0, "intent with a cart {p1} should exceed browsing {p0}");
    assert_eq!(carting["features"].as_array().expect("features").len(), foresight::features::INTENT_FEATURES.len());
    fs.forget().expect("forget");
}

#[wasm_bindgen_test]
async fn history_survives_a_reload_and_forget_erases_it() {
    let key = "fs-test-reload";
    local_storage().remove_item(key).expect("clean");
    {
        let fs = init(key).await;
        for id in ["sku-00010", "sku-00011", "sku-00012"] {
            fs.track(js(&json!({"type": "product_view", "itemId": id}))).expect("track");
        }
        // The instance is dropped here, as a page is on reload.
    }
    let again = init(key).await;
    let history = rust(&again.history().expect("history"));
    let ids: Vec<&str> = history.as_array().expect("events").iter().map(|e| e["itemId"].as_str().expect("id")).collect();
    assert_eq!(ids, ["sku-00010", "sku-00011", "sku-00012"]);
    assert_eq!(rust(&again.recommend(JsValue::UNDEFINED).expect("recommend"))["source"], "model");
    again.forget().expect("forget");
    assert_eq!(local_storage().get_item(key).expect("get"), None);
    let recs = rust(&again.recommend(JsValue::UNDEFINED).expect("recommend"));
    assert_eq!(recs["source"], "popularity");
    assert_eq!(recs["items"][0]["because"]["kind"], "popular_now");
}

#[wasm_bindgen_test]
async fn corrupt_storage_is_discarded_not_thrown() {
    let key = "fs-test-corrupt";
    for junk in ["{\"version\":1,\"events\":[{", "null", "[1,2,3]", "{\"version\":1,\"events\":[{\"at\":\"soon\"}]}"] {
        local_storage().set_item(key, junk).expect("plant junk");
        let fs = init(key).await;
        assert_eq!(rust(&fs.history().expect("history")), json!([]), "{junk}");
        fs.track(js(&json!({"type": "search", "query": "films"}))).expect("track after corruption");
        assert_eq!(rust(&fs.history().expect("history")).as_array().expect("events").len(), 1);
        fs.forget().expect("forget");
    }
}

#[wasm_bindgen_test]
async fn quota_pressure_evicts_oldest_and_never_throws() {
    let key = "fs-test-quota";
    let storage = local_storage();
    storage.remove_item(key).expect("clean");
    // Fill the origin's quota with someone else's data, leaving only a little room.
    let chunk = "x".repeat(256 * 1024);
    let mut filler = Vec::new();
    for i in 0..64 {
        let k = format!("fs-test-filler-{i}");
        if storage.set_item(&k, &chunk).is_err() {
            break;
        }
        filler.push(k);
    }
    let small = "y".repeat(4 * 1024);
    for i in 0..256 {
        let k = format!("fs-test-filler-small-{i}");
        if storage.set_item(&k, &small).is_err() {
            break;
        }
        filler.push(k);
    }
    // Free ~6 KB so some but not all of the log fits.
    storage.remove_item(filler.last().expect("filled")).expect("free");
    storage.remove_item(&filler[filler.len() - 2]).expect("free");
    let fs = WebForesight::init(config(key, json!({"store": {"maxBytes": 1_000_000}}))).await.expect("init");
    for i in 0..300 {
        fs.track(js(&json!({"type": "product_view", "itemId": format!("sku-{:05}", i)}))).expect("never throws");
    }
    let history = rust(&fs.history().expect("history"));
    let events = history.as_array().expect("events");
    assert!(events.len() < 300, "quota should have forced evictions, kept {}", events.len());
    assert_eq!(events.last().expect("newest kept")["itemId"], "sku-00299");
    let stored = storage.get_item(key).expect("get").expect("persisted");
    assert!(stored.contains("sku-00299"), "the newest events are on disk");
    for k in &filler {
        storage.remove_item(k).expect("clean");
    }
    fs.forget().expect("forget");
}

#[wasm_bindgen_test]
async fn bad_input_throws_a_clear_error() {
    let fs = init("fs-test-errors").await;
    let (code, message) = error_of(fs.track(js(&json!({"type": "product_view", "itemId": ""}))));
    assert_eq!(code, "invalid_event");
    assert!(message.contains("itemId"), "{message}");
    let (_, message) = error_of(fs.track(js(&json!({"type": "add_to_cart", "itemId": "a", "price": -3}))));
    assert!(message.contains("price") && message.contains("negative"), "{message}");
    let (_, message) = error_of(fs.track(js(&json!({"type": "warp"}))));
    assert!(message.contains("warp"), "{message}");
    let (code, message) = error_of(fs.recommend(js(&json!({"k": 0}))));
    assert_eq!(code, "invalid_option");
    assert!(message.contains('k'), "{message}");
    let (code, _) = error_of(fs.recommend(js(&json!({"count": 3}))));
    assert_eq!(code, "invalid_option");
    let (code, message) = error_of(WebForesight::init(js(&json!({"catalogue": []}))).await);
    assert_eq!(code, "invalid_option");
    assert!(message.contains("catalogue"), "{message}");
    // The field reaches JavaScript as a property, not only inside the message.
    assert_eq!(field_of(fs.track(js(&json!({"type": "product_view", "itemId": ""})))).as_deref(), Some("itemId"));
    assert_eq!(field_of(fs.track(js(&json!({"type": "add_to_cart", "itemId": "a", "price": -3})))).as_deref(), Some("price"));
    assert_eq!(field_of(fs.recommend(js(&json!({"k": 0})))).as_deref(), Some("k"));
    assert_eq!(field_of(fs.recommend(js(&json!({"count": 3})))).as_deref(), Some("count"));
    assert_eq!(field_of(WebForesight::init(js(&json!({"catalogue": []}))).await).as_deref(), Some("catalogue"));
    // Deeper in the config, the field is the path to the value, and the message says what is wrong.
    let nested = json!({"rules": {"pins": [{"itemId": "a", "position": 1}, {"itemId": "b", "postion": 2}]}});
    assert_eq!(field_of(WebForesight::init(js(&nested)).await).as_deref(), Some("rules.pins[1].postion"));
    let (code, message) = error_of(
        WebForesight::init(js(&json!({"collector": {"url": "https://c.example", "site": "s", "key": "k", "maxQueued": -1}}))).await,
    );
    assert_eq!(code, "invalid_option");
    assert!(message.contains("`collector.maxQueued`") && message.contains("got -1"), "{message}");
    assert_eq!(field_of(fs.recommend(js(&json!({"exclude": ["a", 3]})))).as_deref(), Some("exclude[1]"));
    assert_eq!(field_of(fs.consent("yes")).as_deref(), Some("consent"));
    assert_eq!(field_of(fs.track(js(&json!({"type": "warp"})))).as_deref(), Some("type"));
}

/// With the browser's secure random source failing, no report is prepared (none randomized by
/// anything weaker) and nothing is charged to the day's ε; once it works again, one is.
#[wasm_bindgen_test]
async fn no_report_leaves_without_a_secure_random_source() {
    let key = "fs-test-no-crypto";
    clear_visitor(key);
    let collector = json!({"url": "http://127.0.0.1:9/v1/reports", "site": "test-shop", "key": "site-key"});
    let fs = WebForesight::init(config(key, json!({"collector": collector}))).await.map_err(|e| rust(&e)).expect("init");
    fs.consent("granted").expect("consent");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00010"}))).expect("track");

    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).expect("crypto");
    let broken = js_sys::Function::new_no_args("throw new Error('entropy source unavailable')");
    Reflect::set(&crypto, &"getRandomValues".into(), &broken).expect("override");
    let flushed = flush(&fs).await;
    let privacy = rust(&fs.privacy().expect("privacy"));
    // Back to the prototype's own getRandomValues before anything can fail.
    Reflect::delete_property(crypto.unchecked_ref::<js_sys::Object>(), &"getRandomValues".into()).expect("restore");

    assert_eq!(flushed["prepared"], false, "{flushed}");
    assert!(flushed["error"].as_str().is_some_and(|e| e.contains("crypto.getRandomValues")), "{flushed}");
    assert_eq!(privacy["pending"], json!([]), "nothing queued");
    assert_eq!(privacy["epsilonSpentToday"], 0.0, "nothing spent");
    let flushed = flush(&fs).await;
    assert_eq!(flushed["prepared"], true, "the secure source works again: {flushed}");
    fs.forget().expect("forget");
    fs.consent("unknown").expect("reset");
}

#[wasm_bindgen_test]
async fn a_broken_model_degrades_to_popularity() {
    let cfg = config("fs-test-broken", json!({}));
    let rec = Reflect::get(&cfg, &"recommender".into()).expect("recommender");
    Reflect::set(&rec, &"model".into(), &Uint8Array::from(&b"not a model"[..])).expect("set");
    let fs = WebForesight::init(cfg).await.expect("init still succeeds");
    assert_popularity_fallback(&fs, "model_parse");
}

#[wasm_bindgen_test]
async fn autocapture_records_data_attributes() {
    let document = web_sys::window().expect("window").document().expect("document");
    let body = document.body().expect("body");
    let root = document.create_element("div").expect("div");
    root.set_inner_html(
        r#"<div data-fs-product="sku-00042" data-fs-category="cat-02" data-fs-price="12.5"></div>
           <section data-fs-placement="home"><a id="tile" data-fs-item="sku-00007"><span id="tile-inner">Film</span></a></section>
           <button id="add" data-fs-event="add_to_cart" data-fs-item="sku-00042" data-fs-price="12.50" data-fs-quantity="2">Add</button>
           <button id="bad" data-fs-event="add_to_cart" data-fs-item="sku-00042" data-fs-price="cheap">Bad</button>
           <form id="search" data-fs-search="q" onsubmit="return false"><input name="q" value="space films"></form>"#,
    );
    body.append_child(&root).expect("attach");
    let fs = WebForesight::init(config("fs-test-autocapture", json!({"autocapture": true}))).await.expect("init");
    fs.forget().expect("start clean");
    // The product_view at start was recorded before forget(); record the interactions now.
    let click = |id: &str| {
        document.get_element_by_id(id).expect("element").dyn_into::<web_sys::HtmlElement>().expect("html").click();
    };
    click("tile-inner");
    click("add");
    click("bad"); // a bad attribute is a console warning, not an exception
    let form = document.get_element_by_id("search").expect("form").dyn_into::<web_sys::HtmlFormElement>().expect("form");
    form.request_submit().expect("submit");
    let history = rust(&fs.history().expect("history"));
    let events: Vec<Value> = history
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().expect("object").retain(|k, _| k != "at" && k != "session");
            e
        })
        .collect();
    assert_eq!(
        events,
        vec![
            json!({"type": "click", "itemId": "sku-00007", "placement": "home"}),
            json!({"type": "add_to_cart", "itemId": "sku-00042", "quantity": 2, "price": 12.5}),
            json!({"type": "search", "query": "space films"}),
        ]
    );
    fs.forget().expect("forget");
    drop(fs);
    root.remove();
    // A fresh instance on a product page records the view at start.
    body.append_child(&root).expect("attach");
    let fs = WebForesight::init(config("fs-test-autocapture", json!({"autocapture": true}))).await.expect("init");
    let history = rust(&fs.history().expect("history"));
    assert_eq!(history[0]["type"], "product_view");
    assert_eq!(history[0]["itemId"], "sku-00042");
    assert_eq!(history[0]["price"], 12.5);
    fs.forget().expect("forget");
    root.remove();
}

#[wasm_bindgen_test]
async fn signed_bundles_download_with_progress_and_recommend_like_onnxruntime() {
    let reference: Value = serde_json::from_str(GRU_REF).expect("reference");
    let gru = blob_url(GRU_BUNDLE);
    let intent = blob_url(INTENT_BUNDLE);
    let cfg = js(&json!({"storageKey": "fs-test-bundle", "bundleUrls": [gru, intent], "publicKey": TEST_PUBLIC_KEY.trim()}));
    let progress = js_sys::Function::new_with_args("e", "(globalThis.__fsProgress ||= []).push(e)");
    Reflect::set(&cfg, &"onProgress".into(), &progress).expect("set");
    let fs = WebForesight::init(cfg).await.map_err(|e| rust(&e)).expect("init");
    let status = rust(&fs.status().expect("status"));
    assert_eq!(status["recommender"]["state"], "ready", "{status}");
    assert_eq!(status["intent"]["state"], "ready", "{status}");
    let events = rust(&Reflect::get(&js_sys::global(), &"__fsProgress".into()).expect("progress"));
    let last_for_gru =
        events.as_array().expect("events").iter().rev().find(|e| e["url"] == gru).cloned().expect("progress for the recommender");
    assert_eq!(last_for_gru["loaded"].as_u64(), Some(GRU_BUNDLE.len() as u64), "{last_for_gru}");

    fs.forget().expect("forget");
    let case = &reference["cases"][2];
    for id in case["item_ids"].as_array().expect("ids") {
        fs.track(js(&json!({"type": "product_view", "itemId": id}))).expect("track");
    }
    let recs = rust(&fs.recommend(js(&json!({"k": 20}))).expect("recommend"));
    assert_eq!(recs["source"], "model");
    for (g, w) in recs["items"].as_array().expect("items").iter().zip(case["top20"].as_array().expect("top20")) {
        assert_eq!(g["itemId"], w["id"]);
        assert!((g["score"].as_f64().expect("score") - w["score"].as_f64().expect("score")).abs() <= 1e-4);
    }
    let p = rust(&fs.intent().expect("intent"))["probability"].as_f64().expect("p");
    assert!((0.0..=1.0).contains(&p));
    fs.forget().expect("forget");
}

#[wasm_bindgen_test]
async fn a_tampered_or_missing_bundle_falls_back_to_popularity() {
    let catalog: Value = serde_json::from_str(CATALOG).expect("catalog");
    let mut tampered = GRU_BUNDLE.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x5a;
    for (url, code) in [(blob_url(&tampered), "bundle_tampered"), ("/no-such-bundle.fsb".to_owned(), "bundle_download")] {
        let cfg = js(
            &json!({"storageKey": "fs-test-bad-bundle", "bundleUrl": url, "publicKey": TEST_PUBLIC_KEY.trim(), "catalog": catalog["items"]}),
        );
        let fs = WebForesight::init(cfg).await.map_err(|e| rust(&e)).expect("init resolves anyway");
        assert_popularity_fallback(&fs, code);
    }
}

#[wasm_bindgen_test]
async fn reports_wait_for_consent_leave_privatized_and_survive_reload() {
    let key = "fs-test-sync";
    clear_visitor(key);
    // Port 9 (discard) is closed here: every delivery is a network error, hence a retry.
    let collector = json!({"url": "http://127.0.0.1:9/v1/reports", "site": "test-shop", "key": "site-key"});
    let fs = WebForesight::init(config(key, json!({"collector": collector}))).await.map_err(|e| rust(&e)).expect("init");
    for id in ["sku-00010", "sku-00011", "sku-00012"] {
        fs.track(js(&json!({"type": "product_view", "itemId": id, "category": "cat-01"}))).expect("track");
    }
    let flushed = rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush resolves"));
    assert_eq!(flushed["prepared"], false, "no consent yet: {flushed}");
    let privacy = rust(&fs.privacy().expect("privacy"));
    assert_eq!(privacy["consent"], "unknown");
    assert_eq!(privacy["epsilonSpentToday"], 0.0);
    assert_eq!(privacy["pending"], json!([]));

    let (code, _) = error_of(fs.consent("yes please"));
    assert_eq!(code, "invalid_option");
    fs.consent("granted").expect("consent");
    let flushed = rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush resolves"));
    assert_eq!(flushed["prepared"], true, "{flushed}");
    assert_eq!(flushed["outcome"], "retry", "{flushed}");
    let privacy = rust(&fs.privacy().expect("privacy"));
    assert_eq!(privacy["epsilonSpentToday"], 1.0);
    let pending = privacy["pending"].as_array().expect("pending").clone();
    assert_eq!(pending.len(), 1);
    let text = pending[0].to_string();
    assert!(!text.contains("sku-") && !text.contains("cat-01"), "nothing raw in the report: {text}");
    assert_eq!(pending[0]["site"], "test-shop");
    // Once a day: a second flush prepares nothing new.
    let flushed = rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush resolves"));
    assert_eq!(flushed["prepared"], false);
    drop(fs);

    let again = WebForesight::init(config(key, json!({"collector": collector}))).await.expect("init");
    let privacy = rust(&again.privacy().expect("privacy"));
    assert_eq!(privacy["consent"], "granted", "consent is remembered");
    assert_eq!(privacy["pending"].as_array().expect("pending").len(), 1, "the queue survives a reload");
    assert_eq!(privacy["pending"][0]["idempotencyKey"], pending[0]["idempotencyKey"], "a retry is the same report");
    again.forget().expect("forget");
    assert_eq!(rust(&again.privacy().expect("privacy"))["pending"], json!([]));
    again.consent("unknown").expect("reset");
}

/// The collector started by scripts/test-browser.sh (`make test` runs it).
fn collector_url() -> &'static str {
    match option_env!("FORESIGHT_TEST_COLLECTOR") {
        Some(url) => url,
        None => panic!("build with FORESIGHT_TEST_COLLECTOR set: run scripts/test-browser.sh, which starts a collector"),
    }
}

#[wasm_bindgen_test]
async fn reports_reach_a_real_collector_once() {
    let key = "fs-test-delivery";
    clear_visitor(key);
    let collector = json!({"url": collector_url(), "site": "test-shop", "key": "site-key"});
    let fs = WebForesight::init(config(key, json!({"collector": collector}))).await.map_err(|e| rust(&e)).expect("init");
    fs.consent("granted").expect("consent");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00042", "category": "cat-02"}))).expect("track");
    let flushed = rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush"));
    assert_eq!(flushed["outcome"], "delivered", "{flushed}");
    let privacy = rust(&fs.privacy().expect("privacy"));
    assert_eq!(privacy["pending"], json!([]));
    let sent = privacy["sent"].as_array().expect("sent").clone();
    assert_eq!(sent.len(), 1);

    // The same report again (a beacon and a retry that both arrived): acknowledged, not stored twice.
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&json!([sent[0]]).to_string()));
    let headers = web_sys::Headers::new().expect("headers");
    headers.set("content-type", "application/json").expect("header");
    init.set_headers(&headers);
    let url = format!("{}?key=site-key", collector_url());
    let window = web_sys::window().expect("window");
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(&url, &init))
        .await
        .expect("fetch")
        .dyn_into()
        .expect("response");
    assert_eq!(response.status(), 202);
    let body = rust(&wasm_bindgen_futures::JsFuture::from(response.json().expect("json")).await.expect("body"));
    assert_eq!(body, json!({"accepted": 0, "duplicates": 1}), "counted once");
    fs.forget().expect("forget");
    fs.consent("unknown").expect("reset");

    // A wrong site key: refused by the collector, dropped by the SDK (retrying cannot help).
    clear_visitor(key);
    let wrong = json!({"url": collector_url(), "site": "test-shop", "key": "not-the-key"});
    let fs = WebForesight::init(config(key, json!({"collector": wrong}))).await.expect("init");
    fs.consent("granted").expect("consent");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00042"}))).expect("track");
    let flushed = rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush"));
    assert_eq!(flushed["outcome"], "rejected", "{flushed}");
    assert_eq!(rust(&fs.privacy().expect("privacy"))["pending"], json!([]));
    fs.forget().expect("forget");
    fs.consent("unknown").expect("reset");
}

/// A channel of its own on the scriptable front of the collector started by
/// scripts/test-browser.sh (the browser tests run concurrently).
fn flaky_url(channel: &str) -> String {
    let Some(base) = option_env!("FORESIGHT_TEST_FLAKY") else {
        panic!("build with FORESIGHT_TEST_FLAKY set: run scripts/test-browser.sh")
    };
    format!("{base}/c/{channel}")
}

async fn fetch_json(method: &str, url: &str, body: Option<&str>) -> Value {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
    }
    let window = web_sys::window().expect("window");
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .expect("fetch")
        .dyn_into()
        .expect("response");
    rust(&wasm_bindgen_futures::JsFuture::from(response.json().expect("json")).await.expect("body"))
}

async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().expect("window").set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).expect("timer");
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.expect("timer");
}

async fn flush(fs: &WebForesight) -> Value {
    rust(&wasm_bindgen_futures::JsFuture::from(fs.flush()).await.expect("flush resolves"))
}

/// The collector answers 500, then 429: the report stays queued, each retry waits for its
/// backoff (flushes in between send nothing), the third attempt lands, and the collector
/// holds it once.
#[wasm_bindgen_test]
async fn server_errors_and_rate_limits_are_retried_with_backoff() {
    let key = "fs-test-retry";
    let flaky_url = || flaky_url("retry");
    clear_visitor(key);
    fetch_json("POST", &format!("{}/script", flaky_url()), Some("500,429")).await;
    let collector = json!({"url": format!("{}/v1/reports", flaky_url()), "site": "test-shop", "key": "site-key"});
    let fs = WebForesight::init(config(key, json!({"collector": collector}))).await.map_err(|e| rust(&e)).expect("init");
    fs.consent("granted").expect("consent");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00077"}))).expect("track");
    let first = flush(&fs).await;
    assert_eq!(first["outcome"], "retry", "{first}");
    let key_sent = rust(&fs.privacy().expect("privacy"))["pending"][0]["idempotencyKey"].clone();

    let mut outcomes = vec!["retry".to_owned()];
    let mut waits = 0;
    for _ in 0..120 {
        sleep_ms(150).await;
        let r = flush(&fs).await;
        match r["outcome"].as_str() {
            Some(o) => outcomes.push(o.to_owned()),
            None => waits += 1,
        }
        if outcomes.last().map(String::as_str) == Some("delivered") {
            break;
        }
    }
    // (A `pagehide` dispatched by a concurrent test makes this instance send a beacon too,
    // which takes its turn in the script: the collector's log below is the exact sequence.)
    assert_eq!(outcomes.first().map(String::as_str), Some("retry"));
    assert_eq!(outcomes.last().map(String::as_str), Some("delivered"), "{outcomes:?}");
    assert!(waits > 0, "a retry waits for its backoff instead of going at once");
    let privacy = rust(&fs.privacy().expect("privacy"));
    assert_eq!(privacy["pending"], json!([]));
    assert_eq!(privacy["sent"][0]["idempotencyKey"], key_sent);
    let log = fetch_json("GET", &format!("{}/log", flaky_url()), None).await;
    let statuses: Vec<u64> = log.as_array().expect("log").iter().map(|e| e["status"].as_u64().expect("status")).collect();
    assert_eq!(statuses, [500, 429, 202]);
    let keys: Vec<String> = log
        .as_array()
        .expect("log")
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["body"].as_str().expect("body")).expect("report JSON");
            body[0]["idempotencyKey"].as_str().expect("key").to_owned()
        })
        .collect();
    assert!(keys.iter().all(|k| *k == key_sent), "every attempt is the same report: {keys:?}");
    fs.forget().expect("forget");
    fs.consent("unknown").expect("reset");
}

/// Leaving the page (`pagehide`) sends today's report by beacon, with no `flush()` from the page.
#[wasm_bindgen_test]
async fn pagehide_sends_the_report_by_beacon() {
    let key = "fs-test-pagehide";
    let flaky_url = || flaky_url("pagehide");
    clear_visitor(key);
    fetch_json("POST", &format!("{}/script", flaky_url()), Some("")).await;
    let collector = json!({"url": format!("{}/v1/reports", flaky_url()), "site": "test-shop", "key": "site-key"});
    let fs = WebForesight::init(config(key, json!({"collector": collector}))).await.map_err(|e| rust(&e)).expect("init");
    fs.consent("granted").expect("consent");
    fs.track(js(&json!({"type": "product_view", "itemId": "sku-00078"}))).expect("track");
    fs.recommend(JsValue::UNDEFINED).expect("recommend");
    let window = web_sys::window().expect("window");
    window.dispatch_event(&web_sys::Event::new("pagehide").expect("event")).expect("dispatch");
    let pending = rust(&fs.privacy().expect("privacy"))["pending"].clone();
    assert_eq!(pending.as_array().expect("pending").len(), 1, "built on pagehide, kept until acknowledged: {pending}");
    // The flush `init` started may deliver the same report by fetch too (either can land
    // first): the beacon is the `text/plain` request.
    let mut seen = None;
    for _ in 0..50 {
        let log = fetch_json("GET", &format!("{}/log", flaky_url()), None).await;
        let beacon = log.as_array().expect("log").iter().find(|e| e["contentType"].as_str().is_some_and(|t| t.starts_with("text/plain")));
        if let Some(entry) = beacon {
            seen = Some(entry.clone());
            break;
        }
        sleep_ms(100).await;
    }
    let entry = seen.expect("the beacon reached the collector within 5 s");
    assert_eq!(entry["status"], 202);
    let body: Value = serde_json::from_str(entry["body"].as_str().expect("body")).expect("JSON");
    assert_eq!(body[0]["idempotencyKey"], pending[0]["idempotencyKey"]);
    let statistics: Vec<&str> =
        body[0]["contributions"].as_array().expect("list").iter().map(|c| c["statistic"].as_str().expect("name")).collect();
    assert_eq!(statistics, ["item_view", "item_transition", "category_view", "intent_bucket", "rec_outcome", "rec_item"]);
    assert!(!entry["body"].as_str().expect("body").contains("sku-"), "nothing raw leaves");
    // A beacon's answer is never seen, so the report stays queued until a later delivery (the
    // flush init started, or this one) is acknowledged — a duplicate, counted once.
    let last = flush(&fs).await;
    assert!(last["outcome"] == "delivered" || last["sent"] == 0, "{last}");
    assert_eq!(rust(&fs.privacy().expect("privacy"))["pending"], json!([]));
    let log = fetch_json("GET", &format!("{}/log", flaky_url()), None).await;
    assert!(log
        .as_array()
        .expect("log")
        .iter()
        .all(|e| e["status"] == 202 && e["body"].as_str().expect("body").contains(pending[0]["idempotencyKey"].as_str().expect("key"))));
    fs.forget().expect("forget");
    fs.consent("unknown").expect("reset");
}

/// The SDK's own kernels compiled to wasm SIMD (the i16 head's integer dot products and
/// eight-wide scans, the vectorized exp/sigmoid/tanh/GELU, the attention positions) against
/// tract on the original graphs: the same top-20, scores within 1e-4; the incremental states
/// (GRU, key/value cache) equal to the whole sequence bit for bit over 2,000 events; the i16
/// top-k equal to the exact head's.
#[wasm_bindgen_test]
fn own_kernels_match_tract_in_wasm() {
    use foresight::infer::model::RecommenderModel;
    use foresight::infer::topk::top_k;
    use foresight::platform::{Randomness, SeededRandomness};
    const SASREC: &[u8] = include_bytes!("../../bench/models/sasrec_5000.onnx");
    let gru = foresight::import::gru::from_onnx(GRU, None).expect("GRU recognised");
    let sas = foresight::import::attention::from_onnx(SASREC, None).expect("SASRec recognised");
    let models = [(GRU, RecommenderModel::from_gru(gru)), (SASREC, RecommenderModel::from_attention(sas.clone()))];
    let mut rng = SeededRandomness(31);
    let (mut a, mut b, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let (mut scratch, mut got) = (foresight::infer::head::TopKScratch::default(), Vec::new());
    for (bytes, mut ours) in models {
        let n = ours.n_items();
        let mut tract = RecommenderModel::load(bytes, &Default::default(), n).expect("tract loads it");
        let mut history: Vec<usize> = Vec::new();
        for case in 0..40 {
            // One event at a time (the incremental path), a fresh session now and then.
            if case % 10 == 0 {
                history.clear();
            }
            history.push(rng.below(n as u64) as usize);
            tract.scores_into(&history, &mut a).expect("tract runs");
            ours.scores_into(&history, &mut b).expect("kernels run");
            let delta = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(delta <= 1e-4, "case {case}: max |Δ| {delta}");
            let none = vec![false; n];
            let ids = |s: &[f32]| top_k(s, 20, &none).iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "case {case}");
            let excluded: Vec<bool> = (0..n).map(|j| case % 2 == 1 && j % 7 == 0).collect();
            for k in [1, 20, 100] {
                let want = top_k(&b, k, &excluded);
                ours.scores_stateless_into(&history, &mut whole).expect("whole runs");
                assert_eq!(whole, b, "case {case}: the kept state differs from the whole sequence");
                ours.advance(&history).expect("the running state advances");
                ours.state_top_k_into(k, &excluded, &mut scratch, &mut got).expect("top-k of the running state");
                assert_eq!(got.len(), want.len());
                for (x, y) in got.iter().zip(&want) {
                    assert!(x.0 == y.0 && x.1.to_bits() == y.1.to_bits(), "case {case}, k {k}: {got:?} vs {want:?}");
                }
            }
        }
    }
    // Thousands of events one at a time: the incremental state equals the whole sequence bit
    // for bit (the attention window slides past 50 events; explanation-style queries that
    // leave one of the last items out come in between).
    let gru = foresight::import::gru::from_onnx(GRU, None).expect("GRU recognised");
    let mut state = foresight::infer::gru::SessionState::default();
    let mut cache = foresight::infer::attention::KvCache::default();
    let (mut history, mut inc) = (Vec::new(), Vec::new());
    for event in 0..2000 {
        if event % 500 == 0 {
            history.clear();
        }
        history.push(rng.below(5000) as usize);
        let h = state.advance(&gru, &history).expect("GRU step").to_vec();
        gru.head_into(&h, &mut inc);
        gru.scores_into(&history, &mut whole).expect("GRU whole");
        assert_eq!(inc, whole, "GRU, event {event}");
        let window = &history[history.len().saturating_sub(50)..];
        if event % 7 == 3 && window.len() > 2 {
            let mut left_out = window.to_vec();
            left_out.remove(window.len() - 2);
            let h = cache.advance(&sas, &left_out).expect("attention").to_vec();
            sas.head().scores_into(&h, &mut inc);
            sas.scores_into(&left_out, &mut whole).expect("attention whole");
            assert_eq!(inc, whole, "attention, event {event}, one left out");
        }
        let h = cache.advance(&sas, window).expect("attention").to_vec();
        sas.head().scores_into(&h, &mut inc);
        sas.scores_into(window, &mut whole).expect("attention whole");
        assert_eq!(inc, whole, "attention, event {event}");
    }
}
