//! Model runtime on tract: load ONNX bytes, declare the symbolic sequence length, optimize once,
//! and run with one state made at load and reused per call (no re-planning per inference).

use serde::{Deserialize, Serialize};
use tract_nnef::prelude::*;
use tract_nnef::tract_core::plan::SimpleState;
#[cfg(feature = "onnx")]
use tract_onnx::prelude::{InferenceFact, InferenceModel, InferenceModelExt};
#[cfg(feature = "onnx")]
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx_opl::WithOnnx;

use crate::error::ModelError;
#[cfg(feature = "onnx")]
use crate::error::UnsupportedOp;
use crate::infer::attention::{AttentionModel, KvCache};
use crate::infer::gru::{GruModel, SessionState, Snapshot};
use crate::infer::head::{LinearHead, TopKScratch};
use crate::infer::score::ItemMatrix;

/// Which tensors of a recommender model to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
#[derive(Default)]
pub struct RecommenderIo {
    /// The item-index sequence input (default: the model's first input).
    pub input: Option<String>,
    /// The scores output, one per vocabulary item (default: the model's first output).
    pub output: Option<String>,
}

/// Which tensors of an intent model to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct IntentIo {
    /// The feature-vector input (default: the model's first input).
    pub input: Option<String>,
    /// The probability output (default: `probabilities` when present, as skl2onnx and
    /// onnxmltools name it, else the first output).
    pub output: Option<String>,
    /// Column of the positive class in a `[1, classes]` output.
    pub positive_index: usize,
}

impl Default for IntentIo {
    fn default() -> Self {
        IntentIo { input: None, output: None, positive_index: 1 }
    }
}

/// A loaded, optimized model.
struct Runner {
    model: &'static str,
    plan: std::sync::Arc<TypedRunnableModel>,
}

impl Runner {
    fn run(&self, input: Tensor) -> Result<TVec<TValue>, ModelError> {
        // tract 0.23.9 carries state inside recurrent (Scan) bodies from one call to the next:
        // a reused state returns wrong GRU outputs (|Δ| up to 0.35 on the fixture), even for the
        // same input. The optimized plan is kept; only the cheap per-run state is fresh.
        SimpleState::new(&self.plan)
            .and_then(|mut state| state.run(tvec![input.into_tvalue()]))
            .map_err(|e| ModelError::Run { model: self.model, detail: format!("{e:#}") })
    }
}

/// tract's NNEF reader/writer with the ONNX-specific operators (ML classifiers, etc.).
pub fn nnef() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef().with_onnx()
}

/// Reads a tract NNEF archive (as written by `foresight-export convert`).
pub fn read_nnef(model: &'static str, bytes: &[u8]) -> Result<TypedModel, ModelError> {
    nnef().model_for_read(&mut &*bytes).map_err(|e| ModelError::Parse { model, format: "tract NNEF", detail: format!("{e:#}") })
}

/// Parses ONNX bytes and refuses, before anything else, operators tract does not implement.
#[cfg(feature = "onnx")]
pub fn read_onnx(model: &'static str, bytes: &[u8]) -> Result<InferenceModel, ModelError> {
    let im = tract_onnx::onnx().model_for_read(&mut &*bytes).map_err(|e| ModelError::Parse {
        model,
        format: "ONNX",
        detail: format!("{e:#}"),
    })?;
    let ops = unsupported_ops(&im);
    if !ops.is_empty() {
        return Err(ModelError::UnsupportedOps { model, ops });
    }
    Ok(im)
}

/// Nodes whose operator tract's ONNX front-end does not implement.
#[cfg(feature = "onnx")]
pub fn unsupported_ops(im: &InferenceModel) -> Vec<UnsupportedOp> {
    im.nodes()
        .iter()
        .filter_map(|n| {
            let name = n.op.name();
            name.strip_prefix("Unimplemented(")
                .and_then(|s| s.strip_suffix(')'))
                .map(|op| UnsupportedOp { node: n.name.clone(), op: op.to_owned() })
        })
        .collect()
}

