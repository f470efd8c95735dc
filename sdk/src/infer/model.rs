//! One model API ([`RecommenderModel`], [`IntentModel`]) over the engines that run a model: the
//! SDK's own kernels (GRU, attention, tabular intent) and graphs (NNEF/ONNX) run by a
//! [`GraphRunner`]. Graph runtimes come from a [`GraphLoader`]: tract natively
//! (`infer::tract`, feature `tract`), or in the browser the tract module fetched only when a
//! bundle needs it (`web::graphs`), so the core wasm carries no graph runtime.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::infer::attention::{AttentionModel, KvCache};
use crate::infer::gru::{GruModel, SessionState, Snapshot};
use crate::infer::head::{LinearHead, TopKScratch};
use crate::infer::score::ItemMatrix;
use crate::infer::tabular::TabularModel;
use crate::infer::transition::TransitionModel;

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

/// A graph's serialization: what a [`GraphLoader`] is asked to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Nnef,
    Onnx,
}

impl GraphFormat {
    pub fn label(self) -> &'static str {
        match self {
            GraphFormat::Nnef => "tract NNEF",
            GraphFormat::Onnx => "ONNX",
        }
    }
}

/// A graph to load and the tensors to use (`None`: the model's first input/output; an intent
/// model prefers an output named `probabilities`).
#[derive(Debug, Clone)]
pub struct GraphSource<'a> {
    pub format: GraphFormat,
    pub bytes: &'a [u8],
    pub input: Option<String>,
    pub output: Option<String>,
}

/// What a recommender graph's output must be: a score per item, or a visitor vector of the
/// item embeddings' width (a tower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Width {
    Items(usize),
    Embedding(usize),
}

/// A loaded graph, its signature already checked by the loader: one output row per run.
pub trait GraphRunner {
    fn input_name(&self) -> &str;
    fn output_name(&self) -> &str;
    /// The length of the output row.
    fn output_width(&self) -> usize;
    /// A recommender: item indices (oldest first) in.
    fn run_items(&mut self, sequence: &[usize], out: &mut Vec<f32>) -> Result<(), ModelError>;
    /// An intent model: one feature vector in.
    fn run_features(&mut self, features: &[f32], out: &mut Vec<f32>) -> Result<(), ModelError>;
}

/// Reads graphs into runners; the loader checks the signature the model's role requires.
pub trait GraphLoader {
    fn recommender(&self, source: &GraphSource, width: Width) -> Result<Box<dyn GraphRunner>, ModelError>;
    fn intent(&self, source: &GraphSource, n_features: usize) -> Result<Box<dyn GraphRunner>, ModelError>;
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
        detail: "this model keeps no running state: it runs as a graph, whole sequence per call".into(),
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

/// What runs the model: a graph, or the SDK's own kernels (`infer::gru`, `infer::attention`),
/// which keep the visitor's running state; callers see one API either way. With `items`, the
/// graph is a visitor tower (sequence → vector) and the scores are its dot products with the
/// item embeddings (`crate::infer::score`, on the GPU with the `webgpu` feature).
enum Engine {
    Graph {
        runner: Box<dyn GraphRunner>,
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
    /// No running state: the whole sequence per call (a few window rows and a mean, then the
    /// head), like a graph but on the SDK's kernels.
    Transition {
        model: TransitionModel,
    },
}

impl RecommenderModel {
    pub const KIND: &'static str = "recommender";

