//! The browser's graph runtime, a wasm module of its own: tract reading NNEF and ONNX behind
//! `loadGraph(bytes, spec)`. The SDK's core wasm has no tract; its `init` fetches this module
//! only when a bundle (or an inline model) is a graph, and runs the graph through the returned
//! `Graph` (`sdk/src/web/graphs.rs` is the other side of this interface).

use foresight::error::ModelError;
use foresight::infer::model::{GraphFormat, GraphLoader, GraphRunner, GraphSource, Width};
use foresight::infer::tract::TractLoader;
use serde::Deserialize;

/// What `loadGraph` is asked to load, as the core sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub kind: Kind,
    pub format: Format,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// A recommender's output: `{"items": n}` or `{"embedding": d}`.
    #[serde(default)]
    pub width: Option<Width>,
    /// An intent model's feature count.
    #[serde(default)]
    pub features: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Recommender,
    Intent,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Nnef,
    Onnx,
}

/// Loads a graph on tract and checks the signature its role requires.
pub fn load(bytes: &[u8], spec: &Spec) -> Result<Box<dyn GraphRunner>, ModelError> {
    let source = GraphSource {
        format: match spec.format {
            Format::Nnef => GraphFormat::Nnef,
            Format::Onnx => GraphFormat::Onnx,
        },
        bytes,
        input: spec.input.clone(),
        output: spec.output.clone(),
    };
    let missing = |model, what: &str| ModelError::Prepare { model, detail: format!("the load request names no {what}") };
    match spec.kind {
        Kind::Recommender => TractLoader.recommender(&source, spec.width.ok_or_else(|| missing("recommender", "width"))?),
        Kind::Intent => TractLoader.intent(&source, spec.features.ok_or_else(|| missing("intent", "feature count"))?),
    }
}

#[cfg(target_arch = "wasm32")]
mod web {
    use foresight::error::ModelError;
    use foresight::infer::model::GraphRunner;
    use wasm_bindgen::prelude::*;

    fn to_js(e: &ModelError) -> JsValue {
        let error = js_sys::Error::new(&e.to_string());
        // The core maps the code back onto its own error, so `status()` names the real cause.
        let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
        error.into()
    }

    /// `loadGraph(bytes, {kind, format, input?, output?, width?, features?})`.
    #[wasm_bindgen(js_name = loadGraph)]
    pub fn load_graph(bytes: &[u8], spec: JsValue) -> Result<Graph, JsValue> {
        console_error_panic_hook::set_once();
        let spec: super::Spec = serde_wasm_bindgen::from_value(spec)
            .map_err(|e| to_js(&ModelError::Prepare { model: "graph", detail: format!("bad load request: {e}") }))?;
        let runner = super::load(bytes, &spec).map_err(|e| to_js(&e))?;
        Ok(Graph { runner, sequence: Vec::new(), out: Vec::new() })
    }

    /// One loaded graph; `free()` releases it.
    #[wasm_bindgen]
    pub struct Graph {
        runner: Box<dyn GraphRunner>,
        sequence: Vec<usize>,
        out: Vec<f32>,
    }

    #[wasm_bindgen]
    impl Graph {
        #[wasm_bindgen(getter, js_name = inputName)]
        pub fn input_name(&self) -> String {
            self.runner.input_name().to_owned()
        }

        #[wasm_bindgen(getter, js_name = outputName)]
        pub fn output_name(&self) -> String {
            self.runner.output_name().to_owned()
        }

        #[wasm_bindgen(getter, js_name = outputWidth)]
        pub fn output_width(&self) -> usize {
            self.runner.output_width()
        }

        /// A recommender's output row for item indices (oldest first).
        #[wasm_bindgen(js_name = runItems)]
        pub fn run_items(&mut self, items: &[u32]) -> Result<Vec<f32>, JsValue> {
            self.sequence.clear();
            self.sequence.extend(items.iter().map(|&i| i as usize));
            self.runner.run_items(&self.sequence, &mut self.out).map_err(|e| to_js(&e))?;
            Ok(self.out.clone())
        }

        /// An intent model's output row for one feature vector.
        #[wasm_bindgen(js_name = runFeatures)]
        pub fn run_features(&mut self, features: &[f32]) -> Result<Vec<f32>, JsValue> {
            self.runner.run_features(features, &mut self.out).map_err(|e| to_js(&e))?;
            Ok(self.out.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).expect("a valid spec")
    }

    #[test]
    fn loads_an_onnx_recommender_and_runs_it() {
        let mut g =
            load(&fixture("session_gru.onnx"), &spec(r#"{"kind":"recommender","format":"onnx","width":{"items":5000}}"#)).expect("loads");
        assert_eq!(g.output_width(), 5000);
        let mut out = Vec::new();
        g.run_items(&[3, 17, 42], &mut out).expect("runs");
        assert_eq!(out.len(), 5000);
        assert!(out.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_wrong_width_is_refused_with_the_catalog_size() {
        let e = load(&fixture("session_gru.onnx"), &spec(r#"{"kind":"recommender","format":"onnx","width":{"items":4000}}"#))
            .err()
            .expect("refused");
        assert_eq!(e.code(), "model_output");
        assert!(e.to_string().contains("4000"), "{e}");
    }

    #[test]
    fn loads_an_onnx_intent_model() {
        let n = foresight::features::INTENT_FEATURES.len();
        let mut g =
            load(&fixture("intent_logreg.onnx"), &spec(&format!(r#"{{"kind":"intent","format":"onnx","features":{n}}}"#))).expect("loads");
        let mut out = Vec::new();
        g.run_features(&vec![0.5; n], &mut out).expect("runs");
        assert_eq!(out.len(), g.output_width());
        assert!(out.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn a_request_without_a_width_says_so() {
        let e = load(&fixture("session_gru.onnx"), &spec(r#"{"kind":"recommender","format":"onnx"}"#)).err().expect("refused");
        assert!(e.to_string().contains("width"), "{e}");
    }
}
