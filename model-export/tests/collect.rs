//! `foresight-export collect` and `aggregates`, end to end: the real binary on a free loopback
//! port, real HTTP, reports built by the SDK's own encoding code, SQLite in a tempdir (and a
//! throwaway PostgreSQL cluster when its binaries are on the machine).

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foresight::contract::report::{Mechanisms, RecStage, Report, INTENT_BUCKETS, NOTHING};
use foresight::platform::{Randomness, SeededRandomness};
use foresight::privacy::mechanism::{Hcms, KaryRr};
use foresight::sync::day::DaySummary;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_foresight-export");
const SHOP_KEY: &str = "shop-key-0001";
const OTHER_KEY: &str = "other-key-002";

/// The report day of the tests: yesterday (UTC), as the SDK reports a finished day; the
/// collector refuses days far from its own.
fn day() -> &'static str {
    static DAY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DAY.get_or_init(|| days_ago(1))
}

/// The UTC day `n` days before today (negative: after).
fn days_ago(n: i32) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as f64;
    foresight::privacy::budget::utc_day(now - f64::from(n) * 86_400_000.0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(20))).build().into()
}

/// The collector binary, killed on drop.
struct Collector {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Collector {
    fn start(dir: &Path, db: &str, extra: &[&str]) -> Collector {
        let port = free_port();
        let log = dir.join(format!("collector-{port}.log"));
        let mut args = vec![
            "collect".to_owned(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            "--db".into(),
            db.to_owned(),
            "--site".into(),
            format!("shop={SHOP_KEY}"),
            "--site".into(),
            format!("other={OTHER_KEY}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start the collector");
        let mut c = Collector { child, port, log };
        c.wait_healthy();
        c
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_millis(500))).build().into();
        loop {
            if let Ok(r) = agent.get(&self.url("/v1/health")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the collector exited ({status}):\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "the collector did not come up:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn health(&self) -> u16 {
        agent().get(&self.url("/v1/health")).call().map(|r| r.status().as_u16()).unwrap_or(0)
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

fn send(url: &str, key: Option<&str>, header_key: Option<&str>, content_type: Option<&str>, body: &[u8], origin: Option<&str>) -> Answer {
    let url = match key {
        Some(k) => format!("{url}?key={k}"),
        None => url.to_owned(),
    };
    let mut req = agent().post(&url);
    if let Some(k) = header_key {
        req = req.header("X-Foresight-Key", k);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    answer(req.send(body).expect("HTTP exchange"))
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Answer { status, headers, body }
}

fn post_reports(c: &Collector, reports: &[Report]) -> Answer {
    let body = serde_json::to_vec(reports).expect("json");
    send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("text/plain;charset=UTF-8"), &body, None)
}

/// A report built by the SDK's real code: one viewed item, maybe a transition, its category.
fn one_report(site: &str, day: &str, rng: &mut SeededRandomness, mechanisms: &Mechanisms) -> Report {
    let i = rng.below(20);
    let summary = DaySummary {
        viewed_items: vec![format!("film-{i}")],
        transitions: vec![format!("film-{i}>film-{}", (i + 1) % 20)],
        categories: vec![format!("genre-{}", i % 4)],
        max_intent: Some(0.42),
        recommended: vec![format!("film-{}", (i + 2) % 20)],
        rec_stage: RecStage::Clicked,
        experiments: Vec::new(),
    };
    foresight::sync::day::build(site, day, &summary, mechanisms, rng)
}

/// The default mechanisms with these ε, in report order (item view, transition, category,
/// intent, outcome, recommended item).
fn mechanisms_with(eps: [f64; 6]) -> Mechanisms {
    let d = Mechanisms::default();
    Mechanisms {
        item_view: Hcms { epsilon: eps[0], ..d.item_view },
        item_transition: Hcms { epsilon: eps[1], ..d.item_transition },
        category_view: Hcms { epsilon: eps[2], ..d.category_view },
        intent_bucket: KaryRr { epsilon: eps[3], ..d.intent_bucket },
        rec_outcome: KaryRr { epsilon: eps[4], ..d.rec_outcome },
        rec_item: Hcms { epsilon: eps[5], ..d.rec_item },
    }
}

fn reports(n: usize, seed: u64) -> Vec<Report> {
    let mut rng = SeededRandomness(seed);
    let m = Mechanisms::default();
    (0..n).map(|_| one_report("shop", day(), &mut rng, &m)).collect()
}

fn aggregates_json(db: &str, extra: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["aggregates", "--db", db, "--site", "shop", "--format", "json"])
        .args(extra)
        .output()
        .expect("run aggregates");
    assert!(out.status.success(), "aggregates failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("aggregates JSON")
}

fn stored_count(db: &str) -> u64 {
    aggregates_json(db, &[])["reports"].as_u64().expect("a count")
}

// ---------------------------------------------------------------------------------------------
// Scenarios shared by SQLite and PostgreSQL

/// Accepted → stored; a duplicate idempotency key is acknowledged and stored once.
fn accept_and_deduplicate(dir: &Path, db: &str) {
    let c = Collector::start(dir, db, &[]);
    let r = reports(4, 11);
    let one = serde_json::to_vec(&r[0]).expect("json");

    // One report, as sendBeacon sends it: text/plain, the key in the query.
    let a = send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("text/plain;charset=UTF-8"), &one, None);
    assert_eq!(a.status, 202, "{:?}", a.body);
    assert_eq!(a.body, serde_json::json!({"accepted": 1, "duplicates": 0}));
    // The same report again (a retry): acknowledged, not stored twice.
    let a = send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("application/json"), &one, None);
    assert_eq!(a.status, 202);
    assert_eq!(a.body, serde_json::json!({"accepted": 0, "duplicates": 1}));
    // A batch holding it and three new ones, with the key as a header.
    let batch = serde_json::to_vec(&r).expect("json");
    let a = send(&c.url("/v1/reports"), None, Some(SHOP_KEY), Some("application/json"), &batch, None);
    assert_eq!(a.status, 202, "{:?}", a.body);
    assert_eq!(a.body, serde_json::json!({"accepted": 3, "duplicates": 1}));
    // A batch repeating one report twice counts it once.
    let twice = serde_json::to_vec(&[&r[1], &r[1]]).expect("json");
    let a = send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("application/json"), &twice, None);
    assert_eq!(a.body, serde_json::json!({"accepted": 0, "duplicates": 2}));
    assert_eq!(stored_count(db), 4);
    // The same idempotency key for another site is another report.
    let mut elsewhere = r[0].clone();
    elsewhere.site = "other".into();
    let a =
        send(&c.url("/v1/reports"), Some(OTHER_KEY), None, Some("application/json"), &serde_json::to_vec(&elsewhere).expect("json"), None);
    assert_eq!(a.body, serde_json::json!({"accepted": 1, "duplicates": 0}));
    assert_eq!(stored_count(db), 4, "other site's reports are not shop's");
}

/// `kill -9` while reports stream in from two threads; after a restart on the same database
/// every acknowledged report is there (re-sending each is answered "duplicate").
fn kill9_keeps_acknowledged(dir: &Path, db: &str) {
    let mut c = Collector::start(dir, db, &["--rate-per-minute", "10000000"]);
    let acked: Arc<Mutex<Vec<Report>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = c.url("/v1/reports");
    let senders: Vec<_> = (0..2u64)
        .map(|t| {
            let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let all = reports(300, 1000 + t);
                for chunk in all.chunks(if t == 0 { 1 } else { 3 }) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = serde_json::to_vec(chunk).expect("json");
                    match agent.post(&format!("{url}?key={SHOP_KEY}")).header("Content-Type", "application/json").send(&body[..]) {
                        Ok(r) if r.status() == 202 => acked.lock().unwrap().extend_from_slice(chunk),
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break, // the collector is gone
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 150 {
        assert!(Instant::now() < deadline, "too slow: {} acknowledged", acked.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(2));
    }
    c.kill9();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().expect("sender");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    let c = Collector::start(dir, db, &["--rate-per-minute", "10000000"]);
    let stored = stored_count(db);
    assert!(stored >= acked.len() as u64, "{stored} stored < {} acknowledged", acked.len());
    let mut duplicates = 0;
    for chunk in acked.chunks(50) {
        let a = post_reports(&c, chunk);
        assert_eq!(a.status, 202);
        assert_eq!(a.body["accepted"], 0, "an acknowledged report was lost: {:?}", a.body);
        duplicates += a.body["duplicates"].as_u64().expect("n");
    }
    assert_eq!(duplicates, acked.len() as u64);
    eprintln!("kill -9: {} acknowledged before the kill, {stored} stored after the restart", acked.len());
}

// ---------------------------------------------------------------------------------------------
// SQLite

fn sqlite_db(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("collector.db").display())
}

#[test]
fn sqlite_accepts_stores_and_deduplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    accept_and_deduplicate(dir.path(), &db);

    // What is stored: the validated report and nothing about the request.
    let conn = rusqlite::Connection::open(dir.path().join("collector.db")).expect("open");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('reports')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["id", "site", "idempotency_key", "day", "epsilon", "received_day", "body_json"]);
    let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
    let r = reports(4, 11);
    let (body, stored_day, eps): (String, String, f64) = conn
        .query_row("SELECT body_json, day, epsilon FROM reports WHERE site='shop' AND idempotency_key=?1", [&r[0].idempotency_key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!(serde_json::from_str::<Report>(&body).unwrap(), r[0]);
    assert_eq!((stored_day.as_str(), eps), (day(), r[0].epsilon));
    let all: String = conn.query_row("SELECT group_concat(body_json || received_day, '') FROM reports", [], |r| r.get(0)).unwrap();
    assert!(!all.contains("127.0.0.1") && !all.to_lowercase().contains("ureq"), "no address or header is stored");
}

#[test]
fn bad_requests_get_specific_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--rate-per-minute", "60"]);
    let url = c.url("/v1/reports");
    let good = reports(1, 5).remove(0);
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    let good_value = serde_json::to_value(&good).unwrap();
    let check = |a: Answer, status: u16, needle: &str| {
        assert_eq!(a.status, status, "expected {status} ({needle}), got {} {:?}", a.status, a.body);
        let message = a.body["error"].as_str().unwrap_or_else(|| panic!("a JSON error body, got {:?}", a.body));
        assert!(message.contains(needle), "`{message}` should mention `{needle}`");
    };
    let tp = Some("text/plain");

    check(send(&url, None, None, tp, &json(&good_value), None), 401, "missing site key");
    check(send(&url, Some("not-a-real-key"), None, tp, &json(&good_value), None), 401, "unknown site key");
    check(send(&url, Some(OTHER_KEY), None, tp, &json(&good_value), None), 403, "site `other`");
    check(send(&url, Some(SHOP_KEY), None, Some("application/xml"), &json(&good_value), None), 415, "application/xml");
    check(send(&url, Some(SHOP_KEY), None, None, &json(&good_value), None), 415, "Content-Type");
    check(send(&url, Some(SHOP_KEY), None, tp, b"{\"version\": 1, ", None), 400, "malformed JSON");
    check(send(&url, Some(SHOP_KEY), None, tp, b"42", None), 422, "report object");
    check(send(&url, Some(SHOP_KEY), None, tp, b"[]", None), 422, "empty batch");

    let mut v = good_value.clone();
    v.as_object_mut().unwrap().remove("day");
    check(send(&url, Some(SHOP_KEY), None, tp, &json(&v), None), 422, "missing field `day`");
    let mut v = good_value.clone();
    v["userId"] = "u-42".into();
    check(send(&url, Some(SHOP_KEY), None, tp, &json(&v), None), 422, "userId");
    let mut v = good_value.clone();
    v["idempotencyKey"] = "user-42".into();
    check(send(&url, Some(SHOP_KEY), None, tp, &json(&v), None), 422, "idempotencyKey");
    let mut v = good_value.clone();
    v["contributions"][0]["report"]["sign"] = 3.into();
    check(send(&url, Some(SHOP_KEY), None, tp, &json(&serde_json::json!([good_value, v])), None), 422, "reports[1]: item_view");

    // ε out of range: a real report from mechanisms spending 2.0.
    let greedy = mechanisms_with([1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]);
    let r = one_report("shop", day(), &mut SeededRandomness(9), &greedy);
    check(send(&url, Some(SHOP_KEY), None, tp, &serde_json::to_vec(&r).unwrap(), None), 422, "epsilon 2 is outside (0, 1]");

    // Days: far in the past (the SDK's queue never holds one that old), in the future, not a date.
    let at_day = |d: &str| {
        let mut r = reports(1, 10).remove(0);
        r.day = d.to_owned();
        serde_json::to_vec(&r).unwrap()
    };
    check(send(&url, Some(SHOP_KEY), None, tp, &at_day(&days_ago(40)), None), 422, "more than 31 days in the past");
    check(send(&url, Some(SHOP_KEY), None, tp, &at_day(&days_ago(-3)), None), 422, "is in the future");
    check(send(&url, Some(SHOP_KEY), None, tp, &at_day("2026-02-30"), None), 422, "day `2026-02-30` is not a date");
    // A compressed body (here a gzip bomb: 16 MB of zeros in ~16 KB) is refused unread.
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 16 << 20]).unwrap();
    let bomb = Command::new("gzip").args(["-9", "-c"]).arg(&zeros).output().expect("gzip").stdout;
    assert!(bomb.len() < 65_536, "{} bytes", bomb.len());
    let a = answer(
        agent()
            .post(&format!("{url}?key={SHOP_KEY}"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&bomb[..])
            .expect("HTTP exchange"),
    );
    check(a, 415, "Content-Encoding `gzip` is not accepted");
    // 10,000 contributions: over the body limit here (named as such where the limit is
    // raised). The answer comes from Content-Length, before the body is read, so the client
    // may see its 1 MB upload cut off instead: then the log holds the answer.
    let mut flood = good_value.clone();
    let one = flood["contributions"][0].clone();
    flood["contributions"] = Value::Array(vec![one; 10_000]);
    let flood = json(&flood);
    match agent().post(&format!("{url}?key={SHOP_KEY}")).header("Content-Type", "text/plain").send(&flood[..]) {
        Ok(r) => check(answer(r), 413, "over the limit of 65536 bytes"),
        Err(e) => {
            std::thread::sleep(Duration::from_millis(200));
            let log = c.log_text();
            assert!(log.contains("413") && log.contains("over the limit of 65536 bytes"), "{e}:\n{log}");
        }
    }

    // Too large: over --max-body, and a batch over 50.
    let big = format!("[{}]", vec![serde_json::to_string(&good).unwrap(); 120].join(","));
    assert!(big.len() > 65_536);
    check(send(&url, Some(SHOP_KEY), None, tp, big.as_bytes(), None), 413, "over the limit of 65536 bytes");
    // The default limit takes the SDK's largest batch (50 reports).
    let largest = serde_json::to_vec(&reports(50, 8)).unwrap().len();
    assert!(largest < 65_536 * 3 / 4, "50 reports take {largest} bytes");
    let tiny: Vec<Value> = (0..51).map(|_| Value::Object(Default::default())).collect();
    check(send(&url, Some(SHOP_KEY), None, tp, &json(&Value::Array(tiny)), None), 413, "at most 50 reports");

    // Over the rate (60 a minute): the first 50 pass, the next 50 do not.
    let batch = reports(100, 77);
    let a = post_reports(&c, &batch[..50]);
    assert_eq!(a.status, 202, "{:?}", a.body);
    let a = post_reports(&c, &batch[50..]);
    let retry = a.headers.get("retry-after").cloned().unwrap_or_default();
    check(a, 429, "rate limit");
    assert!(retry.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)), "Retry-After: `{retry}`");

