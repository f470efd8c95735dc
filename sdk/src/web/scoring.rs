//! Which path scores a visitor tower's item embeddings in the browser (`scoring()`), and the
//! asynchronous `recommend` that selects candidates on the GPU. The GPU is probed and
//! calibrated after init, without holding it up; until then, and whenever the GPU is not
//! chosen or fails, the CPU scores.
//!
//! wgpu is not in the shipped core: the GPU path is the `foresight_gpu` module (`sdk/gpu`),
//! which the page's `loadGpu()` fetches only for a visitor tower, in a browser that has a
//! WebGPU adapter, when the CPU was not asked for. Builds with the `webgpu` feature (bench and
//! test builds) run the same path compiled in.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::storage::describe;

use super::WebClient;
use crate::infer::score::{ItemMask, ItemMatrix, Preference};

/// What `scoring()` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChoiceView {
    pub backend: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_ms: Option<f64>,
    /// False while the GPU is still being probed and calibrated.
    pub ready: bool,
}

pub(crate) struct ScoringSlot {
    pub choice: ChoiceView,
    /// Counts the recommenders probed for, so a probe outlived by a swap changes nothing.
    generation: u32,
    /// The GPU path, when it was chosen; out of the slot while a request uses it.
    pub gpu: Option<Gpu>,
    /// The config's `loadGpu`: resolves to the `foresight_gpu` module.
    load_gpu: Option<js_sys::Function>,
}

fn cpu(reason: impl Into<String>) -> ChoiceView {
    ChoiceView { backend: "cpu", reason: reason.into(), adapter: None, cpu_ms: None, gpu_ms: None, ready: true }
}

#[cfg(feature = "webgpu")]
fn view(c: &crate::infer::gpu::Choice) -> ChoiceView {
    ChoiceView {
        backend: c.backend.as_str(),
        reason: c.reason.clone(),
        adapter: c.adapter.as_ref().map(ToString::to_string),
        cpu_ms: c.cpu_ms,
        gpu_ms: c.gpu_ms,
        ready: true,
    }
}

fn get(object: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

async fn settle(value: Result<JsValue, JsValue>) -> Result<JsValue, String> {
    let value = value.map_err(|e| describe(&e))?;
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&value)).await.map_err(|e| describe(&e))
}

/// The GPU path: compiled in, or in the fetched module.
pub(crate) enum Gpu {
    #[cfg(feature = "webgpu")]
    Builtin(Box<crate::infer::gpu::Scoring>),
    #[cfg_attr(feature = "webgpu", allow(dead_code))]
    Module(GpuModule),
}

impl Gpu {
    /// Probes the adapter, uploads the matrix and, for `auto`, times both paths; `Err` says
    /// why the CPU scores instead.
    async fn open(items: &ItemMatrix, preference: Preference, load_gpu: Option<&js_sys::Function>) -> Result<Gpu, String> {
        #[cfg(feature = "webgpu")]
        {
            let _ = load_gpu;
            let scoring = crate::infer::gpu::Scoring::init(items, preference, &crate::infer::gpu::now_ms).await;
            Ok(Gpu::Builtin(Box::new(scoring)))
        }
        #[cfg(not(feature = "webgpu"))]
        {
            GpuModule::open(items, preference, load_gpu).await.map(Gpu::Module)
        }
    }

    pub fn choice(&self) -> ChoiceView {
        match self {
            #[cfg(feature = "webgpu")]
            Gpu::Builtin(s) => view(s.choice()),
            Gpu::Module(m) => m.choice.clone(),
        }
    }

    /// The `k` best unmasked items for a padded visitor vector, on the chosen path; a GPU
    /// failure answers on the CPU.
    pub async fn top_k(&mut self, matrix: &ItemMatrix, user: &[f32], k: usize, mask: Option<&ItemMask>) -> Vec<(usize, f32)> {
        match self {
            #[cfg(feature = "webgpu")]
            Gpu::Builtin(s) => s.top_k(matrix, user, k, mask).await,
            Gpu::Module(m) => match m.top_k(matrix.rows(), user, k, mask).await {
                Ok(top) => top,
                Err(e) => {
                    super::warn(&format!("GPU scoring failed ({e}); scoring on the CPU from now on"));
                    m.choice = cpu(format!("the WebGPU module failed: {e}"));
                    matrix.top_k(user, k, mask)
                }
            },
        }
    }
}

