//! The bundle's manifest: what the SDK needs to use the model inside — its kind and format,
//! input and output specs, the item catalog, the intent feature spec, the shapes of models that
//! run on the SDK's own kernels, item embeddings, parity figures and every part's hash. Defined
//! once, here; `foresight-export` writes it and the SDK reads it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Recommender,
    Intent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// tract-optimized NNEF (a tar): no ONNX parsing in the browser.
    Nnef,
    Onnx,
    /// A GRU4Rec-style recommender's weights for the SDK's own kernels (`infer::gru`): one
    /// step per new event instead of the whole sequence. Shapes in the manifest's `gru`.
    Gru,
    /// A SASRec-style attention recommender's weights for the SDK's own kernels
    /// (`infer::attention`): one position per new event, keys and values kept. Shapes in the
    /// manifest's `attention`.
    Attention,
    /// The windowed-transition recommender `foresight-export train` writes (recency-weighted
    /// recent items plus the history's mean, scored by a factor matrix and a popularity bias)
    /// for the SDK's own kernel (`infer::transition`). Parameters in the manifest's `transition`.
    Transition,
    /// An intent model that is linear (logistic regression from scikit-learn, or PyTorch's
    /// `nn.Linear` + sigmoid/softmax) in the SDK's own compact format, run by its own intent
    /// kernel (`infer::tabular`) in the core wasm: no tract, onnxruntime's arithmetic.
    Linear,
    /// An intent model that is a tree ensemble (LightGBM, XGBoost, scikit-learn gradient
    /// boosting or random forest) in the SDK's own compact format, run by its own intent kernel
    /// (`infer::tabular`) in the core wasm: no tract, onnxruntime's arithmetic.
    Trees,
}

impl ModelFormat {
    /// A recommender's weights for the SDK's own kernels rather than a graph for tract.
    pub fn is_kernels(self) -> bool {
        matches!(self, ModelFormat::Gru | ModelFormat::Attention | ModelFormat::Transition)
    }

