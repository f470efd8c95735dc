//! Downloading a bundle with progress: `fetch`, read chunk by chunk, `onProgress({url, loaded,
//! total})` after each chunk (`total` is null when the server sends no Content-Length).

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::storage::describe;

pub async fn fetch(url: &str, on_progress: Option<&js_sys::Function>) -> Result<Vec<u8>, String> {
    let response: web_sys::Response = JsFuture::from(global_fetch(url, None)?)
        .await
        .map_err(|e| describe(&e))?
        .dyn_into()
        .map_err(|_| "fetch did not return a Response".to_owned())?;
    if !response.ok() {
        return Err(format!("HTTP {} {}", response.status(), response.status_text()));
    }
    let total = response.headers().get("content-length").ok().flatten().and_then(|s| s.parse::<f64>().ok());
    let body = response.body().ok_or("the response has no body")?;
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| "the body cannot be read as a stream".to_owned())?;
    let mut bytes: Vec<u8> = Vec::with_capacity(total.unwrap_or(0.0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| format!("download interrupted: {}", describe(&e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into())
            .map_err(|e| describe(&e))?
            .dyn_into()
            .map_err(|_| "a chunk was not bytes".to_owned())?;
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        if let Some(callback) = on_progress {
            report(callback, url, bytes.len(), total);
        }
    }
    Ok(bytes)
}

/// `fetch` of whatever global scope the SDK runs in — a page, a Worker (the npm package's Worker
/// mode downloads bundles there) or Node — since `web_sys::window()` exists only in a page.
pub fn global_fetch(url: &str, init: Option<&web_sys::RequestInit>) -> Result<js_sys::Promise, String> {
    let global = js_sys::global();
    let fetch: js_sys::Function =
        js_sys::Reflect::get(&global, &"fetch".into()).ok().and_then(|f| f.dyn_into().ok()).ok_or("this environment has no fetch")?;
    let promise = match init {
        Some(init) => fetch.call2(&global, &url.into(), init),
        None => fetch.call1(&global, &url.into()),
    };
    promise.map_err(|e| describe(&e))?.dyn_into().map_err(|_| "fetch did not return a Promise".to_owned())
}

fn report(callback: &js_sys::Function, url: &str, loaded: usize, total: Option<f64>) {
    let event = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&event, &k.into(), &v);
    };
    set("url", url.into());
    set("loaded", (loaded as f64).into());
    set("total", total.map_or(JsValue::NULL, JsValue::from));
    // The page's callback may throw; that is its bug, not a reason to fail the download.
    if let Err(e) = callback.call1(&JsValue::NULL, &event) {
        web_sys::console::warn_1(&format!("[foresight] onProgress threw: {}", describe(&e)).into());
    }
}
