//! `convert`: a server-trained ONNX model → a verified, optionally signed bundle the SDK loads.
//!
//! Order matters for the data scientist: operators are checked before anything else, so an
//! unsupported op is reported with its node and a fix, not as a failure deep in type inference.
//! An intent model that is a linear model or a tree ensemble is recognised first: it runs on the
//! SDK's own kernels (`linear`, `trees`), in the core wasm, without tract.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use foresight::contract::bundle::{BundleWriter, FORMAT_VERSION};
use foresight::contract::manifest::{
    AttentionSpec, CatalogItem, EmbeddingSection, GruSpec, IntentSection, Manifest, ModelFormat, ModelKind, ModelSection, ParityReport,
    Quantization, TensorSpec, TransitionSpec,
};
use foresight::error::UnsupportedOp;
use foresight::features::{INTENT_FEATURES, INTENT_FEATURES_VERSION};
use foresight::infer::model::{IntentIo, IntentModel, RecommenderIo, RecommenderModel};
use foresight::infer::score::ItemMatrix;
use foresight::infer::tabular::{TabularKind, TabularModel};
use foresight::infer::tract;
use serde::Serialize;
use tract_onnx::prelude::*;

use crate::embeddings::EmbeddingDtype;
use crate::parity::{self, Runner};
use crate::progress::Steps;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Recommender,
    Intent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `gru`, `attention` or `transition` for a recognised recommender of those shapes, `linear` or `trees`
    /// for a recognised intent model, else `nnef`.
    Auto,
    /// tract-optimized NNEF: small and fast to load; the lean SDK build reads only this.
    Nnef,
    /// The ONNX file itself (external weights inlined).
    Onnx,
    /// GRU weights for the SDK's own kernels: incremental session state, one step per event.
    /// Only for `Gather → GRU → MatMul (+ bias)` recommenders; says why otherwise.
    Gru,
    /// SASRec-style attention weights for the SDK's own kernels: a key/value cache, one
    /// position per event. Only for pre-LayerNorm causal self-attention recommenders with
    /// learned positions and a linear head; says why otherwise.
    Attention,
    /// The windowed-transition recommender `foresight-export train` writes, for the SDK's own
    /// kernel: no tract download in the browser. Says why when the model is not one.
    Transition,
    /// A linear intent model (scikit-learn LogisticRegression, PyTorch nn.Linear + sigmoid or
    /// softmax) for the SDK's own kernel: runs in the core wasm, without tract. Says why when the
    /// model is not one.
    Linear,
    /// A tree-ensemble intent model (LightGBM, XGBoost, scikit-learn gradient boosting or random
    /// forest) for the SDK's own kernel: runs in the core wasm, without tract. Says why when the
    /// model is not one.
    Trees,
}

