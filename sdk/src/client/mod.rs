//! The client: one visitor's SDK instance, tying capture → store → features → models →
//! recommend / intent together over an injected `Storage` and `Clock`.

use std::collections::VecDeque;

use serde_json::Value;

use crate::capture::Event;
use crate::contract::report::Report;
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::features::{self, Cart};
use crate::infer::gru::Snapshot;
use crate::infer::model::{IntentModel, RecommenderModel};
use crate::intent::{self, IntentScore};
use crate::json::{self, Fields, FromJson};
use crate::platform::{Clock, Randomness, Storage};
use crate::privacy::budget::{Consent, OptOutSignals};
use crate::recommend::placement::Placement;
use crate::recommend::rules::{CompiledRules, Rules};
use crate::recommend::{Catalog, RecommendOptions, Recommendation, Recommendations, Source};
use crate::store::{AppendOutcome, EventLog, StoredEvent};
use crate::sync::day::Shown;
use crate::sync::{DayInputs, Outcome, ReportText, Sync};

mod config;
mod experiments;
mod keys;
mod load;
mod place;
mod precompute;

use config::check_experiments;
pub use config::{Config, IntentConfig, Personalization, PlacementConfig, RecommenderConfig};
use keys::{Kept, Keys, OnForget};
pub use load::{Graphs, Models};
pub use place::TowerRequest;
use precompute::Precompute;

/// Whether a model is usable.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelStatus {
    Absent,
    Ready,
    Failed { error: String, code: &'static str },
}

pub(crate) struct Recommender {
    pub(crate) model: RecommenderModel,
    pub(crate) max_seq_len: usize,
    /// Identifies the weights, so a stored state is never applied to another model.
    pub(crate) model_id: String,
}

impl Recommender {
    pub(crate) fn new(model: RecommenderModel, max_seq_len: usize, model_id: String) -> Self {
        Recommender { model, max_seq_len, model_id }
    }
}

/// The stored GRU session state: which model it belongs to and the state itself.
#[derive(serde::Serialize)]
pub(crate) struct StoredState {
    pub(crate) model: String,
    pub(crate) snapshot: Snapshot,
}

/// A visitor vector and the (index, score) picks selected for it.
pub(crate) type TowerCandidates = (Vec<f32>, Vec<(usize, f32)>);

/// One visitor's SDK instance.
pub struct Client<S: Storage, C: Clock> {
    pub(crate) log: EventLog<S>,
    /// Every storage key kept about the visitor (`forget()` walks them).
    pub(crate) keys: Keys,
    clock: C,
    pub(crate) catalog: Catalog,
    pub(crate) recommender: Option<Recommender>,
    recommender_status: ModelStatus,
    intent: Option<IntentModel>,
    intent_status: ModelStatus,
    pub(crate) scratch: Vec<f32>,
    pub(crate) rules: CompiledRules,
    /// The catalog's rules-free twin, for experiment variants that turn the rules off.
    plain_rules: CompiledRules,
    /// The placements with rules of their own (`placements` in the config); each trades places
    /// with `rules` for the length of its placement's call.
    pub(crate) placement_rules: Vec<(&'static str, CompiledRules)>,
    /// Lists returned so far (the id of the next one).
    lists: u64,
    /// The next `forYou` list, computed in idle time.
    pub(crate) precompute: Precompute,
    /// Candidates for the next `forYou` of a visitor tower, selected elsewhere (the GPU) for
    /// this visitor vector; taken by that call.
    pub(crate) tower_candidates: Option<TowerCandidates>,
    scoring: crate::infer::score::Preference,
    experiments: Vec<Experiment>,
    /// The visitor's variant of each experiment (index into its variants), once assigned.
    assigned: Vec<Option<usize>>,
    window_ms: f64,
    sync: Option<Sync>,
    consent: Consent,
    /// Today's highest intent score, for the report's intent statistic.
    max_intent: Option<(String, f32)>,
    /// Items recommended today, for the report's outcome statistics (kept only with a collector).
    shown: ShownToday,
    personalization: Personalization,
    /// The key bundles are verified with, kept for bundles swapped in after init.
    bundle_key: Option<crate::contract::bundle::PublicKey>,
    /// Which of the config's bundles were refused at init (by index).
    refused_bundles: Vec<usize>,
}

/// At most this many items per placement are remembered per day (a reranked category page
/// must not crowd out the other placements' lists), and of a reranked list only its head: the
/// items a visitor sees without scrolling.
const MAX_SHOWN_PER_PLACEMENT: usize = 60;
const RERANK_SHOWN: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct ShownToday {
    day: String,
    items: Vec<Shown>,
}

impl FromJson for ShownToday {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(ShownToday { day: f.req("day")?, items: f.req("items")? })
    }
}