    /// An intent model in the SDK's own compact format (`linear`, `trees`), not a graph.
    pub fn is_tabular(self) -> bool {
        matches!(self, ModelFormat::Linear | ModelFormat::Trees)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    None,
    /// Weights stored as f16, computed in f32.
    F16,
}

/// A tensor's name, element type and shape; symbolic dimensions by name (e.g. `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSection {
    /// Name of the part holding the model.
    pub part: String,
    pub format: ModelFormat,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub quantization: Quantization,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntentSection {
    pub feature_spec_version: u32,
    pub feature_names: Vec<String>,
    /// Column of the positive class in the probability output.
    pub positive_index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmbeddingSection {
    pub part: String,
    pub rows: usize,
    pub dims: usize,
    /// `f32` or `f16`, little-endian, row-major.
    pub dtype: String,
    /// Part holding one f32 (little-endian) bias per item, added to its score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartEntry {
    pub name: String,
    pub offset: u64,
    pub length: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// How closely the bundled model matches the original, measured by the converter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParityReport {
    /// What the bundle was compared with (`tract-onnx`, `onnxruntime 1.32.0`).
    pub reference: String,
    pub cases: usize,
    #[serde(deserialize_with = "finite::f32")]
    pub max_abs_delta: f32,
    /// Share of cases whose top-k (k = `top_k`) is identical, in order.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "finite::option")]
    pub top_k_agreement: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub kind: ModelKind,
    pub created_by: String,
    pub model: ModelSection,
    /// Recommenders: the item vocabulary in model-index order, with category, price and
    /// popularity (the fallback's ranking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CatalogItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingSection>,
    /// Shapes of a `gru`-format model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gru: Option<GruSpec>,
    /// Shapes of an `attention`-format model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionSpec>,
    /// Shapes and constants of a `transition`-format model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<TransitionSpec>,
    pub parts: Vec<PartEntry>,
    #[serde(default)]
    pub parity: Vec<ParityReport>,
    /// Fingerprint of the signing key, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// One item of the shop's catalog. Its position in the catalog is its model index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Any non-negative popularity measure (views, sales); orders the fallback.
    #[serde(default)]
    pub popularity: f64,
    /// Recent popularity (e.g. the last weeks' interactions); orders `trending`. Absent: the
    /// `trending` placement falls back to `popularity` and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<f64>,
    /// `false` when out of stock (merchandising rules can filter on it); absent means in stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_stock: Option<bool>,
    /// Free-form attributes for rules (`{"brand": "Acme"}`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Shapes and options of a GRU recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GruSpec {
    /// Catalog items scored by the head.
    pub items: usize,
    /// Rows of the embedding table (≥ items; extra rows are padding the SDK never feeds).
    pub embedding_rows: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    /// ONNX's `linear_before_reset` (PyTorch exports 1).
    pub linear_before_reset: bool,
}

impl GruSpec {
    /// Float counts of the weight blob, in order: embedding, W, R, B, head, bias; `None` when
    /// a count does not fit a `usize` (a crafted manifest: refused, never wrapped).
    pub(crate) fn sizes(&self) -> Option<[usize; 6]> {
        let (d, h) = (self.input_size, self.hidden_size);
        let h3 = h.checked_mul(3)?;
        Some([
            self.embedding_rows.checked_mul(d)?,
            h3.checked_mul(d)?,
            h3.checked_mul(h)?,
            h.checked_mul(6)?,
            h.checked_mul(self.items)?,
            self.items,
        ])
    }

    /// Float count of the whole blob, `None` on overflow.
    pub(crate) fn total(&self) -> Option<usize> {
        checked_sum(&self.sizes()?)
    }
}

/// The feed-forward's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x·Φ(x)` with the exact normal CDF (PyTorch's default `gelu`, ONNX `Erf`).
    GeluErf,
    /// The tanh approximation of GELU.
    GeluTanh,
    Relu,
}

/// Shapes and constants of an attention recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttentionSpec {
    /// Catalog items scored by the head.
    pub items: usize,
    /// Rows of the embedding table (≥ items; extra rows are padding the SDK never feeds).
    pub embedding_rows: usize,
    pub dim: usize,
    pub heads: usize,
    pub blocks: usize,
    /// Width of the feed-forward's hidden layer.
    pub ffn: usize,
    /// Learned positions: the longest sequence the model reads.
    pub positions: usize,
    /// The embedding is multiplied by this before the positions are added (SASRec: √dim).
    #[serde(deserialize_with = "finite::f32")]
    pub embedding_scale: f32,
    /// Attention logits are `q·k · attention_scale` (usually `1/√(dim/heads)`).
    #[serde(deserialize_with = "finite::f32")]
    pub attention_scale: f32,
    /// The LayerNorms' epsilon.
    #[serde(deserialize_with = "finite::f32")]
    pub epsilon: f32,
    pub activation: Activation,
    /// Where each block's two LayerNorms sit. Absent (bundles written before it): pre-LN.
    #[serde(default, skip_serializing_if = "NormPlacement::is_pre")]
    pub norm: NormPlacement,
    /// Whether a final LayerNorm (γ, β in the blob) precedes the head. Absent (bundles
    /// written before it): there is one.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub final_norm: bool,
}

/// Where an attention block normalizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormPlacement {
    /// `x + f(LN(x))` for the attention and the feed-forward (SASRec, GPT-2).
    #[default]
    Pre,
    /// `LN(x + f(x))` (the original Transformer, BERT).
    Post,
}

