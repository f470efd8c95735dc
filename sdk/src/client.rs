//! The client: one visitor's SDK instance, tying capture → store → features → models →
//! recommend / intent together over an injected `Storage` and `Clock`.

use std::collections::VecDeque;

use serde::Deserialize;

use crate::capture::Event;
use crate::error::{Error, Result};
use crate::features::{self, Cart, DEFAULT_MAX_SEQ_LEN, INTENT_FEATURES};
use crate::intent::{self, IntentScore};
use crate::model::{IntentIo, IntentModel, RecommenderIo, RecommenderModel};
use crate::recommend::{self, Catalog, CatalogItem, RecommendOptions, Recommendations};
use crate::store::{AppendOutcome, Clock, EventLog, Storage, StoreConfig, StoredEvent};

/// What `init` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// The storage key of the event log (one per shop on a shared origin).
    pub storage_key: String,
    pub store: StoreConfig,
    /// The catalog, in model-index order; also the popularity fallback.
    pub catalog: Vec<CatalogItem>,
    pub recommender: Option<RecommenderConfig>,
    pub intent: Option<IntentConfig>,
    /// Record events from `data-fs-*` attributes in the page (browser only).
    pub autocapture: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            storage_key: "foresight.events".into(),
            store: StoreConfig::default(),
            catalog: Vec::new(),
            recommender: None,
            intent: None,
            autocapture: false,
        }
    }
}

/// A recommender model. (Fields are spelled out rather than flattened from `RecommenderIo`:
/// serde's flatten buffers values, which loses the `Uint8Array` → bytes path in the browser.)
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecommenderConfig {
    /// ONNX bytes. (In the browser they are taken from a `Uint8Array` before the rest of the
    /// config is parsed, hence the default.)
    #[serde(default, with = "serde_bytes")]
    pub model: Vec<u8>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// How many recent items the model sees.
    #[serde(default = "default_seq_len")]
    pub max_seq_len: usize,
}

