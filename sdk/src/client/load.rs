//! Bundles and inline models → the client's model slots: verify, pick the engine the
//! manifest's format names, check the intent feature spec against this SDK's.

use super::config::{IntentConfig, RecommenderConfig};
use super::{ModelStatus, Recommender};
use crate::contract::bundle::{Bundle, BundleError};
use crate::contract::manifest::{Manifest, ModelFormat, ModelKind};
use crate::error::{Error, Result};
use crate::features::{DEFAULT_MAX_SEQ_LEN, INTENT_FEATURES};
#[cfg(feature = "onnx")]
use crate::infer::model::{IntentIo, RecommenderIo};
use crate::infer::model::{IntentModel, RecommenderModel};
use crate::infer::score::ItemMatrix;
use crate::recommend::CatalogItem;

/// Models gathered while initialising, with why each slot is empty when it is.
#[derive(Default)]
pub(super) struct Loaded {
    pub(super) recommender: Option<Recommender>,
    pub(super) intent: Option<IntentModel>,
    pub(super) catalog: Option<Vec<CatalogItem>>,
    pub(super) recommender_error: Option<(String, &'static str)>,
    pub(super) intent_error: Option<(String, &'static str)>,
    pub(super) bundle_error: Option<(String, &'static str)>,
}

impl Loaded {
    /// Verifies a bundle and loads its model into the slot its manifest names.
    pub(super) fn add_bundle(&mut self, bytes: Vec<u8>, key: Option<&ed25519_dalek::VerifyingKey>) -> Result<()> {
        let bundle = Bundle::parse(bytes, key)?;
        let m = &bundle.manifest;
        let model_bytes = bundle.model_bytes()?;
        match m.kind {
            ModelKind::Recommender => {
                let n = m.items.len();
                let tower = match &m.embeddings {
                    Some(e) if e.rows != n => {
                        return Err(BundleError::Manifest(format!("{} item embeddings for {n} items in the manifest", e.rows)).into())
                    }
                    Some(e) => Some(ItemMatrix::from_bundle(e, &bundle)?),
                    None => None,
                };
                let model = match (m.model.format, tower) {
                    (ModelFormat::Nnef, Some(items)) => RecommenderModel::load_nnef_tower(model_bytes, items)?,
                    (ModelFormat::Onnx, Some(items)) => load_onnx_tower_bytes(model_bytes, m, items)?,
                    (ModelFormat::Nnef, None) => RecommenderModel::load_nnef(model_bytes, n)?,
                    (ModelFormat::Onnx, None) => load_onnx_recommender_bytes(model_bytes, m, n)?,
                    // Kernel formats never carry embeddings (refused when the bundle was parsed).
                    (_, _) => RecommenderModel::from_kernel_bundle(m, model_bytes)?,
                };
                let id = m.parts.iter().find(|p| p.name == m.model.part).map(|p| p.sha256.clone()).unwrap_or_default();
                // An attention model reads at most its learned positions.
                let positions = m.attention.as_ref().map_or(usize::MAX, |a| a.positions);
                let max_seq_len = m.max_seq_len.unwrap_or(DEFAULT_MAX_SEQ_LEN).clamp(1, positions.max(1));
                self.recommender = Some(Recommender::new(model, max_seq_len, id));
                self.catalog = Some(m.items.clone());
            }
            ModelKind::Intent => {
                let spec = m.intent.as_ref().ok_or_else(|| BundleError::Manifest("no intent section".into()))?;
                let ours: Vec<&str> = INTENT_FEATURES.iter().map(|f| f.name).collect();
                if spec.feature_names != ours {
                    return Err(Error::option(
                        "bundle",
                        format!(
                            "the intent model was trained on features {:?} (spec v{}), this SDK computes {:?} (v{})",
                            spec.feature_names,
                            spec.feature_spec_version,
                            ours,
                            crate::features::INTENT_FEATURES_VERSION
                        ),
                    ));
                }
                let model = match m.model.format {
                    ModelFormat::Nnef => IntentModel::load_nnef(model_bytes, ours.len(), spec.positive_index)?,
                    ModelFormat::Onnx => load_onnx_intent_bytes(model_bytes, m, spec.positive_index)?,
                    f => return Err(BundleError::Manifest(format!("an intent model cannot be in the {f:?} format")).into()),
                };
                self.intent = Some(model);
            }
        }
        Ok(())
    }

    /// Models given inline as ONNX (`recommender`, `intent` in the config); a failure is a
    /// warning and the slot's status, never an error: the page keeps the popularity fallback.
    pub(super) fn add_inline(
        &mut self,
        recommender: Option<RecommenderConfig>,
        intent: Option<IntentConfig>,
        catalog_len: usize,
        warnings: &mut Vec<String>,
    ) {
        if let Some(rc) = recommender {
            let result = if catalog_len == 0 {
                Err(Error::option("catalog", "is empty; the recommender needs the catalog as its item vocabulary"))
            } else {
                load_recommender_onnx(&rc, catalog_len)
            };
            match result {
                Ok(model) => {
                    // tract models keep no session state, so the id only has to name the source.
                    let id = format!("onnx:{}", rc.model.len());
                    self.recommender = Some(Recommender::new(model, rc.max_seq_len, id));
                }
                Err(e) => {
                    warnings.push(format!("recommender not loaded, using the popularity fallback: {e}"));
                    self.recommender_error = Some((e.to_string(), e.code()));
                }
            }
        }
        if let Some(ic) = intent {
            match load_intent_onnx(&ic) {
                Ok(model) => self.intent = Some(model),
                Err(e) => {
                    warnings.push(format!("intent model not loaded: {e}"));
                    self.intent_error = Some((e.to_string(), e.code()));
                }
            }
        }
    }

    /// Each slot's status: ready, or failed with why (a refused bundle fails the recommender
    /// slot it was meant for), or absent.
    pub(super) fn statuses(&mut self) -> (ModelStatus, ModelStatus) {
        let status = |ready: bool, own: Option<(String, &'static str)>, bundle: &Option<(String, &'static str)>| match (
            ready,
            own.or_else(|| bundle.clone()),
        ) {
            (true, _) => ModelStatus::Ready,
            (false, Some((error, code))) => ModelStatus::Failed { error, code },
            (false, None) => ModelStatus::Absent,
        };
        (
            status(self.recommender.is_some(), self.recommender_error.take(), &self.bundle_error),
            status(self.intent.is_some(), self.intent_error.take(), &None),
        )
    }
}

#[cfg(feature = "onnx")]
fn load_onnx_recommender_bytes(bytes: &[u8], m: &Manifest, n: usize) -> Result<RecommenderModel> {
    let io =
        RecommenderIo { input: m.model.inputs.first().map(|t| t.name.clone()), output: m.model.outputs.first().map(|t| t.name.clone()) };
    Ok(RecommenderModel::load(bytes, &io, n)?)
}

#[cfg(feature = "onnx")]
fn load_onnx_tower_bytes(bytes: &[u8], m: &Manifest, items: ItemMatrix) -> Result<RecommenderModel> {
    let io =
        RecommenderIo { input: m.model.inputs.first().map(|t| t.name.clone()), output: m.model.outputs.first().map(|t| t.name.clone()) };
    Ok(RecommenderModel::load_tower(bytes, &io, items)?)
}

#[cfg(feature = "onnx")]
fn load_onnx_intent_bytes(bytes: &[u8], m: &Manifest, positive_index: usize) -> Result<IntentModel> {
    let io = IntentIo {
        input: m.model.inputs.first().map(|t| t.name.clone()),
        output: m.model.outputs.first().map(|t| t.name.clone()),
        positive_index,
    };
    Ok(IntentModel::load(bytes, &io, INTENT_FEATURES.len())?)
}

#[cfg(not(feature = "onnx"))]
fn load_onnx_recommender_bytes(_: &[u8], _: &Manifest, _: usize) -> Result<RecommenderModel> {
    Err(no_onnx())
}

#[cfg(not(feature = "onnx"))]
fn load_onnx_tower_bytes(_: &[u8], _: &Manifest, _: ItemMatrix) -> Result<RecommenderModel> {
    Err(no_onnx())
}

#[cfg(not(feature = "onnx"))]
fn load_onnx_intent_bytes(_: &[u8], _: &Manifest, _: usize) -> Result<IntentModel> {
    Err(no_onnx())
}

#[cfg(not(feature = "onnx"))]
fn no_onnx() -> Error {
    Error::option(
        "model",
        "this is the lean (NNEF-only) build: convert the model with `foresight-export convert` (NNEF is the default format)",
    )
}

#[cfg(feature = "onnx")]
fn load_recommender_onnx(rc: &RecommenderConfig, n_items: usize) -> Result<RecommenderModel> {
    Ok(RecommenderModel::load(&rc.model, &rc.io(), n_items)?)
}

#[cfg(feature = "onnx")]
fn load_intent_onnx(ic: &IntentConfig) -> Result<IntentModel> {
    Ok(IntentModel::load(&ic.model, &ic.io(), INTENT_FEATURES.len())?)
}

#[cfg(not(feature = "onnx"))]
fn load_recommender_onnx(_: &RecommenderConfig, _: usize) -> Result<RecommenderModel> {
    Err(no_onnx())
}

#[cfg(not(feature = "onnx"))]
fn load_intent_onnx(_: &IntentConfig) -> Result<IntentModel> {
    Err(no_onnx())
}
