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

/// The `MatMul [+ Add]` or `Gemm` that computes `output` (default: the graph's first
/// output) from a constant matrix, or why there is none.
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

pub fn head_of(graph: &Graph<'_>, out_name: &str) -> Result<ScoringHead, String> {
    // Head: Add(MatMul(hidden, M), bias) in either operand order, or Gemm, or MatMul alone.
    let top = graph.node(out_name).ok_or("the output is not computed by a node")?;
    let (hidden_name, head_name, bias): (&str, &str, Option<Vec<f32>>) = match top.op_type.as_str() {
        "Add" => {
            let (mm, b) = match (graph.node(&top.input[0]), graph.constant(&top.input[1])) {
                (Some(n), Some(b)) if n.op_type == "MatMul" => (n, b),
                _ => match (graph.node(&top.input[1]), graph.constant(&top.input[0])) {
                    (Some(n), Some(b)) if n.op_type == "MatMul" => (n, b),
                    _ => return Err("the output is an Add that is not MatMul + constant bias".into()),
                },
            };
            (&mm.input[0], &mm.input[1], Some(floats(b).ok_or("the bias is not float32")?))
        }
        "MatMul" => (&top.input[0], &top.input[1], None),
        "Gemm" => {
            let get = |n: &str, d: i64| attr(top, n).map_or(d, |a| a.i);
            let getf = |n: &str| attr(top, n).map_or(1.0, |a| a.f);
            if get("transA", 0) != 0 || get("transB", 0) != 0 || getf("alpha") != 1.0 || getf("beta") != 1.0 {
                return Err("the output Gemm transposes or scales (only the plain form is recognised)".into());
            }
            let bias = match top.input.get(2).filter(|s| !s.is_empty()) {
                Some(c) => Some(floats(graph.constant(c).ok_or("the Gemm bias is not constant")?).ok_or("the Gemm bias is not float32")?),
                None => None,
            };
            (&top.input[0], &top.input[1], bias)
        }
        other => return Err(format!("the output comes from {other}, not a MatMul/Gemm scoring head")),
    };
    let head_t = graph.constant(head_name).ok_or("the scoring matrix is not a constant")?;
    if head_t.dims.len() != 2 {
        return Err("the scoring matrix is not 2-D".into());
    }
    let (hs, items) = (head_t.dims[0] as usize, head_t.dims[1] as usize);
    let head = floats(head_t).ok_or("the scoring matrix is not float32")?;
    if head.len() != hs * items {
        return Err("the scoring matrix's data does not match its shape".into());
    }
    if let Some(b) = &bias {
        if b.len() != items {
            return Err(format!("the bias has {} values for {items} items", b.len()));
        }
    }
    Ok(ScoringHead { input: hidden_name.to_owned(), output: out_name.to_owned(), hidden: hs, items, matrix: head, bias })
}
