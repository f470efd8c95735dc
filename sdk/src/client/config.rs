//! What `init` takes: the shop's config, read by hand (`crate::json`: unknown fields refused,
//! errors name the path) and then validated by the client.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Num;
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::features::DEFAULT_MAX_SEQ_LEN;
use crate::infer::model::IntentIo;
use crate::infer::score::Preference;
use crate::json::{self, Fields, FromJson};
use crate::recommend::placement::PLACEMENTS;
use crate::recommend::rules::{CompiledRules, Rules, RulesPatch};
use crate::recommend::CatalogItem;
use crate::store::StoreConfig;
use crate::sync::SyncConfig;

/// What `init` takes.
#[derive(Debug, Clone)]
pub struct Config {
    /// The storage key of the event log (one per shop on a shared origin).
    pub storage_key: String,
    pub store: StoreConfig,
    /// The catalog, in model-index order; also the popularity fallback.
    pub catalog: Vec<CatalogItem>,
    pub recommender: Option<RecommenderConfig>,
    pub intent: Option<IntentConfig>,
    /// Model bundles (`foresight-export convert`), each loaded into the slot its manifest
    /// names. In the browser, `bundleUrl` / `bundleUrls` are downloaded into this list.
    pub bundles: Vec<serde_bytes::ByteBuf>,
    /// Base64 ed25519 public key; when set, unsigned or foreign bundles are refused.
    pub public_key: Option<String>,
    /// Record events from `data-fs-*` attributes in the page (browser only).
    pub autocapture: bool,
    /// Where privatized aggregate reports go, once the visitor consents (see docs/privacy.md).
    pub collector: Option<SyncConfig>,
    /// Whether on-device personalization needs consent too (see [`Personalization`]).
    pub personalization: Personalization,
    /// Merchandising rules every placement obeys; contradictions are an error at init.
    pub rules: Rules,
    /// Per placement (`forYou`, `similarTo`, …): rules over the shop-wide ones, so a carousel
    /// can have its own caps and diversity without reshaping the other lists.
    pub placements: BTreeMap<String, PlacementConfig>,
    /// A/B experiments, at most one per placement.
    pub experiments: Vec<Experiment>,
    /// A click, cart add or purchase of a recommended item counts for its list within this
    /// many minutes of the list being shown (and within the UTC day the report covers).
    pub attribution_window_minutes: f64,
    /// In the browser: after each `track`, compute the next `recommend` answer when the page
    /// is idle, so the call usually returns at once (default on).
    pub precompute: bool,
    /// Which path scores a visitor-tower recommender's item embeddings (bundles with item
    /// embeddings only): `auto` (measured at init), `cpu` or `gpu` (WebGPU build).
    pub scoring: Preference,
}

/// One placement's settings in the config.
#[derive(Debug, Clone, Default)]
pub struct PlacementConfig {
    pub rules: RulesPatch,
}

/// When the visitor's behaviour may be recorded and used on the device. Sending aggregates
/// always needs consent; this is about the device alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Personalization {
    /// Events are recorded and models used whatever the consent (the data never leaves).
    #[default]
    Always,
    /// Only after `consent("granted")`: until then nothing is recorded, recommendations are
    /// the popular items and `intent()` fails with code `no_consent`; denying consent erases
    /// what was recorded.
    WithConsent,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            storage_key: "foresight.events".into(),
            store: StoreConfig::default(),
            catalog: Vec::new(),
            recommender: None,
            intent: None,
            bundles: Vec::new(),
            public_key: None,
            autocapture: false,
            collector: None,
            personalization: Personalization::default(),
            rules: Rules::default(),
            placements: BTreeMap::new(),
            experiments: Vec::new(),
            attribution_window_minutes: 24.0 * 60.0,
            precompute: true,
            scoring: Preference::Auto,
        }
    }
}

/// A recommender model.
#[derive(Debug, Clone)]
pub struct RecommenderConfig {
    /// ONNX bytes. (In the browser they are taken from a `Uint8Array` before the rest of the
    /// config is parsed, hence the default.)
    pub model: Vec<u8>,
    pub input: Option<String>,
    pub output: Option<String>,
    /// How many recent items the model sees.
    pub max_seq_len: usize,
}

#[derive(Debug, Clone)]
pub struct IntentConfig {
    /// ONNX bytes. (In the browser they are taken from a `Uint8Array` before the rest of the
    /// config is parsed, hence the default.)
    pub model: Vec<u8>,
    pub input: Option<String>,
    pub output: Option<String>,
    /// Column of the positive class in a `[1, classes]` output.
    pub positive_index: usize,
}

fn default_positive_index() -> usize {
    IntentIo::default().positive_index
}

json::unit_variants!(Personalization { "always" => Personalization::Always, "with_consent" => Personalization::WithConsent });

