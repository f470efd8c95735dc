//! Browser storage and clock behind the core's `Storage` and `Clock`.
//!
//! The event log lives in `localStorage`: it is synchronous, so an event tracked just before a
//! navigation is on disk before the page goes, and the log is bounded (256 KB by default) far
//! below its ~5 MB quota. IndexedDB's asynchronous writes would need a pagehide flush to give
//! the same guarantee. Where `localStorage` is missing or blocked (sandboxed iframes, some
//! privacy modes) the log lives in memory for the page's lifetime.
//!
//! A page (or the npm package's Worker mode, where there is no `localStorage`) may instead pass
//! `storage: {get(key), set(key, value), remove(key)}` in the config: synchronous functions the
//! SDK calls exactly as it would call `localStorage`, with the same error handling (a `set` that
//! throws a `QuotaExceededError` is a full quota; any other throw means storage is unavailable).

use wasm_bindgen::{JsCast, JsValue};

use crate::error::StorageError;
use crate::platform::{Clock, MemoryStorage, Storage};

/// The page's own storage object, checked once at init.
pub struct StorageHook {
    this: JsValue,
    get: js_sys::Function,
    set: js_sys::Function,
    remove: js_sys::Function,
}

impl StorageHook {
    /// `Err` names what is missing, for an `invalid_option` on `storage`.
    pub fn from_js(value: &JsValue) -> Result<Self, String> {
        if !value.is_object() {
            return Err("storage must be an object with get(key), set(key, value) and remove(key) functions".into());
        }
        let function = |name: &str| {
            js_sys::Reflect::get(value, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| format!("storage.{name} must be a function"))
        };
        Ok(StorageHook { this: value.clone(), get: function("get")?, set: function("set")?, remove: function("remove")? })
    }
}

enum Backend {
    Local(web_sys::Storage),
    Hook(StorageHook),
    Memory(MemoryStorage),
}

pub struct WebStorage {
    backend: Backend,
}

impl WebStorage {
    /// The page's storage hook when given; else `localStorage` when the page may use it; else
    /// memory, with the reason.
    pub fn open(hook: Option<StorageHook>) -> (Self, Option<String>) {
        if let Some(hook) = hook {
            return (WebStorage { backend: Backend::Hook(hook) }, None);
        }
        let local = web_sys::window().ok_or_else(|| "no window (a worker?)".to_owned()).and_then(|w| match w.local_storage() {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err("localStorage is not available".to_owned()),
            Err(e) => Err(format!("localStorage is blocked: {}", describe(&e))),
        });
        match local {
            Ok(s) => (WebStorage { backend: Backend::Local(s) }, None),
            Err(why) => (WebStorage { backend: Backend::Memory(MemoryStorage::default()) }, Some(why)),
        }
    }
}

impl Storage for WebStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        match &self.backend {
            Backend::Local(s) => s.get_item(key).map_err(|e| StorageError::Unavailable(describe(&e))),
            Backend::Hook(h) => {
                let value = h.get.call1(&h.this, &key.into()).map_err(|e| StorageError::Unavailable(describe(&e)))?;
                if value.is_null() || value.is_undefined() {
                    Ok(None)
                } else {
                    // A non-string is the hook's bug; treating it as unreadable storage lets
                    // the log start empty with a warning instead of failing init.
                    value
                        .as_string()
                        .map(Some)
                        .ok_or_else(|| StorageError::Unavailable(format!("storage.get(\"{key}\") returned a non-string")))
                }
            }
            Backend::Memory(m) => m.get(key),
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        let written = match &mut self.backend {
            Backend::Local(s) => s.set_item(key, value),
            Backend::Hook(h) => h.set.call2(&h.this, &key.into(), &value.into()).map(drop),
            Backend::Memory(m) => return m.set(key, value),
        };
        written.map_err(|e| if is_quota_error(&e) { StorageError::QuotaExceeded } else { StorageError::Unavailable(describe(&e)) })
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        match &mut self.backend {
            Backend::Local(s) => s.remove_item(key).map_err(|e| StorageError::Unavailable(describe(&e))),
            Backend::Hook(h) => h.remove.call1(&h.this, &key.into()).map(drop).map_err(|e| StorageError::Unavailable(describe(&e))),
            Backend::Memory(m) => m.remove(key),
        }
    }
}

/// A full quota, whoever threw it: `localStorage`'s `DOMException`, or a storage hook that
/// throws (or rethrows) an error named `QuotaExceededError`.
fn is_quota_error(e: &JsValue) -> bool {
    if let Some(d) = e.dyn_ref::<web_sys::DomException>() {
        if d.code() == 22 {
            return true;
        }
    }
    let name = js_sys::Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    name == "QuotaExceededError" || name == "NS_ERROR_DOM_QUOTA_REACHED"
}

/// A thrown JS value as text, whatever was thrown (an Error, a DOMException, a string).
pub fn describe(e: &JsValue) -> String {
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