    // Unknown routes and methods answer JSON too.
    let a = answer(agent().get(&url).call().unwrap());
    assert_eq!(a.status, 405);
    assert!(a.body["error"].is_string());
    let a = answer(agent().get(&c.url("/nope")).call().unwrap());
    assert_eq!(a.status, 404);

    // Still serving: health, and another site's good report.
    assert_eq!(c.health(), 200);
    let mut r = reports(1, 6).remove(0);
    r.site = "other".into();
    let a = send(&url, Some(OTHER_KEY), None, tp, &serde_json::to_vec(&r).unwrap(), None);
    assert_eq!(a.status, 202, "{:?}", a.body);
    let log = c.log_text();
    assert!(log.contains("WARN") && log.contains("413") && log.contains("INFO"), "request log lines:\n{log}");
    assert!(!log.contains(SHOP_KEY), "the site key is not logged");
}

#[test]
fn a_report_of_ten_thousand_contributions_is_refused_by_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--max-body", "4000000"]);
    let mut flood = serde_json::to_value(&reports(1, 5)[0]).unwrap();
    let one = flood["contributions"][0].clone();
    flood["contributions"] = Value::Array(vec![one; 10_000]);
    let a = send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("application/json"), &serde_json::to_vec(&flood).unwrap(), None);
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert_eq!(a.body["error"], "report: a report carries at most 32 contributions, got 10000");
    assert_eq!(stored_count(&db), 0);
}

