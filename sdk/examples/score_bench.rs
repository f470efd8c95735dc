//! Top-20 over 10k, 100k and 1M items × 64 dims: the CPU path against the GPU path (wgpu on
//! Vulkan: Mesa's lavapipe here, a real GPU where there is one), in one process, same answers.
//!
//!   cargo run -p foresight --features webgpu --example score_bench [-- RUNS]

use std::time::Instant;

use foresight::infer::gpu::{probe, GpuScorer};
use foresight::infer::score::ItemMatrix;

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(9);
    let (_instance, adapter) = pollster::block_on(probe())?;
    let info = adapter.get_info();
    println!(
        "adapter: {} ({:?}, {:?}); {} runs after 2 warm-up, median ms, top-20, 64 dims",
        info.name, info.backend, info.device_type, runs
    );
    println!("| items | dtype | matrix MB | upload+compile ms | CPU ms | GPU ms | GPU/CPU | chunks rescored | same top-20 |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for rows in [10_000usize, 100_000, 1_000_000] {
        for f16 in [false, true] {
            let dims = 64;
            let mut s = rows as u64;
            let values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut s)).collect();
            let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut s) * 0.1).collect();
            let m = if f16 {
                ItemMatrix::from_f32_as_f16(rows, dims, &values, Some(bias))?
            } else {
                ItemMatrix::from_f32(rows, dims, &values, Some(bias))?
            };
            drop(values);
            let t = Instant::now();
            let mut gpu = pollster::block_on(GpuScorer::with_adapter(&adapter, &m))?;
            let setup = t.elapsed().as_secs_f64() * 1e3;
            let (mut cpu_t, mut gpu_t, mut same, mut rescored) = (Vec::new(), Vec::new(), true, 0);
            for run in 0..runs + 2 {
                let u = m.user(&(0..dims).map(|_| lcg(&mut s)).collect::<Vec<_>>())?;
                let t = Instant::now();
                let c = m.top_k(&u, 20, None);
                let ct = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let (g, stats) = pollster::block_on(gpu.top_k(&m, &u, 20, None))?;
                let gt = t.elapsed().as_secs_f64() * 1e3;
                same &= g == c;
                rescored += stats.rescored_chunks;
                if run >= 2 {
                    cpu_t.push(ct);
                    gpu_t.push(gt);
                }
            }
            let (c, g) = (median(cpu_t), median(gpu_t));
            println!(
                "| {rows} | {} | {:.1} | {setup:.0} | {c:.2} | {g:.2} | {:.2}× | {rescored} | {} |",
                m.dtype().as_str(),
                (m.rows() * m.row_bytes()) as f64 / 1e6,
                g / c,
                if same { "yes" } else { "NO" }
            );
        }
    }
    Ok(())
}