/// Parity a `linear` or `trees` bundle must reach against the reference (onnxruntime, else tract).
const TABULAR_TOLERANCE: f32 = 1e-5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantizeArg {
    F16,
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The ONNX model; external weights (`.onnx.data`) are read from beside it.
    pub model: PathBuf,
    /// What the model is. Inferred when unambiguous: item indices in (an integer sequence) →
    /// recommender; a float feature vector `[batch, N]` → intent.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Recommenders: the item catalog in model-index order — JSON (`[{id, category?, price?,
    /// popularity?}]` or `{"items": [...]}`) or CSV with a header naming `id` and optionally
    /// `category`, `price`, `popularity`.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Where to write the bundle.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Input to use (default: the first).
    #[arg(long)]
    pub input: Option<String>,
    /// Output to use (default: the first; for intent models `probabilities` when present).
    #[arg(long)]
    pub output: Option<String>,
    /// Recommenders: how many recent items the SDK feeds the model.
    #[arg(long, default_value_t = foresight::features::DEFAULT_MAX_SEQ_LEN)]
    pub max_seq_len: usize,
    /// Intent models: column of the positive class in the probability output.
    #[arg(long, default_value_t = 1)]
    pub positive_index: usize,
    /// Round weights to float16 (inference still runs in float32): the bundle compresses ~35%
    /// smaller over gzip/brotli. NNEF only.
    #[arg(long, value_enum)]
    pub quantize: Option<QuantizeArg>,
    /// Recommenders: item embeddings (`.npy`, one row per catalog item; float16/32/64). The
    /// model's output (see --output, any tensor of the graph) is then the visitor vector, and
    /// the SDK scores it against every item — on the GPU where its WebGPU build finds one.
    #[arg(long, conflicts_with = "split_head")]
    pub item_embeddings: Option<PathBuf>,
    /// One bias per item (`.npy`), added to its score.
    #[arg(long, requires = "item_embeddings")]
    pub item_bias: Option<PathBuf>,
    /// Recommenders ending in `MatMul [+ Add]` or `Gemm` over the catalog: the bundle keeps the
    /// model up to the visitor vector and carries the scoring matrix (and bias) as item
    /// embeddings, so large catalogs are scored by the SDK's CPU or GPU kernels.
    #[arg(long)]
    pub split_head: bool,
    /// How item embeddings are stored: f16 halves their bytes.
    #[arg(long, value_enum, default_value = "f32")]
    pub embedding_dtype: EmbeddingDtype,
    /// Sign with this secret key (from `foresight-export keygen`).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Extra parity inputs: `{"sequences": [[index or "item id", ...]]}` or `{"features": [[...]]}`.
    #[arg(long)]
    pub parity_inputs: Option<PathBuf>,
    /// Generated parity cases.
    #[arg(long, default_value_t = 64)]
    pub parity_cases: usize,
    /// Skip the onnxruntime comparison even when Python has it.
    #[arg(long)]
    pub no_onnxruntime: bool,
    /// Machine-readable summary on stdout instead of progress and text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    bundle: PathBuf,
    bytes: usize,
    model_bytes: usize,
    kind: ModelKind,
    format: ModelFormat,
    items: usize,
    signed: bool,
    parity: Vec<ParityReport>,
    notes: Vec<String>,
    seconds: f64,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let started = Instant::now();
    let steps = Steps::new(6, args.json);
    if args.quantize.is_some()
        && matches!(args.format, Format::Onnx | Format::Gru | Format::Attention | Format::Transition | Format::Linear | Format::Trees)
    {
        bail!("--quantize f16 works on the NNEF format; use --format nnef");
    }
    steps.step("reading the ONNX model");
    // tract may fail to read a model the SDK's intent kernels run (an op it does not know):
    // that error only counts once the model turns out to need tract.
    let read = tract_onnx::onnx()
        .model_for_path(&args.model)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("could not read {} as ONNX", args.model.display()));
    let (kind, kind_inferred) = match args.kind {
        Some(kind) => (kind, None),
        None => {
            let im = read.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let (kind, why) = infer_kind(im, args.input.as_deref())?;
            if !args.json {
                eprintln!("--kind {}: {why} (pass --kind to say otherwise)", kind_label(kind));
            }
            (kind, Some(format!("--kind {} inferred: {why}", kind_label(kind))))
        }
    };
    let kind_name = match kind {
        Kind::Recommender => RecommenderModel::KIND,
        Kind::Intent => IntentModel::KIND,
    };
    if matches!(args.format, Format::Gru | Format::Attention | Format::Transition) && kind == Kind::Intent {
        bail!("--format gru, attention and transition are for recommenders; an intent model converts to linear, trees, nnef or onnx");
    }
    if matches!(args.format, Format::Linear | Format::Trees) && kind == Kind::Recommender {
        bail!("--format linear and trees are for intent models; a recommender converts to gru, attention, transition, nnef or onnx");
    }
    if kind == Kind::Intent {
        if args.catalog.is_some() {
            bail!("--catalog is for recommenders; an intent model has no items");
        }
        if args.split_head || args.item_embeddings.is_some() {
            bail!("item embeddings are for recommenders");
        }
    }
    let mut notes: Vec<String> = kind_inferred.into_iter().collect();
    // Why an intent model is not for the SDK's own kernels, said again if tract then fails too.
    let mut not_tabular: Option<String> = None;
    let also = |not_tabular: &Option<String>| {
        not_tabular
            .as_ref()
            .map(|why| format!("\n(nor is it a linear model or tree ensemble the SDK runs itself: {why})"))
            .unwrap_or_default()
    };

    // An intent model the SDK's own kernels run: linear or trees, unless told otherwise.
    if kind == Kind::Intent
        && (matches!(args.format, Format::Linear | Format::Trees) || (args.format == Format::Auto && args.quantize.is_none()))
    {
        match tabular(&args, read.as_ref().map_err(|e| format!("{e:#}")), &steps)? {
            Ok(mut prepared) => {
                notes.append(&mut prepared.notes);
                prepared.notes = notes;
                return write_bundle(&args, prepared, &steps, started);
            }
            Err(why) if args.format == Format::Auto => {
                notes.push(format!("not a linear model or tree ensemble the SDK's intent kernels run ({why}): NNEF on tract"));
                not_tabular = Some(why);
            }
            Err(why) => bail!("--format {}: {why}", if args.format == Format::Linear { "linear" } else { "trees" }),
        }
    }
    let im = read.map_err(|e| anyhow::anyhow!("{e:#}{}", also(&not_tabular)))?;

    steps.step("checking every operator against tract");
    let unsupported = tract::unsupported_ops(&im);
    if !unsupported.is_empty() {
        bail!("{}{}", unsupported_report(&unsupported), also(&not_tabular));
    }

    steps.step("typing the graph with a symbolic sequence length");
    let catalog = match (kind, &args.catalog) {
        (Kind::Recommender, Some(path)) => crate::catalog::read(path)?,
        (Kind::Recommender, None) => bail!("a recommender needs --catalog: the item ids in model-index order"),
        (Kind::Intent, Some(_)) => bail!("--catalog is for recommenders; an intent model has no items"),
        (Kind::Intent, None) => Vec::new(),
    };
    let n_features = INTENT_FEATURES.len();
    // Item embeddings: the model is cut at the visitor vector; `items` (f32, the reference) and
    // `stored` (the bundle's dtype) score it.
    // Recommenders are read as ONNX protobuf too (recognisers, a split head, a serving
    // selection at the end); external weights are inlined once.
    let onnx = if kind == Kind::Recommender { Some(crate::onnx_file::self_contained(&args.model)?) } else { None };
    let mut selection_note = None;
    let selected_output = match &onnx {
        Some(bytes) => match foresight::import::graph::trailing_selection(bytes, args.output.as_deref()).map_err(|e| anyhow::anyhow!(e))? {
            Some(sel) => {
                let k = sel.k.map_or(String::new(), |k| format!(" (k = {k})"));
                selection_note = Some(format!(
                    "the model ends in {} `{}`{k}: stripped, the bundle returns every item's score from `{}` and the SDK selects the top-k under the shop's rules",
                    sel.op, sel.node, sel.scores
                ));
                Some(sel.scores)
            }
            None => args.output.clone(),
        },
        None => args.output.clone(),
    };
    if let (Some(note), false) = (&selection_note, args.json) {
        eprintln!("{note}");
    }
    let mut output = selected_output.clone();
    let mut scores_output = selected_output.clone();
    let tower: Option<(foresight::infer::score::ItemMatrix, foresight::infer::score::ItemMatrix)> =
        if args.split_head || args.item_embeddings.is_some() {
            if kind != Kind::Recommender {
                bail!("item embeddings are for recommenders");
            }
            if matches!(args.format, Format::Gru | Format::Attention | Format::Transition) {
                bail!("--format gru, attention and transition run their own scoring head; item embeddings go with --format nnef or onnx");
            }
            let (rows, dims, values, bias) = if args.split_head {
                let onnx = onnx.as_deref().unwrap_or_default();
                let head = foresight::import::graph::scoring_head(onnx, selected_output.as_deref())
                    .map_err(|why| anyhow::anyhow!("--split-head: {why}"))?;
                output = Some(head.input.clone());
                scores_output = Some(head.output.clone());
                (head.items, head.hidden, head.item_rows(), head.bias.clone())
            } else {
                let path = args.item_embeddings.as_deref().unwrap_or(std::path::Path::new(""));
                let (rows, dims, values) = crate::embeddings::read_matrix(path)?;
                let bias = args.item_bias.as_deref().map(|p| crate::embeddings::read_bias(p, rows)).transpose()?;
                (rows, dims, values, bias)
            };
            if rows != catalog.len() {
                bail!("there are {rows} item embeddings but the catalog lists {} items: one row per item, in catalog order", catalog.len());
            }
            let reference = crate::embeddings::matrix(rows, dims, &values, bias.clone(), EmbeddingDtype::F32)?;
            let stored = crate::embeddings::matrix(rows, dims, &values, bias, args.embedding_dtype)?;
            Some((reference, stored))
        } else {
            None
        };
    let typed = match kind {
        Kind::Recommender => tract::recommender_from_inference(im, &RecommenderIo { input: args.input.clone(), output: output.clone() }),
        Kind::Intent => tract::intent_from_inference(
            im,
            &IntentIo { input: args.input.clone(), output: args.output.clone(), positive_index: args.positive_index },
            n_features,
        ),
    }
    .map_err(|e| anyhow::anyhow!(with_hint(&e.to_string())))?;
    let typed = typed.into_decluttered().map_err(|e| anyhow::anyhow!(with_hint(&format!("{e:#}"))))?;
    let mut stored = typed.clone();
    notes.extend(selection_note);
    if args.quantize == Some(QuantizeArg::F16) {
        let n = crate::quantize::store_weights_f16(&mut stored)?;
        notes.push(format!("{n} weight tensor(s) stored as float16"));
    }
    let (inputs, outputs) = io_specs(&typed)?;
    if let Some((items, _)) = &tower {
        let width = outputs.first().and_then(|o| o.shape.last()).and_then(|d| d.parse::<usize>().ok());
        if width != Some(items.dims()) {
            bail!(
                "the model's output `{}` is a vector of {} but the item embeddings have {} dims",
                output.as_deref().unwrap_or("(first)"),
                width.map_or("a dynamic size".to_owned(), |w| w.to_string()),
                items.dims()
            );
        }
    } else if kind == Kind::Recommender {
        let width = outputs.first().and_then(|o| o.shape.last()).and_then(|d| d.parse::<usize>().ok());
        if width != Some(catalog.len()) {
            bail!(
                "the model scores {} items but the catalog lists {}: the catalog must list every item in model-index order",
                width.map_or("a dynamic number of".to_owned(), |w| w.to_string()),
                catalog.len()
            );
        }
    }

    // The format: a recognised GRU, attention or windowed-transition recommender runs on the
    // SDK's kernels unless told otherwise.
    enum Recognised {
        Gru(foresight::infer::gru::GruModel),
        Attention(foresight::infer::attention::AttentionModel),
        Transition(foresight::infer::transition::TransitionModel),
    }
    let mut kernel_bytes = None;
    let mut gru_spec = None;
    let mut attention_spec = None;
    let mut transition_spec = None;
    let mut max_seq_len = args.max_seq_len;
    let mut format = match (args.format, kind) {
        (Format::Auto, Kind::Recommender) if tower.is_some() => Format::Nnef,
        (Format::Auto | Format::Gru | Format::Attention | Format::Transition, Kind::Recommender) if args.quantize.is_none() => {
            let onnx = onnx.as_deref().unwrap_or_default();
            let out = selected_output.as_deref();
            let gru = || foresight::import::gru::from_onnx(onnx, out);
            let attention = || foresight::import::attention::from_onnx(onnx, out);
            let transition = || foresight::import::transition::from_onnx(onnx, out);
            let recognised = match args.format {
                Format::Gru => Ok(gru().map(Recognised::Gru).map_err(|why| anyhow::anyhow!("--format gru: {why}"))?),
                Format::Attention => {
                    Ok(attention().map(Recognised::Attention).map_err(|why| anyhow::anyhow!("--format attention: {why}"))?)
                }
                Format::Transition => {
                    Ok(transition().map(Recognised::Transition).map_err(|why| anyhow::anyhow!("--format transition: {why}"))?)
                }
                _ => gru().map(Recognised::Gru).or_else(|g| {
                    attention().map(Recognised::Attention).or_else(|a| transition().map(Recognised::Transition).map_err(|t| (g, a, t)))
                }),
            };
            match recognised {
                Ok(Recognised::Gru(g)) => {
                    if g.spec.items != catalog.len() {
                        bail!("the GRU scores {} items but the catalog lists {}", g.spec.items, catalog.len());
                    }
                    gru_spec = Some(g.spec.clone());
                    kernel_bytes = Some(g.to_bytes());
                    Format::Gru
                }
                Ok(Recognised::Attention(a)) => {
                    if a.spec.items != catalog.len() {
                        bail!("the attention model scores {} items but the catalog lists {}", a.spec.items, catalog.len());
                    }
                    if max_seq_len > a.spec.positions {
                        notes.push(format!("max_seq_len {max_seq_len} lowered to the model's {} learned positions", a.spec.positions));
                        max_seq_len = a.spec.positions;
                    }
                    attention_spec = Some(a.spec.clone());
                    kernel_bytes = Some(a.to_bytes());
                    Format::Attention
                }
                Ok(Recognised::Transition(t)) => {
                    if t.spec.items != catalog.len() {
                        bail!("the transition model scores {} items but the catalog lists {}", t.spec.items, catalog.len());
                    }
                    let repeat = match t.spec.repeat_weights.len() {
                        0 => String::new(),
                        r => format!(", a repeat term over the last {r} items"),
                    };
                    notes.push(format!(
                        "the windowed-transition recommender `foresight-export train` writes ({} dims, a window of {}{repeat}): \
                         format transition, on the SDK's own kernel (no tract download in the browser)",
                        t.spec.dim,
                        t.spec.recency_weights.len()
                    ));
                    transition_spec = Some(t.spec.clone());
                    kernel_bytes = Some(t.to_bytes());
                    Format::Transition
                }
                Err((g, a, t)) => {
                    notes.push(format!(
                        "not a GRU ({g}), attention ({a}) or windowed-transition ({t}) recommender the SDK's kernels run: \
                         NNEF, whole sequence per call"
                    ));
                    Format::Nnef
                }
            }
        }
        (Format::Auto, _) => Format::Nnef,
        (f, _) => f,
    };
    steps.step(match format {
        Format::Nnef | Format::Auto => "writing tract NNEF",
        Format::Onnx => "inlining ONNX weights",
        Format::Gru => "writing GRU weights",
        Format::Attention => "writing attention weights",
        Format::Transition => "writing transition weights",
        Format::Linear | Format::Trees => "writing the intent model",
    });
    let model_bytes = match format {
        Format::Gru | Format::Attention | Format::Transition => kernel_bytes.take().unwrap_or_default(),
        Format::Auto => unreachable!("resolved above"),
        Format::Linear | Format::Trees => unreachable!("converted by tabular()"),
        // tract 0.23.9 types some ONNX patterns into operators it cannot write as NNEF (Erf-based
        // GELU becomes GeluExact); the full SDK build still runs them from ONNX.
        Format::Nnef => match foresight::import::nnef::write_nnef(kind_name, &stored) {
            Ok(bytes) => bytes,
            // Chosen, not asked for: the graph runs from ONNX on the same tract module instead.
            Err(e) if args.format == Format::Auto && args.quantize.is_none() => {
                notes.push(format!("tract cannot write this graph as NNEF ({e}): format onnx instead, on the same tract module"));
                format = Format::Onnx;
                match &onnx {
                    Some(bytes) => bytes.clone(),
                    None => crate::onnx_file::self_contained(&args.model)?,
                }
            }
            Err(e) => {
                bail!("{e}\nhint: convert with --format onnx (the SDK's default build loads it; the lean NNEF-only build does not)")
            }
        },
        // A recommender's bytes were inlined already; an intent model's are read now.
        Format::Onnx => match onnx {
            Some(bytes) => bytes,
            None => crate::onnx_file::self_contained(&args.model)?,
        },
    };

    steps.step("checking parity");
    let load = |bytes: Option<&[u8]>| -> Result<Runner> {
        if let (Some(b), Some(spec)) = (bytes, &gru_spec) {
            return Ok(Runner::Recommender(RecommenderModel::from_gru(foresight::infer::gru::GruModel::from_bytes(spec.clone(), b)?)));
        }
        if let (Some(b), Some(spec)) = (bytes, &attention_spec) {
            return Ok(Runner::Recommender(RecommenderModel::from_attention(foresight::infer::attention::AttentionModel::from_bytes(
                spec.clone(),
                b,
            )?)));
        }
        if let (Some(b), Some(spec)) = (bytes, &transition_spec) {
            return Ok(Runner::Recommender(RecommenderModel::from_transition(foresight::infer::transition::TransitionModel::from_bytes(
                spec.clone(),
                b,
            )?)));
        }
        let model = match bytes {
            None => typed.clone(),
            Some(b) if format == Format::Nnef => tract::read_nnef(kind_name, b)?,
            Some(_) => typed.clone(),
        };
        Ok(match (kind, &tower) {
            // The original against the f32 matrix, the bundle against what it stores.
            (Kind::Recommender, Some((reference, stored))) => Runner::Recommender(RecommenderModel::from_typed_tower(
                model,
                if bytes.is_some() { stored.clone() } else { reference.clone() },
            )?),
            (Kind::Recommender, None) => Runner::Recommender(RecommenderModel::from_typed(model, catalog.len())?),
            (Kind::Intent, _) => Runner::Intent(IntentModel::from_typed(model, n_features, args.positive_index)?),
        })
    };
    let mut original = load(None)?;
    // A graph with learned positions fails past its own length (tract cannot slice beyond
    // them): the longest sequence it runs bounds the parity cases and the bundle's max_seq_len,
    // as the attention path does from its spec.
    if kind == Kind::Recommender && matches!(format, Format::Nnef | Format::Onnx) && !catalog.is_empty() {
        let mut runs = |len: usize| original.run(&parity::Input::Sequence(vec![0; len])).is_ok();
        if !runs(max_seq_len) {
            // `lo` runs (0: nothing known to), `hi` does not.
            let (mut lo, mut hi) = (0, max_seq_len);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if runs(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if lo > 0 {
                notes.push(format!("max_seq_len {max_seq_len} lowered to {lo}: the model fails on longer sequences"));
                max_seq_len = lo;
            }
        }
    }
    let mut cases = match kind {
        Kind::Recommender => parity::sequences(catalog.len(), max_seq_len, args.parity_cases),
        Kind::Intent => parity::features(n_features, args.parity_cases),
    };
    if let Some(path) = &args.parity_inputs {
        let ids = |id: &str| catalog.iter().position(|c| c.id == id);
        cases.extend(parity::from_file(path, &ids)?);
    }
    let mut bundled = load(Some(&model_bytes)).context("the bundled model does not load")?;
    let mut parity = vec![parity::compare("tract (original ONNX)", &mut original, &mut bundled, &cases)
        .map_err(|e| anyhow::anyhow!(with_hint(&format!("{e:#}"))))?];
    if !args.no_onnxruntime {
        // With --split-head onnxruntime computes the original model's scores; with
        // --item-embeddings it computes the vector, which the f32 matrix then scores.
        let output_name = if args.split_head { scores_output.clone() } else { None }
            .or_else(|| outputs.first().map(|o| o.name.clone()))
            .unwrap_or_default();
        let input_name = inputs.first().map(|i| i.name.clone());
        match parity::onnxruntime(&args.model, kind_name, input_name.as_deref(), &output_name, &cases)? {
            Some((version, reference)) => {
                let reference: Vec<Vec<f32>> = match kind {
                    Kind::Intent => reference
                        .into_iter()
                        .map(|v| vec![if v.len() > 1 { v.get(args.positive_index).copied().unwrap_or(f32::NAN) } else { v[0] }])
                        .collect(),
                    Kind::Recommender => match &tower {
                        Some((items, _)) if !args.split_head => reference
                            .into_iter()
                            .map(|v| {
                                let mut scores = Vec::new();
                                if let Ok(u) = items.user(&v) {
                                    items.scores_into(&u, &mut scores);
                                }
                                scores
                            })
                            .collect(),
                        _ => reference,
                    },
                };
                let ours: Vec<Vec<f32>> = cases.iter().map(|c| bundled.run(c)).collect::<Result<_>>()?;
                parity.push(parity::report(&version, &reference, &ours, kind == Kind::Recommender));
            }
            None => notes.push("onnxruntime is not importable from python3: compared with tract only".into()),
        }
    }
    // float16 weights move scores by ~1e-3 relative; what matters then is the ranking.
    let tolerance = if args.quantize.is_some() || args.embedding_dtype == EmbeddingDtype::F16 { 5e-2 } else { 1e-3 };
    for p in &parity {
        // NaN or infinite scores: nothing to ship (and a manifest holds finite floats only).
        if !p.max_abs_delta.is_finite() {
            bail!(
                "parity with {}: the scores differ by {} (the model gives NaN or infinite scores on some input)",
                p.reference,
                p.max_abs_delta
            );
        }
        if p.max_abs_delta > tolerance || p.top_k_agreement.is_some_and(|a| a < 1.0) {
            notes.push(format!(
                "parity with {} is poor (max |Δ| {:.2e}, top-{} agreement {:.0}%): check the model before shipping",
                p.reference,
                p.max_abs_delta,
                p.top_k.unwrap_or(0),
                p.top_k_agreement.unwrap_or(1.0) * 100.0
            ));
        }
    }

    write_bundle(
        &args,
        Prepared {
            kind,
            format,
            inputs,
            outputs,
            catalog,
            max_seq_len,
            tower,
            gru_spec,
            attention_spec,
            transition_spec,
            parity,
            notes,
            model_bytes,
            output,
        },
        &steps,
        started,
    )
}

