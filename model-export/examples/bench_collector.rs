//! Load generator for `foresight-export collect` (used by `scripts/bench-collector.sh`):
//! posts reports built by the SDK's real code to a collector on loopback from a few threads,
//! bounded in count and time, and prints the sustained rate and latency percentiles.
//!
//! cargo run -p foresight-export --example bench_collector -- --bench URL[,URL…] KEY SITE [REPORTS] [THREADS] [BATCH] [SECONDS]
//!
//! Several URLs (collectors sharing one database): the threads take them in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use foresight::contract::report::Mechanisms;
use foresight::platform::{Randomness, SeededRandomness};
use foresight::sync::day::DaySummary;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("--bench") || args.len() < 4 {
        eprintln!("usage: bench_collector --bench URL KEY SITE [REPORTS=5000] [THREADS=8] [BATCH=1] [SECONDS=20]");
        std::process::exit(2);
    }
    let urls: Vec<String> = args[1].split(',').map(str::to_owned).collect();
    let key = args[2].clone();
    let site = args[3].clone();
    let arg = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (total, threads, batch, seconds) = (arg(4, 5000), arg(5, 8).max(1), arg(6, 1).clamp(1, 50), arg(7, 20));

    // Build every body first so the timing measures the collector, not the encoding.
    let mechanisms = Mechanisms::default();
    let mut rng =
        SeededRandomness(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1));
    // Yesterday: the collector takes report days within its window around today.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0);
    let yesterday = foresight::privacy::budget::utc_day(now - 86_400_000.0);
    let reports: Vec<_> = (0..total)
        .map(|_| {
            let i = rng.below(500);
            let summary = DaySummary {
                viewed_items: vec![format!("sku-{i}")],
                transitions: vec![format!("sku-{i}>sku-{}", (i + 1) % 500)],
                categories: vec![format!("cat-{}", i % 20)],
                max_intent: Some(rng.unit() as f32),
                ..Default::default()
            };
            foresight::sync::day::build(&site, &yesterday, &summary, &mechanisms, &mut rng)
        })
        .collect();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(reports.chunks(batch).map(|c| serde_json::to_vec(c).expect("json")).collect());

    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (bodies, next, url, key) = (bodies.clone(), next.clone(), urls[t % urls.len()].clone(), key.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into();
                let endpoint = format!("{url}/v1/reports?key={key}");
                let mut latencies = Vec::new();
                let (mut ok, mut failed) = (0usize, 0usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() || Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    let status = agent
                        .post(&endpoint)
                        .header("Content-Type", "text/plain")
                        .send(&bodies[i][..])
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    latencies.push(t.elapsed());
                    if status == 202 {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
                (latencies, ok, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (l, o, f) = w.join().expect("worker");
        latencies.extend(l);
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    };
    let reports_ok = ok * batch;
    println!(
        "requests: {} ({ok} accepted, {failed} failed), {threads} threads, {batch} report(s) each, {elapsed:.2} s\n\
         sustained: {:.0} reports/s ({:.0} requests/s)\n\
         latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        reports_ok as f64 / elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
}
