//! The last step of verifying a bundle in the browser: the SHA-256 of each part by the
//! browser's SubtleCrypto, which runs natively and off the page's thread, instead of in the
//! module (a ~25 ms task for the demo's 1 MB recommender on this machine). Where there is no
//! SubtleCrypto (a page on plain http) the module hashes them itself.

use wasm_bindgen::JsValue;

use super::signature::{call, subtle};
use crate::contract::bundle::{Bundle, Unhashed};
use crate::error::Result;

async fn sha256_hex(subtle: &JsValue, bytes: &[u8]) -> Option<String> {
    // SubtleCrypto copies its input when called, so the module's memory may change afterwards.
    let buffer = call(subtle, "digest", &[&"SHA-256".into(), &js_sys::Uint8Array::from(bytes)]).await.ok()?;
    let out = js_sys::Uint8Array::new(&buffer).to_vec();
    Some(out.iter().map(|b| format!("{b:02x}")).collect())
}

/// Finishes verifying `opened`; the browser's hashing failing for any reason falls back to the
/// module's, so a digest is never skipped.
pub(super) async fn verify(opened: Unhashed) -> Result<Bundle> {
    let Some(subtle) = subtle() else {
        return Ok(opened.hash_parts_here()?);
    };
    let mut digests = Vec::new();
    let mut failed = false;
    for part in opened.parts() {
        match sha256_hex(&subtle, part).await {
            Some(hex) => digests.push(hex),
            None => {
                failed = true;
                break;
            }
        }
    }
    if failed {
        return Ok(opened.hash_parts_here()?);
    }
    Ok(opened.with_digests(&digests)?)
}