impl FromJson for StoredState {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::lenient(v)?;
        Ok(StoredState { model: f.req("model")?, snapshot: f.req("snapshot")? })
    }
}

json::deserialize_with_reader!(ShownToday, StoredState);

/// What the privacy panel shows.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivacyStatus {
    pub consent: Consent,
    /// Whether a report may leave now (consent, signals, a collector configured).
    pub sending: bool,
    pub global_privacy_control: bool,
    pub do_not_track: bool,
    pub epsilon_spent_today: f64,
    pub epsilon_per_day: f64,
    /// Reports waiting on the device, exactly as they will be sent.
    pub pending: Vec<ReportText>,
    /// Reports that left the device, exactly as sent (most recent last).
    pub sent: Vec<ReportText>,
}

impl<S: Storage, C: Clock> Client<S, C> {
    /// Opens the visitor's log and loads the models. Only an unusable config is an error: a
    /// model that fails to load leaves the client working on the popularity fallback, and the
    /// failure is among the returned warnings and in `recommender_status()`.
    pub fn new(config: Config, storage: S, clock: C) -> Result<(Self, Vec<String>)> {
        Self::with_graphs(config, storage, clock, Graphs::builtin())
    }

    /// As [`new`](Self::new), with graph models (NNEF/ONNX) run by `graphs`: the browser passes
    /// the tract module it fetched, or why it has none.
    pub fn with_graphs(mut config: Config, storage: S, clock: C, graphs: Graphs) -> Result<(Self, Vec<String>)> {
        let mut models = Models::for_config(&config)?;
        for bytes in std::mem::take(&mut config.bundles) {
            models.add_bundle(bytes.into_vec(), graphs);
        }
        Self::with_models(config, storage, clock, models, graphs)
    }

    /// As [`with_graphs`](Self::with_graphs), with the config's bundles already loaded into
    /// `models` (the browser loads each in its own task, so that none blocks the page for long);
    /// `config.bundles` is not read.
    pub fn with_models(config: Config, storage: S, clock: C, models: Models, graphs: Graphs) -> Result<(Self, Vec<String>)> {
        config.store.validate()?;
        if config.storage_key.is_empty() {
            return Err(Error::option("storageKey", "must not be empty"));
        }
        if config.recommender.as_ref().is_some_and(|rc| rc.max_seq_len == 0) {
            return Err(Error::option("recommender.maxSeqLen", "must be at least 1"));
        }
        let mut loaded = models;
        let mut warnings = std::mem::take(&mut loaded.warnings);
        let keys = Keys::new(config.storage_key);
        let (log, store_warnings) = EventLog::open(storage, keys.of(Kept::Log), config.store, clock.now_ms());
        warnings.extend(store_warnings.iter().map(ToString::to_string));

        // Bundles carry their own item vocabulary; the config's catalog serves models given as
        // plain ONNX, and the popularity fallback when no bundle could be loaded.
        let catalog = match loaded.catalog.take() {
            Some(items) => Catalog::new(items)?,
            None => Catalog::new(config.catalog)?,
        };
        loaded.add_inline(config.recommender, config.intent, catalog.len(), graphs, &mut warnings);
        let (recommender_status, intent_status) = loaded.statuses();
        let consent = crate::platform::read_json(log.storage(), &keys.of(Kept::Consent)).unwrap_or_default();
        let sync = match config.collector {
            Some(c) => Some(
                Sync::open(c, keys.of(Kept::Outbox), keys.of(Kept::Budget), log.storage()).map_err(|e| Error::option("collector", e))?,
            ),
            None => None,
        };
        let placement_rules = config::placement_rules(&config.placements, &config.rules, &catalog)?;
        let rules = CompiledRules::new(config.rules, &catalog)?;
        let plain_rules = CompiledRules::new(Rules::default(), &catalog)?;
        if !(config.attribution_window_minutes.is_finite() && config.attribution_window_minutes > 0.0) {
            return Err(Error::option("attributionWindowMinutes", "must be a positive number of minutes"));
        }
        check_experiments(&config.experiments, sync.as_ref().map(Sync::config), &mut warnings)?;
        let shown = crate::platform::read_json(log.storage(), &keys.of(Kept::Shown)).unwrap_or_default();
        let mut client = Client {
            sync,
            consent,
            max_intent: None,
            shown,
            personalization: config.personalization,
            log,
            keys,
            clock,
            catalog,
            recommender: loaded.recommender,
            recommender_status,
            intent: loaded.intent,
            intent_status,
            scratch: Vec::new(),
            rules,
            plain_rules,
            placement_rules,
            lists: 0,
            precompute: Precompute { enabled: config.precompute, ..Precompute::default() },
            tower_candidates: None,
            scoring: config.scoring,
            assigned: vec![None; config.experiments.len()],
            experiments: config.experiments,
            window_ms: config.attribution_window_minutes * 60_000.0,
            bundle_key: loaded.key,
            refused_bundles: loaded.refused,
        };
        client.load_assignments();
        if !client.personalizing() && !client.log.events().is_empty() {
            // Recorded under an earlier config that did not need consent.
            client.forget()?;
            warnings.push("personalization needs consent, which is not granted: the stored history was erased".into());
        }
        Ok((client, warnings))
    }