fn default_seq_len() -> usize {
    DEFAULT_MAX_SEQ_LEN
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntentConfig {
    /// ONNX bytes. (In the browser they are taken from a `Uint8Array` before the rest of the
    /// config is parsed, hence the default.)
    #[serde(default, with = "serde_bytes")]
    pub model: Vec<u8>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// Column of the positive class in a `[1, classes]` output.
    #[serde(default = "default_positive_index")]
    pub positive_index: usize,
}

fn default_positive_index() -> usize {
    IntentIo::default().positive_index
}

impl RecommenderConfig {
    pub fn new(model: Vec<u8>) -> Self {
        RecommenderConfig { model, input: None, output: None, max_seq_len: DEFAULT_MAX_SEQ_LEN }
    }

    fn io(&self) -> RecommenderIo {
        RecommenderIo { input: self.input.clone(), output: self.output.clone() }
    }
}

impl IntentConfig {
    pub fn new(model: Vec<u8>) -> Self {
        IntentConfig { model, input: None, output: None, positive_index: default_positive_index() }
    }

    fn io(&self) -> IntentIo {
        IntentIo { input: self.input.clone(), output: self.output.clone(), positive_index: self.positive_index }
    }
}

/// Whether a model is usable.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelStatus {
    Absent,
    Ready,
    Failed { error: String, code: &'static str },
}

struct Recommender {
    model: RecommenderModel,
    max_seq_len: usize,
}

/// One visitor's SDK instance.
pub struct Client<S: Storage, C: Clock> {
    log: EventLog<S>,
    clock: C,
    catalog: Catalog,
    recommender: Option<Recommender>,
    recommender_status: ModelStatus,
    intent: Option<IntentModel>,
    intent_status: ModelStatus,
    scratch: Vec<f32>,
}

impl<S: Storage, C: Clock> Client<S, C> {
    /// Opens the visitor's log and loads the models. Only an unusable config is an error: a
    /// model that fails to load leaves the client working on the popularity fallback, and the
    /// failure is among the returned warnings and in `recommender_status()`.
    pub fn new(config: Config, storage: S, clock: C) -> Result<(Self, Vec<String>)> {
        config.store.validate()?;
        if config.storage_key.is_empty() {
            return Err(Error::option("storageKey", "must not be empty"));
        }
        let catalog = Catalog::new(config.catalog)?;
        let mut warnings = Vec::new();
        let (log, store_warnings) = EventLog::open(storage, config.storage_key, config.store, clock.now_ms());
        warnings.extend(store_warnings.iter().map(ToString::to_string));

        let (recommender, recommender_status) = match config.recommender {
            None => (None, ModelStatus::Absent),
            Some(rc) if catalog.is_empty() => {
                let _ = rc;
                let e = Error::option("catalog", "is empty; the recommender needs the catalog as its item vocabulary");
                warnings.push(format!("recommender not loaded: {e}"));
                (None, ModelStatus::Failed { error: e.to_string(), code: e.code() })
            }
            Some(rc) if rc.max_seq_len == 0 => {
                return Err(Error::option("recommender.maxSeqLen", "must be at least 1"));
            }
            Some(rc) => match RecommenderModel::load(&rc.model, &rc.io(), catalog.len()) {
                Ok(model) => (Some(Recommender { model, max_seq_len: rc.max_seq_len }), ModelStatus::Ready),
                Err(e) => {
                    warnings.push(format!("recommender not loaded, using the popularity fallback: {e}"));
                    (None, ModelStatus::Failed { error: e.to_string(), code: e.code() })
                }
            },
        };
        let (intent, intent_status) = match config.intent {
            None => (None, ModelStatus::Absent),
            Some(ic) => match IntentModel::load(&ic.model, &ic.io(), INTENT_FEATURES.len()) {
                Ok(model) => (Some(model), ModelStatus::Ready),
                Err(e) => {
                    warnings.push(format!("intent model not loaded: {e}"));
                    (None, ModelStatus::Failed { error: e.to_string(), code: e.code() })
                }
            },
        };
        let client = Client {
            log,
            clock,
            catalog,
            recommender,
            recommender_status,
            intent,
            intent_status,
            scratch: Vec::new(),
        };
        Ok((client, warnings))
    }

    /// Validates and records an event given as JSON.
    pub fn track(&mut self, event: &serde_json::Value) -> Result<AppendOutcome> {
        Ok(self.track_event(Event::from_json(event)?))
    }

    pub fn track_event(&mut self, event: Event) -> AppendOutcome {
        let now = self.clock.now_ms();
        self.log.append(event, now)
    }

    /// Top-k recommendations for the visitor now.
    pub fn recommend(&mut self, options: &RecommendOptions) -> Result<Recommendations> {
        let k = options.k()?;
        let excluded = self.excluded(&options.exclude);
        let Some(rec) = self.recommender.as_mut() else {
            let reason = match &self.recommender_status {
                ModelStatus::Failed { error, .. } => format!("the recommender failed to load: {error}"),
                _ => "no recommender model".to_owned(),
            };
            return Ok(recommend::popular(&self.catalog, k, &excluded, reason));
        };
        let seq = features::item_sequence(self.log.events(), self.catalog.vocab(), rec.max_seq_len);
        if seq.is_empty() {
            return Ok(recommend::popular(&self.catalog, k, &excluded, "no history yet".into()));
        }
        match recommend::from_model(&mut rec.model, &self.catalog, &seq, k, &excluded, &mut self.scratch) {
            Ok(recs) => Ok(recs),
            Err(e) => Ok(recommend::popular(&self.catalog, k, &excluded, format!("the recommender failed: {e}"))),
        }
    }

    /// Raw scores of every catalog item for the current history (oldest first), for parity
    /// checks and debugging. `None` when there is no model or no history.
    pub fn scores(&mut self) -> Result<Option<Vec<f32>>> {
        let Some(rec) = self.recommender.as_mut() else { return Ok(None) };
        let seq: Vec<usize> = features::item_sequence(self.log.events(), self.catalog.vocab(), rec.max_seq_len)
            .iter()
            .map(|s| s.index)
            .collect();
        if seq.is_empty() {
            return Ok(None);
        }
        let mut scores = Vec::new();
        rec.model.scores_into(&seq, &mut scores)?;
        Ok(Some(scores))
    }

    /// The purchase-intent score of the current session.
    pub fn intent(&mut self) -> Result<IntentScore> {
        let features = self.intent_features();
        let model = self.intent.as_mut().ok_or(Error::NoModel("intent"))?;
        Ok(intent::score(model, features)?)
    }

    /// The intent feature vector now, in `INTENT_FEATURES` order.
    pub fn intent_features(&self) -> Vec<f32> {
        let events: Vec<&StoredEvent> = self.log.events().iter().collect();
        features::intent_features(&events, self.clock.now_ms(), self.log.config().session_gap_ms())
    }

    /// Everything stored about the visitor, oldest first.
    pub fn history(&self) -> &VecDeque<StoredEvent> {
        self.log.events()
    }

    /// Erases the visitor's history, on the device too.
    pub fn forget(&mut self) -> Result<()> {
        Ok(self.log.forget()?)
    }

    pub fn recommender_status(&self) -> &ModelStatus {
        &self.recommender_status
    }

    pub fn intent_status(&self) -> &ModelStatus {
        &self.intent_status
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Cart contents, purchased items and the caller's list, as a mask over the catalog.
    fn excluded(&self, extra: &[String]) -> Vec<bool> {
        let mut mask = vec![false; self.catalog.len()];
        let vocab = self.catalog.vocab();
        let mut mark = |id: &str| {
            if let Some(i) = vocab.index_of(id) {
                mask[i] = true;
            }
        };
        let events = self.log.events();
        Cart::from_events(events.iter().map(|e| &e.event)).item_ids().for_each(&mut mark);
        for e in events {
            if let Event::Purchase { items, .. } = &e.event {
                items.iter().for_each(|l| mark(&l.item_id));
            }
        }
        extra.iter().for_each(|id| mark(id));
        mask
    }
}
