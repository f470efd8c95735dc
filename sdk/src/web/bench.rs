//! `BenchModel`: the SDK's model runtime without the client around it, for `bench/` (the
//! side-by-side timing against onnxruntime-web). It loads one recommender or intent model from
//! ONNX bytes (full build only), from tract NNEF bytes, or from a signed bundle, and runs it on
//! the caller's input, returning the raw output: no history, no ranking, no explanations, so
//! its timings are the same work onnxruntime-web's `session.run` does.

use wasm_bindgen::prelude::*;

use crate::contract::bundle::{parse_public_key, Bundle};
use crate::contract::manifest::{ModelFormat, ModelKind};
use crate::features::INTENT_FEATURES;
use crate::infer::model::{IntentModel, RecommenderModel};

// One per benchmark page: the size of the smaller variant is of no consequence.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    Recommender(RecommenderModel),
    Intent(IntentModel),
}

fn err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// One loaded model (see the module documentation).
#[wasm_bindgen]
pub struct BenchModel {
    model: Loaded,
    scores: Vec<f32>,
    indices: Vec<usize>,
    sequence: Vec<usize>,
    picks: Vec<u32>,
    top: Vec<(usize, f32)>,
    top_k: crate::infer::head::TopKScratch,
}

impl BenchModel {
    fn new(model: Loaded) -> BenchModel {
        BenchModel {
            model,
            scores: Vec::new(),
            indices: Vec::new(),
            sequence: Vec::new(),
            picks: Vec::new(),
            top: Vec::new(),
            top_k: Default::default(),
        }
    }

    /// The whole sequence from scratch: no kept state is consulted, so the timing is the
    /// graph's work.
    fn whole(model: &mut RecommenderModel, indices: &[usize], scores: &mut Vec<f32>) -> Result<(), JsValue> {
        model.scores_stateless_into(indices, scores).map_err(err)
    }

    /// Appends one item to the running session — one GRU step, or one attention position
    /// (the whole window once the session is longer than the model's positions) — then, with
    /// `all_scores`, the exact head into `scores`.
    fn push(&mut self, index: u32, all_scores: bool) -> Result<(), JsValue> {
        self.sequence.push(index as usize);
        let Loaded::Recommender(model) = &mut self.model else { return Err(err("not a recommender")) };
        if !model.incremental() {
            return Err(err("not a model on the SDK's kernels (convert with --format gru or attention)"));
        }
        model.advance(&self.sequence).map_err(err)?;
        if all_scores {
            model.state_scores_into(&mut self.scores).map_err(err)?;
        }
        Ok(())
    }
}

#[wasm_bindgen]
impl BenchModel {
    /// A recommender from tract NNEF bytes scoring `nItems` items.
    #[wasm_bindgen(js_name = recommenderNnef)]
    pub fn recommender_nnef(bytes: &[u8], n_items: usize) -> Result<BenchModel, JsValue> {
        RecommenderModel::load_nnef(bytes, n_items).map(|m| BenchModel::new(Loaded::Recommender(m))).map_err(err)
    }

    /// An intent model from tract NNEF bytes (18 features, the SDK's spec).
    #[wasm_bindgen(js_name = intentNnef)]
    pub fn intent_nnef(bytes: &[u8], positive_index: usize) -> Result<BenchModel, JsValue> {
        IntentModel::load_nnef(bytes, INTENT_FEATURES.len(), positive_index).map(|m| BenchModel::new(Loaded::Intent(m))).map_err(err)
    }

    /// A signed bundle (`foresight-export convert`): verified with `publicKey` (base64), then
    /// its model loaded the way `Foresight.init` loads it.
    #[wasm_bindgen(js_name = fromBundle)]
    pub fn from_bundle(bytes: Vec<u8>, public_key: &str) -> Result<BenchModel, JsValue> {
        let key = parse_public_key(public_key).map_err(err)?;
        let bundle = Bundle::parse(bytes, Some(&key)).map_err(err)?;
        let m = &bundle.manifest;
        let model_bytes = bundle.model_bytes().map_err(err)?;
        match (m.kind, m.model.format) {
            (ModelKind::Recommender, ModelFormat::Nnef) => Self::recommender_nnef(model_bytes, m.items.len()),
            (ModelKind::Intent, ModelFormat::Nnef) => {
                let positive = m.intent.as_ref().map_or(1, |i| i.positive_index);
                Self::intent_nnef(model_bytes, positive)
            }
            #[cfg(feature = "onnx")]
            (ModelKind::Recommender, ModelFormat::Onnx) => Self::recommender_onnx(model_bytes, m.items.len()),
            #[cfg(feature = "onnx")]
            (ModelKind::Intent, ModelFormat::Onnx) => Self::intent_onnx(model_bytes, m.intent.as_ref().map_or(1, |i| i.positive_index)),
            #[cfg(not(feature = "onnx"))]
            (_, ModelFormat::Onnx) => Err(err("this is the lean (NNEF-only) build: it cannot load an ONNX bundle")),
            (ModelKind::Recommender, _) => {
                RecommenderModel::from_kernel_bundle(m, model_bytes).map(|m| BenchModel::new(Loaded::Recommender(m))).map_err(err)
            }
            (ModelKind::Intent, ModelFormat::Linear | ModelFormat::Trees) => {
                let positive = m.intent.as_ref().map_or(1, |i| i.positive_index);
                crate::infer::tabular::TabularModel::from_bytes(model_bytes)
                    .and_then(|t| IntentModel::from_tabular(t, positive))
                    .map(|m| BenchModel::new(Loaded::Intent(m)))
                    .map_err(err)
            }
            (ModelKind::Intent, f) => Err(err(format!("an intent model cannot be in the {f:?} format"))),
        }
    }