/// Everything a bundle is written from, whichever path converted the model.
struct Prepared {
    kind: Kind,
    format: Format,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    catalog: Vec<CatalogItem>,
    max_seq_len: usize,
    /// Item embeddings: the f32 reference and what the bundle stores.
    tower: Option<(ItemMatrix, ItemMatrix)>,
    gru_spec: Option<GruSpec>,
    attention_spec: Option<AttentionSpec>,
    transition_spec: Option<TransitionSpec>,
    parity: Vec<ParityReport>,
    notes: Vec<String>,
    model_bytes: Vec<u8>,
    /// The output the bundle's model computes, when chosen (`--output`, the visitor vector).
    output: Option<String>,
}

/// Writes (and signs) the bundle and prints the summary.
fn write_bundle(args: &ConvertArgs, p: Prepared, steps: &Steps, started: Instant) -> Result<()> {
    let Prepared {
        kind,
        format,
        inputs,
        outputs,
        catalog,
        max_seq_len,
        tower,
        gru_spec,
        attention_spec,
        transition_spec,
        parity,
        mut notes,
        model_bytes,
        output,
    } = p;
    steps.step("writing the bundle");
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        kind: match kind {
            Kind::Recommender => ModelKind::Recommender,
            Kind::Intent => ModelKind::Intent,
        },
        created_by: format!("foresight-export {}", env!("CARGO_PKG_VERSION")),
        model: ModelSection {
            part: "model".into(),
            format: model_format(format),
            inputs,
            outputs,
            quantization: if args.quantize.is_some() { Quantization::F16 } else { Quantization::None },
        },
        items: catalog.clone(),
        max_seq_len: (kind == Kind::Recommender).then_some(max_seq_len),
        intent: (kind == Kind::Intent).then(|| IntentSection {
            feature_spec_version: INTENT_FEATURES_VERSION,
            feature_names: INTENT_FEATURES.iter().map(|f| f.name.to_owned()).collect(),
            positive_index: args.positive_index,
        }),
        embeddings: tower.as_ref().map(|(_, stored)| EmbeddingSection {
            part: "items".into(),
            rows: stored.rows(),
            dims: stored.dims(),
            dtype: stored.dtype().as_str().into(),
            bias: stored.bias().map(|_| "item_bias".into()),
        }),
        gru: gru_spec.clone(),
        attention: attention_spec.clone(),
        transition: transition_spec.clone(),
        parts: Vec::new(),
        parity: parity.clone(),
        key_id: None,
    };
    let key = match &args.signing_key {
        Some(path) => Some(crate::keys::read_signing_key(path)?),
        None => None,
    };
    let model_len = model_bytes.len();
    let mut writer = BundleWriter::new(manifest);
    writer.add_part("model", model_bytes);
    if let Some((_, stored)) = &tower {
        notes.push(format!(
            "item embeddings: {} × {} {} ({:.1} MB){}; the model outputs the visitor vector `{}`",
            stored.rows(),
            stored.dims(),
            stored.dtype().as_str(),
            (stored.rows() * stored.dims() * if stored.dtype() == foresight::infer::score::Dtype::F32 { 4 } else { 2 }) as f64 / 1e6,
            if stored.bias().is_some() { " with a bias" } else { "" },
            output.as_deref().unwrap_or("(first output)")
        ));
        writer.add_part("items", stored.to_le_bytes());
        if let Some(b) = stored.bias() {
            writer.add_part("item_bias", b.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
    }
    let bytes = writer.finish(key.as_ref())?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    steps.finish();

    let summary = Summary {
        bundle: args.out.clone(),
        bytes: bytes.len(),
        model_bytes: model_len,
        kind: match kind {
            Kind::Recommender => ModelKind::Recommender,
            Kind::Intent => ModelKind::Intent,
        },
        format: model_format(format),
        items: catalog.len(),
        signed: key.is_some(),
        parity,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "wrote {} ({} bytes, model {} bytes, {:?} {:?}{}) in {:.1} s",
            summary.bundle.display(),
            summary.bytes,
            summary.model_bytes,
            summary.kind,
            summary.format,
            if summary.signed { ", signed" } else { ", unsigned" },
            summary.seconds
        );
        for p in &summary.parity {
            match p.top_k_agreement {
                Some(a) => println!(
                    "  parity vs {}: {} cases, max |Δ| {:.2e}, top-{} identical in {:.0}%",
                    p.reference,
                    p.cases,
                    p.max_abs_delta,
                    p.top_k.unwrap_or(0),
                    a * 100.0
                ),
                None => println!("  parity vs {}: {} cases, max |Δ| {:.2e}", p.reference, p.cases, p.max_abs_delta),
            }
        }
        for n in &summary.notes {
            println!("  note: {n}");
        }
    }
    Ok(())
}

