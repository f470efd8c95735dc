//! WebGPU scoring, a wasm module of its own: wgpu is about a seventh of the SDK's bytes and
//! scores only the item embeddings of visitor-tower models, so the core leaves it out. Its
//! `scoring` module (`sdk/src/web/scoring.rs`, the other side of this interface) fetches this
//! one only for such a model, when the browser has a WebGPU adapter and the CPU was not asked
//! for, then sends it a copy of the item matrix and asks it for candidates.
//!
//! The module runs the same [`Scoring`] as a build with the GPU compiled in: the GPU selects,
//! the CPU rescores within the proven rounding bound, so its answers are the CPU path's.

use foresight::infer::gpu::{Backend, Preference, Scoring};
use foresight::infer::score::{Dtype, ItemMask, ItemMatrix};

/// The item matrix as the core sends it: the bundle's unpadded little-endian rows.
pub fn matrix(rows: usize, dims: usize, dtype: &str, bytes: &[u8], bias: Option<Vec<f32>>) -> Result<ItemMatrix, String> {
    let dtype = match dtype {
        "f32" => Dtype::F32,
        "f16" => Dtype::F16,
        other => return Err(format!("`{other}` is not an item matrix type: the core sends \"f32\" or \"f16\"")),
    };
    ItemMatrix::from_le_bytes(rows, dims, dtype, bytes, bias).map_err(|e| e.to_string())
}

/// Where the GPU path stands: `Some(scoring)` while it is usable.
pub struct State {
    pub scoring: Scoring,
    pub matrix: ItemMatrix,
}

impl State {
    pub async fn open(matrix: ItemMatrix, preference: &str, clock: &dyn Fn() -> f64) -> Result<State, String> {
        let preference: Preference = preference.parse()?;
        let scoring = Scoring::init(&matrix, preference, clock).await;
        Ok(State { scoring, matrix })
    }

    /// The `k` best unmasked items for a visitor vector (unpadded or padded to the stride).
    pub async fn top_k(&mut self, user: &[f32], k: usize, mask: Option<&[u32]>) -> Result<Vec<(usize, f32)>, String> {
        let user = if user.len() == self.matrix.stride() { user.to_vec() } else { self.matrix.user(user).map_err(|e| e.to_string())? };
        let mask = mask.map(|words| ItemMask::from_words(self.matrix.rows(), words));
        Ok(self.scoring.top_k(&self.matrix, &user, k, mask.as_ref()).await)
    }

    pub fn on_gpu(&self) -> bool {
        self.scoring.choice().backend == Backend::Gpu
    }
}

#[cfg(target_arch = "wasm32")]
mod web {
    use std::cell::RefCell;
    use std::rc::Rc;

    use wasm_bindgen::prelude::*;

    use super::State;

    fn error(m: impl std::fmt::Display) -> JsValue {
        js_sys::Error::new(&m.to_string()).into()
    }

    /// `openScoring(rows, dims, "f32" | "f16", bytes, bias?, preference)`: probes the adapter,
    /// uploads the matrix and (for `"auto"`) calibrates both paths, as the SDK does at init.
    #[wasm_bindgen(js_name = openScoring)]
    pub async fn open_scoring(
        rows: usize,
        dims: usize,
        dtype: String,
        bytes: Vec<u8>,
        bias: Option<Vec<f32>>,
        preference: String,
    ) -> Result<GpuScoring, JsValue> {
        console_error_panic_hook::set_once();
        let matrix = super::matrix(rows, dims, &dtype, &bytes, bias).map_err(error)?;
        drop(bytes);
        let state = State::open(matrix, &preference, &foresight::infer::gpu::now_ms).await.map_err(error)?;
        Ok(GpuScoring { state: Rc::new(RefCell::new(Some(state))) })
    }

    /// One matrix on the chosen path; `free()` releases it and its GPU buffers.
    #[wasm_bindgen]
    pub struct GpuScoring {
        /// Out of the cell while a `topK` awaits the GPU.
        state: Rc<RefCell<Option<State>>>,
    }

