//! Purchase-intent models that are linear models or tree ensembles, run by the SDK itself —
//! no tract, no ONNX parsing in the browser. `foresight-export convert --kind intent` recognises
//! them in ONNX (`import::tabular`: scikit-learn, LightGBM, XGBoost and PyTorch exports)
//! and stores them in the compact format below (bundle formats `linear` and `trees`).
//!
//! The arithmetic is onnxruntime's, so the probabilities match it: float32 throughout,
//! thresholds compared as float32, the ONNX-ML `post_transform`s with onnxruntime's formulas
//! (its logistic, softmax, "softmax zero" and approximate probit), and its conventions where the
//! ONNX-ML spec is vague — a binary classifier with one score column gets two (`[1 − s, s]`, or
//! `[σ(−s), σ(s)]` for a logistic tree ensemble), a target no reached leaf scores reads 0, and
//! base values are added the way its tree aggregators add them.
//!
//! Format (little-endian; every count is checked against the bytes left before anything is
//! allocated, every index against what it points into, and tree children must come after their
//! parent, so a crafted file can neither panic nor loop):
//!
//! ```text
//! "FTAB" · version u32 (1) · kind u8 (1 linear, 2 trees) · features u32 · outputs u32
//!         · normalizer u8 (0 none, 1 L1, 2 L2, 3 max: ONNX-ML `Normalizer` on the outputs)
//! linear: rows u32 · output u8 (transform 0..4; 5 = [1 − s, s], 6 = [1 − σ(s), σ(s)]) · coefficients f32 [rows × features] · intercepts f32 [rows]
//! trees:  role u8 (0 regressor, 1 classifier) · aggregate u8 (0 sum, 1 average, 2 min, 3 max)
//!         · transform u8 · flags u8 (classifier: 1 binary case, 2 all weights ≥ 0)
//!         · targets u32 · base values (u32 count, f32 each) · roots (u32 count, u32 each)
//!         · nodes (u32 count; each: mode u8 (| 16 when NaN goes the true way), then
//!           branch: feature u32, threshold f32, true child u32, false child u32 — leaf: first weight u32, weights u32)
//!         · weights (u32 count; each: target u32, value f32)
//! ```
//!
//! Transforms: 0 none, 1 logistic, 2 softmax, 3 softmax zero, 4 probit.

use crate::error::ModelError;

const MODEL: &str = "intent";
pub const MAGIC: &[u8; 4] = b"FTAB";
pub const VERSION: u32 = 1;
/// Far beyond any intent model; only there so a crafted header cannot ask for absurd work.
const MAX_FEATURES: usize = 1 << 20;
const MAX_OUTPUTS: usize = 1 << 16;

/// Which of the SDK's intent kernels a [`TabularModel`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabularKind {
    Linear,
    Trees,
}

impl TabularKind {
    /// The bundle format's name: `linear` or `trees`.
    pub fn as_str(self) -> &'static str {
        match self {
            TabularKind::Linear => "linear",
            TabularKind::Trees => "trees",
        }
    }
}

/// ONNX-ML's `post_transform`, with onnxruntime's formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    /// Softmax over the non-zero scores; zero scores stay zero.
    SoftmaxZero,
    /// onnxruntime's approximate probit (`√2 · erfinv(2x − 1)`, Winitzki's erfinv).
    Probit,
}

impl PostTransform {
    fn code(self) -> u8 {
        match self {
            PostTransform::None => 0,
            PostTransform::Logistic => 1,
            PostTransform::Softmax => 2,
            PostTransform::SoftmaxZero => 3,
            PostTransform::Probit => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => PostTransform::None,
            1 => PostTransform::Logistic,
            2 => PostTransform::Softmax,
            3 => PostTransform::SoftmaxZero,
            4 => PostTransform::Probit,
            _ => return None,
        })
    }

    /// Applies the transform to a whole score vector (element-wise, or over it for softmax).
    fn apply(self, v: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
            PostTransform::Probit => v.iter_mut().for_each(|x| *x = probit(*x)),
            PostTransform::Softmax => softmax(v),
            PostTransform::SoftmaxZero => softmax_zero(v),
        }
    }
}

/// What a linear model's outputs are, from its rows of scores `s = W·x + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearOutput {
    /// One output per row, through the transform.
    Scores(PostTransform),
    /// One row, two outputs `[1 − s, s]`: onnxruntime's binary `LinearClassifier` with a single
    /// coefficient row and `post_transform` NONE, SOFTMAX or SOFTMAX_ZERO.
    Complement,
    /// One row, two outputs `[1 − σ(s), σ(s)]`: the same with `post_transform` LOGISTIC.
    LogisticComplement,
}

/// A linear (or logistic) model: `rows × features` coefficients, one intercept per row.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub n_features: usize,
    /// Row-major, one row of `n_features` per score.
    pub coefficients: Vec<f32>,
    pub intercepts: Vec<f32>,
    pub output: LinearOutput,
}