    /// Whether behaviour may be recorded and used on this device now.
    pub fn personalizing(&self) -> bool {
        self.personalization == Personalization::Always || self.consent == Consent::Granted
    }

    /// Validates and records an event given as JSON.
    pub fn track(&mut self, event: &serde_json::Value) -> Result<AppendOutcome> {
        Ok(self.track_event(Event::from_json(event)?))
    }

    /// Records an event — unless personalization waits for consent, when it is validated and
    /// dropped (`recorded: false`).
    pub fn track_event(&mut self, event: Event) -> AppendOutcome {
        if !self.personalizing() {
            return AppendOutcome { recorded: false, ..Default::default() };
        }
        let now = self.clock.now_ms();
        self.log.append(event, now)
    }

    /// Top-k recommendations for the visitor now: the `forYou` placement.
    pub fn recommend(&mut self, options: &RecommendOptions) -> Result<Recommendations> {
        self.place(&Placement::ForYou { k: options.k, exclude: options.exclude.clone() })
    }

    /// The config's `scoring` path for item embeddings.
    pub fn scoring_preference(&self) -> crate::infer::score::Preference {
        self.scoring
    }

    /// Gives a list its id and remembers what it showed (for the outcome statistics, the
    /// experiments and the `excludeRecentlyShown` rule).
    pub(crate) fn finish(
        &mut self,
        placement: &'static str,
        items: Vec<Recommendation>,
        source: Source,
        fallback: Option<String>,
    ) -> Recommendations {
        let now = self.clock.now_ms();
        self.lists += 1;
        let id = format!("{:x}-{}", now as u64, self.lists);
        let variant = self.variant_of(placement);
        let variant_name = variant.map(|(e, v)| self.experiments[e].variants[v].name.clone());
        let recs = Recommendations { items, source, fallback_reason: fallback, placement, variant: variant_name, id };
        if !self.precompute.quiet {
            self.remember_shown(&recs, variant.map(|p| p.1), now);
        }
        recs
    }

    fn remember_shown(&mut self, recs: &Recommendations, variant: Option<usize>, now: f64) {
        let wanted = self.sync.is_some()
            || self.rules.rules.exclude_recently_shown
            || self.placement_rules.iter().any(|(_, r)| r.rules.exclude_recently_shown);
        if !wanted || !self.personalizing() {
            return;
        }
        let day = crate::privacy::budget::utc_day(now);
        if self.shown.day != day {
            self.shown = ShownToday { day, items: Vec::new() };
        }
        let before = self.shown.items.len();
        let head = if recs.placement == "rerank" { RERANK_SHOWN } else { recs.items.len() };
        let mut mine = self.shown.items.iter().filter(|s| s.placement == recs.placement).count();
        for r in recs.items.iter().take(head) {
            let known = self.shown.items.iter().any(|s| s.item == r.item_id && s.placement == recs.placement);
            if mine < MAX_SHOWN_PER_PLACEMENT && !known {
                mine += 1;
                self.shown.items.push(Shown { item: r.item_id.clone(), at: now, placement: recs.placement.to_owned(), variant });
            }
        }
        if self.shown.items.len() != before {
            // Losing this record only loses an outcome statistic; recommendations go on.
            if let Ok(text) = serde_json::to_string(&self.shown) {
                let _ = self.log.storage_mut().set(&self.keys.of(Kept::Shown), &text);
            }
        }
    }