#[cfg(feature = "onnx")]
fn input_index(model: &'static str, im: &InferenceModel, name: Option<&str>) -> Result<(usize, String), ModelError> {
    let names: Vec<String> = im
        .input_outlets()
        .map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?
        .iter()
        .map(|o| im.node(o.node).name.clone())
        .collect();
    match name {
        None => names.first().cloned().map(|n| (0, n)).ok_or_else(|| ModelError::Input {
            model,
            name: "(none)".into(),
            problem: "is missing: the model has no inputs".into(),
        }),
        Some(want) => names.iter().position(|n| n == want).map(|ix| (ix, want.to_owned())).ok_or_else(|| ModelError::Input {
            model,
            name: want.to_owned(),
            problem: format!("does not exist; the model's inputs are {names:?}"),
        }),
    }
}

/// Keeps only the wanted output, so branches feeding other outputs are pruned.
#[cfg(feature = "onnx")]
fn select_output(model: &'static str, im: &mut InferenceModel, name: Option<&str>, preferred: Option<&str>) -> Result<String, ModelError> {
    let outlets = im.output_outlets().map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?.to_vec();
    let labels: Vec<String> =
        outlets.iter().map(|o| im.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| im.node(o.node).name.clone())).collect();
    // Any tensor of the graph can be the output: a recommender cut at its visitor vector
    // (the item embeddings then score it) names an intermediate tensor.
    if let Some(want) = name.filter(|w| !labels.iter().any(|l| l == w)) {
        if let Some(outlet) = im.find_outlet_label(want) {
            im.select_output_outlets(&[outlet]).map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?;
            return Ok(want.to_owned());
        }
    }
    let pick = match name {
        Some(want) => labels.iter().position(|l| l == want).ok_or_else(|| ModelError::Output {
            model,
            name: want.to_owned(),
            problem: format!("is neither an output nor a tensor of the model; its outputs are {labels:?}"),
        })?,
        None => preferred.and_then(|p| labels.iter().position(|l| l == p)).unwrap_or(0),
    };
    let outlet = *outlets.get(pick).ok_or_else(|| ModelError::Output {
        model,
        name: "(none)".into(),
        problem: "is missing: the model has no outputs".into(),
    })?;
    im.select_output_outlets(&[outlet]).map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?;
    Ok(labels[pick].clone())
}

#[cfg(feature = "onnx")]
fn declared_dims(fact: &InferenceFact) -> Option<Vec<Option<TDim>>> {
    if fact.shape.is_open() {
        return None;
    }
    Some(fact.shape.dims().map(|d| d.concretize()).collect())
}

/// Keeps only the selected input (the others are unused by the selected output, or fail).
#[cfg(feature = "onnx")]
fn into_typed_single_input(model: &'static str, im: InferenceModel, input: &str) -> Result<TypedModel, ModelError> {
    let n_inputs = im.input_outlets().map(|o| o.len()).unwrap_or(0);
    if n_inputs != 1 {
        return Err(ModelError::Input {
            model,
            name: input.to_owned(),
            problem: format!("is one of {n_inputs} inputs; a {model} model takes this input alone"),
        });
    }
    im.into_typed().map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })
}

/// An ONNX recommender as a typed model with a symbolic sequence length `seq`: the common
/// first step of loading it in the SDK and of converting it to NNEF.
#[cfg(feature = "onnx")]
pub fn recommender_from_onnx(bytes: &[u8], io: &RecommenderIo) -> Result<TypedModel, ModelError> {
    recommender_from_inference(read_onnx(RecommenderModel::KIND, bytes)?, io)
}

