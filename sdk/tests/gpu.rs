//! The WebGPU scoring path on a real Vulkan device (Mesa's lavapipe in CI): the GPU's top-k
//! must equal the CPU's, items, order and scores, on random and adversarial inputs.
#![cfg(all(feature = "webgpu", not(target_arch = "wasm32")))]

use foresight::infer::gpu::{probe, GpuScorer};
use foresight::infer::score::{ItemMask, ItemMatrix};
use pollster::block_on;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn scorer(m: &ItemMatrix, max_chunks: usize) -> GpuScorer {
    let (_instance, adapter) = block_on(probe()).expect("a Vulkan adapter (install mesa-vulkan-drivers: scripts/setup.sh)");
    block_on(GpuScorer::paged(&adapter, m, max_chunks)).expect("GPU scorer")
}

/// Runs every k on both paths and demands identical answers.
fn agree(m: &ItemMatrix, gpu: &mut GpuScorer, user: &[f32], ks: &[usize], mask: Option<&ItemMask>) -> usize {
    let u = m.user(user).unwrap();
    let mut rescored = 0;
    for &k in ks {
        let cpu = m.top_k(&u, k, mask);
        let (got, stats) = block_on(gpu.top_k(m, &u, k, mask)).expect("GPU top-k");
        assert_eq!(got, cpu, "k = {k}: GPU and CPU top-k differ");
        assert_eq!(got.len(), k.min(m.rows() - (0..m.rows()).filter(|&i| mask.is_some_and(|x| x.contains(i))).count()));
        rescored += stats.rescored_chunks;
    }
    rescored
}

#[test]
fn adapter_is_lavapipe_or_a_real_gpu() {
    let (_i, adapter) = block_on(probe()).expect("a Vulkan adapter");
    let info = adapter.get_info();
    eprintln!("adapter: {} ({:?}, {:?})", info.name, info.backend, info.device_type);
    assert_eq!(info.backend, wgpu::Backend::Vulkan);
}

#[test]
fn random_f32_and_f16_matrices_with_bias_and_mask() {
    let mut rng = Rng(1);
    let (rows, dims) = (5000, 64);
    let values = rng.vec(rows * dims, 1.0);
    let bias = rng.vec(rows, 0.3);
    let mask = ItemMask::from_items(rows, (0..rows).filter(|i| i % 13 == 0 || *i < 40));
    for m in [
        ItemMatrix::from_f32(rows, dims, &values, None).unwrap(),
        ItemMatrix::from_f32(rows, dims, &values, Some(bias.clone())).unwrap(),
        ItemMatrix::from_f32_as_f16(rows, dims, &values, Some(bias.clone())).unwrap(),
    ] {
        let mut gpu = scorer(&m, usize::MAX);
        for _ in 0..5 {
            let user = rng.vec(dims, 1.0);
            agree(&m, &mut gpu, &user, &[1, 20, 100], None);
            // Only the candidates near the k-th are rescored on the CPU, not all 5 × 20.
            let (_, stats) = block_on(gpu.top_k(&m, &m.user(&user).unwrap(), 20, None)).expect("top-k");
            assert_eq!(stats.candidates, 100);
            assert!(stats.rescored >= 20 && stats.rescored < stats.candidates, "{stats:?}");
            agree(&m, &mut gpu, &user, &[20, 1024, 1500], Some(&mask));
        }
    }
}

#[test]
fn odd_dims_partial_chunks_and_pages() {
    let mut rng = Rng(2);
    let (rows, dims) = (4100, 37);
    let values = rng.vec(rows * dims, 2.0);
    let m = ItemMatrix::from_f32(rows, dims, &values, Some(rng.vec(rows, 1.0))).unwrap();
    let mut gpu = scorer(&m, 1);
    assert_eq!(gpu.pages(), 5, "1024-row pages over 4,100 rows");
    let user = rng.vec(dims, 1.0);
    agree(&m, &mut gpu, &user, &[1, 7, 20, 999, 1024, 1025, 4100, 5000], None);
    let mask = ItemMask::from_items(rows, (1000..1100).chain(4090..4100));
    agree(&m, &mut gpu, &user, &[20, 4100], Some(&mask));
}

