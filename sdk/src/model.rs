//! Model runtime on tract: load ONNX bytes, declare the symbolic sequence length, optimize once,
//! and run with one state made at load and reused per call (no re-planning per inference).

use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{ModelError, UnsupportedOp};

/// Which tensors of a recommender model to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RecommenderIo {
    /// The item-index sequence input (default: the model's first input).
    pub input: Option<String>,
    /// The scores output, one per vocabulary item (default: the model's first output).
    pub output: Option<String>,
}

impl Default for RecommenderIo {
    fn default() -> Self {
        RecommenderIo { input: None, output: None }
    }
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

/// Parses ONNX bytes and refuses, before anything else, operators tract does not implement.
fn read_onnx(model: &'static str, bytes: &[u8]) -> Result<InferenceModel, ModelError> {
    let im = tract_onnx::onnx()
        .model_for_read(&mut &*bytes)
        .map_err(|e| ModelError::Parse { model, detail: format!("{e:#}") })?;
    let ops: Vec<UnsupportedOp> = im
        .nodes()
        .iter()
        .filter_map(|n| {
            let name = n.op.name();
            name.strip_prefix("Unimplemented(")
                .and_then(|s| s.strip_suffix(')'))
                .map(|op| UnsupportedOp { node: n.name.clone(), op: op.to_owned() })
        })
        .collect();
    if !ops.is_empty() {
        return Err(ModelError::UnsupportedOps { model, ops });
    }
    Ok(im)
}

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
        Some(want) => names.iter().position(|n| n == want).map(|ix| (ix, want.to_owned())).ok_or_else(|| {
            ModelError::Input { model, name: want.to_owned(), problem: format!("does not exist; the model's inputs are {names:?}") }
        }),
    }
}

