//! Browser storage and clock behind the core's `Storage` and `Clock`.
//!
//! The event log lives in `localStorage`: it is synchronous, so an event tracked just before a
//! navigation is on disk before the page goes, and the log is bounded (256 KB by default) far
//! below its ~5 MB quota. IndexedDB's asynchronous writes would need a pagehide flush to give
//! the same guarantee. Where `localStorage` is missing or blocked (sandboxed iframes, some
//! privacy modes) the log lives in memory for the page's lifetime.

use wasm_bindgen::JsCast;

use crate::error::StorageError;
use crate::store::{Clock, MemoryStorage, Storage};

pub struct WebStorage {
    local: Option<web_sys::Storage>,
    memory: MemoryStorage,
}

impl WebStorage {
    /// `localStorage` when the page may use it; otherwise memory, with the reason.
    pub fn open() -> (Self, Option<String>) {
        let local = web_sys::window().ok_or_else(|| "no window (a worker?)".to_owned()).and_then(|w| match w.local_storage() {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err("localStorage is not available".to_owned()),
            Err(e) => Err(format!("localStorage is blocked: {}", describe(&e))),
        });
        match local {
            Ok(s) => (WebStorage { local: Some(s), memory: MemoryStorage::default() }, None),
            Err(why) => (WebStorage { local: None, memory: MemoryStorage::default() }, Some(why)),
        }
    }
}

impl Storage for WebStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        match &self.local {
            Some(s) => s.get_item(key).map_err(|e| StorageError::Unavailable(describe(&e))),
            None => self.memory.get(key),
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        match &self.local {
            Some(s) => s.set_item(key, value).map_err(|e| {
                if is_quota_error(&e) {
                    StorageError::QuotaExceeded
                } else {
                    StorageError::Unavailable(describe(&e))
                }
            }),
            None => self.memory.set(key, value),
        }
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        match &self.local {
            Some(s) => s.remove_item(key).map_err(|e| StorageError::Unavailable(describe(&e))),
            None => self.memory.remove(key),
        }
    }
}

fn is_quota_error(e: &wasm_bindgen::JsValue) -> bool {
    e.dyn_ref::<web_sys::DomException>()
        .is_some_and(|d| d.name() == "QuotaExceededError" || d.name() == "NS_ERROR_DOM_QUOTA_REACHED" || d.code() == 22)
}

/// A thrown JS value as text, whatever was thrown (an Error, a DOMException, a string).
pub fn describe(e: &wasm_bindgen::JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    if let Some(d) = e.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", d.name(), d.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}
