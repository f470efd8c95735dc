//! Reading ONNX graphs to recognise the models the SDK runs on its own kernels (`crate::infer::gru`,
//! `crate::infer::attention`) and the scoring head `foresight-export convert --split-head` cuts off.
//! Recognisers walk the graph by data flow and say why when a graph is not what they know;
//! the converter then checks whatever they extract against tract and onnxruntime.

use std::collections::HashMap;

use prost::Message;
use tract_onnx::pb;

pub struct Graph<'a> {
    pub init: HashMap<&'a str, &'a pb::TensorProto>,
    pub producer: HashMap<&'a str, &'a pb::NodeProto>,
    pub inputs: Vec<&'a str>,
}

pub fn floats(t: &pb::TensorProto) -> Option<Vec<f32>> {
    if t.data_type != pb::tensor_proto::DataType::Float as i32 || !t.external_data.is_empty() {
        return None;
    }
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    t.raw_data.len().is_multiple_of(4).then(|| t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

pub fn ints(t: &pb::TensorProto) -> Option<Vec<i64>> {
    match t.data_type {
        x if x == pb::tensor_proto::DataType::Int64 as i32 => {
            if !t.int64_data.is_empty() {
                Some(t.int64_data.clone())
            } else {
                Some(t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
            }
        }
        x if x == pb::tensor_proto::DataType::Int32 as i32 => {
            if !t.int32_data.is_empty() {
                Some(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            } else {
                Some(t.raw_data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))).collect())
            }
        }
        _ => None,
    }
}

pub fn attr<'n>(n: &'n pb::NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

impl<'a> Graph<'a> {
    /// A constant tensor: an initializer, or a `Constant` node's value, possibly through
    /// `Identity` (the legacy PyTorch exporter shares equal initializers that way).
    pub fn constant(&self, name: &str) -> Option<&'a pb::TensorProto> {
        if let Some(t) = self.init.get(name) {
            return Some(t);
        }
        let n = self.producer.get(name)?;
        match n.op_type.as_str() {
            "Constant" => attr(n, "value").and_then(|a| a.t.as_ref()),
            "Identity" => self.constant(n.input.first()?),
            _ => None,
        }
    }

    /// A constant float32 tensor's values.
    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.constant(name).and_then(floats)
    }

    /// A constant holding exactly one float32.
    pub fn scalar(&self, name: &str) -> Option<f32> {
        match self.floats(name).as_deref() {
            Some([x]) => Some(*x),
            _ => None,
        }
    }

    pub fn node(&self, name: &str) -> Option<&'a pb::NodeProto> {
        self.producer.get(name).copied()
    }
}

/// A recommender's scoring head: `scores = input · matrix + bias`, the matrix
/// `hidden × items` row-major, as found at the end of an ONNX graph.
#[derive(Debug, Clone)]
pub struct ScoringHead {
    /// The tensor the head reads: the visitor vector.
    pub input: String,
    /// The tensor it computes: the scores.
    pub output: String,
    pub hidden: usize,
    pub items: usize,
    pub matrix: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl ScoringHead {
    /// The matrix as item rows (`items × hidden`), the layout item embeddings use.
    pub fn item_rows(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.items * self.hidden];
        for k in 0..self.hidden {
            for j in 0..self.items {
                out[j * self.hidden + k] = self.matrix[k * self.items + j];
            }
        }
        out
    }
}

pub fn graph_of(model: &pb::ModelProto) -> Result<Graph<'_>, String> {
    let g = model.graph.as_ref().ok_or("the model has no graph")?;
    Ok(Graph {
        init: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
        producer: g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect(),
        inputs: g.input.iter().map(|i| i.name.as_str()).filter(|n| !g.initializer.iter().any(|t| t.name == *n)).collect(),
    })
}

/// The `MatMul [+ Add]` or `Gemm` (maybe scaled, see [`head_of`]) that computes `output`
/// (default: the graph's first output) from a constant matrix, or why there is none.
pub fn scoring_head(bytes: &[u8], output: Option<&str>) -> Result<ScoringHead, String> {
    let model = decode(bytes)?;
    let output = output_name(&model, output)?;
    Ok(ScoringHead { output: output.to_owned(), ..head_of(&graph_of(&model)?, output)? })
}

/// A serving selection at the end of a recommender — `TopK` (either of its outputs) or
/// `ArgMax` over the scores — and the scores it selects from.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailingSelection {
    /// `TopK` or `ArgMax`.
    pub op: String,
    /// The node's name (or its output's, when unnamed).
    pub node: String,
    /// The tensor it selects from: every item's score.
    pub scores: String,
    /// TopK's `k` when it is a constant.
    pub k: Option<i64>,
}

