//! Consent and the per-visitor, per-day ε budget, both kept on the device.

use serde::Serialize;
use serde_json::Value;

use crate::json::{self, Fields, FromJson};

use crate::platform::Storage;

/// What the visitor (through the page) said about sending aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    #[default]
    Unknown,
    Granted,
    Denied,
}

json::unit_variants!(Consent { "unknown" => Consent::Unknown, "granted" => Consent::Granted, "denied" => Consent::Denied });

/// Browser signals that opt a visitor out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptOutSignals {
    pub global_privacy_control: bool,
    pub do_not_track: bool,
}

/// Whether anything may be sent: only with consent granted, and — unless the shop's config
/// turns the signals off — never under Global Privacy Control or Do-Not-Track.
pub fn may_send(consent: Consent, signals: OptOutSignals, honour_signals: bool) -> bool {
    consent == Consent::Granted && !(honour_signals && (signals.global_privacy_control || signals.do_not_track))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Spent {
    day: String,
    epsilon: f64,
}

impl FromJson for Spent {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(Spent { day: f.req("day")?, epsilon: f.req("epsilon")? })
    }
}

/// ε spent today, persisted so a reload cannot reset it.
pub struct Budget {
    key: String,
    per_day: f64,
}

impl Budget {
    pub fn new(key: impl Into<String>, per_day: f64) -> Self {
        Budget { key: key.into(), per_day }
    }

    pub fn per_day(&self) -> f64 {
        self.per_day
    }

    /// ε already spent on `day` (UTC, `YYYY-MM-DD`). Unreadable state counts as fully spent:
    /// failing closed is the only safe reading of a corrupted budget.
    pub fn spent(&self, storage: &impl Storage, day: &str) -> f64 {
        match storage.get(&self.key) {
            Ok(None) => 0.0,
            Ok(Some(text)) => match crate::json::from_text::<Spent>(&text) {
                Ok(s) if s.day == day => s.epsilon,
                Ok(_) => 0.0,
                Err(_) => self.per_day,
            },
            Err(_) => self.per_day,
        }
    }

    /// Records `epsilon` against today's budget if it fits, before the report leaves.
    pub fn try_spend(&self, storage: &mut impl Storage, day: &str, epsilon: f64) -> bool {
        let spent = self.spent(storage, day);
        if spent + epsilon > self.per_day + 1e-9 {
            return false;
        }
        let record = Spent { day: day.to_owned(), epsilon: spent + epsilon };
        match serde_json::to_string(&record) {
            Ok(text) => storage.set(&self.key, &text).is_ok(),
            Err(_) => false,
        }
    }
}

/// The UTC day of a Unix time in milliseconds, `YYYY-MM-DD` — the finest time a report holds.
pub fn utc_day(ms: f64) -> String {
    // A stored time can be anything another script or an old write left (the fuzzer found
    // 6e32 ms): clamped to ±100 million days (±270,000 years) so the arithmetic below cannot
    // overflow; such a day matches no real one.
    let days = ((ms / 86_400_000.0).floor() as i64).clamp(-100_000_000, 100_000_000);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` day, or `None` when it is not a calendar date
/// (`2026-02-30`, `2026-13-01`, anything of another shape).
pub fn day_number(day: &str) -> Option<i64> {
    let d = day.as_bytes();
    let shape =
        d.len() == 10 && d[4] == b'-' && d[7] == b'-' && day.bytes().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return None;
    }
    let (y, m, dd): (i64, i64, i64) = (day[..4].parse().ok()?, day[5..7].parse().ok()?, day[8..].parse().ok()?);
    if !(1..=12).contains(&m) || dd < 1 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `utc_day`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // A day past the month's end (02-30) lands in the next month: the round trip says so.
    (utc_day(days as f64 * 86_400_000.0) == day).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStorage;

    #[test]
    fn day_numbers_are_the_inverse_of_utc_day() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2025-11-30"), Some(1_764_460_800_000 / 86_400_000));
        assert_eq!(day_number("2024-02-29").map(|d| utc_day(d as f64 * 86_400_000.0)).as_deref(), Some("2024-02-29"));
        for bad in ["2025-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-01", "20261201xx", "", "2026-12-00"] {
            assert_eq!(day_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn any_stored_time_has_a_day_without_overflow() {
        // The fuzzer's stored event: `at` 6.19e32 ms.
        for ms in [6.19e32, -6.19e32, f64::MAX, f64::MIN, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let day = utc_day(ms);
            assert!(day.len() >= 10, "{ms}: {day}");
        }
        assert_eq!(utc_day(f64::NAN), "1970-01-01");
        assert_ne!(utc_day(6.19e32), utc_day(1_764_460_800_000.0));
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(utc_day(0.0), "1970-01-01");
        assert_eq!(utc_day(1_764_460_800_000.0), "2025-11-30");
        assert_eq!(utc_day(1_764_460_799_999.0), "2025-11-29");
        assert_eq!(utc_day(951_782_400_000.0), "2000-02-29");
    }

    #[test]
    fn budget_is_enforced_per_day_and_survives_reopening() {
        let mut storage = MemoryStorage::default();
        let budget = Budget::new("b", 1.0);
        assert!(budget.try_spend(&mut storage, "2026-11-30", 0.6));
        assert!(!budget.try_spend(&mut storage, "2026-11-30", 0.6));
        let reopened = Budget::new("b", 1.0);
        assert!((reopened.spent(&storage, "2026-11-30") - 0.6).abs() < 1e-12);
        assert!(reopened.try_spend(&mut storage, "2026-11-30", 0.4));
        assert!(reopened.try_spend(&mut storage, "2026-12-01", 1.0), "a new day, a new budget");
        storage.set("b", "garbage").expect("set");
        assert!(!reopened.try_spend(&mut storage, "2026-12-01", 0.1), "corrupt state fails closed");
    }

    #[test]
    fn consent_and_signals() {
        let none = OptOutSignals::default();
        let gpc = OptOutSignals { global_privacy_control: true, do_not_track: false };
        assert!(!may_send(Consent::Unknown, none, true));
        assert!(!may_send(Consent::Denied, none, true));
        assert!(may_send(Consent::Granted, none, true));
        assert!(!may_send(Consent::Granted, gpc, true));
        assert!(may_send(Consent::Granted, gpc, false), "the shop may choose not to honour the signals");
    }
}
