//! `feature-spec` and `features`: the intent feature definition for training code, and the
//! feature vectors of training sessions computed by the very code the SDK runs.

use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
use foresight::features::{intent_feature_spec, intent_features, INTENT_FEATURES};
use foresight::store::StoredEvent;
use foresight::Event;
use serde::Deserialize;

pub fn print_spec(out: &mut impl Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, &intent_feature_spec())?;
    writeln!(out)?;
    Ok(())
}

/// One training example: a visitor's events and the moment intent is scored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Session {
    now: f64,
    events: Vec<serde_json::Value>,
    /// Inactivity that separates sessions, as in the SDK's store config.
    #[serde(default = "default_gap")]
    session_gap_minutes: f64,
}

fn default_gap() -> f64 {
    foresight::store::StoreConfig::default().session_gap_minutes
}

/// Reads JSON lines `{"now": ms, "events": [{"at": ms, "type": ..., ...}]}` and writes a CSV
/// with one feature vector per line.
pub fn compute(input: impl BufRead, out: &mut impl Write) -> Result<usize> {
    let names: Vec<&str> = INTENT_FEATURES.iter().map(|f| f.name).collect();
    writeln!(out, "{}", names.join(","))?;
    let mut rows = 0;
    for (lineno, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", lineno + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let session: Session = serde_json::from_str(&line).with_context(|| format!("line {}: not a session object", lineno + 1))?;
        let stored = sessionize(&session).with_context(|| format!("line {}", lineno + 1))?;
        let refs: Vec<&StoredEvent> = stored.iter().collect();
        let vector = intent_features(&refs, session.now, session.session_gap_minutes * 60_000.0);
        let cells: Vec<String> = vector.iter().map(|x| format!("{x}")).collect();
        writeln!(out, "{}", cells.join(","))?;
        rows += 1;
    }
    Ok(rows)
}

/// Assigns sessions the way the SDK's event log does, validating each event as `track` would.
fn sessionize(session: &Session) -> Result<Vec<StoredEvent>> {
    let gap = session.session_gap_minutes * 60_000.0;
    let mut stored: Vec<StoredEvent> = Vec::with_capacity(session.events.len());
    for (i, raw) in session.events.iter().enumerate() {
        let mut obj = raw.as_object().cloned().with_context(|| format!("event {i} is not an object"))?;
        let at = obj.remove("at").and_then(|v| v.as_f64()).with_context(|| format!("event {i}: `at` (ms) missing"))?;
        let event = Event::from_json(&serde_json::Value::Object(obj)).with_context(|| format!("event {i}"))?;
        let sess = match stored.last() {
            None => 0,
            Some(last) if at < last.at => bail!("event {i}: events must be in time order"),
            Some(last) if at - last.at > gap => last.session + 1,
            Some(last) => last.session,
        };
        stored.push(StoredEvent { at, session: sess, event });
    }
    Ok(stored)
}