/// As `recommender_from_onnx`, from an already parsed model (e.g. read from a path, so that
/// external `.onnx.data` weights resolve).
#[cfg(feature = "onnx")]
pub fn recommender_from_inference(mut im: InferenceModel, io: &RecommenderIo) -> Result<TypedModel, ModelError> {
    let model = RecommenderModel::KIND;
    let (ix, input_name) = input_index(model, &im, io.input.as_deref())?;
    select_output(model, &mut im, io.output.as_deref(), None)?;
    let input_err = |problem: String| ModelError::Input { model, name: input_name.clone(), problem };
    let fact = im.input_fact(ix).map_err(|e| input_err(format!("{e:#}")))?.clone();
    let dtype = match fact.datum_type.concretize() {
        None => i64::datum_type(),
        Some(dt) if dt == i64::datum_type() || dt == i32::datum_type() => dt,
        Some(dt) => return Err(input_err(format!("has type {dt:?}; item indices need int64 or int32"))),
    };
    let seq = im.sym("seq");
    let fixed = |n: &TDim| {
        input_err(format!(
            "has a fixed sequence length of {n}; export it with a dynamic sequence axis \
             (torch.onnx.export(..., dynamic_axes={{'{input_name}': {{1: 'seq'}}}}) or the dynamo exporter)"
        ))
    };
    let shape: Vec<TDim> = match declared_dims(&fact).as_deref() {
        None => vec![1.into(), seq.into()],
        Some([batch, len]) => {
            if let Some(b) = batch.as_ref().and_then(|b| b.to_i64().ok()) {
                if b != 1 {
                    return Err(input_err(format!("has a fixed batch size of {b}; it must be 1 or dynamic")));
                }
            }
            match len {
                Some(n) if n.to_i64().is_ok() => return Err(fixed(n)),
                _ => vec![1.into(), seq.into()],
            }
        }
        Some([len]) => match len {
            Some(n) if n.to_i64().is_ok() => return Err(fixed(n)),
            _ => vec![seq.into()],
        },
        Some(other) => return Err(input_err(format!("has rank {}; expected [batch, sequence] or [sequence]", other.len()))),
    };
    im.set_input_fact(ix, InferenceFact::from(dtype.fact(shape))).map_err(|e| input_err(format!("{e:#}")))?;
    into_typed_single_input(model, im, &input_name)
}

/// An ONNX intent classifier as a typed model taking `[1, n_features]` float32.
#[cfg(feature = "onnx")]
pub fn intent_from_onnx(bytes: &[u8], io: &IntentIo, n_features: usize) -> Result<TypedModel, ModelError> {
    intent_from_inference(read_onnx(IntentModel::KIND, bytes)?, io, n_features)
}

#[cfg(feature = "onnx")]
pub fn intent_from_inference(mut im: InferenceModel, io: &IntentIo, n_features: usize) -> Result<TypedModel, ModelError> {
    let model = IntentModel::KIND;
    let (ix, input_name) = input_index(model, &im, io.input.as_deref())?;
    select_output(model, &mut im, io.output.as_deref(), Some("probabilities"))?;
    let input_err = |problem: String| ModelError::Input { model, name: input_name.clone(), problem };
    let fact = im.input_fact(ix).map_err(|e| input_err(format!("{e:#}")))?.clone();
    match fact.datum_type.concretize() {
        None => {}
        Some(dt) if dt == f32::datum_type() => {}
        Some(dt) => return Err(input_err(format!("has type {dt:?}; the feature vector is float32"))),
    }
    if let Some(dims) = declared_dims(&fact) {
        if dims.len() != 2 {
            return Err(input_err(format!("has rank {}; expected [batch, features]", dims.len())));
        }
        if let Some(n) = dims[1].as_ref().and_then(|d| d.to_i64().ok()) {
            if n as usize != n_features {
                return Err(input_err(format!(
                    "takes {n} features but the SDK computes {n_features} (intent feature spec v{}); \
                     train on `foresight-export features` output",
                    crate::features::INTENT_FEATURES_VERSION
                )));
            }
        }
    }
    im.set_input_fact(ix, InferenceFact::from(f32::fact([1, n_features]))).map_err(|e| input_err(format!("{e:#}")))?;
    into_typed_single_input(model, im, &input_name)
}

/// Optimizes for this machine and plans; the plan is what every run reuses.
fn runner(model: &'static str, typed: TypedModel) -> Result<Runner, ModelError> {
    let prep = |e: TractError| ModelError::Prepare { model, detail: format!("{e:#}") };
    let plan = typed.into_optimized().map_err(prep)?.into_runnable().map_err(prep)?;
    // Fail at load, not at the first recommendation, if a state cannot even be made.
    SimpleState::new(&plan).map_err(prep)?;
    Ok(Runner { model, plan })
}