/// An intent model the SDK's own kernels run (`linear`, `trees`): recognised in the ONNX
/// protobuf, stored in the compact format, and checked against onnxruntime and, where tract can
/// read the model, tract. `Ok(Err(why))` when it is not one, or when the kernels do not reproduce
/// it to [`TABULAR_TOLERANCE`]: `--format auto` then falls back to NNEF, an explicit format fails.
fn tabular(args: &ConvertArgs, im: Result<&InferenceModel, String>, steps: &Steps) -> Result<Result<Prepared, String>> {
    let n_features = INTENT_FEATURES.len();
    steps.step("recognising a linear model or tree ensemble");
    let onnx = crate::onnx_file::self_contained(&args.model)?;
    let rec = match foresight::import::tabular::recognise(&onnx, args.input.as_deref(), args.output.as_deref(), Some(n_features)) {
        Ok(rec) => rec,
        Err(why) => return Ok(Err(why)),
    };
    let (format, label) = match rec.model.kind() {
        TabularKind::Linear => (Format::Linear, "linear"),
        TabularKind::Trees => (Format::Trees, "trees"),
    };
    if args.format != Format::Auto && args.format != format {
        return Ok(Err(format!("node {} is a {} model: convert with --format {label} (or auto)", rec.node, rec.model.kind().as_str())));
    }
    let mut notes = vec![match rec.model.trees() {
        Some(t) => format!(
            "node {} runs on the SDK's own tree kernel (format trees: {} trees, {} nodes), in the core wasm without tract",
            rec.node,
            t.roots.len(),
            t.nodes.len()
        ),
        None => format!("node {} runs on the SDK's own linear kernel (format linear), in the core wasm without tract", rec.node),
    }];

    steps.step("writing the intent model");
    let model_bytes = rec.model.to_bytes();

    steps.step("checking parity");
    let mut cases = parity::features(n_features, args.parity_cases);
    if let Some(path) = &args.parity_inputs {
        cases.extend(parity::from_file(path, &|_: &str| None)?);
    }
    let loaded = TabularModel::from_bytes(&model_bytes).and_then(|m| IntentModel::from_tabular(m, args.positive_index));
    let mut bundled = Runner::Intent(loaded.context("the bundled model does not load")?);
    let ours: Vec<Vec<f32>> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| bundled.run(c).with_context(|| format!("parity case {i} on the bundled model")))
        .collect::<Result<_>>()?;
    let mut parity = Vec::new();

    // tract, where it can read and run the original (it has no TreeEnsembleRegressor).
    let io = IntentIo { input: Some(rec.input.clone()), output: Some(rec.output.clone()), positive_index: args.positive_index };
    let tract = im.and_then(|im| {
        let ops = tract::unsupported_ops(im);
        let typed = tract::intent_from_inference(im.clone(), &io, n_features).map_err(|e| match ops.first() {
            Some(op) => format!("{} (node `{}`) is not implemented", op.op, op.node),
            None => e.to_string(),
        })?;
        let typed = typed.into_decluttered().map_err(|e| format!("{e:#}"))?;
        let mut original = Runner::Intent(IntentModel::from_typed(typed, n_features, args.positive_index).map_err(|e| e.to_string())?);
        cases.iter().map(|c| original.run(c).map_err(|e| format!("{e:#}"))).collect::<Result<Vec<_>, String>>()
    });
    match tract {
        Ok(reference) => parity.push(parity::report("tract (original ONNX)", &reference, &ours, false)),
        Err(why) => {
            let why = why.lines().next().unwrap_or_default().to_owned();
            notes.push(format!("tract cannot run the original model ({why}): compared with onnxruntime only"))
        }
    }
    let mut ort = None;
    if !args.no_onnxruntime {
        match parity::onnxruntime(&args.model, IntentModel::KIND, Some(&rec.input), &rec.output, &cases)? {
            Some((version, reference)) => {
                let width = rec.model.n_outputs();
                let column = if width > 1 { args.positive_index } else { 0 };
                let reference: Vec<Vec<f32>> = reference
                    .into_iter()
                    .map(|v| vec![if v.len() == width { v.get(column).copied().unwrap_or(f32::NAN) } else { f32::NAN }])
                    .collect();
                let report = parity::report(&version, &reference, &ours, false);
                ort = Some(report.clone());
                parity.push(report);
            }
            None => notes.push("onnxruntime is not importable from python3: compared with tract only".into()),
        }
    }
    // onnxruntime is the reference the kernels follow; tract's ML operators differ from it in
    // places (they are checked, and a difference is noted, not fatal).
    match ort.as_ref().or(parity.first()) {
        Some(p) if p.max_abs_delta > TABULAR_TOLERANCE || p.max_abs_delta.is_nan() => {
            return Ok(Err(format!(
                "the SDK's {label} kernel differs from {} by up to {:.2e} (more than {TABULAR_TOLERANCE:.0e}) on node {}",
                p.reference, p.max_abs_delta, rec.node
            )))
        }
        Some(_) => {}
        None => notes.push("neither tract nor onnxruntime could run the original model: parity is unchecked".into()),
    }
    for p in &parity {
        if p.max_abs_delta > 1e-3 {
            notes
                .push(format!("parity with {} is poor (max |Δ| {:.2e}): onnxruntime agrees with the bundle", p.reference, p.max_abs_delta));
        }
    }
    let spec =
        |name: &str, width: usize| TensorSpec { name: name.to_owned(), dtype: "f32".into(), shape: vec!["1".into(), width.to_string()] };
    Ok(Ok(Prepared {
        kind: Kind::Intent,
        format,
        inputs: vec![spec(&rec.input, n_features)],
        outputs: vec![spec(&rec.output, rec.model.n_outputs())],
        catalog: Vec::new(),
        max_seq_len: args.max_seq_len,
        tower: None,
        gru_spec: None,
        attention_spec: None,
        transition_spec: None,
        parity,
        notes,
        model_bytes,
        output: Some(rec.output),
    }))
}

