//! Graph models in the browser. The core wasm has no graph runtime: when a bundle is a graph
//! (NNEF/ONNX) or the config gives an inline ONNX model, `init` calls the page's `loadTract()`
//! (the npm package passes one that imports `./tract/foresight_tract.js` beside itself), and
//! the graphs run in that module through the proxies here. Pages whose models are all on the
//! SDK's own kernels never download it.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::storage::describe;

use crate::client::{Config, Graphs};
use crate::contract::bundle::Bundle;
use crate::contract::manifest::ModelFormat;
use crate::error::ModelError;
use crate::infer::model::{GraphFormat, GraphLoader, GraphRunner, GraphSource, Width};

/// Whether the config's inline models (always ONNX) need a graph runtime; a bundle says so in
/// its manifest, read once it is verified.
pub(super) fn inline_graphs(config: &Config) -> bool {
    config.recommender.is_some() || config.intent.is_some()
}

/// Whether a bundle's model is a graph (NNEF/ONNX) rather than on the SDK's own kernels.
pub(super) fn is_graph(bundle: &Bundle) -> bool {
    matches!(bundle.manifest.model.format, ModelFormat::Nnef | ModelFormat::Onnx)
}

/// The graph runtime a load may use: the one compiled into this build (bench and test builds),
/// else the tract module fetched through `loadTract` once a model needs it, else why there is
/// none.
pub(super) struct Runtime {
    fetched: Option<JsGraphs>,
    why_not: String,
    tried: bool,
}

impl Runtime {
    pub(super) fn new() -> Runtime {
        Runtime { fetched: None, why_not: "the config has no loadTract (the npm package passes one)".into(), tried: false }
    }

    /// Fetches the tract module, unless this build has one compiled in or it was tried before.
    pub(super) async fn ensure(&mut self, load_tract: Option<&js_sys::Function>) {
        if self.tried || crate::infer::builtin_graphs().is_some() {
            return;
        }
        self.tried = true;
        if let Some(load) = load_tract {
            match JsGraphs::load(load).await {
                Ok(g) => self.fetched = Some(g),
                Err(e) => self.why_not = format!("the tract module could not be loaded ({e})"),
            }
        }
    }

    pub(super) fn graphs(&self) -> Graphs<'_> {
        match (&self.fetched, crate::infer::builtin_graphs()) {
            (Some(g), _) => Graphs::Loader(g),
            (None, Some(b)) => Graphs::Loader(b),
            (None, None) => Graphs::Unavailable(&self.why_not),
        }
    }
}

/// The fetched tract module (its namespace object, holding `loadGraph`).
struct JsGraphs {
    load_graph: js_sys::Function,
}

impl JsGraphs {
    /// Calls the page's `loadTract()` and waits for the module it resolves to.
    async fn load(loader: &js_sys::Function) -> Result<JsGraphs, String> {
        let pending = loader.call0(&JsValue::UNDEFINED).map_err(|e| describe(&e))?;
        let module = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&pending)).await.map_err(|e| describe(&e))?;
        let load_graph = js_sys::Reflect::get(&module, &"loadGraph".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| "loadTract() resolved to something without loadGraph(): pass the foresight_tract module".to_owned())?;
        Ok(JsGraphs { load_graph })
    }

    fn open(&self, model: &'static str, source: &GraphSource, spec: serde_json::Value) -> Result<Box<dyn GraphRunner>, ModelError> {
        let mut spec = spec;
        spec["format"] = match source.format {
            GraphFormat::Nnef => "nnef",
            GraphFormat::Onnx => "onnx",
        }
        .into();
        spec["input"] = source.input.clone().into();
        spec["output"] = source.output.clone().into();
        let spec = js_sys::JSON::parse(&spec.to_string()).map_err(|e| engine_error(model, &e))?;
        let bytes = js_sys::Uint8Array::from(source.bytes);
        let graph = self.load_graph.call2(&JsValue::UNDEFINED, &bytes, &spec).map_err(|e| engine_error(model, &e))?;
        let method = |name: &str| {
            js_sys::Reflect::get(&graph, &name.into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok()).ok_or_else(|| {
                ModelError::Prepare {
                    model,
                    detail: format!("the tract module's graph has no {name}(): is it the same version as the SDK?"),
                }
            })
        };
        let text = |name: &str| js_sys::Reflect::get(&graph, &name.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let width = js_sys::Reflect::get(&graph, &"outputWidth".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as usize;
        Ok(Box::new(JsGraph {
            model,
            run_items: method("runItems")?,
            run_features: method("runFeatures")?,
            free: method("free").ok(),
            input_name: text("inputName"),
            output_name: text("outputName"),
            width,
            graph,
        }))
    }
}

/// An error thrown by the tract module, its `code` kept when it is one the SDK knows.
fn engine_error(model: &'static str, e: &JsValue) -> ModelError {
    let code = js_sys::Reflect::get(e, &"code".into()).ok().and_then(|c| c.as_string()).unwrap_or_default();
    ModelError::Graph { model, code: ModelError::known_code(&code), message: describe(e) }
}

impl GraphLoader for JsGraphs {
    fn recommender(&self, source: &GraphSource, width: Width) -> Result<Box<dyn GraphRunner>, ModelError> {
        let width = serde_json::to_value(width).unwrap_or_default();
        self.open("recommender", source, serde_json::json!({"kind": "recommender", "width": width}))
    }

    fn intent(&self, source: &GraphSource, n_features: usize) -> Result<Box<dyn GraphRunner>, ModelError> {
        self.open("intent", source, serde_json::json!({"kind": "intent", "features": n_features}))
    }
}

/// A graph living in the tract module; dropping it frees it there.
struct JsGraph {
    model: &'static str,
    graph: JsValue,
    run_items: js_sys::Function,
    run_features: js_sys::Function,
    free: Option<js_sys::Function>,
    input_name: String,
    output_name: String,
    width: usize,
}

impl JsGraph {
    fn read(&self, result: Result<JsValue, JsValue>, out: &mut Vec<f32>) -> Result<(), ModelError> {
        let row = result.map_err(|e| engine_error(self.model, &e))?;
        let row = row
            .dyn_into::<js_sys::Float32Array>()
            .map_err(|_| ModelError::Run { model: self.model, detail: "the tract module returned no Float32Array".into() })?;
        out.resize(row.length() as usize, 0.0);
        row.copy_to(out);
        Ok(())
    }
}

impl GraphRunner for JsGraph {
    fn input_name(&self) -> &str {
        &self.input_name
    }

    fn output_name(&self) -> &str {
        &self.output_name
    }

    fn output_width(&self) -> usize {
        self.width
    }

    fn run_items(&mut self, sequence: &[usize], out: &mut Vec<f32>) -> Result<(), ModelError> {
        let items: Vec<u32> = sequence.iter().map(|&i| i as u32).collect();
        let result = self.run_items.call1(&self.graph, &js_sys::Uint32Array::from(&items[..]));
        self.read(result, out)
    }

    fn run_features(&mut self, features: &[f32], out: &mut Vec<f32>) -> Result<(), ModelError> {
        let result = self.run_features.call1(&self.graph, &js_sys::Float32Array::from(features));
        self.read(result, out)
    }
}

impl Drop for JsGraph {
    fn drop(&mut self) {
        if let Some(free) = &self.free {
            let _ = free.call0(&self.graph);
        }
    }
}