/// The single input's and single output's facts and names of a typed model.
fn single_io(model: &'static str, typed: &TypedModel) -> Result<(TypedFact, String, TypedFact, String), ModelError> {
    let prep = |e: TractError| ModelError::Prepare { model, detail: format!("{e:#}") };
    let inputs = typed.input_outlets().map_err(prep)?;
    let outputs = typed.output_outlets().map_err(prep)?;
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(ModelError::Prepare {
            model,
            detail: format!("expected one input and one output, found {} and {}", inputs.len(), outputs.len()),
        });
    }
    let input_name = typed.node(inputs[0].node).name.clone();
    let output_name = typed.outlet_label(outputs[0]).map(str::to_owned).unwrap_or_else(|| typed.node(outputs[0].node).name.clone());
    Ok((typed.outlet_fact(inputs[0]).map_err(prep)?.clone(), input_name, typed.outlet_fact(outputs[0]).map_err(prep)?.clone(), output_name))
}

/// What one [`RecommenderModel::advance`] did: the steps (GRU) or positions (attention) it
/// computed, and whether it had to start over (a history that does not extend the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub steps: usize,
    pub rebuilt: bool,
}

fn no_state() -> ModelError {
    ModelError::Run {
        model: RecommenderModel::KIND,
        detail: "this model keeps no running state: it runs on tract, whole sequence per call".into(),
    }
}

/// A session recommender: item-index sequence in, one score per vocabulary item out.
pub struct RecommenderModel {
    engine: Engine,
    n_items: usize,
    input_name: String,
    output_name: String,
    last_advance: Option<Advance>,
}

/// What runs the model: tract's plan, or the SDK's own kernels (`infer::gru`, `infer::attention`),
/// which keep the visitor's running state; callers see one API either way. With `items`,
/// tract's model is a visitor tower (sequence → vector) and the scores are its dot products
/// with the item embeddings (`crate::infer::score`, on the GPU with the `webgpu` feature).
enum Engine {
    Tract {
        runner: Runner,
        dtype: DatumType,
        rank: usize,
        items: Option<std::sync::Arc<ItemMatrix>>,
    },
    /// The visitor's running state lives with the model, as the attention cache does.
    Gru {
        model: GruModel,
        session: Box<SessionState>,
    },
    /// The visitor's key/value cache lives with the model: any sequence sharing a prefix with
    /// the last one (the next event, an explanation leaving one item out) reuses it.
    Attention {
        model: AttentionModel,
        cache: Box<KvCache>,
    },
}

impl RecommenderModel {
    pub const KIND: &'static str = "recommender";

    /// Loads an ONNX recommender whose output scores `n_items` items.
    #[cfg(feature = "onnx")]
    pub fn load(bytes: &[u8], io: &RecommenderIo, n_items: usize) -> Result<Self, ModelError> {
        Self::from_typed(recommender_from_onnx(bytes, io)?, n_items)
    }

    /// Loads a recommender from tract NNEF (the bundle's default format).
    pub fn load_nnef(bytes: &[u8], n_items: usize) -> Result<Self, ModelError> {
        Self::from_typed(read_nnef(Self::KIND, bytes)?, n_items)
    }

    /// Checks a typed model's signature, then optimizes and plans it.
    pub fn from_typed(typed: TypedModel, n_items: usize) -> Result<Self, ModelError> {
        Self::build(typed, n_items, None)
    }

    /// A visitor tower (sequence → vector of the embeddings' width) scored against `items`.
    pub fn from_typed_tower(typed: TypedModel, items: ItemMatrix) -> Result<Self, ModelError> {
        Self::build(typed, items.rows(), Some(std::sync::Arc::new(items)))
    }

    pub fn load_nnef_tower(bytes: &[u8], items: ItemMatrix) -> Result<Self, ModelError> {
        Self::from_typed_tower(read_nnef(Self::KIND, bytes)?, items)
    }

    #[cfg(feature = "onnx")]
    pub fn load_tower(bytes: &[u8], io: &RecommenderIo, items: ItemMatrix) -> Result<Self, ModelError> {
        Self::from_typed_tower(recommender_from_onnx(bytes, io)?, items)
    }