    /// A graph recommender, its runner loaded by a [`GraphLoader`] for `n_items` items (or,
    /// with `items`, for their embeddings' width).
    pub fn from_graph(runner: Box<dyn GraphRunner>, n_items: usize, items: Option<ItemMatrix>) -> Result<Self, ModelError> {
        let want = items.as_ref().map_or(n_items, ItemMatrix::dims);
        if runner.output_width() != want {
            return Err(ModelError::Output {
                model: Self::KIND,
                name: runner.output_name().to_owned(),
                problem: format!("has {} values; expected {want}", runner.output_width()),
            });
        }
        let (input_name, output_name) = (runner.input_name().to_owned(), runner.output_name().to_owned());
        let engine = Engine::Graph { runner, items: items.map(std::sync::Arc::new) };
        Ok(RecommenderModel { engine, n_items, input_name, output_name, last_advance: None })
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

    /// A windowed-transition recommender on the SDK's kernels (bundle format `transition`).
    pub fn from_transition(model: TransitionModel) -> Self {
        let n_items = model.spec.items;
        let engine = Engine::Transition { model };
        RecommenderModel { engine, n_items, input_name: "item_seq".into(), output_name: "scores".into(), last_advance: None }
    }

    /// The windowed-transition model, when that is what runs (its query and head give the
    /// exact i16 top-k, [`LinearHead::top_k_into`]).
    pub fn transition(&self) -> Option<&TransitionModel> {
        match &self.engine {
            Engine::Transition { model } => Some(model),
            _ => None,
        }
    }

    /// A bundle's recommender on the SDK's own kernels (formats `gru`, `attention` and `transition`; the
    /// bundle's structure was checked when it was parsed).
    pub fn from_kernel_bundle(m: &crate::contract::manifest::Manifest, bytes: &[u8]) -> Result<Self, crate::Error> {
        use crate::contract::manifest::ModelFormat;
        use crate::error::BundleError;
        let (model, items) = match (m.model.format, &m.gru, &m.attention) {
            (ModelFormat::Gru, Some(spec), _) => (Self::from_gru(GruModel::from_bytes(spec.clone(), bytes)?), spec.items),
            (ModelFormat::Attention, _, Some(spec)) => (Self::from_attention(AttentionModel::from_bytes(spec.clone(), bytes)?), spec.items),
            (ModelFormat::Transition, ..) => {
                let spec =
                    m.transition.clone().ok_or_else(|| BundleError::Manifest("format transition without a transition section".into()))?;
                let items = spec.items;
                (Self::from_transition(TransitionModel::from_bytes(spec, bytes)?), items)
            }
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
            Engine::Graph { .. } | Engine::Transition { .. } => {}
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
    /// running state (a graph) refuses.
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
            Engine::Graph { .. } | Engine::Transition { .. } => return Err(no_state()),
        };
        self.last_advance = Some(done);
        Ok(done)
    }

    /// The running state's hidden vector and the head that scores it.
    fn state(&self) -> Result<(&LinearHead, &[f32]), ModelError> {
        let (head, h) = match &self.engine {
            Engine::Gru { model, session } => (model.head(), session.hidden()),
            Engine::Attention { model, cache } => (model.head(), cache.hidden()),
            Engine::Graph { .. } | Engine::Transition { .. } => return Err(no_state()),
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
            Engine::Graph { .. } | Engine::Transition { .. } => Err(no_state()),
        }
    }

    /// What the last [`advance`](Self::advance) did (`None` before one, and for graphs).
    pub fn last_advance(&self) -> Option<Advance> {
        self.last_advance
    }

    /// The items the running state has consumed (empty for models without one).
    pub fn consumed(&self) -> &[usize] {
        match &self.engine {
            Engine::Gru { session, .. } => session.consumed(),
            Engine::Attention { cache, .. } => cache.consumed(),
            Engine::Graph { .. } | Engine::Transition { .. } => &[],
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
            Engine::Transition { model } => model.scores_into(sequence, scores),
            Engine::Graph { .. } => self.scores_into(sequence, scores),
        }
    }

    /// The item embeddings of a visitor-tower model (shared: the GPU path holds them too).
    pub fn items(&self) -> Option<&std::sync::Arc<ItemMatrix>> {
        match &self.engine {
            Engine::Graph { items, .. } => items.as_ref(),
            Engine::Gru { .. } | Engine::Attention { .. } | Engine::Transition { .. } => None,
        }
    }

    /// A tower's visitor vector for the sequence, padded for [`ItemMatrix`] scoring.
    pub fn visitor_vector(&mut self, sequence: &[usize]) -> Result<Vec<f32>, ModelError> {
        let mut out = Vec::new();
        self.run_graph(sequence, &mut out)?;
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
            Engine::Transition { model } => return model.scores_into(sequence, scores),
            Engine::Attention { model, cache } => {
                let h = cache.advance(model, sequence)?;
                model.head().scores_into(h, scores);
                return Ok(());
            }
            Engine::Graph { .. } => {}
        }
        if self.items().is_some() {
            let user = self.visitor_vector(sequence)?;
            if let Some(items) = self.items() {
                items.scores_into(&user, scores);
            }
            return Ok(());
        }
        self.run_graph(sequence, scores)?;
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

    /// Runs the graph on the sequence.
    fn run_graph(&mut self, sequence: &[usize], output: &mut Vec<f32>) -> Result<(), ModelError> {
        if sequence.is_empty() {
            return Err(ModelError::Run { model: Self::KIND, detail: "the item sequence is empty".into() });
        }
        match &mut self.engine {
            Engine::Gru { .. } | Engine::Attention { .. } | Engine::Transition { .. } => {
                Err(ModelError::Run { model: Self::KIND, detail: "this model runs on the SDK's own kernels, not a graph".into() })
            }
            Engine::Graph { runner, .. } => runner.run_items(sequence, output),
        }
    }
}

/// A purchase-intent classifier: feature vector in, probability of the positive class out.
pub struct IntentModel {
    engine: IntentEngine,
    n_features: usize,
    positive_index: usize,
    output_width: usize,
    row: Vec<f32>,
}

/// A graph, or the SDK's own linear/tree kernels (`infer::tabular`, bundle formats `linear`
/// and `trees`).
enum IntentEngine {
    Graph(Box<dyn GraphRunner>),
    Tabular(TabularModel),
}

impl IntentModel {
    pub const KIND: &'static str = "intent";

