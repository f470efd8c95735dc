//! Store: the on-device event log — bounded by count and bytes, time-to-live per event,
//! sessionized, persisted through a `Storage` so the core stays platform-free.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capture::Event;
use crate::error::{Result, StorageError};
use crate::json::{self, Fields, FromJson};
use crate::platform::Storage;

/// Limits of the event log. The defaults keep the log well under `localStorage`'s 5 MB.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreConfig {
    pub max_events: usize,
    /// Bytes of the persisted JSON.
    pub max_bytes: usize,
    /// Time-to-live of each event.
    pub ttl_days: f64,
    /// Inactivity after which the next event starts a new session.
    pub session_gap_minutes: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { max_events: 1000, max_bytes: 256 * 1024, ttl_days: 30.0, session_gap_minutes: 30.0 }
    }
}

impl FromJson for StoreConfig {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["maxEvents", "maxBytes", "ttlDays", "sessionGapMinutes"])?;
        let d = StoreConfig::default();
        Ok(StoreConfig {
            max_events: f.or("maxEvents", d.max_events)?,
            max_bytes: f.or("maxBytes", d.max_bytes)?,
            ttl_days: f.or("ttlDays", d.ttl_days)?,
            session_gap_minutes: f.or("sessionGapMinutes", d.session_gap_minutes)?,
        })
    }
}
json::deserialize_with_reader!(StoreConfig);

impl StoreConfig {
    pub fn validate(&self) -> Result<()> {
        use crate::error::Error;
        if self.max_events == 0 {
            return Err(Error::option("store.maxEvents", "must be at least 1"));
        }
        if self.max_bytes < 1024 {
            return Err(Error::option("store.maxBytes", "must be at least 1024"));
        }
        if !(self.ttl_days > 0.0 && self.ttl_days.is_finite()) {
            return Err(Error::option("store.ttlDays", "must be a positive number of days"));
        }
        if !(self.session_gap_minutes > 0.0 && self.session_gap_minutes.is_finite()) {
            return Err(Error::option("store.sessionGapMinutes", "must be a positive number of minutes"));
        }
        Ok(())
    }

    pub fn ttl_ms(&self) -> f64 {
        self.ttl_days * 86_400_000.0
    }

    pub fn session_gap_ms(&self) -> f64 {
        self.session_gap_minutes * 60_000.0
    }
}

/// An event as kept on the device: when it happened and the session it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Milliseconds since the Unix epoch.
    pub at: f64,
    pub session: u32,
    #[serde(flatten)]
    pub event: Event,
}

/// By hand, as `{at, session, …the event's fields}`: a derived `flatten` buffers every field
/// through serde's generic content type, which costs the wasm more than the events themselves.
impl<'de> Deserialize<'de> for StoredEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        StoredEvent::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl StoredEvent {
    fn from_value(mut value: Value) -> std::result::Result<Self, String> {
        let obj = value.as_object_mut().ok_or("a stored event must be an object")?;
        let at = obj.remove("at").and_then(|v| v.as_f64()).ok_or("a stored event needs `at` (ms)")?;
        let session =
            obj.remove("session").and_then(|v| v.as_u64()).and_then(|s| u32::try_from(s).ok()).ok_or("a stored event needs `session`")?;
        let event = Event::from_json(&value).map_err(|e| e.to_string())?;
        Ok(StoredEvent { at, session, event })
    }
}

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PersistedRef<'a> {
    version: u32,
    events: &'a VecDeque<StoredEvent>,
}

struct Persisted {
    version: u32,
    events: VecDeque<StoredEvent>,
}

impl Persisted {
    /// The stored log; its events are moved out of the parsed text, not copied. A log of
    /// another format version is returned without its events, which this SDK cannot read.
    fn from_text(text: &str) -> std::result::Result<Self, String> {
        let Value::Object(mut obj) = serde_json::from_str(text).map_err(|e| e.to_string())? else {
            return Err("the stored log is not an object".into());
        };
        let version =
            obj.get("version").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or("the stored log has no format version")?;
        if version != FORMAT_VERSION {
            return Ok(Persisted { version, events: VecDeque::new() });
        }
        let Some(Value::Array(list)) = obj.remove("events") else { return Err("the stored log has no events".into()) };
        let events = list
            .into_iter()
            .enumerate()
            .map(|(i, e)| StoredEvent::from_value(e).map_err(|m| format!("events[{i}]: {m}")))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Persisted { version, events })
    }
}

