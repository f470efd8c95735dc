//! The JavaScript API (wasm-bindgen): `Foresight.init(config)`, then `track`, `recommend`,
//! `intent`, `history`, `forget`, `status`.
//!
//! Calls the page makes throw a `ForesightError` (with `code` and `message`) on bad input;
//! nothing the SDK does on its own (autocapture, storage trouble) throws into the page: those
//! become console warnings.

mod autocapture;
#[cfg(feature = "bench")]
mod bench;
mod bundle_fetch;
mod delivery;
mod digest;
#[cfg(all(feature = "bench", feature = "webgpu"))]
mod gpu_bench;
mod graphs;
mod scoring;
mod signature;
mod storage;

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::client::{Client, Config, Models};
use crate::contract::bundle::{Bundle, Parsed};
use crate::contract::manifest::ModelKind;
use crate::error::Error;
use crate::json::FromJson;
use crate::recommend::RecommendOptions;
pub use storage::{JsClock, WebStorage};

pub(crate) type WebClient = Client<WebStorage, JsClock>;

const WARN_PREFIX: &str = "[foresight]";

fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(&format!("{WARN_PREFIX} {message}")));
}

/// A JS `Error` named `ForesightError` carrying the stable `code`, and the `field` it names for
/// `invalid_event` / `invalid_option`.
fn js_error_at(code: &str, message: &str, field: Option<&str>) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("ForesightError");
    // Setting a property on a fresh Error cannot fail; the message stands even if it did.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    if let Some(field) = field {
        let _ = js_sys::Reflect::set(&err, &"field".into(), &field.into());
    }
    err.into()
}

fn js_error(code: &str, message: &str) -> JsValue {
    js_error_at(code, message, None)
}

/// An error whose message names its field the way serde's do (`unknown field `x``, `missing
/// field `x``), as the placement reader's do: that field becomes the `field` property.
fn named_field_error(code: &str, message: &str) -> JsValue {
    let field = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.split_once(p).and_then(|(_, rest)| rest.split_once('`')).map(|(f, _)| f));
    js_error_at(code, message, field)
}

fn to_js(e: Error) -> JsValue {
    js_error_at(e.code(), &e.to_string(), e.field())
}

/// `T` → plain JS data, through JSON text: one string crosses the boundary instead of a call per
/// property (and the module carries no second serializer).
fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text =
        serde_json::to_string(value).map_err(|e| js_error("internal", &format!("could not convert the result for JavaScript: {e}")))?;
    js_sys::JSON::parse(&text).map_err(|e| js_error("internal", &format!("could not convert the result for JavaScript: {e:?}")))
}

/// One visitor's Foresight instance.
#[wasm_bindgen(js_name = Foresight)]
pub struct WebForesight {
    client: Rc<RefCell<WebClient>>,
    autocapture: Option<autocapture::Autocapture>,
    /// Sends today's report by beacon when the page goes (only with a collector configured).
    _pagehide: Option<gloo_events::EventListener>,
    /// The options of the last `recommend`, which idle-time precomputation prepares for.
    last_options: Rc<RefCell<RecommendOptions>>,
    /// The scoring path for item embeddings (the GPU's probe fills it in after init).
    scoring: Rc<RefCell<scoring::ScoringSlot>>,
    /// The config's `loadTract`, for an update that is a graph when the models in use are not.
    load_tract: Option<js_sys::Function>,
}