    fn build(typed: TypedModel, n_items: usize, items: Option<std::sync::Arc<ItemMatrix>>) -> Result<Self, ModelError> {
        let model = Self::KIND;
        let (input, input_name, out, output_name) = single_io(model, &typed)?;
        let input_err = |problem: String| ModelError::Input { model, name: input_name.clone(), problem };
        let dtype = input.datum_type;
        if dtype != i64::datum_type() && dtype != i32::datum_type() {
            return Err(input_err(format!("has type {dtype:?}; item indices need int64 or int32")));
        }
        let rank = input.shape.rank();
        let symbolic_len = input.shape.last().is_some_and(|d| d.to_i64().is_err());
        if !(rank == 1 || (rank == 2 && input.shape[0].to_i64().ok() == Some(1))) || !symbolic_len {
            return Err(input_err(format!("has shape {:?}; expected [1, seq] or [seq] with a symbolic seq", input.shape)));
        }
        let out_err = |problem: String| ModelError::Output { model, name: output_name.clone(), problem };
        if out.datum_type != f32::datum_type() {
            return Err(out_err(format!("has type {:?}; scores must be float32", out.datum_type)));
        }
        let (width, what) = match &items {
            Some(m) => (m.dims(), "the item embeddings' width"),
            None => (n_items, "the item count"),
        };
        match out.shape.last().and_then(|d| d.to_i64().ok()) {
            Some(n) if n as usize == width => {}
            Some(n) if items.is_some() => return Err(out_err(format!("is a vector of {n} but the item embeddings have {width} dims"))),
            Some(n) => return Err(out_err(format!("scores {n} items but the catalog lists {n_items}"))),
            None => return Err(out_err(format!("has shape {:?}; its last dimension must be {what}", out.shape))),
        }
        if out.shape.iter().rev().skip(1).any(|d| d.to_i64().map_or(true, |v| v != 1)) {
            return Err(out_err(format!(
                "has shape {:?}; expected [1, {w}] or [{w}]",
                out.shape,
                w = if items.is_some() { "dims" } else { "items" }
            )));
        }
        Ok(RecommenderModel {
            engine: Engine::Tract { runner: runner(model, typed)?, dtype, rank, items },
            n_items,
            input_name,
            output_name,
            last_advance: None,
        })
    }

    /// A GRU recommender on the SDK's kernels (bundle format `gru`).
    pub fn from_gru(model: GruModel) -> Self {
        let n_items = model.spec.items;
        let engine = Engine::Gru { model, session: Box::default() };
        RecommenderModel { engine, n_items, input_name: "item_seq".into(), output_name: "scores".into(), last_advance: None }
    }

    /// An attention recommender on the SDK's kernels (bundle format `attention`).
    pub fn from_attention(model: AttentionModel) -> Self {
        let n_items = model.spec.items;
        let engine = Engine::Attention { model, cache: Box::default() };
        RecommenderModel { engine, n_items, input_name: "item_seq".into(), output_name: "scores".into(), last_advance: None }
    }

    /// A bundle's recommender on the SDK's own kernels (formats `gru` and `attention`; the
    /// bundle's structure was checked when it was parsed).
    pub fn from_kernel_bundle(m: &crate::contract::manifest::Manifest, bytes: &[u8]) -> Result<Self, crate::Error> {
        use crate::contract::manifest::ModelFormat;
        use crate::error::BundleError;
        let (model, items) = match (m.model.format, &m.gru, &m.attention) {
            (ModelFormat::Gru, Some(spec), _) => (Self::from_gru(GruModel::from_bytes(spec.clone(), bytes)?), spec.items),
            (ModelFormat::Attention, _, Some(spec)) => (Self::from_attention(AttentionModel::from_bytes(spec.clone(), bytes)?), spec.items),
            (f, ..) => {
                return Err(
                    BundleError::Manifest(format!("format {f:?} is not weights for the SDK's kernels, or its shapes are missing")).into()
                )
            }
        };
        if items != m.items.len() {
            return Err(BundleError::Manifest(format!("the model scores {items} items, the manifest lists {}", m.items.len())).into());
        }
        Ok(model)
    }

    /// Drops the visitor state the model keeps (a GRU's running state, an attention model's
    /// key/value cache), as erasing the visitor's history must; the next call rebuilds it from
    /// what it is given.
    pub fn reset_state(&mut self) {
        self.last_advance = None;
        match &mut self.engine {
            Engine::Gru { session, .. } => **session = SessionState::default(),
            Engine::Attention { cache, .. } => **cache = KvCache::default(),
            Engine::Tract { .. } => {}
        }
    }