/// A matrix held by the `foresight_gpu` module; dropping it frees it there.
pub(crate) struct GpuModule {
    handle: JsValue,
    choice: ChoiceView,
}

/// Whether the browser has a WebGPU adapter, asked before the module is fetched: most
/// browsers without one never download it.
#[cfg_attr(feature = "webgpu", allow(dead_code))]
async fn adapter_present() -> Result<(), String> {
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this environment has no WebGPU (no navigator.gpu)".into());
    }
    let request =
        get(&gpu, "requestAdapter").dyn_into::<js_sys::Function>().map_err(|_| "navigator.gpu has no requestAdapter()".to_owned())?;
    let adapter = settle(request.call0(&gpu)).await.map_err(|e| format!("no WebGPU adapter ({e})"))?;
    if adapter.is_undefined() || adapter.is_null() {
        return Err("no WebGPU adapter (requestAdapter() found none)".into());
    }
    Ok(())
}

#[cfg_attr(feature = "webgpu", allow(dead_code))]
impl GpuModule {
    async fn open(items: &ItemMatrix, preference: Preference, load_gpu: Option<&js_sys::Function>) -> Result<GpuModule, String> {
        adapter_present().await?;
        let load = load_gpu.ok_or("WebGPU scoring is a module of its own and the config has no loadGpu (the npm package passes one)")?;
        let module = settle(load.call0(&JsValue::UNDEFINED)).await.map_err(|e| format!("the WebGPU module could not be loaded ({e})"))?;
        let open = get(&module, "openScoring")
            .dyn_into::<js_sys::Function>()
            .map_err(|_| "loadGpu() resolved to something without openScoring(): pass the foresight_gpu module".to_owned())?;
        let bias = items.bias().map_or(JsValue::UNDEFINED, |b| js_sys::Float32Array::from(b).into());
        let preference = match preference {
            Preference::Auto => "auto",
            Preference::Cpu => "cpu",
            Preference::Gpu => "gpu",
        };
        let args = js_sys::Array::new();
        for arg in [
            (items.rows() as f64).into(),
            (items.dims() as f64).into(),
            items.dtype().as_str().into(),
            js_sys::Uint8Array::from(&items.to_le_bytes()[..]).into(),
            bias,
            preference.into(),
        ] {
            args.push(&arg);
        }
        let handle = settle(open.apply(&module, &args)).await.map_err(|e| format!("WebGPU is present but unusable: {e}"))?;
        let mut m = GpuModule { handle, choice: cpu("") };
        m.choice = m.read_choice()?;
        Ok(m)
    }

    fn read_choice(&self) -> Result<ChoiceView, String> {
        let method = get(&self.handle, "choice")
            .dyn_into::<js_sys::Function>()
            .map_err(|_| "the WebGPU module's scorer has no choice()".to_owned())?;
        let c = method.call0(&self.handle).map_err(|e| describe(&e))?;
        let number = |k| get(&c, k).as_f64();
        Ok(ChoiceView {
            backend: if get(&c, "backend").as_string().as_deref() == Some("gpu") { "gpu" } else { "cpu" },
            reason: get(&c, "reason").as_string().unwrap_or_default(),
            adapter: get(&c, "adapter").as_string(),
            cpu_ms: number("cpuMs"),
            gpu_ms: number("gpuMs"),
            ready: true,
        })
    }

    async fn top_k(&mut self, rows: usize, user: &[f32], k: usize, mask: Option<&ItemMask>) -> Result<Vec<(usize, f32)>, String> {
        let method =
            get(&self.handle, "topK").dyn_into::<js_sys::Function>().map_err(|_| "the WebGPU module's scorer has no topK()".to_owned())?;
        let mask = mask.map_or(JsValue::UNDEFINED, |m| js_sys::Uint32Array::from(m.words()).into());
        let result = settle(method.call3(&self.handle, &js_sys::Float32Array::from(user), &(k as f64).into(), &mask)).await?;
        let items = get(&result, "items").dyn_into::<js_sys::Uint32Array>().map_err(|_| "topK() gave no items".to_owned())?.to_vec();
        let scores = get(&result, "scores").dyn_into::<js_sys::Float32Array>().map_err(|_| "topK() gave no scores".to_owned())?.to_vec();
        // A module of another version must not index past the catalog.
        if items.len() != scores.len() || items.len() > k || items.iter().any(|&i| i as usize >= rows) {
            return Err("topK() answered for another catalog: is the WebGPU module the SDK's version?".into());
        }
        if get(&result, "backend").as_string().as_deref() != Some("gpu") {
            // It met a GPU failure and answered on the CPU: its choice says why.
            self.choice = self.read_choice()?;
        }
        Ok(items.into_iter().map(|i| i as usize).zip(scores).collect())
    }
}