fn model_format(f: Format) -> ModelFormat {
    match f {
        Format::Nnef | Format::Auto => ModelFormat::Nnef,
        Format::Onnx => ModelFormat::Onnx,
        Format::Gru => ModelFormat::Gru,
        Format::Attention => ModelFormat::Attention,
        Format::Transition => ModelFormat::Transition,
        Format::Linear => ModelFormat::Linear,
        Format::Trees => ModelFormat::Trees,
    }
}

/// Names, element types and shapes of the typed model's input and output.
pub fn io_specs(typed: &TypedModel) -> Result<(Vec<TensorSpec>, Vec<TensorSpec>)> {
    let spec = |outlet: OutletId, name: String| -> Result<TensorSpec> {
        let fact = typed.outlet_fact(outlet).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Ok(TensorSpec {
            name,
            dtype: format!("{:?}", fact.datum_type).to_lowercase(),
            shape: fact.shape.iter().map(|d| d.to_string()).collect(),
        })
    };
    let inputs = typed
        .input_outlets()
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .iter()
        .map(|o| spec(*o, typed.node(o.node).name.clone()))
        .collect::<Result<_>>()?;
    let outputs = typed
        .output_outlets()
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .iter()
        .map(|o| spec(*o, typed.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| typed.node(o.node).name.clone())))
        .collect::<Result<_>>()?;
    Ok((inputs, outputs))
}