    /// Whether the model keeps incremental session state (one step or position per event).
    pub fn incremental(&self) -> bool {
        matches!(self.engine, Engine::Gru { .. } | Engine::Attention { .. })
    }

    /// Whether every stored event feeds the running state (a GRU carries the whole history at
    /// the cost of one step per new event): callers pass the whole history to
    /// [`advance`](Self::advance), not a window.
    pub fn reads_whole_history(&self) -> bool {
        matches!(self.engine, Engine::Gru { .. })
    }

    /// Brings the running state to `sequence` (oldest first): only what extends the last call
    /// costs — one GRU step or one attention position per new item; an attention window that
    /// slides (a sequence longer than the model's positions) is recomputed. A model without
    /// running state (tract) refuses.
    pub fn advance(&mut self, sequence: &[usize]) -> Result<Advance, ModelError> {
        let done = match &mut self.engine {
            Engine::Gru { model, session } => {
                session.advance(model, sequence)?;
                Advance { steps: session.last_steps, rebuilt: session.last_rebuilt }
            }
            Engine::Attention { model, cache } => {
                let from = sequence.len().saturating_sub(model.spec.positions);
                let rebuilt = !cache.consumed().iter().zip(&sequence[from..]).all(|(a, b)| a == b);
                cache.advance(model, &sequence[from..])?;
                Advance { steps: cache.last_steps, rebuilt }
            }
            Engine::Tract { .. } => return Err(no_state()),
        };
        self.last_advance = Some(done);
        Ok(done)
    }

    /// The running state's hidden vector and the head that scores it.
    fn state(&self) -> Result<(&LinearHead, &[f32]), ModelError> {
        let (head, h) = match &self.engine {
            Engine::Gru { model, session } => (model.head(), session.hidden()),
            Engine::Attention { model, cache } => (model.head(), cache.hidden()),
            Engine::Tract { .. } => return Err(no_state()),
        };
        Ok((head, h.ok_or_else(|| ModelError::Run { model: Self::KIND, detail: "no event has been consumed yet".into() })?))
    }

    /// Every item's score for the state [`advance`](Self::advance) reached.
    pub fn state_scores_into(&self, scores: &mut Vec<f32>) -> Result<(), ModelError> {
        let (head, h) = self.state()?;
        head.scores_into(h, scores);
        Ok(())
    }

    /// The `k` best items for the state [`advance`](Self::advance) reached, skipping
    /// `excluded` — the exact head's answer, ranked by its i16 copy ([`LinearHead::top_k_into`]).
    pub fn state_top_k_into(
        &self,
        k: usize,
        excluded: &[bool],
        scratch: &mut TopKScratch,
        out: &mut Vec<(usize, f32)>,
    ) -> Result<(), ModelError> {
        let (head, h) = self.state()?;
        head.top_k_into(h, k, excluded, scratch, out);
        Ok(())
    }

    /// The scores of `items` for the advanced history with `left_out` removed from its recent
    /// events (explanations by occlusion): a GRU replays at most its kept states, an attention
    /// model recomputes the positions after the first occurrence.
    pub fn state_scores_without(&mut self, left_out: usize, items: &[usize], out: &mut Vec<f32>) -> Result<(), ModelError> {
        out.clear();
        match &mut self.engine {
            Engine::Gru { model, session } => {
                let h = session.without_recent(model, left_out)?;
                out.extend(items.iter().map(|&i| model.score_one(&h, i)));
                Ok(())
            }
            Engine::Attention { cache, .. } => {
                let rest: Vec<usize> = cache.consumed().iter().copied().filter(|&i| i != left_out).collect();
                if rest.is_empty() {
                    return Err(ModelError::Run { model: Self::KIND, detail: "nothing is left without that item".into() });
                }
                self.scores_of(&rest, items, out)
            }
            Engine::Tract { .. } => Err(no_state()),
        }
    }

    /// What the last [`advance`](Self::advance) did (`None` before one, and for tract).
    pub fn last_advance(&self) -> Option<Advance> {
        self.last_advance
    }

