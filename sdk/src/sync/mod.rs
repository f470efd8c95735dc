//! Sync: when and how aggregate reports leave the device. Consent-gated and budgeted before a
//! report exists; then queued on the device (capped), delivered in batches, retried with
//! exponential backoff and full jitter, and each report carries its idempotency key so a retry
//! the collector already committed is counted once. The clock and the randomness are injected;
//! the browser layer supplies `fetch`/`sendBeacon`.

use serde::Serialize;
use serde_json::Value;

use crate::error::Num;
use crate::json::{self, Fields, FromJson};
use crate::platform::Randomness;
use crate::privacy::budget::{utc_day, Budget, Consent, OptOutSignals};
use crate::privacy::mechanism::KaryRr;
pub mod day;

use crate::contract::report::{Mechanisms, Report};
use crate::platform::Storage;
use crate::store::StoredEvent;
use day::{DaySummary, Shown};

/// Where and how reports go.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncConfig {
    /// The collector's report endpoint, e.g. `https://collect.shop.example/v1/reports`.
    pub url: String,
    /// The shop's public site id.
    pub site: String,
    /// The site's key, sent as `?key=` (beacons cannot set headers).
    pub key: String,
    pub epsilon_per_day: f64,
    pub mechanisms: Mechanisms,
    /// Honour Global Privacy Control and Do-Not-Track (default true).
    pub honour_opt_out_signals: bool,
    pub max_queued: usize,
}

impl FromJson for SyncConfig {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["url", "site", "key", "epsilonPerDay", "mechanisms", "honourOptOutSignals", "maxQueued"])?;
        Ok(SyncConfig {
            url: f.req("url")?,
            site: f.req("site")?,
            key: f.req("key")?,
            epsilon_per_day: f.or("epsilonPerDay", default_budget())?,
            mechanisms: f.or_default("mechanisms")?,
            honour_opt_out_signals: f.or("honourOptOutSignals", yes())?,
            max_queued: f.or("maxQueued", default_queue_cap())?,
        })
    }
}
json::deserialize_with_reader!(SyncConfig);

fn default_budget() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_queue_cap() -> usize {
    30
}

impl SyncConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!("url `{}` must be an http(s) URL", self.url));
        }
        if self.site.is_empty() || self.key.is_empty() {
            return Err("site and key must not be empty".into());
        }
        if !(self.epsilon_per_day > 0.0 && self.epsilon_per_day <= 10.0) {
            return Err(format!("epsilonPerDay must be in (0, 10], got {}", Num(self.epsilon_per_day)));
        }
        self.mechanisms.validate()?;
        if self.mechanisms.epsilon() > self.epsilon_per_day + 1e-9 {
            return Err(format!(
                "one report spends ε = {} but the daily budget is {}",
                Num(self.mechanisms.epsilon()),
                Num(self.epsilon_per_day)
            ));
        }
        if self.max_queued == 0 {
            return Err("maxQueued must be at least 1".into());
        }
        Ok(())
    }

    /// The URL reports are posted to, with the site key.
    pub fn endpoint(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}key={}", self.url, percent_encode(&self.key))
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: committed (or a duplicate the collector already had).
    Delivered,
    /// Network failure, 429 or 5xx: try again later.
    Retry,
    /// Any other 4xx: the report itself is unacceptable; retrying cannot help.
    Rejected,
}

impl Outcome {
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Delivered,
            429 | 500..=599 | 0 => Outcome::Retry,
            _ => Outcome::Rejected,
        }
    }
}

/// A report as it leaves the device: its JSON text, written once when the report is built. The
/// device never reads a report back into its struct, so the shipped wasm carries no report
/// parser (a derived one is ~30 KB); the collector is what parses reports.
///
/// The text is what `serde_json::Value` writes (keys sorted), so that the outbox can keep it as
/// a JSON value and read it back as the same bytes: what is queued, sent and shown in the
/// privacy panel is one text. (serde_json's `RawValue` would keep any text, but its feature
/// makes every `Value` parse able to fail on a float, which links `core::fmt`'s float printer
/// into the core: see `error::Num`.)
#[derive(Debug, Clone, PartialEq)]
pub struct ReportText(String);