#[test]
fn ties_go_to_the_lower_index_as_on_the_cpu() {
    let mut rng = Rng(3);
    let (rows, dims) = (3000, 16);
    // Every row one of three prototypes: thousands of exactly equal scores.
    let protos = rng.vec(3 * dims, 1.0);
    let values: Vec<f32> = (0..rows).flat_map(|r| protos[(r * 7 % 3) * dims..(r * 7 % 3 + 1) * dims].to_vec()).collect();
    let m = ItemMatrix::from_f32(rows, dims, &values, None).unwrap();
    let mut gpu = scorer(&m, usize::MAX);
    let rescored = agree(&m, &mut gpu, &rng.vec(dims, 1.0), &[1, 20, 1000, 2500], None);
    assert!(rescored > 0, "tied chunks must be settled on the CPU");
    // All-zero vectors: every score is exactly 0.
    let zeros = ItemMatrix::from_f32(rows, dims, &vec![0.0; rows * dims], None).unwrap();
    let mut gpu = scorer(&zeros, usize::MAX);
    let u = zeros.user(&rng.vec(dims, 1.0)).unwrap();
    let (top, _) = block_on(gpu.top_k(&zeros, &u, 5, None)).unwrap();
    assert_eq!(top.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn extremes_near_ties_and_everything_masked() {
    let mut rng = Rng(4);
    let (rows, dims) = (2048, 8);
    // Huge magnitudes that stay finite: 1e18 · 1e18 · 8 < f32::MAX.
    let m = ItemMatrix::from_f32(rows, dims, &rng.vec(rows * dims, 1e18), None).unwrap();
    let mut gpu = scorer(&m, usize::MAX);
    agree(&m, &mut gpu, &rng.vec(dims, 1e18), &[1, 20, 300], None);
    // Tiny ones, down among the subnormals.
    let m = ItemMatrix::from_f32(rows, dims, &rng.vec(rows * dims, 1e-20), None).unwrap();
    let mut gpu = scorer(&m, usize::MAX);
    agree(&m, &mut gpu, &rng.vec(dims, 1e-19), &[1, 20], None);
    // Near ties: rows that differ in the last bit of one value.
    let base = rng.vec(dims, 1.0);
    let values: Vec<f32> = (0..rows)
        .flat_map(|r| {
            let mut row = base.clone();
            row[r % dims] = f32::from_bits(row[r % dims].to_bits() + (r % 3) as u32);
            row
        })
        .collect();
    let m = ItemMatrix::from_f32(rows, dims, &values, None).unwrap();
    let mut gpu = scorer(&m, usize::MAX);
    agree(&m, &mut gpu, &rng.vec(dims, 1.0), &[1, 20, 1024], None);
    // Scores that could overflow are never compared on the GPU.
    let m = ItemMatrix::from_f32(rows, dims, &rng.vec(rows * dims, 1e30), None).unwrap();
    let mut gpu = scorer(&m, usize::MAX);
    agree(&m, &mut gpu, &rng.vec(dims, 1e30), &[20], None);
    // Everything masked: nothing to recommend, on both paths.
    let all = ItemMask::from_items(rows, 0..rows);
    agree(&m, &mut gpu, &rng.vec(dims, 1.0), &[20], Some(&all));
}

#[test]
fn scoring_chooses_a_path_says_why_and_survives_a_lost_device() {
    use foresight::infer::gpu::{Backend, Preference, Scoring};
    let mut rng = Rng(5);
    let (rows, dims) = (20_000, 64);
    let m = ItemMatrix::from_f32(rows, dims, &rng.vec(rows * dims, 1.0), None).unwrap();
    let start = std::time::Instant::now();
    let clock = move || start.elapsed().as_secs_f64() * 1e3;
    let auto = block_on(Scoring::init(&m, Preference::Auto, &clock));
    let c = auto.choice();
    eprintln!("auto: {:?} — {}", c.backend, c.reason);
    assert!(c.cpu_ms.is_some() && c.gpu_ms.is_some() && c.adapter.is_some());
    assert_eq!(c.backend == Backend::Gpu, c.gpu_ms < c.cpu_ms);
    let cpu = block_on(Scoring::init(&m, Preference::Cpu, &clock));
    assert_eq!(cpu.choice().backend, Backend::Cpu);
    assert!(cpu.choice().reason.contains("asked for"));

    let mut gpu = block_on(Scoring::init(&m, Preference::Gpu, &clock));
    assert_eq!(gpu.choice().backend, Backend::Gpu);
    let u = m.user(&rng.vec(dims, 1.0)).unwrap();
    let expected = m.top_k(&u, 20, None);
    assert_eq!(block_on(gpu.top_k(&m, &u, 20, None)), expected);
    gpu.break_gpu();
    assert_eq!(block_on(gpu.top_k(&m, &u, 20, None)), expected, "the request that met the failure is answered");
    assert_eq!(gpu.choice().backend, Backend::Cpu);
    assert!(gpu.choice().reason.contains("gpu_lost"), "{}", gpu.choice().reason);
}