impl NormPlacement {
    fn is_pre(&self) -> bool {
        *self == NormPlacement::Pre
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl AttentionSpec {
    /// Float counts of one block, in blob order: ln1 γ, β; QKV weight [dim, 3·dim], bias;
    /// projection [dim, dim], bias; ln2 γ, β; ff1 [dim, ffn], bias; ff2 [ffn, dim], bias.
    /// Post-LN: ln1 normalizes after the attention's residual add, ln2 after the feed-forward's.
    /// `None` when a count does not fit a `usize`.
    pub(crate) fn block_sizes(&self) -> Option<[usize; 12]> {
        let (d, f) = (self.dim, self.ffn);
        let (dd, df, d3) = (d.checked_mul(d)?, d.checked_mul(f)?, d.checked_mul(3)?);
        Some([d, d, dd.checked_mul(3)?, d3, dd, d, d, d, df, f, df, d])
    }

    /// Float count of the whole blob: embedding, positions, blocks, final LayerNorm (when
    /// there is one), head [dim, items], item bias; `None` on overflow.
    pub(crate) fn total(&self) -> Option<usize> {
        let d = self.dim;
        let blocks = self.blocks.checked_mul(checked_sum(&self.block_sizes()?)?)?;
        checked_sum(&[
            self.embedding_rows.checked_mul(d)?,
            self.positions.checked_mul(d)?,
            blocks,
            if self.final_norm { d.checked_mul(2)? } else { 0 },
            d.checked_mul(self.items)?,
            self.items,
        ])
    }
}

/// Shapes and constants of a windowed-transition recommender (`infer::transition`), as the
/// bundle manifest records them: `q = Σ_p recencyWeights[p] E[x_p]` over the last
/// `recencyWeights.len()` positions (oldest first, aligned to the newest) `+ historyWeight ·
/// mean_p E[x_p]` over the whole input; `scores = q · Vᵀ + bias`, plus the repeat term when
/// `repeatWeights` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionSpec {
    /// Catalog items scored.
    pub items: usize,
    /// Width of the item factors.
    pub dim: usize,
    /// Weights of the recent window, oldest first (the newest position gets the last).
    #[serde(deserialize_with = "finite::vec")]
    pub recency_weights: Vec<f32>,
    /// Weight of the whole input's mean factor.
    #[serde(deserialize_with = "finite::f32")]
    pub history_weight: f32,
    /// The repeat term, oldest first, aligned to the newest position like `recencyWeights`: each
    /// of the last `repeatWeights.len()` input items adds its weight to its own score. In a
    /// shop, what a visitor bought is what they buy next; empty (absent) in models without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "finite::vec")]
    pub repeat_weights: Vec<f32>,
}

impl TransitionSpec {
    /// Float counts of the weight blob, in order: item factors `E` [items, dim], candidate
    /// factors `Vᵀ` [dim, items], bias [items]; `None` when a count does not fit a `usize`.
    pub(crate) fn sizes(&self) -> Option<[usize; 3]> {
        let n = self.items.checked_mul(self.dim)?;
        Some([n, n, self.items])
    }

    /// Float count of the whole blob, `None` on overflow.
    pub(crate) fn total(&self) -> Option<usize> {
        checked_sum(&self.sizes()?)
    }
}

/// Floats a manifest may hold only finite: JSON has no infinity, so serde reads a number past
/// f32's range as one, and writing the manifest back would give `null`, which no reader takes.
mod finite {
    use serde::de::{Deserialize, Deserializer, Error};

    fn check<E: Error>(x: f32) -> Result<f32, E> {
        if x.is_finite() {
            Ok(x)
        } else {
            Err(E::custom(format!("{x} is not a finite 32-bit float")))
        }
    }

    pub fn f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        check(f32::deserialize(d)?)
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        Option::<f32>::deserialize(d)?.map(check).transpose()
    }

    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Vec::<f32>::deserialize(d)?.into_iter().map(check).collect()
    }
}

fn checked_sum(counts: &[usize]) -> Option<usize> {
    counts.iter().try_fold(0usize, |sum, &n| sum.checked_add(n))
}

#[cfg(test)]
mod tests {
    use super::Manifest;

    #[test]
    fn a_float_beyond_f32_is_refused_not_written_back_as_null() {
        // Found by the `manifest` fuzz target (tests/fuzz/corpus/manifest/): 1.19e57 read as
        // f32 infinity, which serialized as `null` and made the written bundle unreadable.
        let text = include_str!("../../../tests/fuzz/corpus/manifest/f32-overflow-written-as-null.json");
        let err = serde_json::from_str::<Manifest>(text).expect_err("refused");
        assert!(err.to_string().contains("not a finite 32-bit float"), "{err}");
        let fine = text.replace("1.1920929e57", "1.1920929e-7");
        let manifest: Manifest = serde_json::from_str(&fine).expect("the same manifest with a finite delta parses");
        let written = serde_json::to_string(&manifest).expect("serializes");
        assert_eq!(serde_json::from_str::<Manifest>(&written).expect("reads back"), manifest);
    }
}