/// Every unsupported operator, by node, with what usually causes it and what to change.
pub fn unsupported_report(ops: &[UnsupportedOp]) -> String {
    let mut text = format!("the model uses {} operator(s) tract does not support:", ops.len());
    for op in ops {
        text.push_str(&format!("\n  - {} (node `{}`): {}", op.op, op.node, hint_for_op(&op.op)));
    }
    text
}

fn hint_for_op(op: &str) -> &'static str {
    match op {
        "Loop" => {
            "PyTorch exports nn.EmbeddingBag (and Python loops over tensors) as ONNX Loop; use nn.Embedding followed by \
             .mean(dim=1) or .sum(dim=1). tf2onnx writes a Keras 3 GRU/LSTM as Loop too; build the model with tf_keras \
             (Keras 2), whose recurrent layers tf2onnx turns into ONNX GRU/LSTM"
        }
        "ZipMap" => "skl2onnx/onnxmltools add ZipMap for dictionary outputs; convert with options={id(model): {'zipmap': False}}",
        "SequenceConstruct" | "SequenceAt" | "SplitToSequence" | "ConcatFromSequence" | "SequenceInsert" => {
            "sequence operators come from Python lists of tensors in forward(); use torch.stack or torch.cat"
        }
        "If" => "data-dependent branches in forward() export as If; compute both branches and select with torch.where",
        "NonZero" => "boolean indexing (x[mask]) exports as NonZero with a data-dependent shape; use torch.where or multiply by the mask",
        "StringNormalizer" | "TfIdfVectorizer" | "Tokenizer" => "text preprocessing belongs outside the model: feed numeric features",
        _ => "not implemented by tract 0.23.9; replace it in the model with an equivalent supported operator",
    }
}