    pub(crate) fn no_model_reason(&self) -> String {
        match &self.recommender_status {
            ModelStatus::Failed { error, .. } => format!("the recommender failed to load: {error}"),
            _ => "no recommender model".to_owned(),
        }
    }

    /// Raw scores of every catalog item for the current history (oldest first), for parity
    /// checks and debugging. `None` when there is no model or no history.
    pub fn scores(&mut self) -> Result<Option<Vec<f32>>> {
        let Some(rec) = self.recommender.as_mut() else { return Ok(None) };
        let seq: Vec<usize> =
            features::item_sequence(self.log.events(), self.catalog.vocab(), rec.max_seq_len).iter().map(|s| s.index).collect();
        if seq.is_empty() {
            return Ok(None);
        }
        let mut scores = Vec::new();
        rec.model.scores_into(&seq, &mut scores)?;
        Ok(Some(scores))
    }

    /// The purchase-intent score of the current session.
    pub fn intent(&mut self) -> Result<IntentScore> {
        if !self.personalizing() {
            return Err(crate::error::ErrorKind::NoConsent.into());
        }
        let features = self.intent_features();
        let model = self.intent.as_mut().ok_or(Error::no_model("intent"))?;
        let score = intent::score(model, features)?;
        let day = crate::privacy::budget::utc_day(self.clock.now_ms());
        let best = match self.max_intent.take() {
            Some((d, p)) if d == day => p.max(score.probability),
            _ => score.probability,
        };
        self.max_intent = Some((day, best));
        Ok(score)
    }

    /// Records the visitor's choice about sending aggregates; kept on the device.
    pub fn set_consent(&mut self, consent: Consent) -> Result<()> {
        self.consent = consent;
        let text = serde_json::to_string(&consent).map_err(|e| Error::option("consent", e.to_string()))?;
        self.log.storage_mut().set(&self.keys.of(Kept::Consent), &text)?;
        if consent == Consent::Denied && self.personalization == Personalization::WithConsent {
            self.forget()?;
        }
        Ok(())
    }

    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// Builds today's report if everything allows it (see `Sync::maybe_report`).
    pub fn prepare_report(&mut self, signals: OptOutSignals, rng: &mut impl Randomness) -> Option<Report> {
        let now = self.clock.now_ms();
        let day = crate::privacy::budget::utc_day(now);
        let max_intent = self.max_intent.as_ref().filter(|(d, _)| *d == day).map(|(_, p)| *p);
        let shown: &[Shown] = if self.shown.day == day { &self.shown.items } else { &[] };
        let todays: Vec<&StoredEvent> = self.log.events().iter().filter(|e| crate::privacy::budget::utc_day(e.at) == day).collect();
        let experiments = self
            .experiments
            .iter()
            .zip(&self.assigned)
            .filter_map(|(e, a)| {
                let v = (*a)?;
                let mine: Vec<&Shown> = shown.iter().filter(|s| s.placement == e.placement && s.variant == Some(v)).collect();
                let stage = crate::sync::day::stage_reached(todays.iter().copied(), &mine, self.window_ms);
                Some((e.name.clone(), e.mechanism(), crate::experiment::encode_value(v, stage)))
            })
            .collect();
        let inputs = DayInputs { max_intent, shown, experiments };
        let sync = self.sync.as_mut()?;
        let (events, storage) = self.log.events_and_storage();
        let events: Vec<&StoredEvent> = events.iter().collect();
        sync.maybe_report(storage, self.consent, signals, &events, inputs, now, rng)
    }

    /// The body and URL of the reports due now, with their keys for `settle_reports`.
    pub fn due_reports(&self) -> Option<(Vec<String>, String, String)> {
        let sync = self.sync.as_ref()?;
        let (keys, body) = sync.due(self.clock.now_ms())?;
        Some((keys, body, sync.config().endpoint()))
    }