/// Keeps only the wanted output, so branches feeding other outputs are pruned.
fn select_output(
    model: &'static str,
    im: &mut InferenceModel,
    name: Option<&str>,
    preferred: Option<&str>,
) -> Result<String, ModelError> {
    let outlets = im.output_outlets().map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?.to_vec();
    let labels: Vec<String> = outlets
        .iter()
        .map(|o| im.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| im.node(o.node).name.clone()))
        .collect();
    let pick = match name {
        Some(want) => labels.iter().position(|l| l == want).ok_or_else(|| ModelError::Output {
            model,
            name: want.to_owned(),
            problem: format!("does not exist; the model's outputs are {labels:?}"),
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

fn declared_dims(fact: &InferenceFact) -> Option<Vec<Option<TDim>>> {
    if fact.shape.is_open() {
        return None;
    }
    Some(fact.shape.dims().map(|d| d.concretize()).collect())
}

fn prepare(model: &'static str, im: InferenceModel) -> Result<(TypedModel, Runner), ModelError> {
    let prep = |e: TractError| ModelError::Prepare { model, detail: format!("{e:#}") };
    let typed = im.into_typed().map_err(prep)?;
    let optimized = typed.clone().into_optimized().map_err(prep)?;
    let plan = optimized.into_runnable().map_err(prep)?;
    // Fail at load, not at the first recommendation, if a state cannot even be made.
    SimpleState::new(&plan).map_err(prep)?;
    Ok((typed, Runner { model, plan }))
}

/// A session recommender: item-index sequence in, one score per vocabulary item out.
pub struct RecommenderModel {
    runner: Runner,
    dtype: DatumType,
    rank: usize,
    n_items: usize,
    input_name: String,
    output_name: String,
}

impl RecommenderModel {
    const KIND: &'static str = "recommender";

    /// Loads an ONNX recommender whose output scores `n_items` items.
    pub fn load(bytes: &[u8], io: &RecommenderIo, n_items: usize) -> Result<Self, ModelError> {
        let model = Self::KIND;
        let mut im = read_onnx(model, bytes)?;
        let (ix, input_name) = input_index(model, &im, io.input.as_deref())?;
        let output_name = select_output(model, &mut im, io.output.as_deref(), None)?;
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
            Some(other) => {
                return Err(input_err(format!("has rank {}; expected [batch, sequence] or [sequence]", other.len())))
            }
        };
        let rank = shape.len();
        im.set_input_fact(ix, InferenceFact::from(dtype.fact(shape))).map_err(|e| input_err(format!("{e:#}")))?;
        if im.input_outlets().map(|o| o.len()).unwrap_or(0) != 1 {
            return Err(input_err("is not the only input; a recommender takes the item sequence alone".into()));
        }

        let (typed, runner) = prepare(model, im)?;
        let out = typed.output_fact(0).map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?;
        let out_err = |problem: String| ModelError::Output { model, name: output_name.clone(), problem };
        if out.datum_type != f32::datum_type() {
            return Err(out_err(format!("has type {:?}; scores must be float32", out.datum_type)));
        }
        match out.shape.last().and_then(|d| d.to_i64().ok()) {
            Some(n) if n as usize == n_items => {}
            Some(n) => return Err(out_err(format!("scores {n} items but the catalog lists {n_items}"))),
            None => return Err(out_err(format!("has shape {:?}; its last dimension must be the item count", out.shape))),
        }
        if out.shape.iter().rev().skip(1).any(|d| d.to_i64().map_or(true, |v| v != 1)) {
            return Err(out_err(format!("has shape {:?}; expected [1, items] or [items]", out.shape)));
        }
        Ok(RecommenderModel {
            runner,
            dtype,
            rank,
            n_items,
            input_name,
            output_name,
        })
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
        let shape: &[usize] = if self.rank == 2 { &[1, sequence.len()] } else { &[sequence.len()] };
        let tensor = if self.dtype == i32::datum_type() {
            let data: Vec<i32> = sequence.iter().map(|&i| i as i32).collect();
            Tensor::from_shape(shape, &data)
        } else {
            let data: Vec<i64> = sequence.iter().map(|&i| i as i64).collect();
            Tensor::from_shape(shape, &data)
        }
        .map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        let out = self.runner.run(tensor)?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        scores.clear();
        scores.extend(view.iter().copied());
        if scores.len() != self.n_items {
            return Err(ModelError::Run {
                model: Self::KIND,
                detail: format!("returned {} scores for {} items", scores.len(), self.n_items),
            });
        }
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
    const KIND: &'static str = "intent";

    pub fn load(bytes: &[u8], io: &IntentIo, n_features: usize) -> Result<Self, ModelError> {
        let model = Self::KIND;
        let mut im = read_onnx(model, bytes)?;
        let (ix, input_name) = input_index(model, &im, io.input.as_deref())?;
        let output_name = select_output(model, &mut im, io.output.as_deref(), Some("probabilities"))?;
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
        im.set_input_fact(ix, InferenceFact::from(f32::fact([1, n_features])))
            .map_err(|e| input_err(format!("{e:#}")))?;

        let (typed, runner) = prepare(model, im)?;
        let out = typed.output_fact(0).map_err(|e| ModelError::Prepare { model, detail: format!("{e:#}") })?;
        let out_err = |problem: String| ModelError::Output { model, name: output_name.clone(), problem };
        if out.datum_type != f32::datum_type() {
            return Err(out_err(format!(
                "has type {:?}; choose the float32 probability output (skl2onnx: options={{'zipmap': False}})",
                out.datum_type
            )));
        }
        let width = out.shape.iter().product::<TDim>().to_i64().map_err(|_| out_err("has a dynamic shape".into()))?;
        let width = width as usize;
        let positive_index = if width == 1 { 0 } else { io.positive_index };
        if positive_index >= width {
            return Err(out_err(format!("has {width} columns; positiveIndex {} is out of range", io.positive_index)));
        }
        Ok(IntentModel { runner, n_features, positive_index, output_width: width })
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
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ModelError::Run { model: Self::KIND, detail: format!("{e:#}") })?;
        let values: Vec<f32> = view.iter().copied().collect();
        if values.len() != self.output_width {
            return Err(ModelError::Run { model: Self::KIND, detail: format!("returned {} values", values.len()) });
        }
        Ok(values[self.positive_index])
    }
}