/// The `TopK` / `ArgMax` that computes `output` (default: the graph's first output), if one
/// does: the SDK selects its own top-k under the shop's rules, so the converter keeps the
/// scores underneath instead.
pub fn trailing_selection(bytes: &[u8], output: Option<&str>) -> Result<Option<TrailingSelection>, String> {
    let model = decode(bytes)?;
    let output = output_name(&model, output)?;
    let graph = graph_of(&model)?;
    let mut node = graph.node(output);
    while let Some(n) = node.filter(|n| n.op_type == "Identity") {
        node = n.input.first().and_then(|i| graph.node(i));
    }
    let Some(n) = node.filter(|n| n.op_type == "TopK" || n.op_type == "ArgMax") else { return Ok(None) };
    let scores = n.input.first().ok_or_else(|| format!("the {} node has no input", n.op_type))?.clone();
    let k = n.input.get(1).and_then(|k| graph.constant(k)).and_then(ints).and_then(|v| v.first().copied());
    let name = if n.name.is_empty() { output.to_owned() } else { n.name.clone() };
    Ok(Some(TrailingSelection { op: n.op_type.clone(), node: name, scores, k }))
}

pub fn decode(bytes: &[u8]) -> Result<pb::ModelProto, String> {
    pb::ModelProto::decode(bytes).map_err(|e| format!("not an ONNX protobuf: {e}"))
}

/// `output`, or the graph's first output.
pub fn output_name<'a>(model: &'a pb::ModelProto, output: Option<&'a str>) -> Result<&'a str, String> {
    match output {
        Some(o) => Ok(o),
        None => {
            model.graph.as_ref().and_then(|g| g.output.first()).map(|o| o.name.as_str()).ok_or_else(|| "the graph has no output".into())
        }
    }
}

/// How messages name a node: its name, or its op type when the exporter left it unnamed.
fn label(n: &pb::NodeProto) -> &str {
    if n.name.is_empty() {
        &n.op_type
    } else {
        &n.name
    }
}

/// A node's `i`-th input, or why a malformed node has none.
fn input(n: &pb::NodeProto, i: usize) -> Result<&str, String> {
    n.input.get(i).map(String::as_str).filter(|s| !s.is_empty()).ok_or_else(|| format!("node `{}`: input {i} is missing", label(n)))
}