impl Drop for GpuModule {
    fn drop(&mut self) {
        if let Ok(free) = get(&self.handle, "free").dyn_into::<js_sys::Function>() {
            let _ = free.call0(&self.handle);
        }
    }
}

/// Decides the path for this client's recommender; the GPU's probe runs in the background.
pub(crate) fn start(client: &Rc<RefCell<WebClient>>, load_gpu: Option<js_sys::Function>) -> Rc<RefCell<ScoringSlot>> {
    let slot = Rc::new(RefCell::new(ScoringSlot { choice: cpu(""), generation: 0, gpu: None, load_gpu }));
    probe(client, &slot);
    slot
}

/// (Re)decides the path for the recommender the client holds now: at init, and after an
/// update swapped in another one. A probe still running for the previous model is ignored
/// when it finishes.
pub(crate) fn probe(client: &Rc<RefCell<WebClient>>, slot: &Rc<RefCell<ScoringSlot>>) {
    let (items, preference) = match client.try_borrow() {
        Ok(c) => (c.tower_items(), c.scoring_preference()),
        Err(_) => (None, Preference::Cpu),
    };
    let Ok(mut s) = slot.try_borrow_mut() else { return };
    s.generation += 1;
    // The embeddings a GPU path holds (if any) are the old model's.
    s.gpu = None;
    let Some(items) = items else {
        s.choice = cpu("the recommender has no item embeddings: it scores the catalog itself");
        return;
    };
    if preference == Preference::Cpu {
        s.choice = cpu("the CPU was asked for (scoring: \"cpu\")");
        return;
    }
    s.choice = ChoiceView { ready: false, ..cpu("WebGPU is being probed; the CPU scores meanwhile") };
    let (weak, generation, load_gpu) = (Rc::downgrade(slot), s.generation, s.load_gpu.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let opened = Gpu::open(&items, preference, load_gpu.as_ref()).await;
        let Some(s) = weak.upgrade() else { return };
        let Ok(mut s) = s.try_borrow_mut() else { return };
        if s.generation != generation {
            return;
        }
        match opened {
            Ok(gpu) => {
                s.choice = gpu.choice();
                // A path that chose the CPU is dropped, and with it the module's copy of the matrix.
                if s.choice.backend == "gpu" {
                    s.gpu = Some(gpu);
                }
            }
            Err(reason) => s.choice = cpu(reason),
        }
    });
}

/// `recommend` with the GPU selecting the candidates, when it is chosen and free; `None` when
/// the synchronous path should answer.
pub(crate) async fn recommend_on_gpu(
    slot: Rc<RefCell<ScoringSlot>>,
    client: Rc<RefCell<WebClient>>,
    options: crate::recommend::RecommendOptions,
) -> Option<crate::error::Result<crate::recommend::Recommendations>> {
    let (mut gpu, generation) = {
        let mut s = slot.try_borrow_mut().ok()?;
        (s.gpu.take()?, s.generation)
    };
    let request = match client.try_borrow_mut().ok().map(|mut c| c.tower_request(&options)) {
        Some(Ok(Some(r))) => r,
        other => {
            if let Ok(mut s) = slot.try_borrow_mut() {
                s.gpu = Some(gpu);
            }
            return match other {
                Some(Err(e)) => Some(Err(e)),
                _ => None,
            };
        }
    };
    let candidates = gpu.top_k(&request.items, &request.user, request.width, Some(&request.mask)).await;
    if slot.try_borrow().map_or(true, |s| s.generation != generation) {
        // An update swapped the recommender in the meantime: these candidates index the old
        // catalog, so the synchronous path answers with the new model.
        return None;
    }
    if let Ok(mut s) = slot.try_borrow_mut() {
        s.choice = gpu.choice();
        if s.choice.backend == "gpu" {
            s.gpu = Some(gpu);
        }
    }
    let mut c = client.try_borrow_mut().ok()?;
    Some(c.recommend_with_candidates(&options, request, candidates))
}