    /// A graph classifier, its runner loaded by a [`GraphLoader`] for `n_features` inputs.
    pub fn from_graph(runner: Box<dyn GraphRunner>, n_features: usize, positive_index: usize) -> Result<Self, ModelError> {
        let width = runner.output_width();
        let name = runner.output_name().to_owned();
        Self::build(IntentEngine::Graph(runner), n_features, width, positive_index, name)
    }

    /// A linear model or tree ensemble on the SDK's own kernels.
    pub fn from_tabular(model: TabularModel, positive_index: usize) -> Result<Self, ModelError> {
        let (n_features, width) = (model.n_features(), model.n_outputs());
        Self::build(IntentEngine::Tabular(model), n_features, width, positive_index, "probabilities".into())
    }

    fn build(engine: IntentEngine, n_features: usize, width: usize, positive_index: usize, output: String) -> Result<Self, ModelError> {
        // A single column is the positive class's probability whatever the index says.
        let positive = if width == 1 { 0 } else { positive_index };
        if positive >= width {
            return Err(ModelError::Output {
                model: Self::KIND,
                name: output,
                problem: format!("has {width} columns; positiveIndex {positive_index} is out of range"),
            });
        }
        Ok(IntentModel { engine, n_features, positive_index: positive, output_width: width, row: vec![0.0; width] })
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
        match &mut self.engine {
            IntentEngine::Graph(runner) => runner.run_features(features, &mut self.row)?,
            IntentEngine::Tabular(model) => {
                self.row.resize(self.output_width, 0.0);
                model.predict_into(features, &mut self.row)?
            }
        }
        if self.row.len() != self.output_width {
            return Err(ModelError::Run { model: Self::KIND, detail: format!("returned {} values", self.row.len()) });
        }
        Ok(self.row[self.positive_index])
    }
}
