//! The CLI as a data scientist runs it: a real process, real files.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_foresight-export");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child =
        Command::new(BIN).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn feature_spec_lists_the_sdk_features_in_order() {
    let (code, out, _) = run(&["feature-spec"], "");
    assert_eq!(code, 0);
    let spec: Value = serde_json::from_str(&out).expect("JSON");
    let names: Vec<&str> = spec["features"].as_array().expect("features").iter().map(|f| f["name"].as_str().expect("name")).collect();
    let sdk: Vec<&str> = foresight::features::INTENT_FEATURES.iter().map(|f| f.name).collect();
    assert_eq!(names, sdk);
    assert_eq!(spec["version"], foresight::features::INTENT_FEATURES_VERSION);
}

/// The intent fixture was trained on this command's output: if the feature code changes, this
/// fails until the fixtures are regenerated (tests/fixtures/make_fixtures.py).
#[test]
fn features_reproduce_what_the_intent_fixture_was_trained_on() {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/intent_logreg.reference.json")).expect("fixture")).expect("JSON");
    let cases = reference["cases"].as_array().expect("cases");
    let input: String = cases.iter().map(|c| serde_json::json!({"now": c["now"], "events": c["events"]}).to_string() + "\n").collect();
    let (code, out, err) = run(&["features", "--input", "-"], &input);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next().map(|h| h.split(',').count()), Some(foresight::features::INTENT_FEATURES.len()));
    for (case, line) in cases.iter().zip(lines) {
        let got: Vec<f64> = line.split(',').map(|x| x.parse().expect("float")).collect();
        let want: Vec<f64> = serde_json::from_value(case["features"].clone()).expect("features");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{}: {got:?} vs {want:?}", case["name"]);
        }
    }
}

#[test]
fn bad_input_names_the_line_and_the_field() {
    let good = r#"{"now": 1000, "events": [{"at": 0, "type": "product_view", "itemId": "a"}]}"#;
    let bad_event = r#"{"now": 1000, "events": [{"at": 0, "type": "product_view", "itemId": "a", "price": -2}]}"#;
    let (code, _, err) = run(&["features", "--input", "-"], &format!("{good}\n{bad_event}\n"));
    assert_eq!(code, 2);
    assert!(err.contains("line 2") && err.contains("price") && err.contains("negative"), "{err}");

    let (code, _, err) = run(&["features", "--input", "-"], "{not json\n");
    assert_eq!(code, 2);
    assert!(err.contains("line 1"), "{err}");

    let unordered = r#"{"now": 1000, "events": [{"at": 10, "type": "search", "query": "a"}, {"at": 5, "type": "search", "query": "b"}]}"#;
    let (code, _, err) = run(&["features", "--input", "-"], unordered);
    assert_eq!(code, 2);
    assert!(err.contains("time order"), "{err}");

    let (code, _, err) = run(&["features", "--input", "/nonexistent/sessions.jsonl"], "");
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/sessions.jsonl"), "{err}");
}