/// How a tree ensemble combines its trees' leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// A regressor's aggregation, or a classifier (which always sums) with what onnxruntime derives
/// from its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeRole {
    Regressor(Aggregate),
    Classifier {
        /// Two classes, and every weight is for the same one: one score column, the other
        /// derived (`[1 − s, s]`, or `[σ(−s), σ(s)]` / `[−s, s]` when weights can be negative).
        binary_case: bool,
        weights_all_positive: bool,
    },
}

/// A split's comparison of the feature value `x` with the threshold `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `x <= t` goes to the true child.
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl Split {
    fn code(self) -> u8 {
        match self {
            Split::Leq => 2,
            Split::Lt => 4,
            Split::Gte => 6,
            Split::Gt => 8,
            Split::Eq => 10,
            Split::Neq => 12,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            2 => Split::Leq,
            4 => Split::Lt,
            6 => Split::Gte,
            8 => Split::Gt,
            10 => Split::Eq,
            12 => Split::Neq,
            _ => return None,
        })
    }

    /// As onnxruntime compares: float32, so a NaN goes the false way except for `Neq`.
    #[inline]
    fn holds(self, x: f32, t: f32) -> bool {
        match self {
            Split::Leq => x <= t,
            Split::Lt => x < t,
            Split::Gte => x >= t,
            Split::Gt => x > t,
            Split::Eq => x == t,
            Split::Neq => x != t,
        }
    }
}

const LEAF_CODE: u8 = 1;
const MISSING_TRUE: u8 = 16;

/// A node of the ensemble's node table. Children are indices into it, always after their parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeNode {
    Branch {
        feature: u32,
        split: Split,
        threshold: f32,
        missing_true: bool,
        if_true: u32,
        if_false: u32,
    },
    /// `count` weights from `first` in the weight table.
    Leaf {
        first: u32,
        count: u32,
    },
}

/// One leaf weight: `value` added to (or min/maxed into) output `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeafWeight {
    pub target: u32,
    pub value: f32,
}

/// A tree ensemble (ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor`).
#[derive(Debug, Clone, PartialEq)]
pub struct TreesModel {
    pub n_features: usize,
    /// Regressor targets, or classifier classes.
    pub n_targets: usize,
    pub role: TreeRole,
    pub post: PostTransform,
    pub base_values: Vec<f32>,
    /// The root node of each tree, in evaluation order.
    pub roots: Vec<u32>,
    pub nodes: Vec<TreeNode>,
    pub weights: Vec<LeafWeight>,
}

/// ONNX-ML's `Normalizer` (skl2onnx puts one after a multi-class logistic regression), with
/// onnxruntime's arithmetic; a zero norm leaves the values as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    None,
    /// Divide by the sum of absolute values.
    L1,
    /// Divide by the Euclidean norm.
    L2,
    /// Divide by the largest value.
    Max,
}

