//! Report delivery in the browser: `fetch` with `keepalive` while the page lives, `sendBeacon`
//! when it goes, randomness from `crypto.getRandomValues`, and the opt-out signals.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::storage::describe;
use super::WebClient;
use crate::platform::Randomness;
use crate::privacy::budget::OptOutSignals;
use crate::sync::Outcome;

/// The browser's cryptographic generator, the only randomness a report is built with. When
/// `crypto.getRandomValues` fails no report is prepared: one randomized by anything weaker
/// would not carry the privacy guarantee it states.
pub struct CryptoRandomness {
    failed: bool,
}

const NO_SECURE_RANDOM: &str = "crypto.getRandomValues is unavailable: no report is prepared or sent";

impl CryptoRandomness {
    /// `None` when the secure source does not answer.
    pub fn new() -> Option<Self> {
        getrandom::fill(&mut [0u8; 8]).ok()?;
        Some(CryptoRandomness { failed: false })
    }
}

impl Randomness for CryptoRandomness {
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // The trait cannot fail; the caller checks `failed` and drops what was built.
            self.failed = true;
        }
        u64::from_le_bytes(bytes)
    }
}

/// Backoff jitter only spreads retries over time; it protects nothing, so `Math.random` does.
struct Jitter;

impl Randomness for Jitter {
    fn next_u64(&mut self) -> u64 {
        (js_sys::Math::random() * u64::MAX as f64) as u64
    }
}

/// Today's report if allowed, randomized by the secure source or not at all. `Ok(true)` when
/// one was queued.
fn prepare(c: &mut WebClient) -> Result<bool, &'static str> {
    let mut rng = CryptoRandomness::new().ok_or(NO_SECURE_RANDOM)?;
    let report = c.prepare_report(signals(), &mut rng);
    if rng.failed {
        if let Some(r) = report {
            c.settle_reports(&[r.idempotency_key], Outcome::Rejected, &mut Jitter);
        }
        return Err(NO_SECURE_RANDOM);
    }
    Ok(report.is_some())
}

/// The opt-out signals of the global scope's `navigator`. In a Worker (npm Worker mode) the
/// package copies the page's values onto the worker's `navigator` first: `doNotTrack` exists
/// only on a page's `Navigator`, and a missing signal must not read as consent to send.
pub fn signals() -> OptOutSignals {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    if !navigator.is_object() {
        return OptOutSignals::default();
    }
    let get = |k: &str| js_sys::Reflect::get(&navigator, &k.into()).unwrap_or(JsValue::UNDEFINED);
    OptOutSignals {
        global_privacy_control: get("globalPrivacyControl").as_bool().unwrap_or(false),
        do_not_track: get("doNotTrack").as_string().is_some_and(|v| v == "1" || v == "yes"),
    }
}

/// What one flush did, for the page (and tests).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushResult {
    pub prepared: bool,
    pub sent: usize,
    pub outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Prepares today's report if allowed, then posts whatever is due. Never fails: a network
/// error is a retry later.
pub async fn flush(client: Rc<RefCell<WebClient>>) -> FlushResult {
    let (prepared, due) = {
        let Ok(mut c) = client.try_borrow_mut() else {
            return FlushResult { prepared: false, sent: 0, outcome: None, error: Some("busy".into()) };
        };
        let prepared = match prepare(&mut c) {
            Ok(prepared) => prepared,
            Err(e) => {
                super::warn(e);
                return FlushResult { prepared: false, sent: 0, outcome: None, error: Some(e.into()) };
            }
        };
        (prepared, c.due_reports())
    };
    let Some((keys, body, url)) = due else {
        return FlushResult { prepared, sent: 0, outcome: None, error: None };
    };
    let (status, error) = match post(&url, &body).await {
        Ok(status) => (status, None),
        Err(e) => (0, Some(e)),
    };
    let outcome = Outcome::from_status(status);
    if let Ok(mut c) = client.try_borrow_mut() {
        c.settle_reports(&keys, outcome, &mut Jitter);
    }
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry => "retry",
        Outcome::Rejected => "rejected",
    };
    if outcome == Outcome::Rejected {
        super::warn(&format!("the collector refused {} report(s) with HTTP {status}; they are dropped", keys.len()));
    }
    FlushResult { prepared, sent: keys.len(), outcome: Some(label), error }
}

async fn post(url: &str, body: &str) -> Result<u16, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // `keepalive` lets a request started during unload finish; web-sys lists it as unstable.
    let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE);
    init.set_credentials(web_sys::RequestCredentials::Omit);
    let headers = web_sys::Headers::new().map_err(|e| describe(&e))?;
    headers.set("content-type", "application/json").map_err(|e| describe(&e))?;
    init.set_headers(&headers);
    let response: web_sys::Response = JsFuture::from(super::bundle_fetch::global_fetch(url, Some(&init))?)
        .await
        .map_err(|e| describe(&e))?
        .dyn_into()
        .map_err(|_| "fetch did not return a Response".to_owned())?;
    Ok(response.status())
}

/// On `pagehide`: today's report if allowed, and everything due, by `sendBeacon`. The reports
/// stay queued: the next page resends them and the collector counts each key once.
pub fn beacon(client: &Rc<RefCell<WebClient>>) {
    let Ok(mut c) = client.try_borrow_mut() else { return };
    if let Err(e) = prepare(&mut c) {
        super::warn(e);
        return;
    }
    let Some((_, body, url)) = c.due_reports() else { return };
    if let Some(window) = web_sys::window() {
        if !window.navigator().send_beacon_with_opt_str(&url, Some(&body)).unwrap_or(false) {
            super::warn("the browser refused to queue the report beacon; it will be sent on the next visit");
        }
    }
}