impl ReportText {
    fn of(report: &Report) -> Option<ReportText> {
        serde_json::to_value(report).ok().map(|v| ReportText(v.to_string()))
    }

    /// The JSON, exactly as sent.
    pub fn json(&self) -> &str {
        &self.0
    }

    fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    fn idempotency_key(&self) -> String {
        self.value()["idempotencyKey"].as_str().unwrap_or_default().to_owned()
    }
}

/// Nested as the report's JSON value (in the outbox, and in the privacy panel's status).
impl Serialize for ReportText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// An outbox written by an SDK that kept the report's keys in the order it wrote them gets them
/// sorted here: the same report, and from then on the text it is sent and shown as.
impl FromJson for ReportText {
    fn from_json(v: &Value) -> json::Result<Self> {
        match v {
            Value::Object(_) => Ok(ReportText(v.to_string())),
            _ => Err(json::wrong(v, "a report (an object)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub report: ReportText,
    /// The report's idempotency key (outboxes written before it was kept here have none: it is
    /// read from the report when the outbox opens).
    pub key: String,
    pub attempts: u32,
    pub next_attempt_ms: f64,
}

impl FromJson for Pending {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(Pending {
            report: f.req("report")?,
            key: f.or_default("key")?,
            attempts: f.req("attempts")?,
            next_attempt_ms: f.req("nextAttemptMs")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outbox {
    pending: Vec<Pending>,
    /// The last day a report was built for.
    last_day: Option<String>,
    /// Reports that left the device, for the privacy panel (most recent last, capped).
    sent: Vec<ReportText>,
}

impl FromJson for Outbox {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(Outbox { pending: f.req("pending")?, last_day: f.opt("lastDay")?, sent: f.req("sent")? })
    }
}

const BASE_DELAY_MS: f64 = 2_000.0;
const MAX_DELAY_MS: f64 = 3_600_000.0;
const SENT_LOG: usize = 20;

/// Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempts)].
pub fn backoff_ms(attempts: u32, rng: &mut impl Randomness) -> f64 {
    let cap = (BASE_DELAY_MS * 2f64.powi(attempts.min(30) as i32)).min(MAX_DELAY_MS);
    rng.unit() * cap
}

/// What the client adds to the day's events for its report.
#[derive(Debug, Clone, Default)]
pub struct DayInputs<'a> {
    pub max_intent: Option<f32>,
    pub shown: &'a [Shown],
    /// (experiment name, mechanism, true joint value) per running experiment.
    pub experiments: Vec<(String, KaryRr, u32)>,
}

/// The device side of sync: the outbox and the rules around it.
pub struct Sync {
    config: SyncConfig,
    key: String,
    budget: Budget,
    outbox: Outbox,
}

impl Sync {
    /// Opens the outbox kept under `key` (an unreadable one starts empty) and the ε budget kept
    /// under `budget_key`.
    pub fn open(config: SyncConfig, key: impl Into<String>, budget_key: impl Into<String>, storage: &impl Storage) -> Result<Self, String> {
        config.validate()?;
        let key = key.into();
        let mut outbox: Outbox = crate::platform::read_json(storage, &key).unwrap_or_default();
        for p in outbox.pending.iter_mut().filter(|p| p.key.is_empty()) {
            p.key = p.report.idempotency_key();
        }
        let budget = Budget::new(budget_key, config.epsilon_per_day);
        Ok(Sync { config, key, budget, outbox })
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// Builds and queues today's report if consent, the signals, the budget and the once-a-day
    /// rule all allow; returns it. The ε is recorded before the report exists.
    #[allow(clippy::too_many_arguments)]
    pub fn maybe_report(
        &mut self,
        storage: &mut impl Storage,
        consent: Consent,
        signals: OptOutSignals,
        events: &[&StoredEvent],
        inputs: DayInputs<'_>,
        now_ms: f64,
        rng: &mut impl Randomness,
    ) -> Option<Report> {
        if !crate::privacy::budget::may_send(consent, signals, self.config.honour_opt_out_signals) {
            return None;
        }
        let day = utc_day(now_ms);
        if self.outbox.last_day.as_deref() == Some(day.as_str()) {
            return None;
        }
        let todays: Vec<&StoredEvent> = events.iter().copied().filter(|e| utc_day(e.at) == day).collect();
        if todays.is_empty() {
            return None;
        }
        let epsilon = self.config.mechanisms.epsilon() + inputs.experiments.iter().map(|e| e.1.epsilon).sum::<f64>();
        if !self.budget.try_spend(storage, &day, epsilon) {
            return None;
        }
        let mut summary = DaySummary::from_events(todays.iter().copied(), inputs.max_intent, inputs.shown);
        summary.experiments = inputs.experiments;
        let report = day::build(&self.config.site, &day, &summary, &self.config.mechanisms, rng);
        self.outbox.last_day = Some(day);
        if let Some(text) = ReportText::of(&report) {
            let key = report.idempotency_key.clone();
            self.outbox.pending.push(Pending { report: text, key, attempts: 0, next_attempt_ms: now_ms });
        }
        let over = self.outbox.pending.len().saturating_sub(self.config.max_queued);
        self.outbox.pending.drain(..over);
        self.save(storage);
        Some(report)
    }

    /// Reports due now, as the JSON array body one POST carries.
    pub fn due(&self, now_ms: f64) -> Option<(Vec<String>, String)> {
        let due: Vec<&Pending> = self.outbox.pending.iter().filter(|p| p.next_attempt_ms <= now_ms).take(50).collect();
        if due.is_empty() {
            return None;
        }
        let keys = due.iter().map(|p| p.key.clone()).collect();
        let body = format!("[{}]", due.iter().map(|p| p.report.json()).collect::<Vec<_>>().join(","));
        Some((keys, body))
    }

    /// Applies a delivery outcome to the reports that were sent.
    pub fn settle(&mut self, storage: &mut impl Storage, keys: &[String], outcome: Outcome, now_ms: f64, rng: &mut impl Randomness) {
        let mut sent = Vec::new();
        self.outbox.pending.retain_mut(|p| {
            if !keys.contains(&p.key) {
                return true;
            }
            match outcome {
                Outcome::Delivered => {
                    sent.push(p.report.clone());
                    false
                }
                Outcome::Rejected => false,
                Outcome::Retry => {
                    p.attempts += 1;
                    p.next_attempt_ms = now_ms + backoff_ms(p.attempts, rng);
                    true
                }
            }
        });
        self.outbox.sent.extend(sent);
        let over = self.outbox.sent.len().saturating_sub(SENT_LOG);
        self.outbox.sent.drain(..over);
        self.save(storage);
    }

    pub fn pending(&self) -> &[Pending] {
        &self.outbox.pending
    }

    /// What has left the device, most recent last.
    pub fn sent(&self) -> &[ReportText] {
        &self.outbox.sent
    }

    pub fn epsilon_spent(&self, storage: &impl Storage, now_ms: f64) -> f64 {
        self.budget.spent(storage, &utc_day(now_ms))
    }

    /// Forgets the queue and the log of sent reports (the ε already spent stays spent).
    pub fn forget(&mut self, storage: &mut impl Storage) {
        let last_day = self.outbox.last_day.take();
        self.outbox = Outbox { last_day, ..Outbox::default() };
        self.save(storage);
    }

    fn save(&self, storage: &mut impl Storage) {
        if let Ok(text) = serde_json::to_string(&self.outbox) {
            // A full quota loses the queue, never the page: reports are best effort.
            let _ = storage.set(&self.key, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Event;
    use crate::platform::MemoryStorage;
    use crate::platform::SeededRandomness;

    const DAY: f64 = 86_400_000.0;
    const T0: f64 = 1_764_460_800_000.0 + 3_600_000.0; // 2025-11-30 01:00 UTC

    fn config() -> SyncConfig {
        serde_json::from_value(serde_json::json!({"url": "https://c.example/v1/reports", "site": "shop", "key": "k&y"})).expect("config")
    }

    fn views(at: f64) -> Vec<StoredEvent> {
        (0..3)
            .map(|i| StoredEvent {
                at: at + f64::from(i),
                session: 0,
                event: Event::from_json(&serde_json::json!({"type": "product_view", "itemId": format!("i{i}")})).expect("valid"),
            })
            .collect()
    }

    #[test]
    fn config_defaults_apply_when_absent_and_misspelt_mechanisms_are_refused() {
        let c = config();
        assert_eq!((c.epsilon_per_day, c.honour_opt_out_signals, c.max_queued), (1.0, true, 30));
        assert_eq!(c.mechanisms, Mechanisms::default());
        assert!(c.validate().is_ok());
        let err = SyncConfig::from_json(&serde_json::json!({
            "url": "https://c.example", "site": "s", "key": "k", "mechanisms": {"itemView": {"hashes": 16, "width": 1024, "epsilon": 0.3, "eps": 1}},
        }))
        .expect_err("misspelt");
        assert_eq!(err.path(), "mechanisms.itemView.eps");
        let err = SyncConfig::from_json(&serde_json::json!({"site": "s", "key": "k"})).expect_err("no url");
        assert_eq!(err.to_string(), "`url`: missing field");
    }

    #[test]
    fn an_outbox_written_before_keys_were_kept_still_delivers_its_reports_as_shown() {
        let mut storage = MemoryStorage::default();
        let report = r#"{"idempotencyKey":"abc","site":"shop","epsilon":0.5}"#;
        let old = format!(r#"{{"pending":[{{"report":{report},"attempts":1,"nextAttemptMs":0}}],"lastDay":null,"sent":[]}}"#);
        storage.set("outbox", &old).expect("stored");
        let mut sync = Sync::open(config(), "outbox", "budget", &storage).expect("opens");
        // Its keys come out sorted: the same report, sent as the text the privacy panel shows.
        let sorted = r#"{"epsilon":0.5,"idempotencyKey":"abc","site":"shop"}"#;
        assert_eq!(sync.pending().iter().map(|p| p.report.json()).collect::<Vec<_>>(), vec![sorted]);
        let (keys, body) = sync.due(T0).expect("due");
        assert_eq!(keys, vec!["abc".to_owned()]);
        assert_eq!(body, format!("[{sorted}]"));
        sync.settle(&mut storage, &keys, Outcome::Delivered, T0, &mut SeededRandomness(1));
        assert!(sync.pending().is_empty());
        assert_eq!(sync.sent().iter().map(ReportText::json).collect::<Vec<_>>(), vec![sorted]);
        // Stored and read back, the text stays the same bytes.
        let reopened = Sync::open(config(), "outbox", "budget", &storage).expect("opens");
        assert_eq!(reopened.sent().iter().map(ReportText::json).collect::<Vec<_>>(), vec![sorted]);
    }

    #[test]
    fn a_report_is_queued_sent_and_kept_as_one_text() {
        let mut storage = MemoryStorage::default();
        let mut rng = SeededRandomness(7);
        let events = views(T0);
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let mut sync = Sync::open(config(), "o", "o.budget", &storage).expect("valid");
        let report = sync
            .maybe_report(&mut storage, Consent::Granted, OptOutSignals::default(), &refs, DayInputs::default(), T0, &mut rng)
            .expect("a report");
        let queued = sync.pending()[0].report.json().to_owned();
        let parsed: Report = serde_json::from_str(&queued).expect("a report");
        assert_eq!(parsed, report);
        let (keys, body) = sync.due(T0).expect("due");
        assert_eq!(body, format!("[{queued}]"));
        // The outbox as stored reads back as the same text, floats included.
        let reopened = Sync::open(config(), "o", "o.budget", &storage).expect("opens");
        assert_eq!(reopened.pending()[0].report.json(), queued);
        sync.settle(&mut storage, &keys, Outcome::Delivered, T0, &mut rng);
        assert_eq!(sync.sent()[0].json(), queued);
        let privacy = serde_json::to_value(sync.sent()).expect("serializes");
        assert_eq!(privacy[0], serde_json::from_str::<Value>(&queued).expect("json"));
    }

    #[test]
    fn nothing_leaves_without_consent_or_under_opt_out_signals() {
        let mut storage = MemoryStorage::default();
        let mut rng = SeededRandomness(1);
        let events = views(T0);
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let mut sync = Sync::open(config(), "o", "o.budget", &storage).expect("valid");
        for consent in [Consent::Unknown, Consent::Denied] {
            assert!(sync
                .maybe_report(&mut storage, consent, OptOutSignals::default(), &refs, DayInputs::default(), T0, &mut rng)
                .is_none());
        }
        let gpc = OptOutSignals { global_privacy_control: true, do_not_track: false };
        assert!(sync.maybe_report(&mut storage, Consent::Granted, gpc, &refs, DayInputs::default(), T0, &mut rng).is_none());
        assert!(sync.pending().is_empty());
        assert_eq!(sync.epsilon_spent(&storage, T0), 0.0);
    }

    #[test]
    fn one_report_per_day_within_budget_and_the_queue_survives_reopening() {
        let mut storage = MemoryStorage::default();
        let mut rng = SeededRandomness(2);
        let events = views(T0);
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let mut sync = Sync::open(config(), "o", "o.budget", &storage).expect("valid");
        let r = sync
            .maybe_report(
                &mut storage,
                Consent::Granted,
                OptOutSignals::default(),
                &refs,
                DayInputs { max_intent: Some(0.5), ..Default::default() },
                T0,
                &mut rng,
            )
            .expect("report");
        assert_eq!(r.day, "2025-11-30");
        assert!(sync
            .maybe_report(&mut storage, Consent::Granted, OptOutSignals::default(), &refs, DayInputs::default(), T0 + 1000.0, &mut rng)
            .is_none());
        assert!((sync.epsilon_spent(&storage, T0) - 1.0).abs() < 1e-9);
        let reopened = Sync::open(config(), "o", "o.budget", &storage).expect("valid");
        assert_eq!(reopened.pending().len(), 1, "the queue is persisted");
        // The next day, with that day's events, a new report.
        let mut sync = reopened;
        let next = views(T0 + DAY);
        let refs: Vec<&StoredEvent> = next.iter().collect();
        assert!(sync
            .maybe_report(&mut storage, Consent::Granted, OptOutSignals::default(), &refs, DayInputs::default(), T0 + DAY, &mut rng)
            .is_some());
        assert_eq!(sync.pending().len(), 2);
    }

    #[test]
    fn delivery_retries_with_backoff_and_drops_rejected_reports() {
        let mut storage = MemoryStorage::default();
        let mut rng = SeededRandomness(3);
        let events = views(T0);
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let mut sync = Sync::open(config(), "o", "o.budget", &storage).expect("valid");
        sync.maybe_report(&mut storage, Consent::Granted, OptOutSignals::default(), &refs, DayInputs::default(), T0, &mut rng)
            .expect("report");
        let (keys, body) = sync.due(T0).expect("due now");
        let sent: Vec<Report> = serde_json::from_str(&body).expect("a JSON array of reports");
        assert_eq!(sent.len(), 1);
        sync.settle(&mut storage, &keys, Outcome::from_status(503), T0, &mut rng);
        let next = sync.pending()[0].next_attempt_ms;
        assert!(next > T0 && next <= T0 + 4_000.0, "first retry within 2 s · 2^1");
        assert!(sync.due(T0).is_none(), "not due before its backoff");
        let (keys2, body2) = sync.due(next).expect("due after backoff");
        assert_eq!(keys2, keys, "the same report, with the same idempotency key");
        assert_eq!(body2, body, "byte-identical retry");
        sync.settle(&mut storage, &keys, Outcome::from_status(202), next, &mut rng);
        assert!(sync.pending().is_empty());
        assert_eq!(sync.sent().len(), 1);
        assert_eq!(Outcome::from_status(429), Outcome::Retry);
        assert_eq!(Outcome::from_status(422), Outcome::Rejected);
        assert_eq!(Outcome::from_status(0), Outcome::Retry, "a network error");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = SeededRandomness(4);
        let mut max_seen = |attempts| (0..200).map(|_| backoff_ms(attempts, &mut rng)).fold(0.0, f64::max);
        assert!(max_seen(1) <= 4_000.0);
        let five = max_seen(5);
        assert!(five > 4_000.0 && five <= 64_000.0);
        assert!(max_seen(40) <= MAX_DELAY_MS);
    }

    #[test]
    fn config_is_checked() {
        let mut c = config();
        c.epsilon_per_day = 0.5;
        assert!(c.validate().unwrap_err().contains("budget"));
        let mut c = config();
        c.url = "ftp://x".into();
        assert!(c.validate().is_err());
        assert_eq!(config().endpoint(), "https://c.example/v1/reports?key=k%26y");
    }
}
