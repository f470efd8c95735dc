//! How far the collector's estimates land from the truth, as a function of ε and population:
//! simulated visitors report through the SDK's real encoding (`report::build`), the SDK's
//! estimators debias. Run: `cargo run --release -p foresight-export --example dp_error`.

use foresight::contract::report::{Contribution, Mechanisms, INTENT_BUCKETS};
use foresight::platform::{Randomness, SeededRandomness};
use foresight::privacy::mechanism::{Hcms, HcmsSketch, KaryRr};
use foresight::sync::day::DaySummary;

fn main() {
    let items: Vec<String> = (0..100).map(|i| format!("item-{i}")).collect();
    // Zipf(1) popularity over 100 items.
    let weights: Vec<f64> = (0..items.len()).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    println!("| ε per report | visitors | item views: mean abs error, top-10 items (share of visitors) | 95% CI half-width (share) | intent histogram: mean abs error (share) |");
    println!("|---:|---:|---:|---:|---:|");
    for epsilon in [0.5, 1.0, 2.0] {
        for n in [1_000u64, 10_000, 100_000] {
            // The whole report's ε goes to the statistic measured, to show the mechanism alone.
            let mechanisms = Mechanisms {
                item_view: Hcms { hashes: 16, width: 1024, epsilon },
                intent_bucket: KaryRr { k: INTENT_BUCKETS + 1, epsilon },
                ..Mechanisms::default()
            };
            let mut rng = SeededRandomness(epsilon.to_bits() ^ n);
            let mut sketch = HcmsSketch::new(mechanisms.item_view);
            let mut truth = vec![0u64; items.len()];
            let mut tallies = vec![0u64; (INTENT_BUCKETS + 1) as usize];
            let mut true_buckets = vec![0u64; (INTENT_BUCKETS + 1) as usize];
            for _ in 0..n {
                let mut r = rng.unit() * total;
                let i = weights
                    .iter()
                    .position(|w| {
                        r -= w;
                        r <= 0.0
                    })
                    .unwrap_or(items.len() - 1);
                truth[i] += 1;
                let p = rng.unit() as f32;
                true_buckets[((p * INTENT_BUCKETS as f32) as usize).min(INTENT_BUCKETS as usize - 1)] += 1;
                let summary = DaySummary { viewed_items: vec![items[i].clone()], max_intent: Some(p), ..Default::default() };
                for c in foresight::sync::day::build("sim", "2026-11-30", &summary, &mechanisms, &mut rng).contributions {
                    match c {
                        Contribution::ItemView { report, .. } => sketch.add(&report).expect("in range"),
                        Contribution::IntentBucket { value, .. } => tallies[value as usize] += 1,
                        _ => {}
                    }
                }
            }
            let t = sketch.transformed();
            let (mut err, mut half) = (0.0, 0.0);
            for (item, &count) in items.iter().zip(&truth).take(10) {
                let e = sketch.estimate(&t, item);
                err += (e.value - count as f64).abs();
                half += 1.96 * e.std_error;
            }
            let est = mechanisms.intent_bucket.estimate(&tallies);
            let intent_err: f64 = est.iter().zip(&true_buckets).map(|(e, &t)| (e.value - t as f64).abs()).sum::<f64>() / est.len() as f64;
            let share = |x: f64| x / n as f64;
            println!("| {epsilon} | {n} | {:.4} | {:.4} | {:.4} |", share(err / 10.0), share(half / 10.0), share(intent_err));
        }
    }
}
