//! Which path scores a visitor tower's item embeddings in the browser (`scoring()`), and the
//! asynchronous `recommend` that selects candidates on the GPU. The GPU is probed and
//! calibrated after init, without holding it up; until then, and whenever the GPU is not
//! chosen or fails, the CPU scores.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;

use super::WebClient;

/// `performance.now()` in a window or a worker.
#[cfg(feature = "webgpu")]
pub(crate) fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = perf.as_ref().and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok()).and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    match (perf, now) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}

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
    #[cfg(feature = "webgpu")]
    pub gpu: Option<crate::infer::gpu::Scoring>,
}

fn cpu(reason: impl Into<String>) -> ChoiceView {
    ChoiceView { backend: "cpu", reason: reason.into(), adapter: None, cpu_ms: None, gpu_ms: None, ready: true }
}

#[cfg(feature = "webgpu")]
fn view(c: &crate::infer::gpu::Choice) -> ChoiceView {
    ChoiceView {
        backend: c.backend.as_str(),
        reason: c.reason.clone(),
        adapter: c.adapter.as_ref().map(|a| format!("{} ({}, {})", a.name, a.backend, a.device_type)),
        cpu_ms: c.cpu_ms,
        gpu_ms: c.gpu_ms,
        ready: true,
    }
}

/// Decides the path for this client's recommender; the GPU's probe runs in the background.
pub(crate) fn start(client: &Rc<RefCell<WebClient>>) -> Rc<RefCell<ScoringSlot>> {
    let slot = Rc::new(RefCell::new(ScoringSlot {
        choice: cpu(""),
        generation: 0,
        #[cfg(feature = "webgpu")]
        gpu: None,
    }));
    probe(client, &slot);
    slot
}

/// (Re)decides the path for the recommender the client holds now: at init, and after an
/// update swapped in another one. A probe still running for the previous model is ignored
/// when it finishes.
pub(crate) fn probe(client: &Rc<RefCell<WebClient>>, slot: &Rc<RefCell<ScoringSlot>>) {
    use crate::infer::score::Preference;
    let (items, preference) = match client.try_borrow() {
        Ok(c) => (c.tower_items(), c.scoring_preference()),
        Err(_) => (None, Preference::Cpu),
    };
    let Ok(mut s) = slot.try_borrow_mut() else { return };
    s.generation += 1;
    #[cfg(feature = "webgpu")]
    {
        s.gpu = None;
    }
    let Some(items) = items else {
        s.choice = cpu("the recommender has no item embeddings: it scores the catalog itself");
        return;
    };
    if preference == Preference::Cpu {
        s.choice = cpu("the CPU was asked for (scoring: \"cpu\")");
        return;
    }
    #[cfg(not(feature = "webgpu"))]
    {
        let _ = items;
        s.choice = cpu("this build of the SDK has no WebGPU scoring (cargo feature `webgpu`)");
    }
    #[cfg(feature = "webgpu")]
    {
        s.choice = ChoiceView { ready: false, ..cpu("WebGPU is being probed; the CPU scores meanwhile") };
        let (weak, generation) = (Rc::downgrade(slot), s.generation);
        wasm_bindgen_futures::spawn_local(async move {
            let scoring = crate::infer::gpu::Scoring::init(&items, preference, &now_ms).await;
            let Some(s) = weak.upgrade() else { return };
            let mut s = s.borrow_mut();
            if s.generation != generation {
                return;
            }
            s.choice = view(scoring.choice());
            if scoring.choice().backend == crate::infer::gpu::Backend::Gpu {
                s.gpu = Some(scoring);
            }
        });
    }
}

/// `recommend` with the GPU selecting the candidates, when it is chosen and free; `None` when
/// the synchronous path should answer.
#[cfg(feature = "webgpu")]
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
        s.choice = view(gpu.choice());
        if gpu.choice().backend == crate::infer::gpu::Backend::Gpu {
            s.gpu = Some(gpu);
        }
    }
    let mut c = client.try_borrow_mut().ok()?;
    Some(c.recommend_with_candidates(&options, request, candidates))
}