    /// The items the running state has consumed (empty for models without one).
    pub fn consumed(&self) -> &[usize] {
        match &self.engine {
            Engine::Gru { session, .. } => session.consumed(),
            Engine::Attention { cache, .. } => cache.consumed(),
            Engine::Tract { .. } => &[],
        }
    }

    /// The running state as the device keeps it between page loads (a GRU's; an attention
    /// cache is rebuilt from the history instead: one window, ~0.5 ms).
    pub fn snapshot(&self) -> Option<Snapshot> {
        match &self.engine {
            Engine::Gru { session, .. } => session.snapshot(),
            _ => None,
        }
    }

    /// Restores a snapshot taken over `sequence`; `false` (nothing changed) when it does not
    /// match this model and sequence, and the next [`advance`](Self::advance) replays them.
    pub fn restore(&mut self, snapshot: &Snapshot, sequence: &[usize]) -> bool {
        match &mut self.engine {
            Engine::Gru { model, session } => session.restore(snapshot, sequence, model.hidden_size()),
            _ => false,
        }
    }

    /// The whole sequence from scratch, consulting no kept state: what the graph computes
    /// (benchmarks time this against a runtime that has no state).
    pub fn scores_stateless_into(&mut self, sequence: &[usize], scores: &mut Vec<f32>) -> Result<(), ModelError> {
        match &self.engine {
            Engine::Gru { model, .. } => model.scores_into(sequence, scores),
            Engine::Attention { model, .. } => model.scores_into(sequence, scores),
            Engine::Tract { .. } => self.scores_into(sequence, scores),
        }
    }

    /// The item embeddings of a visitor-tower model (shared: the GPU path holds them too).
    pub fn items(&self) -> Option<&std::sync::Arc<ItemMatrix>> {
        match &self.engine {
            Engine::Tract { items, .. } => items.as_ref(),
            Engine::Gru { .. } | Engine::Attention { .. } => None,
        }
    }

    /// A tower's visitor vector for the sequence, padded for [`ItemMatrix`] scoring.
    pub fn visitor_vector(&mut self, sequence: &[usize]) -> Result<Vec<f32>, ModelError> {
        let mut out = Vec::new();
        self.run_tract(sequence, &mut out)?;
        let items = self.items().ok_or_else(|| ModelError::Run { model: Self::KIND, detail: "the model has no item embeddings".into() })?;
        items.user(&out).map_err(|e| ModelError::Run { model: Self::KIND, detail: e.to_string() })
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// Scores every item for the sequence (oldest first), writing into `scores`.
    pub fn scores_into(&mut self, sequence: &[usize], scores: &mut Vec<f32>) -> Result<(), ModelError> {
        if sequence.is_empty() {
            return Err(ModelError::Run { model: Self::KIND, detail: "the item sequence is empty".into() });
        }
        match &mut self.engine {
            Engine::Gru { model, .. } => return model.scores_into(sequence, scores),
            Engine::Attention { model, cache } => {
                let h = cache.advance(model, sequence)?;
                model.head().scores_into(h, scores);
                return Ok(());
            }
            Engine::Tract { .. } => {}
        }
        if self.items().is_some() {
            let user = self.visitor_vector(sequence)?;
            if let Some(items) = self.items() {
                items.scores_into(&user, scores);
            }
            return Ok(());
        }
        self.run_tract(sequence, scores)?;
        if scores.len() != self.n_items {
            return Err(ModelError::Run {
                model: Self::KIND,
                detail: format!("returned {} scores for {} items", scores.len(), self.n_items),
            });
        }
        Ok(())
    }

    /// The scores of just `items` (in that order): a tower scores only those rows.
    pub fn scores_of(&mut self, sequence: &[usize], items: &[usize], out: &mut Vec<f32>) -> Result<(), ModelError> {
        if self.items().is_some() {
            let user = self.visitor_vector(sequence)?;
            if let Some(m) = self.items() {
                let mut row = vec![0f32; m.stride()];
                out.clear();
                out.extend(items.iter().map(|&i| m.score(&user, i, &mut row)));
            }
            return Ok(());
        }
        self.scores_into(sequence, out)?;
        let picked: Vec<f32> = items.iter().map(|&i| out.get(i).copied().unwrap_or(f32::NAN)).collect();
        out.clear();
        out.extend(picked);
        Ok(())
    }

    /// Runs tract's plan on the sequence and copies its output.
    fn run_tract(&mut self, sequence: &[usize], output: &mut Vec<f32>) -> Result<(), ModelError> {
        if sequence.is_empty() {
            return Err(ModelError::Run { model: Self::KIND, detail: "the item sequence is empty".into() });
        }
        let (runner, dtype, rank) = match &self.engine {
            Engine::Gru { .. } | Engine::Attention { .. } => {
                return Err(ModelError::Run { model: Self::KIND, detail: "this model runs on the SDK's own kernels, not tract".into() })
            }
            Engine::Tract { runner, dtype, rank, .. } => (runner, *dtype, *rank),
        };
        let shape: &[usize] = if rank == 2 { &[1, sequence.len()] } else { &[sequence.len()] };
        let tensor = if dtype == i32::datum_type() {
            let data: Vec<i32> = sequence.iter().map(|&i| i as i32).collect();
            Tensor::from_shape(shape, &data)
        } else {
            let data: Vec<i64> = sequence.iter().map(|&i| i as i64).collect();
            Tensor::from_shape(shape, &data)
        }
        .map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        let out = runner.run(tensor)?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        output.clear();
        output.extend(view.iter().copied());
        Ok(())
    }
}

/// A purchase-intent classifier: feature vector in, probability of the positive class out.
pub struct IntentModel {
    runner: Runner,
    n_features: usize,
    positive_index: usize,
    output_width: usize,
}

impl IntentModel {
    pub const KIND: &'static str = "intent";