#[test]
fn cors_preflight_answers_allowed_origins_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--allow-origin", "https://shop.example"]);
    let preflight = |origin: &str| {
        answer(
            agent()
                .options(&c.url("/v1/reports"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type,x-foresight-key")
                .call()
                .expect("preflight"),
        )
    };
    let ok = preflight("https://shop.example");
    assert_eq!(ok.headers.get("access-control-allow-origin").map(String::as_str), Some("https://shop.example"));
    assert!(ok.headers.get("access-control-allow-methods").is_some_and(|m| m.contains("POST")), "{:?}", ok.headers);
    let allowed_headers = ok.headers.get("access-control-allow-headers").cloned().unwrap_or_default().to_lowercase();
    assert!(allowed_headers.contains("content-type") && allowed_headers.contains("x-foresight-key"), "{allowed_headers}");
    let evil = preflight("https://evil.example");
    assert!(!evil.headers.contains_key("access-control-allow-origin"), "{:?}", evil.headers);

    let body = serde_json::to_vec(&reports(1, 3)[0]).unwrap();
    let a = send(&c.url("/v1/reports"), Some(SHOP_KEY), None, Some("text/plain"), &body, Some("https://shop.example"));
    assert_eq!(a.status, 202);
    assert_eq!(a.headers.get("access-control-allow-origin").map(String::as_str), Some("https://shop.example"));
}

#[test]
fn sqlite_kill9_under_load_keeps_every_acknowledged_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    kill9_keeps_acknowledged(dir.path(), &db);
    let conn = rusqlite::Connection::open(dir.path().join("collector.db")).expect("open");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

// ---------------------------------------------------------------------------------------------
// Aggregates on a simulated population

const ITEMS: usize = 40;

/// Zipf-like item popularity: item i with weight 1/(i+1).
fn zipf(rng: &mut SeededRandomness) -> usize {
    let total: f64 = (0..ITEMS).map(|i| 1.0 / (i as f64 + 1.0)).sum();
    let r = rng.unit() * total;
    let mut acc = 0.0;
    (0..ITEMS)
        .find(|&i| {
            acc += 1.0 / (i as f64 + 1.0);
            acc >= r
        })
        .unwrap_or(ITEMS - 1)
}

#[derive(Default)]
struct Truth {
    items: HashMap<String, f64>,
    transitions: HashMap<String, f64>,
    categories: HashMap<String, f64>,
    buckets: Vec<f64>,
    no_transition: f64,
    /// Visitors reaching at least shown, clicked, added, bought.
    funnel: [f64; 4],
    recommended: HashMap<String, f64>,
}

fn within(released: &Value, truth: &HashMap<String, f64>) -> (usize, usize) {
    let list = released.as_array().expect("estimates");
    let inside = list
        .iter()
        .filter(|e| {
            let t = truth.get(e["value"].as_str().unwrap()).copied().unwrap_or(0.0);
            e["low"].as_f64().unwrap() <= t && t <= e["high"].as_f64().unwrap()
        })
        .count();
    (inside, list.len())
}

#[test]
fn aggregates_recover_a_simulated_population_within_their_intervals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--rate-per-minute", "10000000"]);

    let catalog: Vec<Value> = (0..ITEMS)
        .map(|i| serde_json::json!({"id": format!("film-{i}"), "category": format!("genre-{}", i % 5), "popularity": (ITEMS - i) as f64}))
        .collect();
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, serde_json::to_vec(&serde_json::json!({"items": catalog})).unwrap()).unwrap();

    // 10,000 visitors with the default mechanisms, a known truth, through the real encoding.
    let mechanisms = Mechanisms::default();
    let mut rng = SeededRandomness(2026);
    let mut truth = Truth { buckets: vec![0.0; (INTENT_BUCKETS + 1) as usize], ..Default::default() };
    let mut population = Vec::new();
    for v in 0..10_000u32 {
        let i = zipf(&mut rng);
        let item = format!("film-{i}");
        let category = format!("genre-{}", i % 5);
        // 60% go on to the next film (a strong, known transition), the rest stop.
        let transitions = if rng.unit() < 0.6 { vec![format!("{item}>film-{}", (i + 1) % ITEMS)] } else { vec![] };
        let bucket = v % (INTENT_BUCKETS + 1);
        let max_intent = (bucket < INTENT_BUCKETS).then(|| (bucket as f32 + 0.5) / INTENT_BUCKETS as f32);
        *truth.items.entry(item.clone()).or_default() += 1.0;
        *truth.categories.entry(category.clone()).or_default() += 1.0;
        match transitions.first() {
            Some(t) => *truth.transitions.entry(t.clone()).or_default() += 1.0,
            None => truth.no_transition += 1.0,
        }
        truth.buckets[bucket as usize] += 1.0;
        // A known funnel: 80% shown, a quarter of those click, 40% of clickers add, half buy.
        let u = rng.unit();
        let rec_stage = match u {
            u if u < 0.2 => RecStage::NoneShown,
            u if u < 0.8 => RecStage::Shown,
            u if u < 0.92 => RecStage::Clicked,
            u if u < 0.96 => RecStage::Added,
            _ => RecStage::Bought,
        };
        for (s, n) in truth.funnel.iter_mut().enumerate() {
            *n += f64::from(u8::from(rec_stage as usize > s));
        }
        // Recommendations only ever come from the first 12 films.
        let recommended = if rec_stage == RecStage::NoneShown { vec![] } else { vec![format!("film-{}", v % 12)] };
        for r in &recommended {
            *truth.recommended.entry(r.clone()).or_default() += 1.0;
        }
        let summary = DaySummary {
            viewed_items: vec![item],
            transitions,
            categories: vec![category],
            max_intent,
            recommended,
            rec_stage,
            experiments: Vec::new(),
        };
        population.push(foresight::sync::day::build("shop", day(), &summary, &mechanisms, &mut rng));
    }
    // 60 visitors whose SDK used other parameters: never pooled with the others, and too few
    // to be released.
    let other = Mechanisms {
        item_view: Hcms { hashes: 8, width: 512, epsilon: 0.25 },
        item_transition: Hcms { hashes: 8, width: 512, epsilon: 0.25 },
        category_view: Hcms { hashes: 4, width: 128, epsilon: 0.2 },
        intent_bucket: KaryRr { k: INTENT_BUCKETS + 1, epsilon: 0.15 },
        rec_outcome: KaryRr { k: RecStage::COUNT, epsilon: 0.05 },
        rec_item: Hcms { hashes: 8, width: 512, epsilon: 0.05 },
    };
    for _ in 0..60 {
        population.push(one_report("shop", day(), &mut rng, &other));
    }

    // Delivered in batches of 50 from two threads.
    let population = Arc::new(population);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (population, url) = (population.clone(), c.url("/v1/reports"));
            std::thread::spawn(move || {
                let agent = agent();
                for (n, chunk) in population.chunks(50).enumerate().filter(|(n, _)| n % 2 == t) {
                    let body = serde_json::to_vec(chunk).unwrap();
                    let r = agent
                        .post(&format!("{url}?key={SHOP_KEY}"))
                        .header("Content-Type", "application/json")
                        .send(&body[..])
                        .expect("post");
                    assert_eq!(r.status(), 202, "batch {n}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("sender");
    }

    let catalog_arg = catalog_path.to_str().unwrap();
    let out = aggregates_json(&db, &["--catalog", catalog_arg, "--min-contributors", "100"]);
    assert_eq!(out["reports"], 10_060);
    let groups = out["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 12, "6 statistics × 2 parameter sets, never pooled");
    let released: Vec<&Value> = groups.iter().filter(|g| g["released"] == true).collect();
    let withheld: Vec<&Value> = groups.iter().filter(|g| g["released"] == false).collect();
    assert_eq!(released.len(), 6);
    assert!(released.iter().all(|g| g["reports"] == 10_000));
    assert_eq!(withheld.len(), 6);
    for g in &withheld {
        assert_eq!(g["reports"], 60);
        assert!(g["estimates"].as_array().unwrap().is_empty(), "nothing released below the threshold: {g}");
        assert!(g["nothing"].is_null());
        assert!(g["withheld"].as_str().unwrap().contains("fewer than the minimum of 100"));
    }
    let group = |s: &str| *released.iter().find(|g| g["statistic"] == s).expect(s);

    let items = group("item_view");
    let (inside, n) = within(&items["estimates"], &truth.items);
    assert_eq!(n, ITEMS);
    assert!(inside as f64 >= 0.9 * n as f64, "{inside}/{n} item counts within their 95% intervals");
    let top = items["estimates"][0]["value"].as_str().unwrap();
    assert!(["film-0", "film-1", "film-2"].contains(&top), "the head survives the noise: top is {top}");

    let categories = group("category_view");
    let (inside, n) = within(&categories["estimates"], &truth.categories);
    assert_eq!(n, 5);
    assert!(inside >= 4, "{inside}/{n} category counts within their 95% intervals");

    let transitions = group("item_transition");
    let (inside, n) = within(&transitions["estimates"], &truth.transitions);
    assert_eq!(n, 90, "all ordered pairs among the top 10 items");
    assert!(inside as f64 >= 0.9 * n as f64, "{inside}/{n} transition counts within their 95% intervals");
    let none = &transitions["nothing"];
    assert_eq!(none["value"], NOTHING);
    assert!(none["low"].as_f64().unwrap() <= truth.no_transition && truth.no_transition <= none["high"].as_f64().unwrap());

    let intents = group("intent_bucket");
    let est = intents["estimates"].as_array().unwrap();
    assert_eq!(est.len(), 11);
    assert_eq!(est[10]["value"], "no score");
    let inside =
        est.iter().zip(&truth.buckets).filter(|(e, &t)| e["low"].as_f64().unwrap() <= t && t <= e["high"].as_f64().unwrap()).count();
    assert!(inside >= 9, "{inside}/11 intent buckets within their 95% intervals");

    // The recommendation funnel: each "at least" count within its interval.
    let funnel = &out["funnel"];
    assert_eq!(funnel["reports"], 10_000);
    let stages = funnel["stages"].as_array().expect("stages");
    assert_eq!(stages.iter().map(|s| s["value"].as_str().unwrap()).collect::<Vec<_>>(), ["shown", "clicked", "added to cart", "bought"]);
    for (e, t) in stages.iter().zip(truth.funnel) {
        assert!(e["low"].as_f64().unwrap() <= t && t <= e["high"].as_f64().unwrap(), "{e} vs truth {t}");
    }
    // At ε 0.15 and 10,000 visitor-days the deeper stages are mostly noise (± ~2,500), so
    // the rates are only checked for being the ratios of the released counts.
    let count = |i: usize| stages[i]["estimate"].as_f64().unwrap();
    let rate = |k: &str| funnel[k].as_f64().unwrap();
    assert!((rate("clickRate") - (count(1) / count(0)).clamp(0.0, 1.0)).abs() < 1e-9);
    assert!((rate("purchaseRate") - (count(3) / count(0)).clamp(0.0, 1.0)).abs() < 1e-9);
    let recommended = group("rec_item");
    let (inside, n) = within(&recommended["estimates"], &truth.recommended);
    assert!(inside as f64 >= 0.9 * n as f64, "{inside}/{n} recommended-item counts within their 95% intervals");
    let covered = out["coverage"]["itemsRecommended"].as_u64().unwrap();
    // A lower bound: at ε 0.1 few of the 12 stand out from the noise, and the 28 never
    // recommended films rarely pass (one-sided 2.5% each).
    assert!(covered <= 12 + 3, "coverage is a lower bound of the 12 recommended films: {covered}");

    // A threshold above the population: nothing is released, and it says so.
    let strict = aggregates_json(&db, &["--catalog", catalog_arg, "--min-contributors", "20000"]);
    assert!(strict["groups"].as_array().unwrap().iter().all(|g| g["released"] == false && g["estimates"].as_array().unwrap().is_empty()));
    // Another day holds nothing.
    let empty = aggregates_json(&db, &["--day", &days_ago(3)]);
    assert_eq!(empty["reports"], 0);
    assert!(empty["groups"].as_array().unwrap().is_empty());
    // A day that is not on the calendar is refused, naming the flag, as reports' days are.
    for (flag, day) in [("--day", "2026-02-30"), ("--from", "2026-13-01"), ("--to", "2026-4-1")] {
        let out = Command::new(BIN).args(["aggregates", "--db", &db, "--site", "shop", flag, day]).output().expect("run aggregates");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(flag) && err.contains("not a calendar date"), "{flag} {day}: {err}");
    }

    // The other formats: CSV rows, a self-contained HTML page, and the human summary.
    let csv_path = dir.path().join("aggregates.csv");
    let html_path = dir.path().join("aggregates.html");
    for (format, path) in [("csv", &csv_path), ("html", &html_path)] {
        let out = Command::new(BIN)
            .args([
                "aggregates",
                "--db",
                &db,
                "--site",
                "shop",
                "--catalog",
                catalog_arg,
                "--format",
                format,
                "--out",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with("statistic,mechanism,reports,value,estimate,std_error,ci95_low,ci95_high\n"));
    assert_eq!(csv.lines().count(), 1 + (ITEMS + 1) + (90 + 1) + (5 + 1) + 11 + 5 + (ITEMS + 1) + 4);
    assert!(csv.contains("\nrec_funnel,at least this stage,10000,clicked,"));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.matches("<svg").count() == 5, "five inline charts");
    assert!(html.contains("Recommendation funnel") && html.contains("Catalog coverage"));
    for external in ["<script", "src=", "href=", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(external), "the page is self-contained, yet holds `{external}`");
    }
    assert!(html.contains("film-0") && html.contains("Withheld groups"));
    let out = Command::new(BIN).args(["aggregates", "--db", &db, "--site", "shop", "--catalog", catalog_arg]).output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("10060 reports") && summary.contains("withheld") && summary.contains("recommendation funnel"), "{summary}");

    // A bundle's manifest items serve as the catalog too.
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bundles/session_gru.fsb");
    if bundle.exists() {
        let out = aggregates_json(&db, &["--catalog", bundle.to_str().unwrap(), "--top-items", "3"]);
        assert_eq!(out["catalogItems"], 5000);
        let items = out["groups"].as_array().unwrap().iter().find(|g| g["statistic"] == "item_view" && g["released"] == true).unwrap();
        assert_eq!(items["estimates"].as_array().unwrap().len(), 5000);
    }
}

/// The closed loop: visitors browse along a known chain, their reports go through the real
/// encoding and the collector, `aggregates` debiases, and `train --aggregates` fits a model
/// that has learnt the chain — with no raw event ever stored.
#[test]
fn train_from_aggregates_learns_the_transitions_visitors_made() {
    const N: u32 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--rate-per-minute", "10000000"]);
    let catalog: Vec<Value> = (0..N).map(|i| serde_json::json!({"id": format!("film-{i}"), "category": "drama", "price": 4.5})).collect();
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, serde_json::to_vec(&serde_json::json!({"items": catalog})).unwrap()).unwrap();

    // The shop spends most of the day's ε on transitions here; film-i is followed by
    // film-(i+3) 70% of the time, by a uniformly random film otherwise.
    let mechanisms = mechanisms_with([0.05, 0.55, 0.05, 0.1, 0.15, 0.1]);
    assert!(mechanisms.epsilon() <= 1.0 + 1e-9, "{}", mechanisms.epsilon());
    let mut rng = SeededRandomness(77);
    let reports: Vec<Report> = (0..20_000u32)
        .map(|_| {
            let a = rng.below(u64::from(N)) as u32;
            let b = if rng.unit() < 0.7 { (a + 3) % N } else { (a + 1 + rng.below(u64::from(N - 1)) as u32) % N };
            let summary = DaySummary {
                viewed_items: vec![format!("film-{a}"), format!("film-{b}")],
                transitions: vec![format!("film-{a}>film-{b}")],
                ..Default::default()
            };
            foresight::sync::day::build("shop", day(), &summary, &mechanisms, &mut rng)
        })
        .collect();
    for chunk in reports.chunks(50) {
        assert_eq!(post_reports(&c, chunk).status, 202);
    }

    let aggregates_path = dir.path().join("aggregates.json");
    let catalog_arg = catalog_path.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["aggregates", "--db", &db, "--site", "shop", "--catalog", catalog_arg, "--top-items", "10", "--format", "json"])
        .args(["--out", aggregates_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let model_path = dir.path().join("from-aggregates.onnx");
    let out_catalog = dir.path().join("from-aggregates.catalog.json");
    let train = |aggregates: &Path| {
        Command::new(BIN)
            .args(["train", "--aggregates", aggregates.to_str().unwrap(), "--catalog", catalog_arg, "--dim", "10", "--quiet"])
            .args(["--out-model", model_path.to_str().unwrap(), "--out-catalog", out_catalog.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = train(&aggregates_path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained on debiased aggregates of site shop (20000 reports)"));

    // The model, in the SDK's runtime: after film-i, film-(i+3) comes first mostly, and always
    // among the first three (a model that learnt nothing: first 1 time in 9 by chance). At
    // ε 0.5 the noise on one pair is about a third of the true count, so not always first.
    let bytes = std::fs::read(&model_path).unwrap();
    let mut model = foresight::infer::model::RecommenderModel::load(&bytes, &Default::default(), N as usize).expect("loads in the SDK");
    let mut scores = Vec::new();
    let mut ranks = Vec::new();
    for a in 0..N as usize {
        model.scores_into(&[a], &mut scores).expect("runs");
        let target = scores[(a + 3) % N as usize];
        ranks.push((0..N as usize).filter(|&j| j != a && scores[j] > target).count() + 1);
    }
    let first = ranks.iter().filter(|&&r| r == 1).count();
    assert!(first >= 7 && ranks.iter().all(|&r| r <= 3), "ranks of the chain's next film: {ranks:?}");
    let written: Value = serde_json::from_slice(&std::fs::read(&out_catalog).unwrap()).unwrap();
    assert_eq!(written["items"][0]["price"], 4.5, "the shop's catalog fields are kept");

    // Nothing released (a threshold above the population): a clear refusal, no model.
    let strict = dir.path().join("strict.json");
    let out = Command::new(BIN)
        .args(["aggregates", "--db", &db, "--site", "shop", "--catalog", catalog_arg, "--min-contributors", "50000", "--format", "json"])
        .args(["--out", strict.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&model_path).unwrap();
    let out = train(&strict);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no released item_transition group"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!model_path.exists());
    // Not an aggregates file.
    let out = train(&catalog_path);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the JSON of `foresight-export aggregates --format json`"));
}

/// An A/B test through the whole path: variants drawn by the SDK's assignment, outcomes
/// through `report::build`, the collector, and `aggregates` — a true lift is reported as
/// significant, an A/A comparison is not.
#[test]
fn experiments_report_a_true_lift_and_not_a_null_one() {
    use foresight::experiment::{encode_value, Experiment};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite_db(dir.path());
    let c = Collector::start(dir.path(), &db, &["--rate-per-minute", "10000000", "--max-epsilon", "2"]);
    let experiment = |name: &str| -> Experiment {
        serde_json::from_value(serde_json::json!({
            "name": name, "placement": "forYou", "epsilon": 1.0,
            "variants": [{"name": "popular", "source": "popularity"}, {"name": "model"}],
        }))
        .unwrap()
    };
    let (lift, null) = (experiment("model-vs-popular"), experiment("a-vs-a"));
    // One seeded draw; how often the interval covers the lift is checked over 200 draws by
    // the SDK's `intervals_of_the_lift_cover_it`.
    let mut rng = SeededRandomness(34);
    let stage = |rng: &mut SeededRandomness, click: f64| {
        if rng.unit() < click {
            RecStage::Clicked
        } else if rng.unit() < 0.9 {
            RecStage::Shown
        } else {
            RecStage::NoneShown
        }
    };
    let small = mechanisms_with([0.1; 6]);
    let reports: Vec<Report> = (0..40_000)
        .map(|_| {
            // One site runs both experiments on different visitors' days (half each).
            let (e, rates) = if rng.unit() < 0.5 { (&lift, [0.10, 0.40]) } else { (&null, [0.25, 0.25]) };
            let v = e.assign(&mut rng);
            let st = stage(&mut rng, rates[v]);
            let summary = DaySummary { experiments: vec![(e.name.clone(), e.mechanism(), encode_value(v, st))], ..Default::default() };
            foresight::sync::day::build("shop", day(), &summary, &small, &mut rng)
        })
        .collect();
    for chunk in reports.chunks(50) {
        assert_eq!(post_reports(&c, chunk).status, 202);
    }
    let out = aggregates_json(&db, &["--min-contributors", "100"]);
    let experiments = out["experiments"].as_array().expect("experiments");
    assert_eq!(experiments.len(), 2);
    let verdict = |name: &str| {
        let e = experiments.iter().find(|e| e["name"] == name).expect(name);
        assert_eq!(e["variants"].as_array().unwrap().len(), 2);
        let click = e["comparisons"].as_array().unwrap().iter().find(|c| c["metric"] == "click_rate").unwrap().clone();
        click
    };
    let lifted = verdict("model-vs-popular");
    assert_eq!(lifted["verdict"], "significant", "{lifted}");
    let d = &lifted["difference"];
    let (value, se) = (d["value"].as_f64().unwrap(), d["stdError"].as_f64().unwrap());
    assert!((value - 0.3).abs() <= 1.96 * se, "the lift 0.3 within the interval: {value} ± {}", 1.96 * se);
    assert_ne!(verdict("a-vs-a")["verdict"], "significant");
    let text = Command::new(BIN).args(["aggregates", "--db", &db, "--site", "shop", "--min-contributors", "100"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("experiment model-vs-popular") && text.contains("significant at 95%"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL, when its binaries are on this machine

struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    url: String,
}

impl Postgres {
    fn find_bin() -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect();
            versions.sort();
            candidates.extend(versions.into_iter().rev());
        }
        // Where the binaries really are (a PATH entry may hold links to some of them only).
        candidates
            .into_iter()
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
            .map(|d| std::fs::canonicalize(d.join("initdb")).ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or(d))
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start(dir: &Path) -> Result<Postgres, String> {
        let bin = Self::find_bin().ok_or("no initdb/pg_ctl on this machine")?;
        // PostgreSQL refuses to run as root: run it as the `postgres` user then.
        let as_postgres = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
        if as_postgres {
            let uid = Command::new("id").args(["-u", "postgres"]).output().map_err(|e| e.to_string())?;
            let gid = Command::new("id").args(["-g", "postgres"]).output().map_err(|e| e.to_string())?;
            let parse = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok();
            let (Some(uid), Some(gid)) = (parse(&uid), parse(&gid)) else {
                return Err("running as root and there is no `postgres` user".into());
            };
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        let data = dir.join("data");
        let port = free_port();
        let mut pg = Postgres { bin, data, as_postgres, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        let out = pg
            .command("initdb")
            .args(["-D"])
            .arg(&pg.data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display());
        let out = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            pg.data = PathBuf::new(); // nothing to stop
            return Err(format!("pg_ctl start failed: {}{log}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(pg)
    }
}

impl Postgres {
    /// One SQL command through `psql` on database `db` of this cluster; its output, unaligned.
    fn psql(&self, db: &str, sql: &str) -> String {
        let url = self.url.rsplit_once('/').map(|(base, _)| format!("{base}/{db}")).expect("a database URL");
        let out =
            self.command("psql").args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", sql]).output().expect("psql");
        assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A throwaway cluster, or `None` (said on standard error) where PostgreSQL is missing.
    fn start_or_skip(dir: &Path) -> Option<Postgres> {
        Postgres::start(dir).map_err(|why| eprintln!("note: skipping a PostgreSQL test: {why}")).ok()
    }

    fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url.rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).expect("a database URL")
    }
}

/// Two collector processes on one database, as behind a load balancer: the same 200 reports
/// sent to both at once are stored once, each acknowledged by both.
fn two_collectors_share_one_database(dir: &Path, db: &str) {
    let a = Collector::start(dir, db, &["--rate-per-minute", "10000000"]);
    let b = Collector::start(dir, db, &["--rate-per-minute", "10000000"]);
    let before = stored_count(db);
    let all = Arc::new(reports(200, 4242));
    // One sends the batches first to last, the other last to first: they cross midway.
    let senders: Vec<_> = [(a.url("/v1/reports"), false), (b.url("/v1/reports"), true)]
        .into_iter()
        .map(|(url, reverse)| {
            let all = all.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let (mut accepted, mut duplicates) = (0, 0);
                let mut chunks: Vec<&[Report]> = all.chunks(10).collect();
                if reverse {
                    chunks.reverse();
                }
                for chunk in chunks {
                    let r = agent
                        .post(&format!("{url}?key={SHOP_KEY}"))
                        .header("Content-Type", "application/json")
                        .send(&serde_json::to_vec(chunk).expect("json")[..])
                        .expect("post");
                    let a = answer(r);
                    assert_eq!(a.status, 202, "{:?}", a.body);
                    accepted += a.body["accepted"].as_u64().expect("n");
                    duplicates += a.body["duplicates"].as_u64().expect("n");
                }
                (accepted, duplicates)
            })
        })
        .collect();
    let counts: Vec<(u64, u64)> = senders.into_iter().map(|t| t.join().expect("sender")).collect();
    let accepted: u64 = counts.iter().map(|c| c.0).sum();
    let duplicates: u64 = counts.iter().map(|c| c.1).sum();
    assert_eq!((accepted, duplicates), (200, 200), "per collector: {counts:?}");
    assert_eq!(stored_count(db), before + 200);
    eprintln!("two collectors: stored {accepted} of 400 deliveries (per process accepted/duplicates {counts:?})");
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.data.as_os_str().is_empty() {
            let _ = self.command("pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]).output();
        }
    }
}

#[test]
fn postgres_accepts_deduplicates_and_survives_kill9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pg) = Postgres::start_or_skip(dir.path()) else { return };
    let work = tempfile::tempdir().expect("tempdir");
    accept_and_deduplicate(work.path(), &pg.url);
    kill9_keeps_acknowledged(work.path(), &pg.url);
    two_collectors_share_one_database(work.path(), &pg.url);

    // One partition a report day (and the default one for rows that carry no date).
    let partitions = pg.psql("postgres", "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'reports'::regclass");
    assert_eq!(partitions, format!("reports_{},reports_undated", day().replace('-', "_")));
}

/// `aggregates` reads sums that PostgreSQL computed (one row per sketch cell), and they give
/// exactly the estimates SQLite's sums give for the same reports.
#[test]
fn postgres_sums_equal_sqlite_sums_and_old_databases_are_partitioned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pg) = Postgres::start_or_skip(dir.path()) else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let catalog: Vec<Value> =
        (0..20).map(|i| serde_json::json!({"id": format!("film-{i}"), "category": format!("genre-{}", i % 4)})).collect();
    let catalog_path = work.path().join("catalog.json");
    std::fs::write(&catalog_path, serde_json::to_vec(&serde_json::json!({"items": catalog})).unwrap()).unwrap();
    let mut population = reports(300, 99);
    let yesterday = days_ago(2);
    for r in population.iter_mut().step_by(3) {
        r.day = yesterday.clone();
    }
    let sqlite = sqlite_db(work.path());
    let postgres = pg.database("sums");
    for db in [&sqlite, &postgres] {
        let c = Collector::start(work.path(), db, &["--rate-per-minute", "10000000"]);
        for chunk in population.chunks(50) {
            assert_eq!(post_reports(&c, chunk).status, 202);
        }
    }
    let catalog_arg = catalog_path.to_str().unwrap();
    for extra in [vec![], vec!["--day", day()], vec!["--from", yesterday.as_str()], vec!["--to", yesterday.as_str()]] {
        let args: Vec<&str> = ["--catalog", catalog_arg, "--min-contributors", "20"].into_iter().chain(extra.iter().copied()).collect();
        let (a, b) = (aggregates_json(&sqlite, &args), aggregates_json(&postgres, &args));
        assert_eq!(a, b, "{extra:?}");
        assert!(a["groups"].as_array().is_some_and(|g| g.iter().any(|g| g["released"] == true)), "{a}");
    }
    assert_eq!(aggregates_json(&postgres, &[])["reports"], 300);

    // A database of the first schema (one unpartitioned table): the collector moves its rows
    // into day partitions, and rows whose day is no date into the default one.
    let legacy = pg.database("legacy");
    pg.psql(
        "legacy",
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_day TEXT NOT NULL);
        INSERT INTO schema_version VALUES (1, '2026-11-01');
        CREATE TABLE reports (id BIGSERIAL PRIMARY KEY, site TEXT NOT NULL, idempotency_key TEXT NOT NULL, day TEXT NOT NULL,
            epsilon DOUBLE PRECISION NOT NULL, received_day TEXT NOT NULL, body_json TEXT NOT NULL);
        CREATE UNIQUE INDEX reports_site_idempotency_key ON reports (site, idempotency_key);
        CREATE INDEX reports_site_day ON reports (site, day);",
    );
    let old = reports(3, 5);
    let quote = |s: &str| s.replace('\'', "''");
    for (r, d) in old.iter().zip([day(), day(), "2026-02-30"]) {
        pg.psql(
            "legacy",
            &format!(
                "INSERT INTO reports (site, idempotency_key, day, epsilon, received_day, body_json) VALUES ('shop', '{}', '{d}', {}, '{d}', '{}')",
                r.idempotency_key,
                r.epsilon,
                quote(&serde_json::to_string(r).unwrap())
            ),
        );
    }
    let c = Collector::start(work.path(), &legacy, &[]);
    assert_eq!(pg.psql("legacy", "SELECT MAX(version) FROM schema_version"), "2");
    assert_eq!(pg.psql("legacy", &format!("SELECT COUNT(*) FROM reports_{}", day().replace('-', "_"))), "2");
    assert_eq!(pg.psql("legacy", "SELECT COUNT(*) FROM reports_undated"), "1");
    // Retried after the migration: still stored once.
    let a = post_reports(&c, &old[..2]);
    assert_eq!(a.body, serde_json::json!({"accepted": 0, "duplicates": 2}));
    assert_eq!(aggregates_json(&legacy, &[])["reports"], 3);
}
