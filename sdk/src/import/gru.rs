//! Recognising the GRU4Rec pattern in an ONNX graph.

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

    // Last hidden: Y_h, maybe through Gather(axis 0, index 0), Reshape or Squeeze.
    let mut name = hidden_name.as_str();
    let gru = loop {
        let n = graph.node(name).ok_or("the scoring head's input is not computed by a node")?;
        match n.op_type.as_str() {
            "GRU" => {
                if n.output.get(1).map(String::as_str) != Some(name) {
                    return Err("the head reads the GRU's full output Y, not its last state Y_h".into());
                }
                break n;
            }
            "Gather" => {
                let index = graph.constant(&n.input[1]).and_then(ints);
                // Y_h is [num_directions = 1, batch, hidden]: index 0 and -1 are the same.
                if attr(n, "axis").map_or(0, |a| a.i) != 0 || !matches!(index.as_deref(), Some([0]) | Some([-1])) {
                    return Err("the last hidden state is selected in an unrecognised way".into());
                }
                name = &n.input[0];
            }
            "Reshape" | "Squeeze" | "Flatten" | "Identity" => name = &n.input[0],
            other => return Err(format!("{other} between the GRU and the scoring head is not recognised")),
        }
    };
    let hidden = attr(gru, "hidden_size").map(|a| a.i as usize).ok_or("the GRU has no hidden_size")?;
    if hidden != hs {
        return Err(format!("the GRU's hidden size {hidden} does not match the head's {hs} rows"));
    }
    if let Some(d) = attr(gru, "direction") {
        if d.s != b"forward" {
            return Err(format!("the GRU is {} (only forward is recognised)", String::from_utf8_lossy(&d.s)));
        }
    }
    if attr(gru, "activations").is_some() || attr(gru, "clip").is_some() || attr(gru, "layout").is_some_and(|a| a.i != 0) {
        return Err("the GRU sets activations, clip or layout (only the defaults are recognised)".into());
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

    // Input: Transpose(perm 1,0,2) of Gather(embedding, the graph input).
    let x = graph.node(&gru.input[0]).ok_or("the GRU's input is not computed by a node")?;
    let gather = match x.op_type.as_str() {
        "Transpose" if attr(x, "perm").is_some_and(|a| a.ints == [1, 0, 2]) => {
            graph.node(&x.input[0]).ok_or("the Transpose has no producer")?
        }
        _ => return Err("the GRU's input is not a [1, 0, 2] Transpose of an embedding lookup".into()),
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
