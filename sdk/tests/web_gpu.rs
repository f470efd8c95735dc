//! The WebGPU scoring path in headless Chromium. `scripts/test-browser.sh` runs this twice:
//! with `--enable-unsafe-webgpu` (SwiftShader's adapter; built with FORESIGHT_EXPECT_WEBGPU=1)
//! the GPU's top-k must equal the CPU's; without it the SDK must choose the CPU and say why.
#![cfg(all(target_arch = "wasm32", feature = "webgpu"))]

use foresight::gpu::{Backend, Preference, Scoring};
use foresight::score::{ItemMask, ItemMatrix};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const EXPECT_WEBGPU: bool = option_env!("FORESIGHT_EXPECT_WEBGPU").is_some();

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn clock() -> f64 {
    js_sys::Date::now()
}

fn matrices() -> Vec<ItemMatrix> {
    let mut s = 11;
    let (rows, dims) = (5000, 64);
    let values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut s)).collect();
    let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut s) * 0.2).collect();
    // Ties: rows from three prototypes.
    let tied: Vec<f32> = (0..rows).flat_map(|r| values[(r % 3) * dims..(r % 3 + 1) * dims].to_vec()).collect();
    vec![
        ItemMatrix::from_f32(rows, dims, &values, Some(bias.clone())).unwrap(),
        ItemMatrix::from_f32_as_f16(rows, dims, &values, Some(bias)).unwrap(),
        ItemMatrix::from_f32(rows, dims, &tied, None).unwrap(),
    ]
}

#[wasm_bindgen_test]
async fn scoring_path_matches_the_cpu_or_says_why_not() {
    let mut s = 5;
    for m in matrices() {
        let mut scoring = Scoring::init(&m, Preference::Gpu, &clock).await;
        let choice = scoring.choice().clone();
        web_sys::console::log_1(&format!("scoring: {:?} — {} ({:?})", choice.backend, choice.reason, choice.adapter).into());
        if EXPECT_WEBGPU {
            assert_eq!(choice.backend, Backend::Gpu, "{}", choice.reason);
            assert!(choice.adapter.is_some());
        } else {
            assert_eq!(choice.backend, Backend::Cpu);
            assert!(choice.reason.contains("no WebGPU adapter") || choice.reason.contains("unusable"), "{}", choice.reason);
        }
        let mask = ItemMask::from_items(m.rows(), (0..m.rows()).step_by(9));
        for k in [1, 20, 1100] {
            let user = m.user(&(0..m.dims()).map(|_| lcg(&mut s)).collect::<Vec<_>>()).unwrap();
            assert_eq!(scoring.top_k(&m, &user, k, None).await, m.top_k(&user, k, None), "k = {k}");
            assert_eq!(scoring.top_k(&m, &user, k, Some(&mask)).await, m.top_k(&user, k, Some(&mask)), "k = {k}, masked");
        }
        assert_eq!(scoring.choice().backend, choice.backend, "no GPU error along the way");
    }
    // Auto picks one path with its reason; it is never an error.
    let m = &matrices()[0];
    let auto = Scoring::init(m, Preference::Auto, &clock).await;
    web_sys::console::log_1(&format!("auto: {}", auto.choice().reason).into());
    assert!(!auto.choice().reason.is_empty());
}
