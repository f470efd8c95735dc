//! Bundles and inline models → the client's model slots: verify, pick the engine the
//! manifest's format names, check the intent feature spec against this SDK's.

use super::config::{Config, IntentConfig, RecommenderConfig};
use super::{Client, ModelStatus, Recommender};
use crate::contract::bundle::{self, Bundle, BundleError, Unhashed, Unverified};
use crate::contract::manifest::{Manifest, ModelFormat, ModelKind};
use crate::error::{Error, ModelError, Result};
use crate::features::{DEFAULT_MAX_SEQ_LEN, INTENT_FEATURES};
use crate::infer::model::{GraphFormat, GraphLoader, GraphSource, IntentModel, RecommenderModel, Width};
use crate::infer::score::ItemMatrix;
use crate::infer::tabular::TabularModel;
use crate::platform::{Clock, Storage};
use crate::recommend::rules::{CompiledRules, Rules};
use crate::recommend::{Catalog, CatalogItem};

/// Where graph models (NNEF/ONNX) run: a loader, or why there is none (a core build without
/// tract whose page could not fetch the tract module).
#[derive(Clone, Copy)]
pub enum Graphs<'a> {
    Loader(&'a dyn GraphLoader),
    Unavailable(&'a str),
}

impl<'a> Graphs<'a> {
    /// The runtime compiled into this build, or none.
    pub fn builtin() -> Graphs<'static> {
        match crate::infer::builtin_graphs() {
            Some(loader) => Graphs::Loader(loader),
            None => Graphs::Unavailable(
                "this build has no graph runtime (tract); in the browser it is fetched when a bundle needs it, \
                 or convert the model to a kernel format (gru, attention, transition, linear, trees)",
            ),
        }
    }

    fn loader(&self, model: &'static str, format: GraphFormat) -> std::result::Result<&'a dyn GraphLoader, ModelError> {
        match *self {
            Graphs::Loader(l) => Ok(l),
            Graphs::Unavailable(why) => Err(ModelError::NoGraphRuntime { model, format: format.label(), detail: why.to_owned() }),
        }
    }
}

fn source<'b>(format: GraphFormat, bytes: &'b [u8], m: &Manifest) -> GraphSource<'b> {
    GraphSource {
        format,
        bytes,
        input: m.model.inputs.first().map(|t| t.name.clone()),
        output: m.model.outputs.first().map(|t| t.name.clone()),
    }
}