impl Normalize {
    fn apply(self, v: &mut [f32]) {
        match self {
            Normalize::None => {}
            Normalize::Max => {
                let max = v.iter().fold(f32::MIN, |m, &x| m.max(x));
                if max != 0.0 {
                    v.iter_mut().for_each(|x| *x /= max);
                }
            }
            Normalize::L1 => {
                let sum: f32 = v.iter().map(|x| x.abs()).sum();
                if sum != 0.0 {
                    v.iter_mut().for_each(|x| *x /= sum);
                }
            }
            Normalize::L2 => {
                let sum: f32 = v.iter().map(|x| x * x).sum();
                if sum != 0.0 {
                    v.iter_mut().for_each(|x| *x = if *x < 0.0 { -(*x * *x / sum).sqrt() } else { (*x * *x / sum).sqrt() });
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Linear(LinearModel),
    Trees(TreesModel),
}

/// A linear model or tree ensemble, validated, ready to score feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularModel {
    n_features: usize,
    n_outputs: usize,
    body: Body,
    normalize: Normalize,
}

fn parse_err(format: &'static str, detail: impl Into<String>) -> ModelError {
    ModelError::Parse { model: MODEL, format, detail: detail.into() }
}

impl TabularModel {
    /// A linear model, checked: coefficient and intercept counts, the output convention.
    pub fn from_linear(m: LinearModel) -> Result<Self, ModelError> {
        let bad = |d: String| parse_err("linear", d);
        if m.n_features == 0 || m.n_features > MAX_FEATURES {
            return Err(bad(format!("{} features", m.n_features)));
        }
        let rows = m.intercepts.len();
        if rows == 0 || rows > MAX_OUTPUTS {
            return Err(bad(format!("{rows} score rows")));
        }
        if rows.checked_mul(m.n_features) != Some(m.coefficients.len()) {
            return Err(bad(format!("{} coefficients for {rows} rows of {} features", m.coefficients.len(), m.n_features)));
        }
        let n_outputs = match m.output {
            LinearOutput::Scores(_) => rows,
            LinearOutput::Complement | LinearOutput::LogisticComplement if rows == 1 => 2,
            LinearOutput::Complement | LinearOutput::LogisticComplement => {
                return Err(bad(format!("the [1 − s, s] output needs one score row, not {rows}")))
            }
        };
        Ok(TabularModel { n_features: m.n_features, n_outputs, body: Body::Linear(m), normalize: Normalize::None })
    }

    /// A tree ensemble, checked: every index in range, children after parents, leaves with
    /// weights, base values and transform as onnxruntime accepts them for this role.
    pub fn from_trees(m: TreesModel) -> Result<Self, ModelError> {
        let bad = |d: String| parse_err("trees", d);
        if m.n_features == 0 || m.n_features > MAX_FEATURES {
            return Err(bad(format!("{} features", m.n_features)));
        }
        let n = m.n_targets;
        if n == 0 || n > MAX_OUTPUTS {
            return Err(bad(format!("{n} targets")));
        }
        match m.role {
            TreeRole::Classifier { binary_case, .. } => {
                if n < 2 {
                    return Err(bad("a classifier needs at least 2 classes".into()));
                }
                if binary_case && n != 2 {
                    return Err(bad(format!("the binary case with {n} classes")));
                }
                if !(m.base_values.is_empty() || m.base_values.len() == n || (n == 2 && m.base_values.len() == 1)) {
                    return Err(bad(format!("{} base values for {n} classes", m.base_values.len())));
                }
            }
            TreeRole::Regressor(_) => {
                if !(m.base_values.is_empty() || m.base_values.len() == 1 || m.base_values.len() == n) {
                    return Err(bad(format!("{} base values for {n} targets", m.base_values.len())));
                }
            }
        }
        if m.roots.is_empty() {
            return Err(bad("no trees".into()));
        }
        let n_nodes = m.nodes.len();
        if n_nodes > u32::MAX as usize || m.weights.len() > u32::MAX as usize {
            return Err(bad("too many nodes or weights".into()));
        }
        for (i, &r) in m.roots.iter().enumerate() {
            if r as usize >= n_nodes {
                return Err(bad(format!("tree {i}'s root {r} is outside the {n_nodes} nodes")));
            }
        }
        for (i, node) in m.nodes.iter().enumerate() {
            match *node {
                TreeNode::Branch { feature, if_true, if_false, .. } => {
                    if feature as usize >= m.n_features {
                        return Err(bad(format!("node {i} reads feature {feature} of {}", m.n_features)));
                    }
                    for child in [if_true, if_false] {
                        if child as usize <= i || child as usize >= n_nodes {
                            return Err(bad(format!("node {i}'s child {child} is not a later node (of {n_nodes}): trees must not loop")));
                        }
                    }
                }
                TreeNode::Leaf { first, count } => {
                    let end = (first as usize).checked_add(count as usize);
                    if count == 0 || end.is_none_or(|e| e > m.weights.len()) {
                        return Err(bad(format!("leaf {i}'s weights {first}+{count} are not in the {} weights", m.weights.len())));
                    }
                }
            }
        }
        if let Some(w) = m.weights.iter().find(|w| w.target as usize >= n) {
            return Err(bad(format!("a weight is for target {} of {n}", w.target)));
        }
        let n_outputs = n;
        Ok(TabularModel { n_features: m.n_features, n_outputs, body: Body::Trees(m), normalize: Normalize::None })
    }

    /// The same model with a `Normalizer` applied to its outputs.
    pub fn with_normalizer(mut self, normalize: Normalize) -> Self {
        self.normalize = normalize;
        self
    }

    pub fn normalizer(&self) -> Normalize {
        self.normalize
    }

    pub fn kind(&self) -> TabularKind {
        match self.body {
            Body::Linear(_) => TabularKind::Linear,
            Body::Trees(_) => TabularKind::Trees,
        }
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Values `predict_into` writes: onnxruntime's probability (or score) columns.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn linear(&self) -> Option<&LinearModel> {
        match &self.body {
            Body::Linear(m) => Some(m),
            Body::Trees(_) => None,
        }
    }

    pub fn trees(&self) -> Option<&TreesModel> {
        match &self.body {
            Body::Trees(m) => Some(m),
            Body::Linear(_) => None,
        }
    }

    /// Every output column for one feature vector, as onnxruntime's probability (classifier) or
    /// prediction (regressor) output gives it. A column onnxruntime leaves unset (a probit binary
    /// classifier's second) is NaN.
    pub fn predict_into(&self, features: &[f32], out: &mut [f32]) -> Result<(), ModelError> {
        if features.len() != self.n_features {
            return Err(ModelError::Input {
                model: MODEL,
                name: "features".into(),
                problem: format!("has {} values; the {} model takes {}", features.len(), self.kind().as_str(), self.n_features),
            });
        }
        if out.len() != self.n_outputs {
            return Err(ModelError::Run {
                model: MODEL,
                detail: format!("the output buffer holds {} values; the model writes {}", out.len(), self.n_outputs),
            });
        }
        match &self.body {
            Body::Linear(m) => linear_into(m, features, out),
            Body::Trees(m) => trees_into(m, features, out)?,
        }
        self.normalize.apply(out);
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u8(match self.kind() {
            TabularKind::Linear => 1,
            TabularKind::Trees => 2,
        });
        w.usize(self.n_features);
        w.usize(self.n_outputs);
        w.u8(match self.normalize {
            Normalize::None => 0,
            Normalize::L1 => 1,
            Normalize::L2 => 2,
            Normalize::Max => 3,
        });
        match &self.body {
            Body::Linear(m) => {
                w.usize(m.intercepts.len());
                w.u8(match m.output {
                    LinearOutput::Scores(t) => t.code(),
                    LinearOutput::Complement => 5,
                    LinearOutput::LogisticComplement => 6,
                });
                m.coefficients.iter().for_each(|&x| w.f32(x));
                m.intercepts.iter().for_each(|&x| w.f32(x));
            }
            Body::Trees(m) => {
                let (role, aggregate, flags) = match m.role {
                    TreeRole::Regressor(a) => (0, a, 0),
                    TreeRole::Classifier { binary_case, weights_all_positive } => {
                        (1, Aggregate::Sum, u8::from(binary_case) | (u8::from(weights_all_positive) << 1))
                    }
                };
                w.u8(role);
                w.u8(match aggregate {
                    Aggregate::Sum => 0,
                    Aggregate::Average => 1,
                    Aggregate::Min => 2,
                    Aggregate::Max => 3,
                });
                w.u8(m.post.code());
                w.u8(flags);
                w.usize(m.n_targets);
                w.usize(m.base_values.len());
                m.base_values.iter().for_each(|&x| w.f32(x));
                w.usize(m.roots.len());
                m.roots.iter().for_each(|&r| w.u32(r));
                w.usize(m.nodes.len());
                for node in &m.nodes {
                    match *node {
                        TreeNode::Branch { feature, split, threshold, missing_true, if_true, if_false } => {
                            w.u8(split.code() | if missing_true { MISSING_TRUE } else { 0 });
                            w.u32(feature);
                            w.f32(threshold);
                            w.u32(if_true);
                            w.u32(if_false);
                        }
                        TreeNode::Leaf { first, count } => {
                            w.u8(LEAF_CODE);
                            w.u32(first);
                            w.u32(count);
                        }
                    }
                }
                w.usize(m.weights.len());
                for lw in &m.weights {
                    w.u32(lw.target);
                    w.f32(lw.value);
                }
            }
        }
        w.0
    }

    /// Parses and validates the compact format; never panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<TabularModel, ModelError> {
        // Errors name the format the kind byte (offset 8) announces.
        let mut r = Reader { bytes, pos: 0, format: if bytes.get(8) == Some(&2) { "trees" } else { "linear" } };
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(r.err("it does not start with FTAB (is this an intent model from `foresight-export convert`?)"));
        }
        r.pos = 4;
        let version = r.u32()?;
        if version != VERSION {
            return Err(r.err(format!("format version {version}; this SDK reads version {VERSION}: convert the model again")));
        }
        let kind = r.u8()?;
        let n_features = r.u32()? as usize;
        let n_outputs = r.u32()? as usize;
        let normalize = match r.u8()? {
            0 => Normalize::None,
            1 => Normalize::L1,
            2 => Normalize::L2,
            3 => Normalize::Max,
            c => return Err(r.err(format!("unknown normalizer {c}"))),
        };
        let model = match kind {
            1 => {
                let rows = r.u32()? as usize;
                let output = match r.u8()? {
                    5 => LinearOutput::Complement,
                    6 => LinearOutput::LogisticComplement,
                    c => LinearOutput::Scores(PostTransform::from_code(c).ok_or_else(|| r.err(format!("unknown transform {c}")))?),
                };
                let n_coef = rows.checked_mul(n_features).ok_or_else(|| r.err("coefficient count overflows"))?;
                let coefficients = r.f32s(n_coef)?;
                let intercepts = r.f32s(rows)?;
                TabularModel::from_linear(LinearModel { n_features, coefficients, intercepts, output })?
            }
            2 => {
                let role = r.u8()?;
                let aggregate = match r.u8()? {
                    0 => Aggregate::Sum,
                    1 => Aggregate::Average,
                    2 => Aggregate::Min,
                    3 => Aggregate::Max,
                    c => return Err(r.err(format!("unknown aggregate function {c}"))),
                };
                let post = r.u8()?;
                let post = PostTransform::from_code(post).ok_or_else(|| r.err(format!("unknown transform {post}")))?;
                let flags = r.u8()?;
                if flags & !3 != 0 {
                    return Err(r.err(format!("unknown flags {flags:#x}")));
                }
                let role = match role {
                    0 if flags == 0 => TreeRole::Regressor(aggregate),
                    1 if aggregate == Aggregate::Sum => {
                        TreeRole::Classifier { binary_case: flags & 1 != 0, weights_all_positive: flags & 2 != 0 }
                    }
                    _ => return Err(r.err(format!("role {role} with aggregate {aggregate:?} and flags {flags:#x}"))),
                };
                let n_targets = r.u32()? as usize;
                let n = r.count(4)?;
                let base_values = r.f32s(n)?;
                let n = r.count(4)?;
                let mut roots = Vec::with_capacity(n);
                for _ in 0..n {
                    roots.push(r.u32()?);
                }
                // A leaf is the smallest node: 9 bytes.
                let n = r.count(9)?;
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    let mode = r.u8()?;
                    nodes.push(if mode == LEAF_CODE {
                        TreeNode::Leaf { first: r.u32()?, count: r.u32()? }
                    } else {
                        let split = Split::from_code(mode & !MISSING_TRUE).ok_or_else(|| r.err(format!("unknown node mode {mode}")))?;
                        TreeNode::Branch {
                            split,
                            missing_true: mode & MISSING_TRUE != 0,
                            feature: r.u32()?,
                            threshold: r.f32()?,
                            if_true: r.u32()?,
                            if_false: r.u32()?,
                        }
                    });
                }
                let n = r.count(8)?;
                let mut weights = Vec::with_capacity(n);
                for _ in 0..n {
                    weights.push(LeafWeight { target: r.u32()?, value: r.f32()? });
                }
                TabularModel::from_trees(TreesModel { n_features, n_targets, role, post, base_values, roots, nodes, weights })?
            }
            k => return Err(r.err(format!("unknown model kind {k} (1 linear, 2 trees)"))),
        };
        if r.pos != bytes.len() {
            return Err(r.err(format!("{} bytes after the model", bytes.len() - r.pos)));
        }
        if model.n_outputs != n_outputs {
            return Err(r.err(format!("the header says {n_outputs} outputs, the model has {}", model.n_outputs)));
        }
        Ok(model.with_normalizer(normalize))
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Sizes were validated to fit a u32 when the model was built.
    fn usize(&mut self, v: usize) {
        self.u32(u32::try_from(v).unwrap_or(u32::MAX));
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    format: &'static str,
}

impl Reader<'_> {
    fn err(&self, detail: impl Into<String>) -> ModelError {
        parse_err(self.format, detail)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!("truncated: {n} bytes needed at offset {}, {} left", self.pos, self.bytes.len() - self.pos))),
        }
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// A count of items of at least `item_bytes` each, refused when the bytes left cannot hold them.
    fn count(&mut self, item_bytes: usize) -> Result<usize, ModelError> {
        let n = self.u32()? as usize;
        let left = self.bytes.len() - self.pos;
        if n.checked_mul(item_bytes).is_none_or(|b| b > left) {
            return Err(self.err(format!("a count of {n} at offset {} does not fit the {left} bytes left", self.pos - 4)));
        }
        Ok(n)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        let bytes = n.checked_mul(4).ok_or_else(|| self.err("size overflows"))?;
        let raw = self.take(bytes)?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn linear_into(m: &LinearModel, x: &[f32], out: &mut [f32]) {
    let rows = m.intercepts.len();
    let mut scores = [0f32; 1];
    let s: &mut [f32] = if rows == 1 { &mut scores } else { &mut out[..rows] };
    for (r, (score, row)) in s.iter_mut().zip(m.coefficients.chunks_exact(m.n_features)).enumerate() {
        *score = row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + m.intercepts[r];
    }
    match m.output {
        LinearOutput::Scores(t) => {
            if rows == 1 {
                out[0] = scores[0];
            }
            t.apply(out);
        }
        LinearOutput::Complement => {
            out[0] = 1.0 - scores[0];
            out[1] = scores[0];
        }
        LinearOutput::LogisticComplement => {
            let p = logistic(scores[0]);
            out[0] = 1.0 - p;
            out[1] = p;
        }
    }
}

/// The leaf a tree sends `x` to. Children always follow their parent (checked at load), so this
/// takes at most as many steps as there are nodes.
fn leaf_of(m: &TreesModel, root: u32, x: &[f32]) -> Result<(u32, u32), ModelError> {
    let mut i = root as usize;
    loop {
        match m.nodes.get(i) {
            Some(TreeNode::Leaf { first, count }) => return Ok((*first, *count)),
            Some(TreeNode::Branch { feature, split, threshold, missing_true, if_true, if_false }) => {
                let v = x.get(*feature as usize).copied().unwrap_or(f32::NAN);
                let go_true = split.holds(v, *threshold) || (*missing_true && v.is_nan());
                let next = if go_true { *if_true } else { *if_false } as usize;
                if next <= i {
                    break;
                }
                i = next;
            }
            None => break,
        }
    }
    Err(ModelError::Run { model: MODEL, detail: format!("tree node {i} is malformed") })
}

fn leaf_weights(m: &TreesModel, first: u32, count: u32) -> &[LeafWeight] {
    let start = first as usize;
    m.weights.get(start..start.saturating_add(count as usize)).unwrap_or(&[])
}

/// onnxruntime's tree aggregation (`tree_ensemble_aggregator.h`) for one row.
fn trees_into(m: &TreesModel, x: &[f32], out: &mut [f32]) -> Result<(), ModelError> {
    let n = m.n_targets;
    let n_trees = m.roots.len() as f32;
    if n == 1 {
        if let TreeRole::Regressor(aggregate) = m.role {
            // One target: the first weight of each reached leaf; base value only when there is
            // exactly one; no post transform but probit.
            let origin = if m.base_values.len() == 1 { m.base_values[0] } else { 0.0 };
            let (mut score, mut has) = (0f32, false);
            for &root in &m.roots {
                let (first, count) = leaf_of(m, root, x)?;
                let Some(w) = leaf_weights(m, first, count).first() else { continue };
                match aggregate {
                    Aggregate::Sum | Aggregate::Average => score += w.value,
                    Aggregate::Min => score = if !has || w.value < score { w.value } else { score },
                    Aggregate::Max => score = if !has || w.value > score { w.value } else { score },
                }
                has = true;
            }
            let value = match aggregate {
                Aggregate::Sum => score + origin,
                Aggregate::Average => score / n_trees + origin,
                Aggregate::Min | Aggregate::Max => {
                    if has {
                        score + origin
                    } else {
                        origin
                    }
                }
            };
            out[0] = if m.post == PostTransform::Probit { probit(value) } else { value };
            return Ok(());
        }
    }

    let mut scores = vec![0f32; n];
    let mut has = vec![false; n];
    for &root in &m.roots {
        let (first, count) = leaf_of(m, root, x)?;
        for w in leaf_weights(m, first, count) {
            let t = w.target as usize;
            let (Some(s), Some(h)) = (scores.get_mut(t), has.get_mut(t)) else { continue };
            let aggregate = match m.role {
                TreeRole::Regressor(a) => a,
                TreeRole::Classifier { .. } => Aggregate::Sum,
            };
            match aggregate {
                Aggregate::Sum | Aggregate::Average => *s += w.value,
                Aggregate::Min => *s = if !*h || w.value < *s { w.value } else { *s },
                Aggregate::Max => *s = if !*h || w.value > *s { w.value } else { *s },
            }
            *h = true;
        }
    }
    let use_base = m.base_values.len() == n;
    let mut second_class = -1i32;
    let mut width = n;
    match m.role {
        TreeRole::Regressor(aggregate) => match aggregate {
            Aggregate::Sum if use_base => scores.iter_mut().zip(&m.base_values).for_each(|(s, b)| *s += b),
            Aggregate::Sum => {}
            Aggregate::Average => {
                for (i, s) in scores.iter_mut().enumerate() {
                    *s = *s / n_trees + if use_base { m.base_values[i] } else { 0.0 };
                }
            }
            Aggregate::Min | Aggregate::Max => {
                for (i, s) in scores.iter_mut().enumerate() {
                    *s = if use_base { m.base_values[i] } else { 0.0 } + if has[i] { *s } else { 0.0 };
                }
            }
        },
        TreeRole::Classifier { binary_case, weights_all_positive } => {
            if n > 2 {
                for (k, b) in m.base_values.iter().enumerate() {
                    if has[k] {
                        scores[k] += b;
                    } else {
                        has[k] = true;
                        scores[k] = *b;
                    }
                }
            } else {
                match m.base_values.len() {
                    2 if has[1] => {
                        // onnxruntime: "base_value[0] is not used"; class 1 from class 0's sum.
                        scores[1] = m.base_values[1] + scores[0];
                        scores[0] = -scores[1];
                    }
                    2 => {
                        scores[1] += m.base_values[1];
                        scores[0] += m.base_values[0];
                    }
                    1 => {
                        scores[0] += m.base_values[0];
                        if !has[1] {
                            width = 1;
                        }
                    }
                    _ => {
                        second_class = 3;
                        if !has[1] {
                            width = 1;
                        }
                    }
                }
                if binary_case {
                    let pos = if width == 2 && has[1] {
                        scores[1]
                    } else if has[0] {
                        scores[0]
                    } else {
                        0.0
                    };
                    second_class = match (weights_all_positive, pos > 0.5, pos > 0.0) {
                        (true, true, _) => 0,
                        (true, false, _) => 1,
                        (false, _, true) => 2,
                        (false, _, false) => 3,
                    };
                }
            }
        }
    }
    // A score no reached leaf set reads 0 (onnxruntime's ScoreValue).
    for (s, h) in scores.iter_mut().zip(&has) {
        if !*h {
            *s = 0.0;
        }
    }
    if width >= 2 {
        out.copy_from_slice(&scores);
        m.post.apply(out);
        return Ok(());
    }
    let s = scores[0];
    let (a, b) = match (m.post, second_class) {
        (PostTransform::Probit, _) => (probit(s), f32::NAN),
        (_, 0 | 1) => (1.0 - s, s),
        (PostTransform::Logistic, 2 | 3) => (logistic(-s), logistic(s)),
        (_, 2 | 3) => (-s, s),
        _ => (s, f32::NAN),
    };
    out[0] = a;
    if let Some(o) = out.get_mut(1) {
        *o = b;
    }
    Ok(())
}

/// onnxruntime's `ComputeLogistic`.
#[inline]
fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// onnxruntime's `ErfInv` (Winitzki's approximation, a = 0.147).
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// onnxruntime's `ComputeProbit`.
fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().fold(-f32::MAX, |m, &x| if x > m { x } else { m });
    let mut sum = 0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

fn softmax_zero(v: &mut [f32]) {
    let max = v.iter().fold(-f32::MAX, |m, &x| if x > m { x } else { m });
    let exp_neg_max = (-max).exp();
    let mut sum = 0f32;
    for x in v.iter_mut() {
        if *x > 0.000_000_1 || *x < -0.000_000_1 {
            *x = (*x - max).exp();
            sum += *x;
        } else {
            *x *= exp_neg_max;
        }
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear() -> TabularModel {
        TabularModel::from_linear(LinearModel {
            n_features: 3,
            coefficients: vec![0.5, -1.0, 2.0, -0.5, 1.0, -2.0],
            intercepts: vec![0.1, -0.1],
            output: LinearOutput::Scores(PostTransform::Logistic),
        })
        .expect("valid")
    }

    /// Two stumps and a deeper tree over 3 features, a binary classifier as LightGBM exports it.
    fn trees() -> TabularModel {
        let b = |feature, split, threshold, if_true, if_false| TreeNode::Branch {
            feature,
            split,
            threshold,
            missing_true: feature == 1,
            if_true,
            if_false,
        };
        let leaf = |first| TreeNode::Leaf { first, count: 1 };
        let w = |value| LeafWeight { target: 0, value };
        TabularModel::from_trees(TreesModel {
            n_features: 3,
            n_targets: 2,
            role: TreeRole::Classifier { binary_case: true, weights_all_positive: false },
            post: PostTransform::Logistic,
            base_values: vec![],
            roots: vec![0, 3, 6],
            nodes: vec![
                b(0, Split::Leq, 1.5, 1, 2),
                leaf(0),
                leaf(1),
                b(1, Split::Lt, 0.5, 4, 5),
                leaf(2),
                leaf(3),
                b(2, Split::Gte, 2.0, 7, 8),
                leaf(4),
                b(0, Split::Neq, 3.0, 9, 10),
                leaf(5),
                leaf(6),
            ],
            weights: vec![w(-0.4), w(0.3), w(0.2), w(-0.1), w(0.5), w(-0.25), w(0.05)],
        })
        .expect("valid")
    }

    fn predict(m: &TabularModel, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; m.n_outputs()];
        m.predict_into(x, &mut out).expect("runs");
        out
    }

    #[test]
    fn linear_scores_as_onnxruntime() {
        let m = linear();
        assert_eq!((m.kind(), m.n_features(), m.n_outputs()), (TabularKind::Linear, 3, 2));
        let x = [1.0, 2.0, 0.5];
        let s0 = 0.5 - 2.0 + 1.0 + 0.1;
        let s1 = -0.5 + 2.0 - 1.0 - 0.1;
        let p = predict(&m, &x);
        assert!((p[0] - 1.0 / (1.0 + (-s0 as f32).exp())).abs() < 1e-7 && (p[1] - 1.0 / (1.0 + (-s1 as f32).exp())).abs() < 1e-7);

        let one = TabularModel::from_linear(LinearModel {
            n_features: 2,
            coefficients: vec![1.0, 1.0],
            intercepts: vec![0.25],
            output: LinearOutput::Complement,
        })
        .expect("valid");
        assert_eq!(predict(&one, &[0.25, 0.0]), vec![0.5, 0.5]);
        let soft = TabularModel::from_linear(LinearModel {
            n_features: 1,
            coefficients: vec![1.0, 2.0, 3.0],
            intercepts: vec![0.0; 3],
            output: LinearOutput::Scores(PostTransform::Softmax),
        })
        .expect("valid");
        let p = predict(&soft, &[1.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1] && p[1] > p[0]);
    }

    #[test]
    fn trees_follow_splits_and_missing_values() {
        let m = trees();
        assert_eq!((m.kind(), m.n_outputs()), (TabularKind::Trees, 2));
        // x0 = 1.0 ≤ 1.5 → -0.4; x1 = 0.2 < 0.5 → 0.2; x2 = 1.0 < 2 → x0 ≠ 3 → -0.25
        let s: f32 = -0.4 + 0.2 + -0.25;
        let p = predict(&m, &[1.0, 0.2, 1.0]);
        assert!((p[1] - logistic(s)).abs() < 1e-7 && (p[0] - logistic(-s)).abs() < 1e-7, "{p:?}");
        // NaN: LEQ false (0.3), x1 NaN tracks true (0.2), x2 NaN: GTE false → NEQ(NaN) true (-0.25).
        let s: f32 = 0.3 + 0.2 + -0.25;
        let p = predict(&m, &[f32::NAN; 3]);
        assert!((p[1] - logistic(s)).abs() < 1e-7, "{p:?}");
    }

    #[test]
    fn post_transforms_match_onnxruntime_formulas() {
        assert_eq!(logistic(0.0), 0.5);
        assert!((logistic(-2.0) - 0.119_202_92).abs() < 1e-7);
        // As in onnxruntime, 1 − σ(|x|) loses small probabilities.
        assert_eq!(logistic(-30.0), 0.0);
        // √2·erfinv(2·0.975 − 1) ≈ 1.96 (the approximation is good to ~1e-3).
        assert!((probit(0.975) - 1.959964).abs() < 5e-3, "{}", probit(0.975));
        let mut v = [0.0, 1.0, 2.0];
        softmax_zero(&mut v);
        assert_eq!(v[0], 0.0);
        assert!((v[1] + v[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bytes_roundtrip() {
        for m in [linear(), trees(), linear().with_normalizer(Normalize::L1)] {
            let bytes = m.to_bytes();
            let back = TabularModel::from_bytes(&bytes).expect("parses");
            assert_eq!(back, m);
            assert_eq!(back.to_bytes(), bytes);
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let m = trees();
        let mut out = [0.0; 2];
        assert!(matches!(m.predict_into(&[1.0; 2], &mut out), Err(ModelError::Input { .. })));
        assert!(matches!(m.predict_into(&[1.0; 3], &mut [0.0; 3]), Err(ModelError::Run { .. })));
    }

    #[test]
    fn invalid_models_are_refused() {
        let mut t = trees().trees().cloned().expect("trees");
        t.nodes[0] = TreeNode::Branch { feature: 0, split: Split::Leq, threshold: 0.0, missing_true: false, if_true: 0, if_false: 1 };
        let e = TabularModel::from_trees(t).expect_err("a loop");
        assert!(e.to_string().contains("must not loop"), "{e}");
        let mut t = trees().trees().cloned().expect("trees");
        t.weights[0].target = 2;
        assert!(TabularModel::from_trees(t).is_err());
        let mut t = trees().trees().cloned().expect("trees");
        t.nodes[1] = TreeNode::Leaf { first: 6, count: 2 };
        assert!(TabularModel::from_trees(t).is_err());
        assert!(TabularModel::from_linear(LinearModel {
            n_features: 2,
            coefficients: vec![1.0; 3],
            intercepts: vec![0.0],
            output: LinearOutput::Complement
        })
        .is_err());
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for m in [linear(), trees()] {
            let good = m.to_bytes();
            for cut in 0..good.len() {
                let e = TabularModel::from_bytes(&good[..cut]).expect_err("truncated");
                assert!(matches!(e, ModelError::Parse { model: "intent", .. }), "{e}");
            }
            let x = [0.5, f32::NAN, 3.0];
            for _ in 0..4000 {
                let mut bad = good.clone();
                for _ in 0..(1 + next() % 3) {
                    let i = (next() as usize) % bad.len();
                    bad[i] ^= 1 << (next() % 8);
                }
                if let Ok(m) = TabularModel::from_bytes(&bad) {
                    let mut out = vec![0.0; m.n_outputs()];
                    let _ = m.predict_into(&x[..m.n_features().min(3)], &mut out);
                }
            }
            // Huge counts are refused before anything is allocated.
            let mut big = good.clone();
            big[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(TabularModel::from_bytes(&big).is_err());
        }
        assert!(TabularModel::from_bytes(b"").is_err());
        assert!(TabularModel::from_bytes(b"FSBUNDLE....").is_err());
    }
}
