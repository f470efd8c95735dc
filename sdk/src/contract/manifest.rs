//! The bundle's manifest: what the SDK needs to use the model inside — its kind and format,
//! input and output specs, the item catalog, the intent feature spec, the shapes of models that
//! run on the SDK's own kernels, item embeddings, parity figures and every part's hash. Defined
//! once, here; `foresight-export` writes it and the SDK reads it.

use serde::Serialize;
use serde_json::Value;

use crate::json::{self, Fields, FromJson};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Recommender,
    Intent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    None,
    /// Weights stored as f16, computed in f32.
    F16,
}

/// A tensor's name, element type and shape; symbolic dimensions by name (e.g. `seq`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSection {
    /// Name of the part holding the model.
    pub part: String,
    pub format: ModelFormat,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub quantization: Quantization,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentSection {
    pub feature_spec_version: u32,
    pub feature_names: Vec<String>,
    /// Column of the positive class in the probability output.
    pub positive_index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddingSection {
    pub part: String,
    pub rows: usize,
    pub dims: usize,
    /// `f32` or `f16`, little-endian, row-major.
    pub dtype: String,
    /// Part holding one f32 (little-endian) bias per item, added to its score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartEntry {
    pub name: String,
    pub offset: u64,
    pub length: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// How closely the bundled model matches the original, measured by the converter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityReport {
    /// What the bundle was compared with (`tract-onnx`, `onnxruntime 1.32.0`).
    pub reference: String,
    pub cases: usize,
    pub max_abs_delta: f32,
    /// Share of cases whose top-k (k = `top_k`) is identical, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k_agreement: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format_version: u32,
    pub kind: ModelKind,
    pub created_by: String,
    pub model: ModelSection,
    /// Recommenders: the item vocabulary in model-index order, with category, price and
    /// popularity (the fallback's ranking).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CatalogItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingSection>,
    /// Shapes of a `gru`-format model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gru: Option<GruSpec>,
    /// Shapes of an `attention`-format model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionSpec>,
    /// Shapes and constants of a `transition`-format model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<TransitionSpec>,
    pub parts: Vec<PartEntry>,
    pub parity: Vec<ParityReport>,
    /// Fingerprint of the signing key, when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// One item of the shop's catalog. Its position in the catalog is its model index.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Any non-negative popularity measure (views, sales); orders the fallback.
    pub popularity: f64,
    /// Recent popularity (e.g. the last weeks' interactions); orders `trending`. Absent: the
    /// `trending` placement falls back to `popularity` and says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<f64>,
    /// `false` when out of stock (merchandising rules can filter on it); absent means in stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_stock: Option<bool>,
    /// Free-form attributes for rules (`{"brand": "Acme"}`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Shapes and options of a GRU recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x·Φ(x)` with the exact normal CDF (PyTorch's default `gelu`, ONNX `Erf`).
    GeluErf,
    /// The tanh approximation of GELU.
    GeluTanh,
    Relu,
}

/// Shapes and constants of an attention recommender, as the bundle manifest records them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    pub embedding_scale: f32,
    /// Attention logits are `q·k · attention_scale` (usually `1/√(dim/heads)`).
    pub attention_scale: f32,
    /// The LayerNorms' epsilon.
    pub epsilon: f32,
    pub activation: Activation,
    /// Where each block's two LayerNorms sit. Absent (bundles written before it): pre-LN.
    #[serde(skip_serializing_if = "NormPlacement::is_pre")]
    pub norm: NormPlacement,
    /// Whether a final LayerNorm (γ, β in the blob) precedes the head. Absent (bundles
    /// written before it): there is one.
    #[serde(skip_serializing_if = "is_true")]
    pub final_norm: bool,
}

/// Where an attention block normalizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionSpec {
    /// Catalog items scored.
    pub items: usize,
    /// Width of the item factors.
    pub dim: usize,
    /// Weights of the recent window, oldest first (the newest position gets the last).
    pub recency_weights: Vec<f32>,
    /// Weight of the whole input's mean factor.
    pub history_weight: f32,
    /// The repeat term, oldest first, aligned to the newest position like `recencyWeights`: each
    /// of the last `repeatWeights.len()` input items adds its weight to its own score. In a
    /// shop, what a visitor bought is what they buy next; empty (absent) in models without it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
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

// Reading a manifest: by hand (see `crate::json`), accepting what `foresight-export` writes and
// refusing unknown fields, so a bundle from a newer converter is refused rather than misread.

json::unit_variants!(ModelKind { "recommender" => ModelKind::Recommender, "intent" => ModelKind::Intent });

json::unit_variants!(ModelFormat {
    "nnef" => ModelFormat::Nnef,
    "onnx" => ModelFormat::Onnx,
    "gru" => ModelFormat::Gru,
    "attention" => ModelFormat::Attention,
    "transition" => ModelFormat::Transition,
    "linear" => ModelFormat::Linear,
    "trees" => ModelFormat::Trees,
});

json::unit_variants!(Quantization { "none" => Quantization::None, "f16" => Quantization::F16 });

json::unit_variants!(Activation { "gelu_erf" => Activation::GeluErf, "gelu_tanh" => Activation::GeluTanh, "relu" => Activation::Relu });

json::unit_variants!(NormPlacement { "pre" => NormPlacement::Pre, "post" => NormPlacement::Post });