#[wasm_bindgen(js_class = Foresight)]
impl WebForesight {
    /// Opens the visitor's on-device history and loads the models.
    ///
    /// Rejects only for an unusable config (wrong types, unknown fields); a model that fails
    /// to load is a console warning and `status()` says why, while recommendations fall back
    /// to popularity.
    pub async fn init(config: JsValue) -> Result<WebForesight, JsValue> {
        console_error_panic_hook::set_once();
        let (mut config, downloads, storage_hook) = config_from_js(&config)?;
        let mut download_errors = Vec::new();
        for url in &downloads.urls {
            match bundle_fetch::fetch(url, downloads.on_progress.as_ref()).await {
                Ok(bytes) => config.bundles.push(serde_bytes::ByteBuf::from(bytes)),
                Err(e) => {
                    warn(&format!("bundle {url} could not be downloaded, using the popularity fallback: {e}"));
                    download_errors.push(format!("{url}: {e}"));
                }
            }
        }
        let autocapture_on = config.autocapture;
        let has_collector = config.collector.is_some();
        // Reading the config (a catalog of thousands of items) is the first task; opening the
        // visitor's history the next.
        next_task().await;
        let (storage, storage_warning) = WebStorage::open(storage_hook);
        if let Some(w) = storage_warning {
            warn(&format!("{w}; history is kept for this page only"));
        }
        // The graph runtime is a second wasm module, fetched only when a model needs it and this
        // build has none compiled in (the shipped core has none; bench and test builds do).
        let load_tract = downloads.load_tract.as_ref();
        let mut runtime = graphs::Runtime::new();
        if graphs::inline_graphs(&config) {
            runtime.ensure(load_tract).await;
        }
        // Verifying a bundle and building its model each take tens of milliseconds on a slow
        // phone: each in a task of its own, and the client in another, so the page stays
        // responsive between them.
        let mut models = Models::for_config(&config).map_err(to_js)?;
        for bytes in std::mem::take(&mut config.bundles) {
            next_task().await;
            // The manifest (a catalog's is hundreds of KB: parsed, then read) and the signature
            // in tasks of their own.
            let parsed = Bundle::parse_manifest(bytes.into_vec());
            next_task().await;
            let read = parsed.and_then(Parsed::read);
            next_task().await;
            let checked = match read {
                Ok(read) => signature::check(models.key(), read).await,
                Err(e) => Err(e),
            };
            let verified = match checked {
                Ok(opened) => digest::verify(opened).await,
                Err(e) => Err(e.into()),
            };
            if verified.as_ref().is_ok_and(graphs::is_graph) {
                runtime.ensure(load_tract).await;
            }
            next_task().await;
            models.add(verified, runtime.graphs());
        }
        next_task().await;
        let (mut client, warnings) = Client::with_models(config, storage, JsClock, models, runtime.graphs()).map_err(to_js)?;
        drop(runtime);
        warnings.iter().for_each(|w| warn(w));
        match delivery::CryptoRandomness::new() {
            Some(mut rng) => client.assign_experiments(&mut rng),
            None => warn("crypto.getRandomValues is unavailable: experiments are off for this visitor"),
        }
        if let Some(first) = download_errors.first() {
            client.note_bundle_failure(format!("bundle download failed: {first}"), "bundle_download");
        }
        let client = Rc::new(RefCell::new(client));
        let autocapture = if autocapture_on {
            let weak = Rc::downgrade(&client);
            let sink: autocapture::Sink = Rc::new(move |event| {
                let Some(client) = weak.upgrade() else { return };
                // A page handler that calls track() re-entrantly would find the client busy:
                // drop the autocaptured event rather than panic.
                let Ok(mut client) = client.try_borrow_mut() else { return };
                match client.track(&event) {
                    Ok(outcome) => {
                        if let Some(w) = outcome.warning {
                            warn(&w.to_string());
                        }
                    }
                    Err(e) => warn(&format!("autocapture skipped an event: {e}")),
                }
            });
            autocapture::start(sink)
        } else {
            None
        };
        let pagehide = if has_collector {
            // Deliver what earlier pages queued, without holding up init.
            let queued = client.clone();
            wasm_bindgen_futures::spawn_local(async move {
                delivery::flush(queued).await;
            });
            web_sys::window().map(|w| {
                let weak = Rc::downgrade(&client);
                gloo_events::EventListener::new(&w, "pagehide", move |_| {
                    if let Some(c) = weak.upgrade() {
                        delivery::beacon(&c);
                    }
                })
            })
        } else {
            None
        };
        let scoring = scoring::start(&client, downloads.load_gpu);
        Ok(WebForesight {
            client,
            autocapture,
            _pagehide: pagehide,
            last_options: Rc::default(),
            scoring,
            load_tract: downloads.load_tract,
        })
    }

