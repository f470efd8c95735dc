//! Graphs on tract (behind the `tract` feature): NNEF archives, and ONNX with `onnx`. Reading,
//! signature checks, one optimized plan per model; [`TractLoader`] is the [`GraphLoader`] the
//! native SDK and the browser's lazily fetched tract module (`sdk/tract`) both use, so the core
//! wasm carries none of it.

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
use crate::infer::model::{GraphFormat, GraphLoader, GraphRunner, GraphSource, IntentModel, RecommenderModel, Width};
#[cfg(feature = "onnx")]
use crate::infer::model::{IntentIo, RecommenderIo};
use crate::infer::score::ItemMatrix;

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

/// A tract plan behind the [`GraphRunner`] interface, its signature checked at load.
pub struct TractGraph {
    runner: Runner,
    input_name: String,
    output_name: String,
    width: usize,
    /// A recommender's index type and rank (`[seq]` or `[1, seq]`).
    dtype: DatumType,
    rank: usize,
}

impl TractGraph {
    /// A recommender: an int64/int32 sequence of symbolic length in, `width` floats out (a
    /// score per item, or a visitor vector of the item embeddings' width).
    pub fn recommender(typed: TypedModel, width: Width) -> Result<Self, ModelError> {
        let model = RecommenderModel::KIND;
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
        let (n, what, tower) = match width {
            Width::Embedding(d) => (d, "the item embeddings' width", true),
            Width::Items(n) => (n, "the item count", false),
        };
        match out.shape.last().and_then(|d| d.to_i64().ok()) {
            Some(got) if got as usize == n => {}
            Some(got) if tower => return Err(out_err(format!("is a vector of {got} but the item embeddings have {n} dims"))),
            Some(got) => return Err(out_err(format!("scores {got} items but the catalog lists {n}"))),
            None => return Err(out_err(format!("has shape {:?}; its last dimension must be {what}", out.shape))),
        }
        if out.shape.iter().rev().skip(1).any(|d| d.to_i64().map_or(true, |v| v != 1)) {
            return Err(out_err(format!(
                "has shape {:?}; expected [1, {w}] or [{w}]",
                out.shape,
                w = if tower { "dims" } else { "items" }
            )));
        }
        Ok(TractGraph { runner: runner(model, typed)?, input_name, output_name, width: n, dtype, rank })
    }

    /// An intent classifier: float32 `[1, n_features]` in, one row of probabilities out.
    pub fn intent(typed: TypedModel, n_features: usize) -> Result<Self, ModelError> {
        let model = IntentModel::KIND;
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
        Ok(TractGraph { runner: runner(model, typed)?, input_name, output_name, width: width as usize, dtype: f32::datum_type(), rank: 2 })
    }

    fn copy_out(&self, out: TVec<TValue>, output: &mut Vec<f32>) -> Result<(), ModelError> {
        let view =
            out[0].to_plain_array_view::<f32>().map_err(|e| ModelError::Run { model: self.runner.model, detail: format!("{e:#}") })?;
        output.clear();
        output.extend(view.iter().copied());
        Ok(())
    }
}

impl GraphRunner for TractGraph {
    fn input_name(&self) -> &str {
        &self.input_name
    }

    fn output_name(&self) -> &str {
        &self.output_name
    }

    fn output_width(&self) -> usize {
        self.width
    }

    fn run_items(&mut self, sequence: &[usize], output: &mut Vec<f32>) -> Result<(), ModelError> {
        let model = self.runner.model;
        let shape: &[usize] = if self.rank == 2 { &[1, sequence.len()] } else { &[sequence.len()] };
        let tensor = if self.dtype == i32::datum_type() {
            let data: Vec<i32> = sequence.iter().map(|&i| i as i32).collect();
            Tensor::from_shape(shape, &data)
        } else {
            let data: Vec<i64> = sequence.iter().map(|&i| i as i64).collect();
            Tensor::from_shape(shape, &data)
        }
        .map_err(|e| ModelError::Run { model, detail: format!("{e:#}") })?;
        let out = self.runner.run(tensor)?;
        self.copy_out(out, output)
    }

    fn run_features(&mut self, features: &[f32], output: &mut Vec<f32>) -> Result<(), ModelError> {
        let tensor = Tensor::from_shape(&[1, features.len()], features)
            .map_err(|e| ModelError::Run { model: self.runner.model, detail: format!("{e:#}") })?;
        let out = self.runner.run(tensor)?;
        self.copy_out(out, output)
    }
}

/// Loads NNEF (and, with `onnx`, ONNX) graphs on tract.
pub struct TractLoader;