/// Adds what usually causes a shape error in recommenders exported from PyTorch.
pub fn with_hint(detail: &str) -> String {
    if detail.to_lowercase().contains("reshape") {
        format!(
            "{detail}\nhint: a Reshape with a fixed size usually means the sequence length was baked in at export \
             (the legacy exporter does this for nn.MultiheadAttention); use the dynamo exporter \
             (torch.onnx.export(..., dynamo=True, dynamic_shapes=...)) or write attention with matmul/softmax"
        )
    } else {
        detail.to_owned()
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Recommender => "recommender",
        Kind::Intent => "intent",
    }
}

/// The kind a model's input says it is: an integer sequence of item indices is a recommender,
/// a float vector of features an intent model; anything else needs `--kind`.
fn infer_kind(im: &InferenceModel, input: Option<&str>) -> Result<(Kind, String)> {
    use tract_onnx::tract_hir::infer::Factoid;
    let outlets = im.input_outlets().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let names: Vec<&str> = outlets.iter().map(|o| im.node(o.node).name.as_str()).collect();
    let ix = match input {
        Some(name) => {
            names.iter().position(|n| *n == name).with_context(|| format!("no input `{name}`; the model's inputs are {names:?}"))?
        }
        None => 0,
    };
    let name = names.get(ix).context("the model has no input")?;
    let fact = im.input_fact(ix).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let rank = fact.shape.rank().concretize().and_then(|r| usize::try_from(r).ok());
    match fact.datum_type.concretize() {
        Some(dt) if dt == i64::datum_type() || dt == i32::datum_type() => {
            Ok((Kind::Recommender, format!("input `{name}` is a sequence of {dt:?} item indices")))
        }
        Some(dt) if (dt == f32::datum_type() || dt == f64::datum_type()) && rank == Some(2) => {
            Ok((Kind::Intent, format!("input `{name}` is a [batch, features] {dt:?} vector")))
        }
        Some(dt) => bail!(
            "cannot tell from input `{name}` ({dt:?}, rank {}) whether this is a recommender or an intent model: pass --kind recommender or --kind intent",
            rank.map_or("unknown".to_owned(), |r| r.to_string())
        ),
        None => bail!("input `{name}` has no declared type: pass --kind recommender or --kind intent"),
    }
}