    /// Swaps in a newer bundle (the npm package's cache found one when revalidating): resolves
    /// to the slot it replaced, `"recommender"` or `"intent"`, once it is verified and loaded;
    /// rejects with the bundle's error and changes nothing otherwise, so the model in use stays.
    #[wasm_bindgen(js_name = replaceBundle)]
    pub fn replace_bundle(&self, bytes: js_sys::Uint8Array) -> js_sys::Promise {
        let bytes = bytes.to_vec();
        let (client, slot, load_tract) = (self.client.clone(), self.scoring.clone(), self.load_tract.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let read = Bundle::read(bytes).map_err(|e| to_js(e.into()))?;
            let key = client.try_borrow().map_err(|_| busy())?.bundle_key().copied();
            let opened = signature::check(key.as_ref(), read).await.map_err(|e| to_js(e.into()))?;
            let bundle = digest::verify(opened).await.map_err(to_js)?;
            let mut runtime = graphs::Runtime::new();
            if graphs::is_graph(&bundle) {
                runtime.ensure(load_tract.as_ref()).await;
            }
            next_task().await;
            let kind = client.try_borrow_mut().map_err(|_| busy())?.replace_verified(&bundle, runtime.graphs()).map_err(to_js)?;
            Ok(JsValue::from_str(match kind {
                ModelKind::Recommender => {
                    // The embeddings the GPU holds (if any) are the old model's.
                    scoring::probe(&client, &slot);
                    "recommender"
                }
                ModelKind::Intent => "intent",
            }))
        })
    }

    /// Which of the bundles given to `init` were refused, by index (the npm package drops a
    /// cached copy that no longer loads and fetches it again).
    #[wasm_bindgen(js_name = refusedBundles)]
    pub fn refused_bundles(&self) -> Result<Vec<u32>, JsValue> {
        Ok(self.client.try_borrow().map_err(|_| busy())?.refused_bundles().iter().map(|&i| i as u32).collect())
    }

    /// A bundle the npm package could not download: the recommender's status says so (unless a
    /// model is loaded), as for a `bundleUrl` this module downloads itself.
    #[wasm_bindgen(js_name = noteBundleFailure)]
    pub fn note_bundle_failure(&self, message: &str) -> Result<(), JsValue> {
        self.client()?.note_bundle_failure(format!("bundle download failed: {message}"), "bundle_download");
        Ok(())
    }

    /// Records what the visitor did, e.g. `{type: "product_view", itemId: "sku-1"}`.
    pub fn track(&self, event: JsValue) -> Result<(), JsValue> {
        let event = from_js(&event).map_err(|e| js_error("invalid_event", &format!("invalid event: {e}")))?;
        let (outcome, precompute) = {
            let mut client = self.client()?;
            let outcome = client.track(&event).map_err(to_js)?;
            (outcome, client.precompute_enabled())
        };
        if let Some(w) = outcome.warning {
            warn(&w.to_string());
        }
        // With the GPU selecting, the next recommendAsync is already off the main thread's
        // critical path; an idle-time CPU pass over a large catalog would only compete with it.
        let gpu = self.scoring.try_borrow().is_ok_and(|s| s.choice.backend == "gpu");
        if precompute && outcome.recorded && !gpu {
            self.schedule_precompute();
        }
        Ok(())
    }

    /// `{items: [{itemId, score, because}], source, fallbackReason?}` for `{k?, exclude?}`.
    pub fn recommend(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let options: RecommendOptions = if options.is_undefined() || options.is_null() {
            RecommendOptions::default()
        } else {
            read_js(&options, "invalid_option", "invalid recommend options")?
        };
        let recs = self.client()?.recommend(&options).map_err(to_js)?;
        *self.last_options.borrow_mut() = options;
        to_value(&recs)
    }

    /// `recommend` as a Promise: with a visitor tower on the GPU, the candidates are selected
    /// there while the page runs; otherwise the same answer as `recommend`, resolved.
    #[wasm_bindgen(js_name = recommendAsync)]
    pub fn recommend_async(&self, options: JsValue) -> js_sys::Promise {
        if self.scoring.try_borrow().is_ok_and(|s| s.gpu.is_some()) {
            let parsed: Result<RecommendOptions, JsValue> = if options.is_undefined() || options.is_null() {
                Ok(RecommendOptions::default())
            } else {
                read_js(&options, "invalid_option", "invalid recommend options")
            };
            let (slot, client, last) = (self.scoring.clone(), self.client.clone(), self.last_options.clone());
            return wasm_bindgen_futures::future_to_promise(async move {
                let options = parsed?;
                match scoring::recommend_on_gpu(slot, client.clone(), options.clone()).await {
                    Some(result) => {
                        let recs = result.map_err(to_js)?;
                        *last.borrow_mut() = options;
                        to_value(&recs)
                    }
                    None => {
                        let recs = client.try_borrow_mut().map_err(|_| busy())?.recommend(&options).map_err(to_js)?;
                        *last.borrow_mut() = options;
                        to_value(&recs)
                    }
                }
            });
        }
        match self.recommend(options) {
            Ok(v) => js_sys::Promise::resolve(&v),
            Err(e) => js_sys::Promise::reject(&e),
        }
    }

    /// `{backend: "cpu" | "gpu", reason, adapter?, cpuMs?, gpuMs?, ready}`: which path scores
    /// the item embeddings of a visitor-tower recommender, and why.
    pub fn scoring(&self) -> Result<JsValue, JsValue> {
        let slot = self.scoring.try_borrow().map_err(|_| busy())?;
        to_value(&slot.choice)
    }

    /// How many `recommend` calls were answered from the idle-time precomputation.
    #[wasm_bindgen(js_name = precomputeHits)]
    pub fn precompute_hits(&self) -> Result<f64, JsValue> {
        Ok(self.client.try_borrow().map_err(|_| busy())?.precompute_hits() as f64)
    }

    /// One placement's list: `{type: "forYou" | "similarTo" | "boughtTogether" | "popular" |
    /// "trending" | "recentlyViewed" | "buyAgain" | "rerank", …}` → the same shape as `recommend`, plus
    /// `placement`, `variant?` and the list's `id`.
    pub fn place(&self, request: JsValue) -> Result<JsValue, JsValue> {
        let request = from_js(&request)
            .and_then(|v| crate::recommend::placement::Placement::from_json(&v))
            .map_err(|e| named_field_error("invalid_option", &format!("invalid placement: {e}")))?;
        let recs = self.client()?.place(&request).map_err(to_js)?;
        if let crate::recommend::placement::Placement::ForYou { k, exclude } = request {
            *self.last_options.borrow_mut() = RecommendOptions { k, exclude };
        }
        to_value(&recs)
    }

    /// The visitor's experiment variants, `{experiment: variant}` — kept on the device.
    pub fn variants(&self) -> Result<JsValue, JsValue> {
        let client = self.client.try_borrow().map_err(|_| busy())?;
        // Inserted, not collected: `collect` into a map sorts first, a sort instance of its own.
        let mut map = std::collections::BTreeMap::new();
        for (experiment, variant) in client.variants() {
            map.insert(experiment, variant);
        }
        to_value(&map)
    }

    /// `{probability, features: [{name, value}]}` for the current session.
    pub fn intent(&self) -> Result<JsValue, JsValue> {
        let score = self.client()?.intent().map_err(to_js)?;
        to_value(&score)
    }

    /// Everything stored about the visitor on this device, oldest first.
    pub fn history(&self) -> Result<JsValue, JsValue> {
        let client = self.client.try_borrow().map_err(|_| busy())?;
        to_value(client.history())
    }

    /// Erases the visitor's history from this device.
    pub fn forget(&self) -> Result<(), JsValue> {
        self.client()?.forget().map_err(to_js)
    }

    /// `{recommender: {state, error?}, intent: {...}, events, autocapture}`.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let client = self.client.try_borrow().map_err(|_| busy())?;
        #[derive(Serialize)]
        struct Status<'a> {
            recommender: &'a crate::client::ModelStatus,
            intent: &'a crate::client::ModelStatus,
            events: usize,
            autocapture: bool,
        }
        to_value(&Status {
            recommender: client.recommender_status(),
            intent: client.intent_status(),
            events: client.history().len(),
            autocapture: self.autocapture.is_some(),
        })
    }

    /// The visitor's choice about sending aggregates: `"granted"`, `"denied"` or `"unknown"`.
    /// Kept on the device. Personalization works the same either way, unless the config says
    /// `personalization: "with_consent"`.
    pub fn consent(&self, state: &str) -> Result<(), JsValue> {
        let consent = match state {
            "granted" => crate::privacy::budget::Consent::Granted,
            "denied" => crate::privacy::budget::Consent::Denied,
            "unknown" => crate::privacy::budget::Consent::Unknown,
            other => {
                return Err(js_error_at(
                    "invalid_option",
                    &format!("consent must be \"granted\", \"denied\" or \"unknown\", got \"{other}\""),
                    Some("consent"),
                ))
            }
        };
        self.client()?.set_consent(consent).map_err(to_js)
    }

    /// `{consent, sending, globalPrivacyControl, doNotTrack, epsilonSpentToday, epsilonPerDay,
    /// pending, sent}` — the reports exactly as they leave (or left) the device.
    pub fn privacy(&self) -> Result<JsValue, JsValue> {
        let client = self.client.try_borrow().map_err(|_| busy())?;
        to_value(&client.privacy_status(delivery::signals()))
    }

    /// Prepares today's report if consent and the budget allow, and sends what is due.
    /// Resolves with `{prepared, sent, outcome}`; never rejects.
    pub fn flush(&self) -> js_sys::Promise {
        let client = self.client.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let result = delivery::flush(client).await;
            to_value(&result)
        })
    }

    /// Stops autocapture (the instance keeps working for explicit calls).
    #[wasm_bindgen(js_name = stopAutocapture)]
    pub fn stop_autocapture(&mut self) {
        self.autocapture = None;
    }
}

