//! `BenchScorer`: the scoring paths without the client, for `bench/pages/gpu.html` — a
//! synthetic item matrix scored on the CPU (wasm SIMD) and on WebGPU in the same page.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::infer::gpu::{Preference, Scoring};
use crate::infer::score::ItemMatrix;

use crate::infer::gpu::now_ms;

fn err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

struct Inner {
    matrix: ItemMatrix,
    scoring: Option<Scoring>,
    user: Vec<f32>,
}

#[wasm_bindgen]
pub struct BenchScorer {
    inner: Rc<RefCell<Inner>>,
}

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

#[wasm_bindgen]
impl BenchScorer {
    /// A random `rows × dims` matrix (f16 when asked) and the scoring path for `preference`
    /// (`auto`, `cpu`, `gpu`), calibrated as the SDK does at init.
    pub async fn create(rows: usize, dims: usize, f16: bool, seed: u32, preference: String) -> Result<BenchScorer, JsValue> {
        let preference: Preference = preference.parse().map_err(err)?;
        let mut s = seed as u64 + 1;
        let values: Vec<f32> = (0..rows * dims).map(|_| lcg(&mut s)).collect();
        let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut s) * 0.1).collect();
        let matrix = if f16 {
            ItemMatrix::from_f32_as_f16(rows, dims, &values, Some(bias))
        } else {
            ItemMatrix::from_f32(rows, dims, &values, Some(bias))
        }
        .map_err(err)?;
        drop(values);
        let user = matrix.user(&(0..dims).map(|_| lcg(&mut s)).collect::<Vec<_>>()).map_err(err)?;
        let scoring = Scoring::init(&matrix, preference, &now_ms).await;
        Ok(BenchScorer { inner: Rc::new(RefCell::new(Inner { matrix, scoring: Some(scoring), user })) })
    }

    /// `{ backend, reason, adapter?, cpuMs?, gpuMs? }`.
    pub fn choice(&self) -> JsValue {
        let inner = self.inner.borrow();
        inner.scoring.as_ref().map_or_else(|| js_sys::Object::new().into(), |s| s.choice().to_js())
    }

    /// A new visitor vector.
    #[wasm_bindgen(js_name = setUser)]
    pub fn set_user(&self, seed: u32) -> Result<(), JsValue> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| err("a topK call is running: await it first"))?;
        let mut s = seed as u64 + 7;
        let dims = inner.matrix.dims();
        inner.user = inner.matrix.user(&(0..dims).map(|_| lcg(&mut s)).collect::<Vec<_>>()).map_err(err)?;
        Ok(())
    }

    /// Top-k indices on the CPU path (wasm SIMD).
    #[wasm_bindgen(js_name = cpuTopK)]
    pub fn cpu_top_k(&self, k: usize) -> Vec<u32> {
        let inner = self.inner.borrow();
        inner.matrix.top_k(&inner.user, k, None).into_iter().map(|(i, _)| i as u32).collect()
    }

    /// Top-k indices on the chosen path (resolves to a `Uint32Array`).
    #[wasm_bindgen(js_name = topK)]
    // Deliberate: the borrow across the await is what makes a concurrent setUser fail loudly.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn top_k(&self, k: usize) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            // The scorer leaves the cell while the GPU works; a shared borrow of the matrix
            // spans the await, so setUser during a topK fails loudly instead of racing.
            let mut scoring = inner.borrow_mut().scoring.take().ok_or_else(|| err("another topK call is still running"))?;
            let top = {
                let b = inner.borrow();
                scoring.top_k(&b.matrix, &b.user, k, None).await
            };
            inner.borrow_mut().scoring = Some(scoring);
            let out: Vec<u32> = top.into_iter().map(|(i, _)| i as u32).collect();
            Ok(js_sys::Uint32Array::from(&out[..]).into())
        })
    }

    /// Bytes of the matrix as uploaded.
    #[wasm_bindgen(js_name = matrixBytes)]
    pub fn matrix_bytes(&self) -> usize {
        let inner = self.inner.borrow();
        inner.matrix.rows() * inner.matrix.row_bytes()
    }
}