impl FromJson for Config {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(
            v,
            &[
                "storageKey",
                "store",
                "catalog",
                "recommender",
                "intent",
                "bundles",
                "publicKey",
                "autocapture",
                "collector",
                "personalization",
                "rules",
                "placements",
                "experiments",
                "attributionWindowMinutes",
                "precompute",
                "scoring",
            ],
        )?;
        let d = Config::default();
        // Bundles are bytes: in the browser they are taken from `Uint8Array`s before the rest
        // is read; natively, arrays of numbers.
        let bundles: Vec<Vec<u8>> = f.or_default("bundles")?;
        Ok(Config {
            storage_key: f.or("storageKey", d.storage_key)?,
            store: f.or("store", d.store)?,
            catalog: f.or_default("catalog")?,
            recommender: f.opt("recommender")?,
            intent: f.opt("intent")?,
            bundles: bundles.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            public_key: f.opt("publicKey")?,
            autocapture: f.or("autocapture", d.autocapture)?,
            collector: f.opt("collector")?,
            personalization: f.or_default("personalization")?,
            rules: f.or("rules", d.rules)?,
            placements: f.or_default("placements")?,
            experiments: f.or_default("experiments")?,
            attribution_window_minutes: f.or("attributionWindowMinutes", d.attribution_window_minutes)?,
            precompute: f.or("precompute", d.precompute)?,
            scoring: f.or("scoring", d.scoring)?,
        })
    }
}

impl FromJson for PlacementConfig {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["rules"])?;
        Ok(PlacementConfig { rules: f.or_default("rules")? })
    }
}

// `model` holds the ONNX bytes natively (an array of numbers); in the browser it is taken from a
// `Uint8Array` before the rest of the config is read, hence its default.

impl FromJson for RecommenderConfig {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["model", "input", "output", "maxSeqLen"])?;
        Ok(RecommenderConfig {
            model: f.or_default("model")?,
            input: f.opt("input")?,
            output: f.opt("output")?,
            max_seq_len: f.or("maxSeqLen", DEFAULT_MAX_SEQ_LEN)?,
        })
    }
}

impl FromJson for IntentConfig {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["model", "input", "output", "positiveIndex"])?;
        Ok(IntentConfig {
            model: f.or_default("model")?,
            input: f.opt("input")?,
            output: f.opt("output")?,
            positive_index: f.or("positiveIndex", default_positive_index())?,
        })
    }
}

json::deserialize_with_reader!(Config, PlacementConfig, RecommenderConfig, IntentConfig);

impl RecommenderConfig {
    pub fn new(model: Vec<u8>) -> Self {
        RecommenderConfig { model, input: None, output: None, max_seq_len: DEFAULT_MAX_SEQ_LEN }
    }
}

impl IntentConfig {
    pub fn new(model: Vec<u8>) -> Self {
        IntentConfig { model, input: None, output: None, positive_index: default_positive_index() }
    }
}

/// Experiments are valid, one per placement and name, and fit the collector's daily ε budget
/// on top of the reports'.
pub(super) fn check_experiments(experiments: &[Experiment], collector: Option<&SyncConfig>, warnings: &mut Vec<String>) -> Result<()> {
    for (i, e) in experiments.iter().enumerate() {
        e.validate().map_err(|m| Error::option(format!("experiments[{i}]"), m))?;
        if experiments[..i].iter().any(|o| o.placement == e.placement || o.name == e.name) {
            return Err(Error::option(
                format!("experiments[{i}]"),
                format!("one experiment per placement and name: `{}` on `{}` repeats one", e.name, e.placement),
            ));
        }
    }
    if let Some(c) = collector {
        let experiments: f64 = experiments.iter().map(|e| e.epsilon).sum();
        let total = c.mechanisms.epsilon() + experiments;
        if total > c.epsilon_per_day + 1e-9 {
            return Err(Error::option(
                "experiments",
                format!(
                    "the experiments spend ε {} on top of the reports' {} = {}, over the daily budget {}: lower collector.mechanisms or raise collector.epsilonPerDay",
                    Num(experiments),
                    Num(c.mechanisms.epsilon()),
                    Num(total),
                    Num(c.epsilon_per_day)
                ),
            ));
        }
    } else if !experiments.is_empty() {
        warnings.push("experiments run without a collector: variants are assigned but nothing is measured".into());
    }
    Ok(())
}

/// Each configured placement's rules (its patch over the shop-wide `base`), compiled against
/// the catalog; a name that is not a placement is an error.
pub(super) fn placement_rules(
    placements: &BTreeMap<String, PlacementConfig>,
    base: &Rules,
    catalog: &crate::recommend::Catalog,
) -> Result<Vec<(&'static str, CompiledRules)>> {
    placements
        .iter()
        .map(|(name, p)| {
            let known = PLACEMENTS.iter().find(|k| **k == name.as_str()).ok_or_else(|| {
                Error::option(format!("placements.{name}"), format!("is not a placement; use one of {}", PLACEMENTS.join(", ")))
            })?;
            let rules = CompiledRules::new(p.rules.over(base), catalog)
                .map_err(|e| Error::option(format!("placements.{name}.rules"), e.to_string()))?;
            Ok((*known, rules))
        })
        .collect()
}
