//! Nothing acknowledged is lost (used by `scripts/bench-collector.sh`): reports stream into a
//! collector from four threads while it is killed with SIGKILL at a random moment, ROUNDS
//! times; each round restarts it on the same database and the senders re-send what was not
//! acknowledged, as the SDK's outbox does. At the end every acknowledged report, re-sent, must
//! be answered "duplicate" (0 lost), and once every report has been delivered the database
//! must hold exactly one row per report (0 duplicated).
//!
//! cargo run -p foresight-export --example collector_kill9 -- BIN DB [ROUNDS=10] [REPORTS=100000]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foresight::contract::report::{Mechanisms, Report};
use foresight::platform::{Randomness, SeededRandomness};
use foresight::sync::day::DaySummary;

const KEY: &str = "kill9-key-0001";
const BATCH: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: collector_kill9 BIN DB [ROUNDS=10] [REPORTS=100000]");
        std::process::exit(2);
    }
    let (bin, db) = (args[0].clone(), args[1].clone());
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let total: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut rng = SeededRandomness(seed);
    let reports = Arc::new(make_reports(total, &mut rng));

    // Batches still to deliver; a batch leaves the queue only once it is acknowledged.
    let queue: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..reports.len().div_ceil(BATCH)).rev().collect()));
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let mut kills = 0;
    for round in 1..=rounds {
        let mut collector = start(&bin, &db);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let (reports, queue, acked, stop, sent, url) =
                    (reports.clone(), queue.clone(), acked.clone(), stop.clone(), sent.clone(), collector.url.clone());
                std::thread::spawn(move || send_until_stopped(&url, &reports, &queue, &acked, &stop, &sent))
            })
            .collect();
        // A random moment 0.1 to 0.6 s into the round, with requests in flight (a round
        // delivers a few thousand reports: the queue lasts the ten rounds).
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        let requests = sent.load(Ordering::Relaxed);
        collector.kill9();
        kills += 1;
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().expect("sender");
        }
        let done = acked.lock().map(|a| a.len()).unwrap_or(0);
        println!(
            "round {round}: SIGKILL after {requests} requests; {done} of {} batches acknowledged so far",
            reports.len().div_ceil(BATCH)
        );
    }

    // After the last kill: every acknowledged report is stored (re-sent, it is a duplicate).
    let collector = start(&bin, &db);
    let agent = agent();
    let acked_batches: Vec<usize> = acked.lock().expect("acked").clone();
    let acked_reports: usize = acked_batches.iter().map(|&b| batch(&reports, b).len()).sum();
    let (mut lost, mut confirmed) = (0u64, 0u64);
    for &b in &acked_batches {
        let (accepted, duplicates) = post(&agent, &collector.url, batch(&reports, b)).expect("the restarted collector answers");
        lost += accepted;
        confirmed += duplicates;
    }
    // Then everything never acknowledged, so each report has been delivered at least once.
    let pending: Vec<usize> = queue.lock().expect("queue").clone();
    for &b in &pending {
        post(&agent, &collector.url, batch(&reports, b)).expect("the restarted collector answers");
    }
    drop(collector);
    let stored = stored_rows(&bin, &db);
    let duplicated = stored as i64 - reports.len() as i64;
    println!(
        "kill -9: {kills} rounds, {acked_reports} reports acknowledged, {confirmed} confirmed stored, {lost} lost; \
         after delivering the rest: {stored} rows for {} distinct reports ({duplicated} duplicated)",
        reports.len()
    );
    if lost != 0 || duplicated != 0 || confirmed != acked_reports as u64 {
        eprintln!("FAILED: acknowledged reports were lost or stored twice");
        std::process::exit(1);
    }
}

fn make_reports(total: usize, rng: &mut SeededRandomness) -> Vec<Report> {
    let mechanisms = Mechanisms::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0);
    let yesterday = foresight::privacy::budget::utc_day(now - 86_400_000.0);
    (0..total)
        .map(|_| {
            let i = rng.below(500);
            let summary = DaySummary {
                viewed_items: vec![format!("sku-{i}")],
                categories: vec![format!("cat-{}", i % 20)],
                max_intent: Some(rng.unit() as f32),
                ..Default::default()
            };
            foresight::sync::day::build("kill9", &yesterday, &summary, &mechanisms, rng)
        })
        .collect()
}

fn batch(reports: &[Report], b: usize) -> &[Report] {
    &reports[b * BATCH..((b + 1) * BATCH).min(reports.len())]
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into()
}

/// (accepted, duplicates), or why there was no 202.
fn post(agent: &ureq::Agent, url: &str, reports: &[Report]) -> Result<(u64, u64), String> {
    let body = serde_json::to_vec(reports).map_err(|e| e.to_string())?;
    let mut r = agent
        .post(&format!("{url}/v1/reports?key={KEY}"))
        .header("Content-Type", "application/json")
        .send(&body[..])
        .map_err(|e| e.to_string())?;
    if r.status() != 202 {
        return Err(format!("status {}", r.status()));
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok((v["accepted"].as_u64().unwrap_or(0), v["duplicates"].as_u64().unwrap_or(0)))
}

fn send_until_stopped(
    url: &str,
    reports: &[Report],
    queue: &Mutex<Vec<usize>>,
    acked: &Mutex<Vec<usize>>,
    stop: &AtomicBool,
    sent: &AtomicUsize,
) {
    let agent = agent();
    while !stop.load(Ordering::Relaxed) {
        let Some(b) = queue.lock().expect("queue").pop() else { return };
        sent.fetch_add(1, Ordering::Relaxed);
        match post(&agent, url, batch(reports, b)) {
            Ok(_) => acked.lock().expect("acked").push(b),
            // Killed mid-request (or refused): back in the queue for the next round.
            Err(_) => {
                queue.lock().expect("queue").push(b);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

struct Collector {
    child: Child,
    url: String,
}

impl Collector {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The collector on a free port; its first line of output names the address.
fn start(bin: &str, db: &str) -> Collector {
    let mut child = Command::new(bin)
        .args(["collect", "--addr", "127.0.0.1:0", "--db", db, "--site", &format!("kill9={KEY}"), "--rate-per-minute", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the collector");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let started = Instant::now();
    BufReader::new(stdout).read_line(&mut line).expect("the collector's address");
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line `{line}`")).to_owned();
    assert!(started.elapsed() < Duration::from_secs(30), "slow start");
    Collector { child, url }
}

fn stored_rows(bin: &str, db: &str) -> u64 {
    let out = Command::new(bin).args(["aggregates", "--db", db, "--site", "kill9", "--format", "json"]).output().expect("aggregates");
    assert!(out.status.success(), "aggregates: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["reports"].as_u64().expect("a count")
}