    #[wasm_bindgen]
    impl GpuScoring {
        /// `{backend: "cpu" | "gpu", reason, adapter?, cpuMs?, gpuMs?}`.
        pub fn choice(&self) -> Result<JsValue, JsValue> {
            let state = self.state.try_borrow().map_err(error)?;
            let state = state.as_ref().ok_or_else(|| error("a topK call is running: await it first"))?;
            Ok(state.scoring.choice().to_js())
        }

        /// Resolves to `{items: Uint32Array, scores: Float32Array, backend}`: the `k` best items
        /// not in `mask` (one bit per item, as `Uint32Array` words). A GPU failure answers this
        /// request on the CPU and `backend` becomes `"cpu"` for good.
        #[wasm_bindgen(js_name = topK)]
        pub fn top_k(&self, user: Vec<f32>, k: usize, mask: Option<Vec<u32>>) -> js_sys::Promise {
            let cell = self.state.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let mut state =
                    cell.try_borrow_mut().ok().and_then(|mut s| s.take()).ok_or_else(|| error("another topK call is still running"))?;
                let top = state.top_k(&user, k, mask.as_deref()).await;
                let backend = if state.on_gpu() { "gpu" } else { "cpu" };
                if let Ok(mut s) = cell.try_borrow_mut() {
                    *s = Some(state);
                }
                let top = top.map_err(error)?;
                let items: Vec<u32> = top.iter().map(|&(i, _)| i as u32).collect();
                let scores: Vec<f32> = top.iter().map(|&(_, s)| s).collect();
                let o = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&o, &"items".into(), &js_sys::Uint32Array::from(&items[..]));
                let _ = js_sys::Reflect::set(&o, &"scores".into(), &js_sys::Float32Array::from(&scores[..]));
                let _ = js_sys::Reflect::set(&o, &"backend".into(), &backend.into());
                Ok(o.into())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn the_matrix_crosses_as_bundle_bytes_and_scores_the_same() {
        let mut seed = 3;
        let (rows, dims) = (300, 13);
        let values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut seed)).collect();
        let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut seed)).collect();
        for original in [
            ItemMatrix::from_f32(rows, dims, &values, Some(bias.clone())).expect("f32"),
            ItemMatrix::from_f32_as_f16(rows, dims, &values, None).expect("f16"),
        ] {
            let copy = matrix(rows, dims, original.dtype().as_str(), &original.to_le_bytes(), original.bias().map(<[f32]>::to_vec))
                .expect("the same matrix");
            let user = original.user(&(0..dims).map(|_| lcg(&mut seed)).collect::<Vec<_>>()).expect("user");
            let mask = ItemMask::from_items(rows, [0, 5, 299]);
            assert_eq!(copy.top_k(&user, 20, Some(&mask)), original.top_k(&user, 20, Some(&mask)));
        }
    }

    #[test]
    fn a_wrong_matrix_is_refused_with_why() {
        assert!(matrix(10, 4, "f64", &[0; 320], None).unwrap_err().contains("f64"));
        let short = matrix(10, 4, "f32", &[0; 100], None).unwrap_err();
        assert!(!short.is_empty());
        assert!(matrix(10, 4, "f32", &[0; 160], Some(vec![0.0; 3])).is_err(), "bias of the wrong length");
    }

    #[test]
    fn the_cpu_path_answers_when_it_is_asked_for() {
        let mut seed = 5;
        let (rows, dims) = (64, 8);
        let values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut seed)).collect();
        let m = ItemMatrix::from_f32(rows, dims, &values, None).expect("matrix");
        let user: Vec<f32> = (0..dims).map(|_| lcg(&mut seed)).collect();
        let expected = m.top_k(&m.user(&user).expect("user"), 5, None);
        let mut state = pollster::block_on(State::open(m, "cpu", &|| 0.0)).expect("opens");
        assert!(!state.on_gpu());
        assert_eq!(pollster::block_on(state.top_k(&user, 5, None)).expect("scores"), expected);
        assert!(pollster::block_on(State::open(ItemMatrix::from_f32(1, 1, &[1.0], None).expect("m"), "tpu", &|| 0.0))
            .err()
            .expect("refused")
            .contains("tpu"));
    }
}
