//! Recognising the GRU4Rec pattern in an ONNX graph.

use tract_onnx::pb;

use crate::import::graph::{attr, decode, floats, graph_of, head_of, ints, output_name, ScoringHead};

use crate::contract::manifest::GruSpec;
use crate::infer::gru::GruModel;

/// The weights of a `Gather → [Transpose] → GRU → last hidden → MatMul [+ Add]` graph, or
/// why the graph is not one.
pub fn from_onnx(bytes: &[u8], output: Option<&str>) -> Result<GruModel, String> {
    let model = decode(bytes)?;
    let graph = graph_of(&model)?;
    let ScoringHead { input: hidden_name, hidden: hs, items, matrix: head, bias, .. } = head_of(&graph, output_name(&model, output)?)?;
    let bias = bias.unwrap_or_else(|| vec![0.0; items]);

    // Last hidden: Y_h, maybe through Gather(axis 0, index 0), Reshape or Squeeze; or the
    // full output Y's last step (tf2onnx's Keras GRU: Squeeze the direction axis, Slice the
    // last step, Squeeze), which for a forward GRU is the same vector as Y_h.
    let mut name = hidden_name.as_str();
    let mut last_step: Option<&str> = None;
    let gru = loop {
        let n = graph.node(name).ok_or("the scoring head's input is not computed by a node")?;
        match n.op_type.as_str() {
            "GRU" => {
                let reads_y = n.output.first().map(String::as_str) == Some(name);
                if reads_y && last_step.is_none() {
                    return Err(format!("node `{}`: the head reads the GRU's full output Y, not its last state Y_h", label(n)));
                }
                if !reads_y && n.output.get(1).map(String::as_str) != Some(name) {
                    return Err(format!("node `{}`: the head reads neither Y_h nor Y", label(n)));
                }
                break n;
            }
            "Gather" => {
                let index = n.input.get(1).and_then(|i| graph.constant(i)).and_then(ints);
                // Y_h is [num_directions = 1, batch, hidden]: index 0 and -1 are the same.
                if attr(n, "axis").map_or(0, |a| a.i) != 0 || !matches!(index.as_deref(), Some([0]) | Some([-1])) {
                    return Err(format!("node `{}`: the last hidden state is selected in an unrecognised way", label(n)));
                }
                name = first_input(n)?;
            }
            "Slice" if last_step.is_none() => {
                // Y is [seq, num_directions, batch, hidden]: starts -1 to the end of axis 0
                // is the last step.
                let c = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).and_then(|s| graph.constant(s)).and_then(ints);
                let to_end = c(2).is_some_and(|e| e.len() == 1 && e[0] >= i64::from(i32::MAX));
                if c(1).as_deref() != Some(&[-1]) || !to_end || c(3).is_some_and(|a| a != [0]) || c(4).is_some_and(|s| s != [1]) {
                    return Err(format!(
                        "node `{}`: the Slice is not the last step of the sequence (starts -1 to the end, axis 0)",
                        label(n)
                    ));
                }
                last_step = Some(name);
                name = first_input(n)?;
            }
            // Below the Slice, only the direction axis (1) may be squeezed: axis 0 stays the
            // sequence.
            "Squeeze" if last_step.is_some() => {
                let axes =
                    n.input.get(1).and_then(|a| graph.constant(a)).and_then(ints).or_else(|| attr(n, "axes").map(|a| a.ints.clone()));
                if axes.as_deref() != Some(&[1]) {
                    return Err(format!(
                        "node `{}`: squeezes axes {axes:?} of the GRU's output Y (only the direction axis, 1, is recognised)",
                        label(n)
                    ));
                }
                name = first_input(n)?;
            }
            "Reshape" | "Squeeze" | "Flatten" | "Identity" => name = first_input(n)?,
            other => return Err(format!("node `{}`: {other} between the GRU and the scoring head is not recognised", label(n))),
        }
    };
    if gru.input.len() < 3 {
        return Err(format!("node `{}`: has {} inputs; GRU needs X, W and R", label(gru), gru.input.len()));
    }
    let hidden = attr(gru, "hidden_size").map(|a| a.i as usize).ok_or("the GRU has no hidden_size")?;
    if hidden != hs {
        return Err(format!("the GRU's hidden size {hidden} does not match the head's {hs} rows"));
    }
    if let Some(d) = attr(gru, "direction") {
        if d.s != b"forward" {
            return Err(format!("the GRU is {} (only forward is recognised)", String::from_utf8_lossy(&d.s)));
        }
    }
    // tf2onnx spells out the default activations; anything else changes the cell.
    if let Some(a) = attr(gru, "activations").filter(|a| a.strings.iter().map(Vec::as_slice).ne([&b"Sigmoid"[..], b"Tanh"])) {
        let names: Vec<_> = a.strings.iter().map(|s| String::from_utf8_lossy(s)).collect();
        return Err(format!("node `{}`: activations={names:?} is not supported (only Sigmoid, Tanh)", label(gru)));
    }
    if attr(gru, "clip").is_some() {
        return Err(format!("node `{}`: clip is not supported", label(gru)));
    }
    if let Some(layout) = attr(gru, "layout").map(|a| a.i).filter(|&l| l != 0) {
        return Err(format!("node `{}`: layout={layout} is not supported (only 0, sequence first)", label(gru)));
    }
    let lbr = attr(gru, "linear_before_reset").is_some_and(|a| a.i != 0);
    if gru.input.get(4).is_some_and(|s| !s.is_empty()) {
        return Err("the GRU takes sequence_lens".into());
    }
    if let Some(init_h) = gru.input.get(5).filter(|s| !s.is_empty()) {
        let zero = match graph.node(init_h) {
            Some(n) if n.op_type == "ConstantOfShape" => {
                attr(n, "value").and_then(|a| a.t.as_ref()).and_then(floats).is_none_or(|v| v.iter().all(|&x| x == 0.0))
            }
            _ => graph.constant(init_h).and_then(floats).is_some_and(|v| v.iter().all(|&x| x == 0.0)),
        };
        if !zero {
            return Err("the GRU's initial state is not zero".into());
        }
    }
    let w = floats(graph.constant(&gru.input[1]).ok_or("the GRU's W is not constant")?).ok_or("the GRU's W is not float32")?;
    let r = floats(graph.constant(&gru.input[2]).ok_or("the GRU's R is not constant")?).ok_or("the GRU's R is not float32")?;
    let b = match gru.input.get(3).filter(|s| !s.is_empty()) {
        Some(name) => floats(graph.constant(name).ok_or("the GRU's B is not constant")?).ok_or("the GRU's B is not float32")?,
        None => vec![0.0; 6 * hidden],
    };

    // Input: the embedding lookup made sequence-first: Transpose(perm 1,0,2) of
    // Gather(embedding, the graph input), or (tf2onnx, batch fixed to 1) a Reshape to
    // [-1, 1, input], which moves no data when the batch is one.
    let x = graph.node(&gru.input[0]).ok_or("the GRU's input is not computed by a node")?;
    let gather = match x.op_type.as_str() {
        "Transpose" if attr(x, "perm").is_some_and(|a| a.ints == [1, 0, 2]) => {
            graph.node(first_input(x)?).ok_or("the Transpose has no producer")?
        }
        "Reshape" => {
            let shape = x.input.get(1).and_then(|s| graph.constant(s)).and_then(ints);
            if !matches!(shape.as_deref(), Some([-1, 1, _])) {
                return Err(format!("node `{}`: the GRU's input is a Reshape to {shape:?}, not [-1, 1, input]", label(x)));
            }
            let g = graph.node(first_input(x)?).ok_or("the Reshape has no producer")?;
            if !batch_of_one(&model, g) {
                return Err(format!("node `{}`: a Reshape makes the GRU's input sequence-first only when the batch is 1", label(x)));
            }
            g
        }
        _ => return Err(format!("node `{}`: the GRU's input is not a [1, 0, 2] Transpose of an embedding lookup", label(x))),
    };
    if gather.op_type != "Gather" || attr(gather, "axis").is_some_and(|a| a.i != 0) {
        return Err("the sequence is not an embedding lookup (Gather on axis 0)".into());
    }
    if !graph.inputs.contains(&gather.input[1].as_str()) {
        return Err("the embedding lookup does not read the graph's input".into());
    }
    let emb_t = graph.constant(&gather.input[0]).ok_or("the embedding table is not a constant")?;
    if emb_t.dims.len() != 2 {
        return Err("the embedding table is not 2-D".into());
    }
    let (rows, input) = (emb_t.dims[0] as usize, emb_t.dims[1] as usize);
    let embedding = floats(emb_t).ok_or("the embedding table is not float32")?;
    if w.len() != 3 * hidden * input || r.len() != 3 * hidden * hidden || b.len() != 6 * hidden {
        return Err("the GRU's weight shapes do not match its sizes".into());
    }
    let spec = GruSpec { items, embedding_rows: rows, input_size: input, hidden_size: hidden, linear_before_reset: lbr };
    let mut blob = embedding;
    for part in [w, r, b, head, bias] {
        blob.extend(part);
    }
    GruModel::new(spec, &blob).map_err(|e| e.to_string())
}

/// How messages name a node: its name, or its op type when the exporter left it unnamed.
fn label(n: &pb::NodeProto) -> &str {
    if n.name.is_empty() {
        &n.op_type
    } else {
        &n.name
    }
}

fn first_input(n: &pb::NodeProto) -> Result<&str, String> {
    n.input.first().map(String::as_str).filter(|s| !s.is_empty()).ok_or_else(|| format!("node `{}`: input 0 is missing", label(n)))
}

/// Whether the lookup `gather` reads a graph input declared with batch (dim 0) fixed to 1.
fn batch_of_one(model: &pb::ModelProto, gather: &pb::NodeProto) -> bool {
    let Some(ids) = gather.input.get(1) else { return false };
    let Some(g) = model.graph.as_ref() else { return false };
    let dims = g.input.iter().find(|i| &i.name == ids).and_then(|i| i.r#type.as_ref()).and_then(|t| match &t.value {
        Some(pb::type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| s.dim.clone()),
        _ => None,
    });
    matches!(
        dims.as_deref().and_then(|d| d.first()).and_then(|d| d.value.as_ref()),
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(1))
    )
}
