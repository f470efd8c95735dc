//! What the core needs from the platform, as traits with in-memory versions: a key-value
//! [`Storage`] (`localStorage` in the browser), a [`Clock`], and [`Randomness`]
//! (`crypto.getRandomValues`). The browser's implementations live in `web/`; everything above
//! this module is platform-free and tested natively with the ones here.

use std::cell::Cell;
use std::collections::HashMap;

use crate::error::StorageError;

/// A key-value store of strings: `localStorage` in the browser, memory natively.
pub trait Storage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError>;
    fn remove(&mut self, key: &str) -> Result<(), StorageError>;
}

/// What `key` holds, read as JSON; `None` when it is absent, unreadable or not a `T`.
pub fn read_json<T: crate::json::FromJson>(storage: &impl Storage, key: &str) -> Option<T> {
    storage.get(key).ok().flatten().and_then(|text| crate::json::from_text(&text).ok())
}

/// Milliseconds since the Unix epoch, injected so tests control time.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// In-memory storage with an optional quota (in bytes of keys and values), for native use and
/// for tests of quota pressure.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    map: HashMap<String, String>,
    quota_bytes: Option<usize>,
}

impl MemoryStorage {
    pub fn with_quota(quota_bytes: usize) -> Self {
        MemoryStorage { map: HashMap::new(), quota_bytes: Some(quota_bytes) }
    }

    /// The keys held, in no particular order (tests check what an erase leaves).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    fn used_without(&self, key: &str) -> usize {
        self.map.iter().filter(|(k, _)| k.as_str() != key).map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self.map.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        if let Some(quota) = self.quota_bytes {
            if self.used_without(key) + key.len() + value.len() > quota {
                return Err(StorageError::QuotaExceeded);
            }
        }
        self.map.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.map.remove(key);
        Ok(())
    }
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        (**self).get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        (**self).set(key, value)
    }
    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        (**self).remove(key)
    }
}

/// The system clock (native builds).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[cfg(not(target_arch = "wasm32"))]
impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Cell<f64>);

impl ManualClock {
    pub fn new(start_ms: f64) -> Self {
        ManualClock(Cell::new(start_ms))
    }
    pub fn advance_ms(&self, ms: f64) {
        self.0.set(self.0.get() + ms);
    }
    pub fn set_ms(&self, ms: f64) {
        self.0.set(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        self.0.get()
    }
}

impl<C: Clock + ?Sized> Clock for std::rc::Rc<C> {
    fn now_ms(&self) -> f64 {
        (**self).now_ms()
    }
}

/// Uniform randomness: the browser's `crypto.getRandomValues` in the SDK, seeded generators
/// in simulations.
pub trait Randomness {
    fn next_u64(&mut self) -> u64;

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n), n > 0 (rejection sampling: no modulo bias).
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// A deterministic generator for simulations and tests (SplitMix64). Never for real reports.
#[derive(Debug, Clone)]
pub struct SeededRandomness(pub u64);

impl Randomness for SeededRandomness {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
