//! What the collector does with a request body once it has it: JSON → one report or a batch →
//! each report parsed, validated and checked against the site its key names. Kept apart from
//! the HTTP layer (`server`) so that it is plain synchronous code over bytes, which the fuzz
//! targets (`fuzz/`) compile as they are.

use foresight::contract::report::{self, Report};
use foresight::privacy::budget::day_number;

use super::limits::{MAX_BATCH, MAX_CONTRIBUTIONS};

/// What a report must satisfy beyond its own validity.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The most ε one report may spend.
    pub max_epsilon: f64,
    /// Today, as days since 1970-01-01 (UTC).
    pub today: i64,
    /// The oldest report day accepted, in days before today (the SDK keeps undelivered
    /// reports queued while a visitor is offline).
    pub max_age_days: i64,
}

impl Rules {
    /// A report's day may be this many days after today: a device clock ahead of UTC, or a
    /// visitor east of the collector sending just after their midnight.
    pub const MAX_DAYS_AHEAD: i64 = 1;
}

/// Why a body is refused; `server` answers each with its own status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Not JSON at all (400).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but not reports, or reports that fail validation (422).
    #[error("{0}")]
    Unprocessable(String),
    /// More reports than one request may carry (413).
    #[error("a batch holds at most {MAX_BATCH} reports, got {0}")]
    TooMany(usize),
    /// A report for another site than the key's (403).
    #[error("{at}: the key is for site `{site}`, the report is for site `{found}`")]
    WrongSite { at: String, site: String, found: String },
}

/// The body's reports, each validated (ε at most `rules.max_epsilon`, its day within the
/// window) and for `site`, with the JSON to store for it (re-serialized: what is stored is
/// exactly what was validated).
pub fn reports(body: &[u8], site: &str, rules: &Rules) -> Result<Vec<(Report, String)>, Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let (items, batch) = match value {
        serde_json::Value::Array(items) => (items, true),
        v @ serde_json::Value::Object(_) => (vec![v], false),
        _ => return Err(Refusal::Unprocessable("expected a report object or an array of reports".into())),
    };
    if items.is_empty() {
        return Err(Refusal::Unprocessable("an empty batch: send at least one report".into()));
    }
    if items.len() > MAX_BATCH {
        return Err(Refusal::TooMany(items.len()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = if batch { format!("reports[{i}]") } else { "report".to_owned() };
        // Counted before the contributions are decoded one by one (what a body can hold is
        // already bounded by `--max-body`; this names the problem).
        let count = item.get("contributions").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
        if count > MAX_CONTRIBUTIONS {
            return Err(Refusal::Unprocessable(format!("{at}: a report carries at most {MAX_CONTRIBUTIONS} contributions, got {count}")));
        }
        let report: Report = serde_json::from_value(item).map_err(|e| Refusal::Unprocessable(format!("{at}: {e}")))?;
        report::validate(&report, rules.max_epsilon).map_err(|e| Refusal::Unprocessable(format!("{at}: {e}")))?;
        // `validate` accepted the day as a date.
        let day = day_number(&report.day).unwrap_or(rules.today);
        if day < rules.today - rules.max_age_days {
            return Err(Refusal::Unprocessable(format!(
                "{at}: day {} is more than {} days in the past; such reports are no longer collected",
                report.day, rules.max_age_days
            )));
        }
        if day > rules.today + Rules::MAX_DAYS_AHEAD {
            return Err(Refusal::Unprocessable(format!("{at}: day {} is in the future (the collector's UTC day is earlier)", report.day)));
        }
        if report.site != site {
            return Err(Refusal::WrongSite { at, site: site.to_owned(), found: report.site });
        }
        let json = serde_json::to_string(&report).map_err(|e| Refusal::Unprocessable(format!("{at}: {e}")))?;
        out.push((report, json));
    }
    Ok(out)
}