impl FromJson for TensorSpec {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["name", "dtype", "shape"])?;
        Ok(TensorSpec { name: f.req("name")?, dtype: f.req("dtype")?, shape: f.req("shape")? })
    }
}

impl FromJson for ModelSection {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["part", "format", "inputs", "outputs", "quantization"])?;
        Ok(ModelSection {
            part: f.req("part")?,
            format: f.req("format")?,
            inputs: f.req("inputs")?,
            outputs: f.req("outputs")?,
            quantization: f.req("quantization")?,
        })
    }
}

impl FromJson for IntentSection {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["featureSpecVersion", "featureNames", "positiveIndex"])?;
        Ok(IntentSection {
            feature_spec_version: f.req("featureSpecVersion")?,
            feature_names: f.req("featureNames")?,
            positive_index: f.req("positiveIndex")?,
        })
    }
}

impl FromJson for EmbeddingSection {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["part", "rows", "dims", "dtype", "bias"])?;
        Ok(EmbeddingSection {
            part: f.req("part")?,
            rows: f.req("rows")?,
            dims: f.req("dims")?,
            dtype: f.req("dtype")?,
            bias: f.opt("bias")?,
        })
    }
}

impl FromJson for PartEntry {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["name", "offset", "length", "sha256"])?;
        Ok(PartEntry { name: f.req("name")?, offset: f.req("offset")?, length: f.req("length")?, sha256: f.req("sha256")? })
    }
}

impl FromJson for ParityReport {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["reference", "cases", "maxAbsDelta", "topKAgreement", "topK"])?;
        Ok(ParityReport {
            reference: f.req("reference")?,
            cases: f.req("cases")?,
            max_abs_delta: f.req("maxAbsDelta")?,
            top_k_agreement: f.opt("topKAgreement")?,
            top_k: f.opt("topK")?,
        })
    }
}

impl FromJson for Manifest {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(
            v,
            &[
                "formatVersion",
                "kind",
                "createdBy",
                "model",
                "items",
                "maxSeqLen",
                "intent",
                "embeddings",
                "gru",
                "attention",
                "transition",
                "parts",
                "parity",
                "keyId",
            ],
        )?;
        Ok(Manifest {
            format_version: f.req("formatVersion")?,
            kind: f.req("kind")?,
            created_by: f.req("createdBy")?,
            model: f.req("model")?,
            items: f.or_default("items")?,
            max_seq_len: f.opt("maxSeqLen")?,
            intent: f.opt("intent")?,
            embeddings: f.opt("embeddings")?,
            gru: f.opt("gru")?,
            attention: f.opt("attention")?,
            transition: f.opt("transition")?,
            parts: f.req("parts")?,
            parity: f.or_default("parity")?,
            key_id: f.opt("keyId")?,
        })
    }
}

impl FromJson for CatalogItem {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["id", "category", "price", "popularity", "trend", "inStock", "attributes"])?;
        Ok(CatalogItem {
            id: f.req("id")?,
            category: f.opt("category")?,
            price: f.opt("price")?,
            popularity: f.or("popularity", 0.0)?,
            trend: f.opt("trend")?,
            in_stock: f.opt("inStock")?,
            attributes: f.or_default("attributes")?,
        })
    }
}

impl FromJson for GruSpec {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["items", "embeddingRows", "inputSize", "hiddenSize", "linearBeforeReset"])?;
        Ok(GruSpec {
            items: f.req("items")?,
            embedding_rows: f.req("embeddingRows")?,
            input_size: f.req("inputSize")?,
            hidden_size: f.req("hiddenSize")?,
            linear_before_reset: f.req("linearBeforeReset")?,
        })
    }
}

impl FromJson for AttentionSpec {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(
            v,
            &[
                "items",
                "embeddingRows",
                "dim",
                "heads",
                "blocks",
                "ffn",
                "positions",
                "embeddingScale",
                "attentionScale",
                "epsilon",
                "activation",
                "norm",
                "finalNorm",
            ],
        )?;
        Ok(AttentionSpec {
            items: f.req("items")?,
            embedding_rows: f.req("embeddingRows")?,
            dim: f.req("dim")?,
            heads: f.req("heads")?,
            blocks: f.req("blocks")?,
            ffn: f.req("ffn")?,
            positions: f.req("positions")?,
            embedding_scale: f.req("embeddingScale")?,
            attention_scale: f.req("attentionScale")?,
            epsilon: f.req("epsilon")?,
            activation: f.req("activation")?,
            // Absent in bundles written before either existed: pre-LN, with a final LayerNorm.
            norm: f.or_default("norm")?,
            final_norm: f.or("finalNorm", true)?,
        })
    }
}

impl FromJson for TransitionSpec {
    fn from_json(v: &Value) -> json::Result<Self> {
        let f = Fields::of(v, &["items", "dim", "recencyWeights", "historyWeight", "repeatWeights"])?;
        Ok(TransitionSpec {
            items: f.req("items")?,
            dim: f.req("dim")?,
            recency_weights: f.req("recencyWeights")?,
            history_weight: f.req("historyWeight")?,
            repeat_weights: f.or_default("repeatWeights")?,
        })
    }
}

json::deserialize_with_reader!(
    TensorSpec,
    ModelSection,
    IntentSection,
    EmbeddingSection,
    PartEntry,
    ParityReport,
    Manifest,
    CatalogItem,
    GruSpec,
    AttentionSpec,
    TransitionSpec,
);

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