/// Models gathered while initialising, with why each slot is empty when it is: the config's
/// bundles, added one at a time, then the inline models when the client is built.
#[derive(Default)]
pub struct Models {
    pub(super) recommender: Option<Recommender>,
    pub(super) intent: Option<IntentModel>,
    pub(super) catalog: Option<Vec<CatalogItem>>,
    pub(super) recommender_error: Option<(String, &'static str)>,
    pub(super) intent_error: Option<(String, &'static str)>,
    pub(super) bundle_error: Option<(String, &'static str)>,
    /// The key bundles are verified with (the config's `publicKey`).
    pub(super) key: Option<bundle::PublicKey>,
    /// Bundles added so far, and which of them were refused (by index).
    added: usize,
    pub(super) refused: Vec<usize>,
    pub(super) warnings: Vec<String>,
}

impl Models {
    /// Nothing loaded yet; bundles will be verified with the config's `publicKey`.
    pub fn for_config(config: &Config) -> Result<Models> {
        let key = match config.public_key.as_deref() {
            Some(text) => Some(bundle::parse_public_key(text).map_err(|e| Error::option("publicKey", e.to_string()))?),
            None => None,
        };
        Ok(Models { key, ..Models::default() })
    }

    /// Verifies a bundle and loads its model; a refused bundle is a warning, the status of the
    /// slot it was meant for, and an index in `refused_bundles()`, never an error.
    pub fn add_bundle(&mut self, bytes: Vec<u8>, graphs: Graphs) {
        let verified = self.open(bytes).and_then(|b| Ok(b.hash_parts_here()?));
        self.add(verified, graphs);
    }

    /// Checks a bundle's structure and signature with the config's key; the parts' hashes are
    /// left to the caller ([`Unhashed::hash_parts_here`], or the browser's own SHA-256). Its
    /// manifest then says whether the model is a graph, before anything is built.
    pub fn open(&self, bytes: Vec<u8>) -> Result<Unhashed> {
        Ok(Bundle::open(bytes, self.key.as_ref())?)
    }

    /// The second step of [`open`](Self::open), after [`Bundle::read`]: the signature, with the
    /// config's key.
    pub fn check(&self, read: Unverified) -> Result<Unhashed> {
        Ok(read.check(self.key.as_ref())?)
    }

    /// The config's key, which bundles must be signed with.
    pub fn key(&self) -> Option<&bundle::PublicKey> {
        self.key.as_ref()
    }

    /// Loads the model of a verified bundle, or records why it was refused, as
    /// [`add_bundle`](Self::add_bundle) does.
    pub fn add(&mut self, verified: Result<Bundle>, graphs: Graphs) {
        let i = self.added;
        self.added += 1;
        if let Err(e) = verified.and_then(|bundle| self.load_bundle(&bundle, graphs)) {
            self.warnings.push(format!("bundle {i} refused, using the popularity fallback: {e}"));
            self.bundle_error.get_or_insert((e.to_string(), e.code()));
            self.refused.push(i);
        }
    }

    /// Loads a verified bundle's model into the slot its manifest names.
    fn load_bundle(&mut self, bundle: &Bundle, graphs: Graphs) -> Result<()> {
        let m = &bundle.manifest;
        let model_bytes = bundle.model_bytes()?;
        match m.kind {
            ModelKind::Recommender => {
                let n = m.items.len();
                let tower = match &m.embeddings {
                    Some(e) if e.rows != n => {
                        return Err(BundleError::Manifest(format!("{} item embeddings for {n} items in the manifest", e.rows)).into())
                    }
                    Some(e) => Some(ItemMatrix::from_bundle(e, bundle)?),
                    None => None,
                };
                let model = match graph_format(m.model.format) {
                    Some(format) => {
                        let width = tower.as_ref().map_or(Width::Items(n), |t| Width::Embedding(t.dims()));
                        let kind = RecommenderModel::KIND;
                        let runner = graphs.loader(kind, format)?.recommender(&source(format, model_bytes, m), width)?;
                        RecommenderModel::from_graph(runner, n, tower)?
                    }
                    // Kernel formats never carry embeddings (refused when the bundle was parsed).
                    None => RecommenderModel::from_kernel_bundle(m, model_bytes)?,
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
                    ModelFormat::Linear | ModelFormat::Trees => {
                        let model = TabularModel::from_bytes(model_bytes)?;
                        if model.n_features() != ours.len() {
                            return Err(BundleError::Manifest(format!(
                                "the intent model reads {} features, the manifest names {}",
                                model.n_features(),
                                ours.len()
                            ))
                            .into());
                        }
                        IntentModel::from_tabular(model, spec.positive_index)?
                    }
                    f => match graph_format(f) {
                        Some(format) => {
                            let runner = graphs.loader(IntentModel::KIND, format)?.intent(&source(format, model_bytes, m), ours.len())?;
                            IntentModel::from_graph(runner, ours.len(), spec.positive_index)?
                        }
                        None => return Err(BundleError::Manifest(format!("an intent model cannot be in the {f:?} format")).into()),
                    },
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
        graphs: Graphs,
        warnings: &mut Vec<String>,
    ) {
        if let Some(rc) = recommender {
            let result = if catalog_len == 0 {
                Err(Error::option("catalog", "is empty; the recommender needs the catalog as its item vocabulary"))
            } else {
                let source =
                    GraphSource { format: GraphFormat::Onnx, bytes: &rc.model, input: rc.input.clone(), output: rc.output.clone() };
                graphs
                    .loader(RecommenderModel::KIND, GraphFormat::Onnx)
                    .and_then(|l| l.recommender(&source, Width::Items(catalog_len)))
                    .and_then(|runner| RecommenderModel::from_graph(runner, catalog_len, None))
                    .map_err(Error::from)
            };
            match result {
                Ok(model) => {
                    // graph models keep no session state, so the id only has to name the source.
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
            let n = INTENT_FEATURES.len();
            let source = GraphSource { format: GraphFormat::Onnx, bytes: &ic.model, input: ic.input.clone(), output: ic.output.clone() };
            let loaded = graphs
                .loader(IntentModel::KIND, GraphFormat::Onnx)
                .and_then(|l| l.intent(&source, n))
                .and_then(|runner| IntentModel::from_graph(runner, n, ic.positive_index));
            match loaded {
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

impl<S: Storage, C: Clock> Client<S, C> {
    /// Swaps in a newer bundle (a background revalidation found one): it is verified with the
    /// init's public key and its model fully built first, and only then replaces the slot its
    /// manifest names, with the catalog and the rules compiled for it. On any error nothing
    /// changes: the model in use stays, which is what a cache rolls back to.
    pub fn replace_bundle(&mut self, bytes: Vec<u8>, graphs: Graphs) -> Result<ModelKind> {
        let bundle = Bundle::parse(bytes, self.bundle_key.as_ref())?;
        self.replace_verified(&bundle, graphs)
    }

    /// The init's key, which updates must be signed with.
    pub fn bundle_key(&self) -> Option<&crate::contract::bundle::PublicKey> {
        self.bundle_key.as_ref()
    }

    /// [`replace_bundle`](Self::replace_bundle) for a bundle already verified elsewhere with
    /// [`bundle_key`](Self::bundle_key) (the browser checks the signature and hashes with
    /// WebCrypto).
    pub fn replace_verified(&mut self, bundle: &Bundle, graphs: Graphs) -> Result<ModelKind> {
        let mut loaded = Models::default();
        loaded.load_bundle(bundle, graphs)?;
        if let Some(recommender) = loaded.recommender {
            let catalog = Catalog::new(loaded.catalog.unwrap_or_default())?;
            // `rules` trades places with `plain_rules` or a placement's own only within one
            // placement's call, so it holds the shop's own here.
            let rules = CompiledRules::new(self.rules.rules.clone(), &catalog)?;
            let plain_rules = CompiledRules::new(Rules::default(), &catalog)?;
            let placement_rules = self
                .placement_rules
                .iter()
                .map(|(name, r)| Ok((*name, CompiledRules::new(r.rules.clone(), &catalog)?)))
                .collect::<Result<Vec<_>>>()?;
            self.catalog = catalog;
            self.rules = rules;
            self.plain_rules = plain_rules;
            self.placement_rules = placement_rules;
            self.recommender = Some(recommender);
            self.recommender_status = ModelStatus::Ready;
            // Both were computed with the old model and catalog indices.
            self.precompute.ready = None;
            self.tower_candidates = None;
            return Ok(ModelKind::Recommender);
        }
        let intent = loaded.intent.ok_or_else(|| BundleError::Manifest("the bundle loaded no model".into()))?;
        self.intent = Some(intent);
        self.intent_status = ModelStatus::Ready;
        Ok(ModelKind::Intent)
    }

    /// Which of the config's bundles init refused, by their index in `bundles`.
    pub fn refused_bundles(&self) -> &[usize] {
        &self.refused_bundles
    }
}

/// The graph format a bundle's model is in; `None` for the SDK's own kernel formats.
fn graph_format(f: ModelFormat) -> Option<GraphFormat> {
    match f {
        ModelFormat::Nnef => Some(GraphFormat::Nnef),
        ModelFormat::Onnx => Some(GraphFormat::Onnx),
        ModelFormat::Gru | ModelFormat::Attention | ModelFormat::Transition | ModelFormat::Linear | ModelFormat::Trees => None,
    }
}