impl TractLoader {
    fn typed(
        model: &'static str,
        source: &GraphSource,
        onnx: impl FnOnce() -> Result<TypedModel, ModelError>,
    ) -> Result<TypedModel, ModelError> {
        match source.format {
            GraphFormat::Nnef => read_nnef(model, source.bytes),
            GraphFormat::Onnx if cfg!(feature = "onnx") => onnx(),
            GraphFormat::Onnx => Err(ModelError::NoGraphRuntime {
                model,
                format: "ONNX",
                detail: "this build reads only NNEF: convert the model with `foresight-export convert` (NNEF is the default graph format)"
                    .into(),
            }),
        }
    }
}

impl GraphLoader for TractLoader {
    fn recommender(&self, source: &GraphSource, width: Width) -> Result<Box<dyn GraphRunner>, ModelError> {
        #[cfg(feature = "onnx")]
        let onnx = || recommender_from_onnx(source.bytes, &RecommenderIo { input: source.input.clone(), output: source.output.clone() });
        #[cfg(not(feature = "onnx"))]
        let onnx = || unreachable_onnx(RecommenderModel::KIND);
        let typed = Self::typed(RecommenderModel::KIND, source, onnx)?;
        Ok(Box::new(TractGraph::recommender(typed, width)?))
    }

    fn intent(&self, source: &GraphSource, n_features: usize) -> Result<Box<dyn GraphRunner>, ModelError> {
        #[cfg(feature = "onnx")]
        let onnx = || {
            let io = IntentIo { input: source.input.clone(), output: source.output.clone(), ..Default::default() };
            intent_from_onnx(source.bytes, &io, n_features)
        };
        #[cfg(not(feature = "onnx"))]
        let onnx = || unreachable_onnx(IntentModel::KIND);
        let typed = Self::typed(IntentModel::KIND, source, onnx)?;
        Ok(Box::new(TractGraph::intent(typed, n_features)?))
    }
}

#[cfg(not(feature = "onnx"))]
fn unreachable_onnx(model: &'static str) -> Result<TypedModel, ModelError> {
    Err(ModelError::NoGraphRuntime { model, format: "ONNX", detail: "this build reads only NNEF".into() })
}

/// tract's constructors, kept for native callers (the converter, tests, benchmarks).
impl RecommenderModel {
    /// Loads an ONNX recommender whose output scores `n_items` items.
    #[cfg(feature = "onnx")]
    pub fn load(bytes: &[u8], io: &RecommenderIo, n_items: usize) -> Result<Self, ModelError> {
        Self::from_typed(recommender_from_onnx(bytes, io)?, n_items)
    }

    /// Loads a recommender from tract NNEF.
    pub fn load_nnef(bytes: &[u8], n_items: usize) -> Result<Self, ModelError> {
        Self::from_typed(read_nnef(Self::KIND, bytes)?, n_items)
    }

    /// Checks a typed model's signature, then optimizes and plans it.
    pub fn from_typed(typed: TypedModel, n_items: usize) -> Result<Self, ModelError> {
        Self::from_graph(Box::new(TractGraph::recommender(typed, Width::Items(n_items))?), n_items, None)
    }

    /// A visitor tower (sequence → vector of the embeddings' width) scored against `items`.
    pub fn from_typed_tower(typed: TypedModel, items: ItemMatrix) -> Result<Self, ModelError> {
        let runner = TractGraph::recommender(typed, Width::Embedding(items.dims()))?;
        Self::from_graph(Box::new(runner), items.rows(), Some(items))
    }

    pub fn load_nnef_tower(bytes: &[u8], items: ItemMatrix) -> Result<Self, ModelError> {
        Self::from_typed_tower(read_nnef(Self::KIND, bytes)?, items)
    }

    #[cfg(feature = "onnx")]
    pub fn load_tower(bytes: &[u8], io: &RecommenderIo, items: ItemMatrix) -> Result<Self, ModelError> {
        Self::from_typed_tower(recommender_from_onnx(bytes, io)?, items)
    }
}

impl IntentModel {
    #[cfg(feature = "onnx")]
    pub fn load(bytes: &[u8], io: &IntentIo, n_features: usize) -> Result<Self, ModelError> {
        Self::from_typed(intent_from_onnx(bytes, io, n_features)?, n_features, io.positive_index)
    }

    pub fn load_nnef(bytes: &[u8], n_features: usize, positive_index: usize) -> Result<Self, ModelError> {
        Self::from_typed(read_nnef(Self::KIND, bytes)?, n_features, positive_index)
    }

    pub fn from_typed(typed: TypedModel, n_features: usize, positive_index: usize) -> Result<Self, ModelError> {
        Self::from_graph(Box::new(TractGraph::intent(typed, n_features)?), n_features, positive_index)
    }
}
