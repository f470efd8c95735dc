//! The WebGPU scoring path in headless Chromium. `scripts/test-browser.sh` runs this twice:
//! with `--enable-unsafe-webgpu` (SwiftShader's adapter; built with FORESIGHT_EXPECT_WEBGPU=1)
//! the GPU's top-k must equal the CPU's; without it the SDK must choose the CPU and say why.
#![cfg(all(target_arch = "wasm32", feature = "webgpu"))]

use foresight::infer::gpu::{Backend, Preference, Scoring};
use foresight::infer::score::{ItemMask, ItemMatrix};
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

const TOWER_BUNDLE: &[u8] = include_bytes!("../../tests/fixtures/bundles/session_tower.fsb");
const TEST_PUBLIC_KEY: &str = include_str!("../../tests/fixtures/bundles/test-signing.pub");

fn blob_url(bytes: &[u8]) -> String {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).expect("blob");
    web_sys::Url::create_object_url_with_blob(&blob).expect("object URL")
}

fn json(v: &wasm_bindgen::JsValue) -> String {
    js_sys::JSON::stringify(v).expect("stringify").into()
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let _ = web_sys::window().expect("window").set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}

async fn tower(key: &str, scoring: &str) -> foresight::web::WebForesight {
    for suffix in ["", ".consent", ".outbox", ".outbox.budget", ".shown", ".state", ".variants"] {
        let _ = web_sys::window().and_then(|w| w.local_storage().ok().flatten()).map(|s| s.remove_item(&format!("{key}{suffix}")));
    }
    let cfg = format!(
        r#"{{"storageKey": "{key}", "bundleUrl": "{}", "publicKey": "{}", "scoring": "{scoring}", "precompute": false}}"#,
        blob_url(TOWER_BUNDLE),
        TEST_PUBLIC_KEY.trim()
    );
    let fs = foresight::web::WebForesight::init(js_sys::JSON::parse(&cfg).expect("json")).await.map_err(|e| json(&e)).expect("init");
    // The GPU is probed after init; wait for its verdict (bounded).
    for _ in 0..600 {
        let s = fs.scoring().expect("scoring");
        if js_sys::Reflect::get(&s, &"ready".into()).ok().and_then(|v| v.as_bool()) == Some(true) {
            break;
        }
        sleep(50).await;
    }
    fs
}

/// The SDK with a visitor-tower bundle: `scoring: "gpu"` selects on the GPU when WebGPU is
/// there and recommends exactly what `scoring: "cpu"` does; without WebGPU it says why.
#[wasm_bindgen_test]
async fn tower_bundle_recommends_the_same_on_gpu_and_cpu() {
    let gpu = tower("fs-test-tower-gpu", "gpu").await;
    let cpu = tower("fs-test-tower-cpu", "cpu").await;
    let choice = json(&gpu.scoring().expect("scoring"));
    web_sys::console::log_1(&format!("tower scoring: {choice}").into());
    assert!(choice.contains(r#""ready":true"#), "{choice}");
    if EXPECT_WEBGPU {
        assert!(choice.contains(r#""backend":"gpu""#), "{choice}");
    } else {
        assert!(choice.contains(r#""backend":"cpu""#) && choice.contains("WebGPU"), "{choice}");
    }
    assert!(json(&cpu.scoring().expect("scoring")).contains("asked for"));
    for (n, id) in ["sku-00042", "sku-00777", "sku-01234", "sku-04000", "sku-00042", "sku-02500"].iter().enumerate() {
        let event = js_sys::JSON::parse(&format!(r#"{{"type": "product_view", "itemId": "{id}"}}"#)).expect("json");
        gpu.track(event.clone()).expect("track");
        cpu.track(event).expect("track");
        let options = js_sys::JSON::parse(r#"{"k": 12}"#).expect("json");
        let a =
            wasm_bindgen_futures::JsFuture::from(gpu.recommend_async(options.clone())).await.map_err(|e| json(&e)).expect("gpu recommend");
        let b = wasm_bindgen_futures::JsFuture::from(cpu.recommend_async(options)).await.map_err(|e| json(&e)).expect("cpu recommend");
        let items = |v: &wasm_bindgen::JsValue| json(&js_sys::Reflect::get(v, &"items".into()).expect("items"));
        assert_eq!(items(&a), items(&b), "after {} views", n + 1);
        assert!(json(&a).contains(r#""source":"model""#), "{}", json(&a));
    }
    assert!(
        json(&gpu.scoring().expect("scoring")).contains(if EXPECT_WEBGPU { r#""backend":"gpu""# } else { r#""backend":"cpu""# }),
        "no fallback along the way"
    );
}

/// Every half a matrix can hold widens exactly in the wasm SIMD path too: 8,192 rows × 8 dims
/// hold all 65,536 bit patterns (∞/NaN and subnormals as zeros), read back through unit vectors.
#[wasm_bindgen_test]
fn every_half_widens_exactly_on_wasm() {
    let bits: Vec<u16> = (0..=u16::MAX).map(|b| if b & 0x7c00 == 0x7c00 || (b & 0x7c00 == 0 && b & 0x03ff != 0) { 0 } else { b }).collect();
    let m = ItemMatrix::from_f16_bits(8192, 8, &bits, None).unwrap();
    let mut row = vec![0f32; m.stride()];
    for d in 0..8 {
        let mut unit = vec![0f32; 8];
        unit[d] = 1.0;
        let u = m.user(&unit).unwrap();
        for r in 0..8192 {
            let want = half::f16::from_bits(bits[r * 8 + d]).to_f32();
            let got = m.score(&u, r, &mut row);
            assert!(got == want || (got == 0.0 && want == 0.0), "bits {:#06x}: {got} vs {want}", bits[r * 8 + d]);
        }
    }
}