    /// All item scores for a sequence of item indices (oldest first), as a `Float32Array`.
    pub fn scores(&mut self, indices: &[u32]) -> Result<Vec<f32>, JsValue> {
        let Loaded::Recommender(model) = &mut self.model else {
            return Err(err("not a recommender"));
        };
        self.indices.clear();
        self.indices.extend(indices.iter().map(|&i| i as usize));
        Self::whole(model, &self.indices, &mut self.scores)?;
        Ok(self.scores.clone())
    }

    /// Whether this model keeps incremental state (GRU or attention on the SDK's kernels).
    #[wasm_bindgen(getter)]
    pub fn incremental(&self) -> bool {
        matches!(&self.model, Loaded::Recommender(m) if m.incremental())
    }

    /// Starts a new session (incremental models).
    pub fn reset(&mut self) {
        if let Loaded::Recommender(m) = &mut self.model {
            m.reset_state();
        }
        self.sequence.clear();
    }

    /// Starts a session holding `indices` (untimed set-up for the incremental benchmarks).
    pub fn prefill(&mut self, indices: &[u32]) -> Result<(), JsValue> {
        self.reset();
        indices.iter().try_for_each(|&i| self.push(i, false))
    }

    /// Takes back the session's last event (no model work): the next push then replaces it, and
    /// the attention cache recomputes only that position — so many runs at exactly one session
    /// length need no set-up between them.
    pub fn pop(&mut self) {
        self.sequence.pop();
    }

    /// Incremental: one new event, then every item's score — the work of one recommendation
    /// after a `track()`, whatever the session's length.
    #[wasm_bindgen(js_name = pushScores)]
    pub fn push_scores(&mut self, index: u32) -> Result<Vec<f32>, JsValue> {
        self.push(index, true)?;
        Ok(self.scores.clone())
    }

    /// Incremental: one new event, then the top `k` item indices — ranked by the i16 head and
    /// rescored exactly near the k-th (`LinearHead::top_k_into`: the exact head's answer), no
    /// copy of the scores to JavaScript.
    #[wasm_bindgen(js_name = pushTopK)]
    pub fn push_top_k(&mut self, index: u32, k: usize) -> Result<Vec<u32>, JsValue> {
        self.push(index, false)?;
        let Loaded::Recommender(model) = &mut self.model else { return Err(err("not a recommender")) };
        model.state_top_k_into(k, &[], &mut self.top_k, &mut self.top).map_err(err)?;
        self.picks.clear();
        self.picks.extend(self.top.iter().map(|p| p.0 as u32));
        Ok(self.picks.clone())
    }

    /// Whole sequence, then the top `k` (for the same comparison without the state).
    #[wasm_bindgen(js_name = topK)]
    pub fn whole_top_k(&mut self, indices: &[u32], k: usize) -> Result<Vec<u32>, JsValue> {
        let Loaded::Recommender(model) = &mut self.model else { return Err(err("not a recommender")) };
        self.indices.clear();
        self.indices.extend(indices.iter().map(|&i| i as usize));
        Self::whole(model, &self.indices, &mut self.scores)?;
        self.picks.clear();
        self.picks.extend(crate::infer::topk::top_k(&self.scores, k, &[]).iter().map(|p| p.0 as u32));
        Ok(self.picks.clone())
    }

    /// The positive-class probability for one feature vector.
    pub fn probability(&mut self, features: &[f32]) -> Result<f32, JsValue> {
        let Loaded::Intent(model) = &mut self.model else {
            return Err(err("not an intent model"));
        };
        model.probability(features).map_err(err)
    }
}

#[cfg(feature = "onnx")]
#[wasm_bindgen]
impl BenchModel {
    /// A recommender from ONNX bytes scoring `nItems` items (full build only).
    #[wasm_bindgen(js_name = recommenderOnnx)]
    pub fn recommender_onnx(bytes: &[u8], n_items: usize) -> Result<BenchModel, JsValue> {
        RecommenderModel::load(bytes, &Default::default(), n_items).map(|m| BenchModel::new(Loaded::Recommender(m))).map_err(err)
    }

    /// An intent model from ONNX bytes (full build only).
    #[wasm_bindgen(js_name = intentOnnx)]
    pub fn intent_onnx(bytes: &[u8], positive_index: usize) -> Result<BenchModel, JsValue> {
        let io = crate::infer::model::IntentIo { positive_index, ..Default::default() };
        IntentModel::load(bytes, &io, INTENT_FEATURES.len()).map(|m| BenchModel::new(Loaded::Intent(m))).map_err(err)
    }
}