/// The scoring head that computes `out_name`, or why there is none (naming the node that
/// does not fit). The head is `Add(MatMul(hidden, M), bias)` in either operand order,
/// `Gemm(hidden, M, bias)` (any `alpha`, `beta`, `transB`) or `MatMul(hidden, M)` alone, maybe
/// under a `Div` or `Mul` by a scalar constant (a temperature). `M` is a constant
/// `hidden × items`, or the transpose of a constant `items × hidden` (`transB=1`, or a
/// `Transpose` node): that is how PyTorch exports `nn.Linear`'s `[out, in]` weight. Scales and
/// transposes are folded into the returned matrix and bias, which compute the same scores.
pub fn head_of(graph: &Graph<'_>, out_name: &str) -> Result<ScoringHead, String> {
    let top = graph.node(out_name).ok_or_else(|| format!("the output `{out_name}` is not computed by a node"))?;
    // Scores scaled after the head: scaling the matrix and bias instead gives the same scores,
    // so the SDK's head (and an item tower) need not know about it. Div divides each weight by
    // c rather than multiplying by 1/c: one rounding fewer.
    let (top, mul, div) = match top.op_type.as_str() {
        "Div" => {
            let c = graph
                .scalar(input(top, 1)?)
                .ok_or_else(|| format!("node `{}`: the divisor is not a float32 scalar constant", label(top)))?;
            if c == 0.0 || !c.is_finite() {
                return Err(format!("node `{}`: divides the scores by {c}", label(top)));
            }
            (scaled_node(graph, top, 0)?, 1.0, c)
        }
        "Mul" => {
            let (scores, c) = match (graph.scalar(input(top, 1)?), graph.scalar(input(top, 0)?)) {
                (Some(c), _) => (0, c),
                (None, Some(c)) => (1, c),
                (None, None) => return Err(format!("node `{}`: neither factor is a float32 scalar constant", label(top))),
            };
            if !c.is_finite() {
                return Err(format!("node `{}`: multiplies the scores by {c}", label(top)));
            }
            (scaled_node(graph, top, scores)?, c, 1.0)
        }
        _ => (top, 1.0, 1.0),
    };

    // The product node (named in messages about the matrix), its inputs, Gemm's transB and
    // scales, and the bias.
    let (mm, hidden_name, m_name, trans_b, alpha, bias_name, beta) = match top.op_type.as_str() {
        "Add" => {
            let pick = |m: usize| -> Option<(&pb::NodeProto, &str)> {
                let n = graph.node(top.input.get(m)?).filter(|n| n.op_type == "MatMul")?;
                let b = top.input.get(1 - m)?;
                graph.constant(b).map(|_| (n, b.as_str()))
            };
            let (mm, b) = pick(0)
                .or_else(|| pick(1))
                .ok_or_else(|| format!("node `{}`: the output is an Add that is not MatMul + constant bias", label(top)))?;
            (mm, input(mm, 0)?, input(mm, 1)?, false, 1.0, Some(b), 1.0)
        }
        "MatMul" => (top, input(top, 0)?, input(top, 1)?, false, 1.0, None, 1.0),
        "Gemm" => {
            let get = |n: &str, d: i64| attr(top, n).map_or(d, |a| a.i);
            let getf = |n: &str| attr(top, n).map_or(1.0, |a| a.f);
            // transA would make the visitor vector a column: not a head over one hidden vector.
            let trans_a = get("transA", 0);
            if trans_a != 0 {
                return Err(format!("node `{}`: transA={trans_a} is not supported", label(top)));
            }
            let bias = top.input.get(2).map(String::as_str).filter(|s| !s.is_empty());
            (top, input(top, 0)?, input(top, 1)?, get("transB", 0) != 0, getf("alpha"), bias, getf("beta"))
        }
        other => return Err(format!("node `{}`: the output comes from {other}, not a MatMul/Gemm scoring head", label(top))),
    };

    // M itself, or a Transpose of a constant (the dynamo exporter's `nn.Linear`, tied weights).
    let (m_name, transposed) = match graph.node(m_name).filter(|n| n.op_type == "Transpose") {
        Some(t) => {
            if attr(t, "perm").is_some_and(|a| a.ints != [1, 0]) {
                return Err(format!("node `{}`: perm is not [1, 0], not a matrix transpose", label(t)));
            }
            (input(t, 0)?, !trans_b)
        }
        None => (m_name, trans_b),
    };
    let at = label(mm);
    let head_t = graph.constant(m_name).ok_or_else(|| format!("node `{at}`: the scoring matrix is not a constant"))?;
    let [d0, d1] = head_t.dims[..] else {
        return Err(format!("node `{at}`: the scoring matrix is not 2-D"));
    };
    let (d0, d1) = (usize::try_from(d0).ok(), usize::try_from(d1).ok());
    let (Some(d0), Some(d1)) = (d0, d1) else {
        return Err(format!("node `{at}`: the scoring matrix has a negative dimension"));
    };
    let stored = floats(head_t).ok_or_else(|| format!("node `{at}`: the scoring matrix is not float32"))?;
    if d0.checked_mul(d1) != Some(stored.len()) {
        return Err(format!("node `{at}`: the scoring matrix's data does not match its shape"));
    }
    // `matrix` is `hidden × items` row-major; a transposed weight is stored `items × hidden`.
    let (hs, items, mut matrix) = if transposed {
        let mut m = vec![0f32; stored.len()];
        for j in 0..d0 {
            for k in 0..d1 {
                m[k * d0 + j] = stored[j * d1 + k];
            }
        }
        (d1, d0, m)
    } else {
        (d0, d1, stored)
    };
    // Gemm computes alpha·(h·M) + beta·C; alpha = beta = 1 and no scale leave the values as stored.
    if alpha != 1.0 || mul != 1.0 || div != 1.0 {
        matrix.iter_mut().for_each(|x| *x = *x * alpha * mul / div);
    }
    let bias = match bias_name {
        Some(b) => {
            let t = graph.constant(b).ok_or_else(|| format!("node `{}`: the bias is not a constant", label(top)))?;
            let mut v = floats(t).ok_or_else(|| format!("node `{}`: the bias is not float32", label(top)))?;
            if v.len() != items {
                return Err(format!("node `{}`: the bias has {} values for {items} items", label(top), v.len()));
            }
            if beta != 1.0 || mul != 1.0 || div != 1.0 {
                v.iter_mut().for_each(|x| *x = *x * beta * mul / div);
            }
            Some(v)
        }
        None => None,
    };
    Ok(ScoringHead { input: hidden_name.to_owned(), output: out_name.to_owned(), hidden: hs, items, matrix, bias })
}

/// The node computing a scaling node's `i`-th input: the head under it.
fn scaled_node<'a>(graph: &Graph<'a>, scale: &pb::NodeProto, i: usize) -> Result<&'a pb::NodeProto, String> {
    graph.node(input(scale, i)?).ok_or_else(|| format!("node `{}`: the scaled scores are not computed by a node", label(scale)))
}