    #[cfg(feature = "onnx")]
    pub fn load(bytes: &[u8], io: &IntentIo, n_features: usize) -> Result<Self, ModelError> {
        Self::from_typed(intent_from_onnx(bytes, io, n_features)?, n_features, io.positive_index)
    }

    pub fn load_nnef(bytes: &[u8], n_features: usize, positive_index: usize) -> Result<Self, ModelError> {
        Self::from_typed(read_nnef(Self::KIND, bytes)?, n_features, positive_index)
    }

    pub fn from_typed(typed: TypedModel, n_features: usize, positive_index: usize) -> Result<Self, ModelError> {
        let model = Self::KIND;
        let (input, input_name, out, output_name) = single_io(model, &typed)?;
        if input.datum_type != f32::datum_type()
            || input.shape.iter().map(|d| d.to_i64().ok()).collect::<Vec<_>>() != [Some(1), Some(n_features as i64)]
        {
            return Err(ModelError::Input {
                model,
                name: input_name,
                problem: format!("is {:?} {:?}; expected float32 [1, {n_features}]", input.datum_type, input.shape),
            });
        }
        let out_err = |problem: String| ModelError::Output { model, name: output_name.clone(), problem };
        if out.datum_type != f32::datum_type() {
            return Err(out_err(format!(
                "has type {:?}; choose the float32 probability output (skl2onnx: options={{'zipmap': False}})",
                out.datum_type
            )));
        }
        let width = out.shape.iter().product::<TDim>().to_i64().map_err(|_| out_err("has a dynamic shape".into()))?;
        let width = width as usize;
        let positive = if width == 1 { 0 } else { positive_index };
        if positive >= width {
            return Err(out_err(format!("has {width} columns; positiveIndex {positive_index} is out of range")));
        }
        Ok(IntentModel { runner: runner(model, typed)?, n_features, positive_index: positive, output_width: width })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Probability of the positive class (the visitor buying) for one feature vector.
    pub fn probability(&mut self, features: &[f32]) -> Result<f32, ModelError> {
        if features.len() != self.n_features {
            return Err(ModelError::Run {
                model: Self::KIND,
                detail: format!("got {} features, expected {}", features.len(), self.n_features),
            });
        }
        let tensor = Tensor::from_shape(&[1, self.n_features], features)
            .map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        let out = self.runner.run(tensor)?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        let values: Vec<f32> = view.iter().copied().collect();
        if values.len() != self.output_width {
            return Err(ModelError::Run { model: Self::KIND, detail: format!("returned {} values", values.len()) });
        }
        Ok(values[self.positive_index])
    }
}