/// Something the log noticed that the page's developer should hear about, but that is no
/// reason to fail: the log always opens and always accepts events.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWarning {
    /// What was stored could not be read; it was discarded and the log starts empty.
    Discarded { reason: String },
    /// Storage refused the write even after evicting; the log lives in memory for now.
    NotPersisted { error: StorageError },
}

impl std::fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreWarning::Discarded { reason } => {
                write!(f, "the stored event log was unreadable and has been discarded ({reason})")
            }
            StoreWarning::NotPersisted { error } => {
                write!(f, "the event log is kept in memory only: {error}")
            }
        }
    }
}

/// What one append did besides storing the event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppendOutcome {
    /// Whether the event was stored (not when personalization waits for consent).
    pub recorded: bool,
    /// Oldest events dropped to respect the bounds or the storage quota.
    pub evicted: usize,
    pub warning: Option<StoreWarning>,
}

/// The visitor's event log.
pub struct EventLog<S: Storage> {
    storage: S,
    key: String,
    config: StoreConfig,
    events: VecDeque<StoredEvent>,
    /// JSON length of each event in `events`, to bound bytes without re-serializing.
    sizes: VecDeque<usize>,
}

impl<S: Storage> EventLog<S> {
    /// Opens the log stored under `key`. An unreadable log is discarded (and removed), expired
    /// events are dropped; both are reported as warnings, never as errors.
    pub fn open(storage: S, key: impl Into<String>, config: StoreConfig, now_ms: f64) -> (Self, Vec<StoreWarning>) {
        let mut log = EventLog { storage, key: key.into(), config, events: VecDeque::new(), sizes: VecDeque::new() };
        let mut warnings = Vec::new();
        match log.storage.get(&log.key) {
            Ok(None) => {}
            Ok(Some(text)) => match Persisted::from_text(&text) {
                Ok(p) if p.version == FORMAT_VERSION => {
                    let ordered = p.events.iter().zip(p.events.iter().skip(1)).all(|(a, b)| a.at <= b.at);
                    if ordered && p.events.iter().all(|e| e.at.is_finite()) {
                        log.sizes = p.events.iter().map(json_len).collect();
                        log.events = p.events;
                    } else {
                        warnings.push(StoreWarning::Discarded { reason: "events out of order".into() });
                    }
                }
                Ok(p) => warnings.push(StoreWarning::Discarded { reason: format!("format version {} is not {FORMAT_VERSION}", p.version) }),
                Err(reason) => warnings.push(StoreWarning::Discarded { reason }),
            },
            Err(e) => warnings.push(StoreWarning::NotPersisted { error: e }),
        }
        if matches!(warnings.first(), Some(StoreWarning::Discarded { .. })) {
            // Best effort: a storage that cannot even remove will complain again on write.
            let _ = log.storage.remove(&log.key);
        }
        let before = log.events.len();
        log.expire(now_ms);
        if log.events.len() != before {
            if let Some(w) = log.persist() {
                warnings.push(w);
            }
        }
        (log, warnings)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The storage underneath, for the other per-visitor state kept beside the log (consent,
    /// the ε budget, the report outbox).
    pub fn into_storage(self) -> S {
        self.storage
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The events and the storage at once (reading one while writing the other).
    pub fn events_and_storage(&mut self) -> (&VecDeque<StoredEvent>, &mut S) {
        (&self.events, &mut self.storage)
    }

    pub fn events(&self) -> &VecDeque<StoredEvent> {
        &self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes the log takes as persisted JSON (approximately: separators aside).
    pub fn bytes(&self) -> usize {
        self.sizes.iter().sum::<usize>() + self.sizes.len() + 32
    }

    /// The session an event at `now_ms` belongs to.
    pub fn session_at(&self, now_ms: f64) -> u32 {
        match self.events.back() {
            None => 0,
            Some(last) if now_ms - last.at > self.config.session_gap_ms() => last.session.wrapping_add(1),
            Some(last) => last.session,
        }
    }

    /// Records an event at `now_ms`, evicting the oldest events when a bound or the storage
    /// quota requires it.
    pub fn append(&mut self, event: Event, now_ms: f64) -> AppendOutcome {
        // A clock that goes backwards (a changed system time) must not reorder the log.
        let at = self.events.back().map_or(now_ms, |last| now_ms.max(last.at));
        let session = self.session_at(at);
        let stored = StoredEvent { at, session, event };
        self.sizes.push_back(json_len(&stored));
        self.events.push_back(stored);
        let before = self.events.len();
        self.expire(now_ms);
        while self.events.len() > self.config.max_events || self.bytes() > self.config.max_bytes {
            self.pop_oldest();
        }
        let mut outcome = AppendOutcome { recorded: true, evicted: before - self.events.len(), warning: None };
        outcome.warning = self.persist_evicting(&mut outcome.evicted);
        outcome
    }

    /// Erases everything, on the device too.
    pub fn forget(&mut self) -> Result<(), StorageError> {
        self.events.clear();
        self.sizes.clear();
        self.storage.remove(&self.key)
    }

    fn pop_oldest(&mut self) {
        self.events.pop_front();
        self.sizes.pop_front();
    }

    fn expire(&mut self, now_ms: f64) {
        let cutoff = now_ms - self.config.ttl_ms();
        while self.events.front().is_some_and(|e| e.at < cutoff) {
            self.pop_oldest();
        }
    }

    fn persist(&mut self) -> Option<StoreWarning> {
        let mut evicted = 0;
        self.persist_evicting(&mut evicted)
    }

    /// Writes the log; on a full quota drops the oldest tenth and tries again, down to the
    /// newest event alone.
    fn persist_evicting(&mut self, evicted: &mut usize) -> Option<StoreWarning> {
        loop {
            let text = match serde_json::to_string(&PersistedRef { version: FORMAT_VERSION, events: &self.events }) {
                Ok(t) => t,
                Err(e) => return Some(StoreWarning::NotPersisted { error: StorageError::Unavailable(e.to_string()) }),
            };
            match self.storage.set(&self.key, &text) {
                Ok(()) => return None,
                Err(StorageError::QuotaExceeded) if self.events.len() > 1 => {
                    let drop = (self.events.len() / 10).max(1).min(self.events.len() - 1);
                    for _ in 0..drop {
                        self.pop_oldest();
                    }
                    *evicted += drop;
                }
                Err(error) => return Some(StoreWarning::NotPersisted { error }),
            }
        }
    }
}

fn json_len(e: &StoredEvent) -> usize {
    serde_json::to_string(e).map(|s| s.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStorage;
    use serde_json::json;

    const T0: f64 = 1_700_000_000_000.0;
    const MIN: f64 = 60_000.0;

    fn view(id: &str) -> Event {
        Event::from_json(&json!({"type": "product_view", "itemId": id})).expect("valid")
    }

    fn ids<S: Storage>(log: &EventLog<S>) -> Vec<String> {
        log.events()
            .iter()
            .map(|e| match &e.event {
                Event::ProductView { item_id, .. } => item_id.clone(),
                other => other.type_name().to_owned(),
            })
            .collect()
    }

    #[test]
    fn store_config_fills_what_is_left_out_from_its_defaults() {
        let c = StoreConfig::from_json(&json!({"maxEvents": 50, "ttlDays": null})).expect("reads");
        assert_eq!(c, StoreConfig { max_events: 50, ..StoreConfig::default() });
        assert_eq!(StoreConfig::from_json(&json!({"ttl": 3})).expect_err("misspelt").path(), "ttl");
        assert_eq!(StoreConfig::from_json(&json!({"maxBytes": 1.5})).expect_err("fraction").path(), "maxBytes");
    }

    #[test]
    fn persists_and_reopens() {
        let (mut log, w) = EventLog::open(MemoryStorage::default(), "k", StoreConfig::default(), T0);
        assert!(w.is_empty());
        log.append(view("a"), T0);
        log.append(view("b"), T0 + MIN);
        let storage = log.storage.clone();
        let (again, w) = EventLog::open(storage, "k", StoreConfig::default(), T0 + 2.0 * MIN);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(ids(&again), ["a", "b"]);
        assert_eq!(again.events()[1].at, T0 + MIN);
    }

    #[test]
    fn bounded_by_count_and_bytes_oldest_first() {
        let cfg = StoreConfig { max_events: 3, ..StoreConfig::default() };
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", cfg, T0);
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            log.append(view(id), T0 + i as f64);
        }
        assert_eq!(ids(&log), ["c", "d", "e"]);

        let cfg = StoreConfig { max_bytes: 2048, ..StoreConfig::default() };
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", cfg, T0);
        let mut evicted = 0;
        for i in 0..200 {
            evicted += log.append(view(&format!("item-{i:04}")), T0 + i as f64).evicted;
        }
        let stored = log.storage.get("k").expect("get").expect("present");
        assert!(stored.len() <= 2048, "persisted {} bytes", stored.len());
        assert!(evicted > 0);
        assert_eq!(ids(&log).last().map(String::as_str), Some("item-0199"));
        assert_eq!(evicted + log.len(), 200);
    }

    #[test]
    fn events_expire_after_their_ttl() {
        let cfg = StoreConfig { ttl_days: 1.0, ..StoreConfig::default() };
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", cfg.clone(), T0);
        log.append(view("old"), T0);
        log.append(view("new"), T0 + 20.0 * 60.0 * MIN);
        // Reopening a day after the first event drops it, and only it.
        let (reopened, _) = EventLog::open(log.storage.clone(), "k", cfg, T0 + 25.0 * 60.0 * MIN);
        assert_eq!(ids(&reopened), ["new"]);
        let (mut log, _) = (reopened, ());
        log.append(view("later"), T0 + 50.0 * 60.0 * MIN);
        assert_eq!(ids(&log), ["later"]);
    }

    #[test]
    fn sessions_split_on_inactivity() {
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", StoreConfig::default(), T0);
        log.append(view("a"), T0);
        log.append(view("b"), T0 + 29.0 * MIN);
        log.append(view("c"), T0 + 58.0 * MIN);
        log.append(view("d"), T0 + 89.0 * MIN);
        let sessions: Vec<u32> = log.events().iter().map(|e| e.session).collect();
        assert_eq!(sessions, [0, 0, 0, 1]);
        assert_eq!(log.session_at(T0 + 100.0 * MIN), 1);
        assert_eq!(log.session_at(T0 + 200.0 * MIN), 2);
    }

    #[test]
    fn clock_going_backwards_keeps_order() {
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", StoreConfig::default(), T0);
        log.append(view("a"), T0);
        log.append(view("b"), T0 - 5.0 * MIN);
        assert_eq!(log.events()[1].at, T0);
    }

    #[test]
    fn corrupt_store_is_discarded_with_a_warning() {
        for junk in ["{not json", "[]", r#"{"version":99,"events":[]}"#, r#"{"version":1,"events":[{"at":1}]}"#] {
            let mut storage = MemoryStorage::default();
            storage.set("k", junk).expect("set");
            let (mut log, warnings) = EventLog::open(storage, "k", StoreConfig::default(), T0);
            assert!(matches!(warnings.as_slice(), [StoreWarning::Discarded { .. }]), "{junk}: {warnings:?}");
            assert!(log.is_empty());
            assert_eq!(log.storage.get("k").expect("get"), None, "junk removed");
            log.append(view("a"), T0);
            assert_eq!(ids(&log), ["a"]);
        }
    }

    #[test]
    fn quota_pressure_evicts_oldest_and_keeps_newest() {
        let mut storage = MemoryStorage::with_quota(3000);
        storage.set("other-app", &"x".repeat(1500)).expect("room");
        let (mut log, _) = EventLog::open(storage, "k", StoreConfig::default(), T0);
        let mut warnings = 0;
        for i in 0..100 {
            warnings += log.append(view(&format!("item-{i:04}")), T0 + i as f64).warning.is_some() as usize;
        }
        assert_eq!(warnings, 0);
        assert!(log.len() < 100 && log.len() > 5, "{}", log.len());
        assert_eq!(ids(&log).last().map(String::as_str), Some("item-0099"));
        let stored = log.storage.get("k").expect("get").expect("present");
        assert!(stored.contains("item-0099"));

        // When not even one event fits, the log keeps it in memory and says so.
        let (mut log, _) = EventLog::open(MemoryStorage::with_quota(10), "k", StoreConfig::default(), T0);
        let outcome = log.append(view("a"), T0);
        assert!(matches!(outcome.warning, Some(StoreWarning::NotPersisted { error: StorageError::QuotaExceeded })));
        assert_eq!(ids(&log), ["a"]);
    }

    #[test]
    fn forget_erases_the_device_copy() {
        let (mut log, _) = EventLog::open(MemoryStorage::default(), "k", StoreConfig::default(), T0);
        log.append(view("a"), T0);
        log.forget().expect("forget");
        assert!(log.is_empty());
        assert_eq!(log.storage.get("k").expect("get"), None);
    }
}
