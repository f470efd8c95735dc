//! `inspect` and `verify`: what a bundle holds, and whether it is intact, signed by the
//! expected key, and still matches the original model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use foresight::contract::bundle::Bundle;
use foresight::contract::manifest::{ModelFormat, ModelKind, ParityReport};
use foresight::features::INTENT_FEATURES;
use foresight::infer::model::{IntentModel, RecommenderModel};
use foresight::infer::tabular::TabularModel;

use crate::parity::{self, Runner};

#[derive(clap::Args)]
pub struct InspectArgs {
    pub bundle: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    pub bundle: PathBuf,
    /// Public key (a .pub file or the base64 text): the bundle must be signed by it.
    #[arg(long)]
    pub public_key: Option<String>,
    /// The original ONNX model, to re-run the parity check against.
    #[arg(long)]
    pub against: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    pub parity_cases: usize,
    #[arg(long)]
    pub json: bool,
}

fn read(path: &PathBuf, key: Option<&foresight::contract::bundle::PublicKey>) -> Result<Bundle> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Bundle::parse(bytes, key).with_context(|| format!("{} is refused", path.display()))
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    let b = read(&args.bundle, None)?;
    let m = &b.manifest;
    if args.json {
        let mut value = serde_json::to_value(m)?;
        value["signed"] = b.signed.into();
        value["bytes"] = b.len().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{}: {} bytes, format version {}, {}", args.bundle.display(), b.len(), m.format_version, m.created_by);
    println!("  kind: {:?}, model: {:?} ({:?} quantization)", m.kind, m.model.format, m.model.quantization);
    if let Some(g) = &m.gru {
        println!(
            "  GRU on the SDK's kernels: input {}, hidden {}, linear_before_reset {}, {} embedding rows — incremental session state, one step per event",
            g.input_size, g.hidden_size, g.linear_before_reset, g.embedding_rows
        );
    }
    if let Some(a) = &m.attention {
        println!(
            "  attention on the SDK's kernels: {} blocks, dim {}, {} heads, feed-forward {} ({:?}), {} positions, {} embedding rows — key/value cache, one position per event",
            a.blocks, a.dim, a.heads, a.ffn, a.activation, a.positions, a.embedding_rows
        );
    }
    if let Some(t) = &m.transition {
        println!(
            "  windowed transitions on the SDK's kernels: dim {}, a window of {} (weights {:?}), history weight {} — whole sequence per call, no tract",
            t.dim,
            t.recency_weights.len(),
            t.recency_weights,
            t.history_weight
        );
        if let Some(newest) = t.repeat_weights.last() {
            println!("  repeat term: the last {} items gain up to {newest} on their own score", t.repeat_weights.len());
        }
    }
    if m.model.format.is_tabular() {
        match b.model_bytes().map_err(anyhow::Error::from).and_then(|bytes| Ok(TabularModel::from_bytes(bytes)?)) {
            Ok(t) => match t.trees() {
                Some(trees) => println!(
                    "  tree ensemble on the SDK's own kernel: {} trees, {} nodes, {} features, {} outputs — no tract",
                    trees.roots.len(),
                    trees.nodes.len(),
                    t.n_features(),
                    t.n_outputs()
                ),
                None => {
                    println!("  linear model on the SDK's own kernel: {} features, {} outputs — no tract", t.n_features(), t.n_outputs())
                }
            },
            Err(e) => println!("  the {:?} model does not parse: {e:#}", m.model.format),
        }
    }
    for t in &m.model.inputs {
        println!("  input  {}: {} [{}]", t.name, t.dtype, t.shape.join(", "));
    }
    for t in &m.model.outputs {
        println!("  output {}: {} [{}]", t.name, t.dtype, t.shape.join(", "));
    }
    if !m.items.is_empty() {
        let with_category = m.items.iter().filter(|i| i.category.is_some()).count();
        println!("  items: {} ({} with a category), max sequence length {}", m.items.len(), with_category, m.max_seq_len.unwrap_or(0));
    }
    if let Some(e) = &m.embeddings {
        println!(
            "  item embeddings: {} × {} {} in part {}{}; the model's output is the visitor vector they score",
            e.rows,
            e.dims,
            e.dtype,
            e.part,
            e.bias.as_deref().map(|b| format!(", bias in part {b}")).unwrap_or_default()
        );
    }
    if let Some(i) = &m.intent {
        println!(
            "  features: spec v{}, {} features, positive class column {}",
            i.feature_spec_version,
            i.feature_names.len(),
            i.positive_index
        );
    }
    for p in &m.parts {
        println!("  part {}: {} bytes, sha256 {}", p.name, p.length, p.sha256);
    }
    for p in &m.parity {
        println!(
            "  parity vs {}: {} cases, max |Δ| {:.2e}{}",
            p.reference,
            p.cases,
            p.max_abs_delta,
            p.top_k_agreement.map(|a| format!(", top-{} identical in {:.0}%", p.top_k.unwrap_or(0), a * 100.0)).unwrap_or_default()
        );
    }
    match &m.key_id {
        Some(id) if b.signed => println!("  signed by key {id} (check it with `verify --public-key`)"),
        _ => println!("  unsigned"),
    }
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let key = args.public_key.as_deref().map(crate::keys::read_public_key).transpose()?;
    let b = read(&args.bundle, key.as_ref())?;
    let m = &b.manifest;
    let model_bytes = b.model_bytes()?;
    let load = |bytes: &[u8]| -> Result<Runner> {
        Ok(match (m.kind, m.model.format) {
            (ModelKind::Recommender, ModelFormat::Nnef) => Runner::Recommender(RecommenderModel::load_nnef(bytes, m.items.len())?),
            (ModelKind::Recommender, ModelFormat::Onnx) => {
                Runner::Recommender(RecommenderModel::load(bytes, &Default::default(), m.items.len())?)
            }
            (ModelKind::Recommender, _) => Runner::Recommender(RecommenderModel::from_kernel_bundle(m, bytes)?),
            (ModelKind::Intent, format) => {
                let positive = m.intent.as_ref().map_or(1, |i| i.positive_index);
                Runner::Intent(match format {
                    ModelFormat::Nnef => IntentModel::load_nnef(bytes, INTENT_FEATURES.len(), positive)?,
                    ModelFormat::Onnx => IntentModel::load(
                        bytes,
                        &foresight::infer::model::IntentIo { positive_index: positive, ..Default::default() },
                        INTENT_FEATURES.len(),
                    )?,
                    ModelFormat::Linear | ModelFormat::Trees => IntentModel::from_tabular(TabularModel::from_bytes(bytes)?, positive)?,
                    f => anyhow::bail!("an intent model cannot be in the {f:?} format"),
                })
            }
        })
    };
    let mut bundled = load(model_bytes).context("the bundled model does not load")?;
    let cases = match m.kind {
        ModelKind::Recommender => parity::sequences(m.items.len(), m.max_seq_len.unwrap_or(50), args.parity_cases),
        ModelKind::Intent => parity::features(INTENT_FEATURES.len(), args.parity_cases),
    };
    let report = match &args.against {
        Some(path) => {
            let original = crate::onnx_file::self_contained(path)?;
            let mut original = match m.kind {
                ModelKind::Recommender => {
                    let io = foresight::infer::model::RecommenderIo {
                        input: m.model.inputs.first().map(|t| t.name.clone()),
                        output: m.model.outputs.first().map(|t| t.name.clone()),
                    };
                    Runner::Recommender(RecommenderModel::load(&original, &io, m.items.len())?)
                }
                ModelKind::Intent => {
                    let io = foresight::infer::model::IntentIo {
                        input: m.model.inputs.first().map(|t| t.name.clone()),
                        output: m.model.outputs.first().map(|t| t.name.clone()),
                        positive_index: m.intent.as_ref().map_or(1, |i| i.positive_index),
                    };
                    match IntentModel::load(&original, &io, INTENT_FEATURES.len()) {
                        Ok(model) => Runner::Intent(model),
                        // tract has no TreeEnsembleRegressor (and no ZipMap): a model the SDK's
                        // own kernels run is then checked against onnxruntime.
                        Err(e) if m.model.format.is_tabular() => {
                            let reference = parity::onnxruntime(
                                path,
                                IntentModel::KIND,
                                io.input.as_deref(),
                                io.output.as_deref().unwrap_or_default(),
                                &cases,
                            )?
                            .with_context(|| format!("tract cannot run the original ({e}) and python3 has no onnxruntime"))?;
                            let column = if m.model.outputs.first().and_then(|o| o.shape.last()).is_some_and(|w| w != "1") {
                                io.positive_index
                            } else {
                                0
                            };
                            let theirs: Vec<Vec<f32>> =
                                reference.1.iter().map(|v| vec![v.get(column).copied().unwrap_or(f32::NAN)]).collect();
                            let ours: Vec<Vec<f32>> = cases.iter().map(|c| bundled.run(c)).collect::<Result<_>>()?;
                            let report = parity::report(&reference.0, &theirs, &ours, false);
                            return finish(&args, b.signed, key.is_some(), cases.len(), Some(report));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            Some(parity::compare(&format!("tract ({})", path.display()), &mut original, &mut bundled, &cases)?)
        }
        None => {
            for (i, c) in cases.iter().enumerate() {
                let out = bundled.run(c).with_context(|| format!("case {i} ({})", parity::describe(c)))?;
                if out.iter().any(|x| !x.is_finite()) {
                    bail!("case {i} ({}): the model returns non-finite scores", parity::describe(c));
                }
            }
            None
        }
    };
    finish(&args, b.signed, key.is_some(), cases.len(), report)
}

/// Prints the verdict (and fails when the parity is gone).
fn finish(args: &VerifyArgs, signed: bool, key_checked: bool, cases: usize, report: Option<ParityReport>) -> Result<()> {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "bundle": args.bundle, "ok": true, "signed": signed, "keyChecked": key_checked,
                "cases": cases, "parity": report,
            }))?
        );
    } else {
        println!(
            "{}: OK — hashes match{}, the model loads and runs {} cases",
            args.bundle.display(),
            if key_checked {
                ", signature valid"
            } else if signed {
                " (signed; pass --public-key to check the signature)"
            } else {
                " (unsigned)"
            },
            cases
        );
        if let Some(r) = report {
            println!(
                "  parity vs {}: max |Δ| {:.2e}{}",
                r.reference,
                r.max_abs_delta,
                r.top_k_agreement.map(|a| format!(", top-{} identical in {:.0}%", r.top_k.unwrap_or(0), a * 100.0)).unwrap_or_default()
            );
            if r.max_abs_delta > 1e-3 || r.top_k_agreement.is_some_and(|a| a < 1.0) {
                bail!("the bundle no longer matches {}", r.reference);
            }
        }
    }
    Ok(())
}