    pub fn settle_reports(&mut self, keys: &[String], outcome: Outcome, rng: &mut impl Randomness) {
        let now = self.clock.now_ms();
        if let Some(sync) = self.sync.as_mut() {
            sync.settle(self.log.storage_mut(), keys, outcome, now, rng);
        }
    }

    pub fn privacy_status(&self, signals: OptOutSignals) -> PrivacyStatus {
        let now = self.clock.now_ms();
        let (spent, per_day, pending, sent, honour) = match &self.sync {
            Some(s) => (
                s.epsilon_spent(self.log.storage(), now),
                s.config().epsilon_per_day,
                s.pending().iter().map(|p| p.report.clone()).collect(),
                s.sent().to_vec(),
                s.config().honour_opt_out_signals,
            ),
            None => (0.0, 0.0, Vec::new(), Vec::new(), true),
        };
        PrivacyStatus {
            consent: self.consent,
            sending: self.sync.is_some() && crate::privacy::budget::may_send(self.consent, signals, honour),
            global_privacy_control: signals.global_privacy_control,
            do_not_track: signals.do_not_track,
            epsilon_spent_today: spent,
            epsilon_per_day: per_day,
            pending,
            sent,
        }
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
        self.max_intent = None;
        if let Some(r) = self.recommender.as_mut() {
            r.model.reset_state();
        }
        self.shown = ShownToday::default();
        // Experiment variants too: erasing means everything kept about the visitor (a new
        // variant is drawn at the next start).
        self.assigned.iter_mut().for_each(|a| *a = None);
        for kept in Kept::ALL {
            match (kept.on_forget(), kept) {
                (OnForget::Erase, Kept::Log) => self.log.forget()?,
                (OnForget::Erase, _) => self.log.storage_mut().remove(&self.keys.of(kept))?,
                (OnForget::Rewrite, _) => {
                    if let Some(sync) = self.sync.as_mut() {
                        sync.forget(self.log.storage_mut());
                    }
                }
                (OnForget::Keep, _) => {}
            }
        }
        Ok(())
    }

    /// Records why no recommender is loaded when a bundle could not even be fetched (the
    /// browser layer downloads before the client exists).
    pub fn note_bundle_failure(&mut self, error: String, code: &'static str) {
        if self.recommender.is_none() && !matches!(self.recommender_status, ModelStatus::Failed { .. }) {
            self.recommender_status = ModelStatus::Failed { error, code };
        }
    }

    /// For a GRU on the SDK's kernels: the steps the last `forYou` took and whether it had to
    /// start over (`None` for other models).
    pub fn session_steps(&self) -> Option<(usize, bool)> {
        let r = self.recommender.as_ref()?;
        r.model.reads_whole_history().then(|| r.model.last_advance()).flatten().map(|a| (a.steps, a.rebuilt))
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

    /// The storage, as it holds the visitor's records now.
    pub fn storage(&self) -> &S {
        self.log.storage()
    }

    /// The storage back, e.g. to reopen the same visitor as after a reload.
    pub fn into_storage(self) -> S {
        self.log.into_storage()
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// What the rules exclude for this visitor (cart, purchases, already shown today) and the
    /// caller's list, as a mask over the catalog.
    pub(crate) fn excluded(&self, extra: &[String]) -> Vec<bool> {
        let mut mask = self.excluded_by_caller(extra);
        let vocab = self.catalog.vocab();
        let mut mark = |id: &str| {
            if let Some(i) = vocab.index_of(id) {
                mask[i] = true;
            }
        };
        let events = self.log.events();
        if self.rules.rules.exclude_cart {
            Cart::from_events(events.iter().map(|e| &e.event)).item_ids().for_each(&mut mark);
        }
        if self.rules.rules.exclude_purchased {
            for e in events {
                if let Event::Purchase { items, .. } = &e.event {
                    items.iter().for_each(|l| mark(&l.item_id));
                }
            }
        }
        if self.rules.rules.exclude_recently_shown && self.shown.day == crate::privacy::budget::utc_day(self.clock.now_ms()) {
            self.shown.items.iter().for_each(|s| mark(&s.item));
        }
        mask
    }

    pub(crate) fn excluded_by_caller(&self, extra: &[String]) -> Vec<bool> {
        let mut mask = vec![false; self.catalog.len()];
        for id in extra {
            if let Some(i) = self.catalog.vocab().index_of(id) {
                mask[i] = true;
            }
        }
        mask
    }
}