impl WebForesight {
    fn client(&self) -> Result<std::cell::RefMut<'_, WebClient>, JsValue> {
        self.client.try_borrow_mut().map_err(|_| busy())
    }

    /// Computes the next `recommend` answer when the page is idle (`requestIdleCallback`, or a
    /// zero timeout where there is none, as in a Worker). A busy client or a failure just
    /// leaves nothing precomputed: `recommend` then computes as usual.
    fn schedule_precompute(&self) {
        let (client, options) = (Rc::downgrade(&self.client), self.last_options.clone());
        let task = wasm_bindgen::closure::Closure::once_into_js(move || {
            let Some(client) = client.upgrade() else { return };
            let Ok(mut c) = client.try_borrow_mut() else { return };
            let options = options.borrow().clone();
            let _ = c.precompute(&options);
        });
        let global = js_sys::global();
        let idle = js_sys::Reflect::get(&global, &"requestIdleCallback".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let scheduled = match idle {
            Some(f) => f.call1(&global, &task).is_ok(),
            None => js_sys::Reflect::get(&global, &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .is_some_and(|f| f.call2(&global, &task, &JsValue::from(0)).is_ok()),
        };
        if !scheduled {
            warn("could not schedule the idle-time precomputation; recommend() computes on call");
        }
    }
}

/// Plain JS data → a JSON `Value`, through `JSON.stringify` so that every key is seen (a misspelt
/// option is an error, not silently ignored) and a catalog of thousands of items crosses as one
/// string rather than a call per property. As in JSON, a property set to `undefined` is absent.
/// The SDK's readers (`crate::json`) take it from there.
fn from_js(value: &JsValue) -> Result<serde_json::Value, String> {
    if value.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    let text = js_sys::JSON::stringify(value).map_err(|e| storage::describe(&e))?;
    let text = text.as_string().ok_or("the value cannot be written as JSON (a function or a symbol?)")?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// `T` read from the page's value; an error names the path to what was wrong as its `field`.
fn read_js<T: FromJson>(value: &JsValue, code: &str, what: &str) -> Result<T, JsValue> {
    let v = from_js(value).map_err(|e| js_error(code, &format!("{what}: {e}")))?;
    T::from_json(&v).map_err(|e| js_error_at(code, &format!("{what}: {e}"), e.field()))
}

/// What `init` must download before the client can be built.
#[derive(Default)]
struct Downloads {
    urls: Vec<String>,
    on_progress: Option<js_sys::Function>,
    /// `loadTract`: resolves to the tract module, called only when a model is a graph.
    load_tract: Option<js_sys::Function>,
    /// `loadGpu`: resolves to the WebGPU scoring module, called only for a visitor tower in a
    /// browser with a WebGPU adapter.
    load_gpu: Option<js_sys::Function>,
}

/// Bytes given as `Uint8Array` or `ArrayBuffer`.
fn bytes_of(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(a) = value.dyn_ref::<js_sys::Uint8Array>() {
        Some(a.to_vec())
    } else {
        value.dyn_ref::<js_sys::ArrayBuffer>().map(|b| js_sys::Uint8Array::new(b).to_vec())
    }
}

/// Removes `key` from `obj` and returns its value (undefined when absent).
fn take(obj: &js_sys::Object, key: &str) -> JsValue {
    let value = js_sys::Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let _ = js_sys::Reflect::delete_property(obj, &key.into());
    value
}

/// The init config: everything JSON cannot carry — model and bundle bytes, bundle URLs, the
/// progress callback, the storage hook — is taken out first; the rest goes through `from_js`
/// (so a misspelt key is an error). The page's object is not modified.
fn config_from_js(config: &JsValue) -> Result<(Config, Downloads, Option<storage::StorageHook>), JsValue> {
    let invalid = |field: &str, m: String| js_error_at("invalid_option", &format!("invalid config: {m}"), Some(field));
    if config.is_undefined() || config.is_null() {
        return Ok((Config::default(), Downloads::default(), None));
    }
    if !config.is_object() {
        return Err(invalid("config", "pass an object".into()));
    }
    let copy = js_sys::Object::assign(&js_sys::Object::new(), config.unchecked_ref());
    let mut downloads = Downloads::default();
    let single = take(&copy, "bundleUrl");
    let many = take(&copy, "bundleUrls");
    if let Some(url) = single.as_string() {
        downloads.urls.push(url);
    } else if !single.is_undefined() && !single.is_null() {
        return Err(invalid("bundleUrl", "bundleUrl must be a string".into()));
    }
    if let Some(list) = many.dyn_ref::<js_sys::Array>() {
        for v in list.iter() {
            downloads.urls.push(v.as_string().ok_or_else(|| invalid("bundleUrls", "bundleUrls must hold strings".into()))?);
        }
    } else if !many.is_undefined() && !many.is_null() {
        return Err(invalid("bundleUrls", "bundleUrls must be an array of strings".into()));
    }
    // `storage: {get, set, remove}` replaces localStorage (a Worker has none; see storage.rs).
    let hook = take(&copy, "storage");
    let storage_hook = if hook.is_undefined() || hook.is_null() {
        None
    } else {
        Some(storage::StorageHook::from_js(&hook).map_err(|m| invalid("storage", m))?)
    };
    let load_tract = take(&copy, "loadTract");
    if let Some(f) = load_tract.dyn_ref::<js_sys::Function>() {
        downloads.load_tract = Some(f.clone());
    } else if !load_tract.is_undefined() && !load_tract.is_null() {
        return Err(invalid("loadTract", "loadTract must be a function returning (a promise of) the tract module".into()));
    }
    let load_gpu = take(&copy, "loadGpu");
    if let Some(f) = load_gpu.dyn_ref::<js_sys::Function>() {
        downloads.load_gpu = Some(f.clone());
    } else if !load_gpu.is_undefined() && !load_gpu.is_null() {
        return Err(invalid("loadGpu", "loadGpu must be a function returning (a promise of) the WebGPU module".into()));
    }
    let progress = take(&copy, "onProgress");
    if let Some(f) = progress.dyn_ref::<js_sys::Function>() {
        downloads.on_progress = Some(f.clone());
    } else if !progress.is_undefined() && !progress.is_null() {
        return Err(invalid("onProgress", "onProgress must be a function".into()));
    }
    let mut bundles = Vec::new();
    let given = take(&copy, "bundles");
    if let Some(list) = given.dyn_ref::<js_sys::Array>() {
        for (i, v) in list.iter().enumerate() {
            bundles.push(serde_bytes::ByteBuf::from(
                bytes_of(&v).ok_or_else(|| invalid("bundles", format!("bundles[{i}] must be a Uint8Array or ArrayBuffer")))?,
            ));
        }
    } else if !given.is_undefined() && !given.is_null() {
        return Err(invalid("bundles", "bundles must be an array of Uint8Array".into()));
    }
    let mut models = Vec::new();
    for section in ["recommender", "intent"] {
        let part = js_sys::Reflect::get(&copy, &section.into()).unwrap_or(JsValue::UNDEFINED);
        if !part.is_object() {
            models.push(None);
            continue;
        }
        let part = js_sys::Object::assign(&js_sys::Object::new(), part.unchecked_ref());
        let bytes = bytes_of(&take(&part, "model"))
            .ok_or_else(|| invalid(section, format!("{section}.model must be the ONNX file's bytes (Uint8Array or ArrayBuffer)")))?;
        let _ = js_sys::Reflect::set(&copy, &section.into(), &part);
        models.push(Some(bytes));
    }
    let value: serde_json::Value = from_js(&copy).map_err(|e| match unreadable_key(&copy) {
        Some(key) => invalid(&key, format!("`{key}`: {e}")),
        None => invalid("config", e),
    })?;
    let mut parsed = Config::from_json(&value).map_err(|e| invalid(e.field().unwrap_or("config"), e.to_string()))?;
    parsed.bundles = bundles;
    if let (Some(rc), Some(Some(bytes))) = (parsed.recommender.as_mut(), models.first_mut()) {
        rc.model = std::mem::take(bytes);
    }
    if let (Some(ic), Some(Some(bytes))) = (parsed.intent.as_mut(), models.get_mut(1)) {
        ic.model = std::mem::take(bytes);
    }
    Ok((parsed, downloads, storage_hook))
}

/// The key whose value JSON cannot hold (a `BigInt`, a cycle), which `JSON.stringify` throws on
/// without saying where.
fn unreadable_key(copy: &js_sys::Object) -> Option<String> {
    js_sys::Object::keys(copy).iter().filter_map(|k| k.as_string()).find(|key| {
        let value = js_sys::Reflect::get(copy, &key.into()).unwrap_or(JsValue::UNDEFINED);
        from_js(&value).is_err()
    })
}

/// Resolves in a new task (`scheduler.yield()` where the browser has it, else a zero timeout),
/// letting the page handle input and paint in between.
async fn next_task() {
    let global = js_sys::global();
    let function =
        |owner: &JsValue, name: &str| js_sys::Reflect::get(owner, &name.into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let scheduler = js_sys::Reflect::get(&global, &"scheduler".into()).unwrap_or(JsValue::UNDEFINED);
    let promise = match function(&scheduler, "yield").and_then(|y| y.call0(&scheduler).ok()) {
        Some(p) => js_sys::Promise::resolve(&p),
        None => js_sys::Promise::new(&mut |resolve, _| {
            if let Some(set_timeout) = function(&global, "setTimeout") {
                let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
            } else {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }),
    };
    // A yield cannot fail in a way that matters: resolved or not, the work goes on.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn busy() -> JsValue {
    js_error("busy", "Foresight is busy with another call (called from inside one of its own callbacks?)")
}
