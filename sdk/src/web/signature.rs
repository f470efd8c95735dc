//! A bundle's ed25519 signature checked by the browser's WebCrypto (Ed25519 in Chrome and Edge
//! 137+, Firefox 129+, Safari 17+, Node 20), so that the core wasm carries no curve arithmetic
//! of its own: ed25519-dalek and its SHA-512 were 19 KB of the core's gzip. A build with the
//! `signatures` feature (bench and test builds) checks in the module where WebCrypto cannot.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::contract::bundle::{PublicKey, Unhashed, Unverified, SIGNATURE_LEN};
use crate::error::BundleError;

/// The second step of opening a bundle ([`Unverified::check`]), its signature checked by
/// WebCrypto: the config's key must have signed it, as in every other build.
pub(super) async fn check(key: Option<&PublicKey>, read: Unverified) -> Result<Unhashed, BundleError> {
    let answer = match key {
        Some(key) => {
            let (message, signature) = read.signed();
            // Unsigned: `check_with` refuses it without asking.
            if signature == [0; SIGNATURE_LEN] {
                None
            } else {
                Some(verify(key, message, &signature).await)
            }
        }
        None => None,
    };
    read.check_with(key, |_, _, _| answer.unwrap_or(Ok(false)))
}

/// Whether `signature` over `message` is `key`'s.
async fn verify(key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<bool, BundleError> {
    let Some(subtle) = subtle() else {
        return in_module(key, message, signature, "this page has no WebCrypto (`crypto.subtle` exists only on https pages and localhost)");
    };
    let algorithm = js_sys::Object::new();
    set(&algorithm, "name", &"Ed25519".into());
    let usages = js_sys::Array::of1(&"verify".into());
    let imported = match call(
        &subtle,
        "importKey",
        &[&"raw".into(), &js_sys::Uint8Array::from(&key.as_bytes()[..]), &algorithm, &JsValue::FALSE, &usages],
    )
    .await
    {
        Ok(k) => k,
        // A browser without Ed25519 in WebCrypto says NotSupportedError; anything else is the key.
        Err(e) if error_name(&e) == "NotSupportedError" => {
            let why = format!(
                "this browser's WebCrypto has no Ed25519 ({}); Chrome and Edge 137+, Firefox 129+ and Safari 17+ have it",
                describe(&e)
            );
            return in_module(key, message, signature, &why);
        }
        Err(e) => return Err(BundleError::Key(format!("WebCrypto refused the public key: {}", describe(&e)))),
    };
    let answer =
        call(&subtle, "verify", &[&algorithm, &imported, &js_sys::Uint8Array::from(&signature[..]), &js_sys::Uint8Array::from(message)])
            .await
            .map_err(|e| BundleError::Unverifiable(format!("WebCrypto could not check it: {}", describe(&e))))?;
    Ok(answer.as_bool() == Some(true))
}

/// Where WebCrypto cannot check a signature: in the module when this build has ed25519 (the
/// `signatures` feature), else a refusal that says why.
fn in_module(key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN], why: &str) -> Result<bool, BundleError> {
    if cfg!(feature = "signatures") {
        crate::contract::bundle::verify_signature(key, message, signature)
    } else {
        Err(BundleError::Unverifiable(why.to_owned()))
    }
}

/// `crypto.subtle` of this global scope (page, Worker, Node); none on a plain-http page.
pub(super) fn subtle() -> Option<JsValue> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    js_sys::Reflect::get(&crypto, &"subtle".into()).ok().filter(|s| s.is_object())
}

/// `subtle[method](...args)`, awaited (the digests of `digest.rs` too).
pub(super) async fn call(subtle: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f = js_sys::Reflect::get(subtle, &method.into())?.dyn_into::<js_sys::Function>()?;
    let args: js_sys::Array = args.iter().copied().collect();
    let promise = f.apply(subtle, &args)?;
    JsFuture::from(js_sys::Promise::resolve(&promise)).await
}

fn set(object: &js_sys::Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(object, &key.into(), value);
}

fn error_name(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default()
}

fn describe(e: &JsValue) -> String {
    let message = js_sys::Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
    match error_name(e) {
        name if name.is_empty() => message,
        name => format!("{name}: {message}"),
    }
}
