//! Recognising the windowed-transition recommender `foresight-export train` writes, walking
//! back from the scoring head:
//!
//! ```text
//! scores  = Add(MatMul(query, Vᵀ), bias)
//! query   = Add(MatMul(w [1, R], Gather(E, Reshape(Slice(Concat(pad, item_seq), -R..), -1))),
//!               Mul(ReduceMean(Gather(E, Reshape(item_seq, -1)), axes 0), history_weight))
//! ```
//!
//! optionally plus a repeat term (each of the last R' input items adds its weight to its own
//! score):
//!
//! ```text
//! scores  = Add(head, MatMul(r [1, R'], Cast(Equal(Reshape(Slice(Concat(pad', item_seq), -R'..), [-1, 1]),
//!                                              [0, 1, …, items − 1]), float)))
//! ```
//!
//! (either operand order of the Adds and the Mul; `Identity` nodes passed through). The
//! padding row of `E` must be zero, and the repeat term's padding no item's index, so short
//! inputs need no padding on the SDK's kernel.

use tract_onnx::pb;

use crate::contract::manifest::TransitionSpec;
use crate::import::graph::{attr, decode, floats, graph_of, head_of, ints, output_name, Graph, ScoringHead};
use crate::infer::transition::TransitionModel;

type R<T> = Result<T, String>;

/// What computes `name`, through `Identity` nodes, checked to be `op` with `inputs` inputs.
fn node<'a>(g: &Graph<'a>, name: &str, op: &str, inputs: usize, what: &str) -> R<&'a pb::NodeProto> {
    let mut n = g.node(name).ok_or_else(|| format!("{what} is not computed by a node"))?;
    for _ in 0..64 {
        if n.op_type != "Identity" {
            break;
        }
        n = n.input.first().and_then(|i| g.node(i)).ok_or_else(|| format!("{what} is not computed by a node"))?;
    }
    if n.op_type != op {
        return Err(format!("{what} comes from {}, not {op}", n.op_type));
    }
    if n.input.len() < inputs {
        return Err(format!("the {op} computing {what} has {} inputs, not {inputs}", n.input.len()));
    }
    Ok(n)
}

/// The operand of a binary node that `op` computes, and the other one.
fn split<'a>(g: &Graph<'_>, n: &'a pb::NodeProto, op: &str) -> Option<(&'a str, &'a str)> {
    let is = |i: usize| g.node(&n.input[i]).is_some_and(|p| p.op_type == op);
    match (is(0), is(1)) {
        (true, false) => Some((&n.input[0], &n.input[1])),
        (false, true) => Some((&n.input[1], &n.input[0])),
        _ => None,
    }
}

/// A constant integer tensor's values.
fn const_ints(g: &Graph<'_>, name: &str) -> Option<Vec<i64>> {
    g.constant(name).and_then(ints)
}

/// `Reshape(x, [-1])`: x.
fn flatten<'a>(g: &Graph<'a>, name: &str, what: &str) -> R<&'a str> {
    let n = node(g, name, "Reshape", 2, what)?;
    if const_ints(g, &n.input[1]).as_deref() != Some(&[-1]) {
        return Err(format!("{what} is not reshaped to one axis"));
    }
    Ok(&n.input[0])
}

/// `Gather(E, indices)` on axis 0: (E's name, the indices).
fn gather<'a>(g: &Graph<'a>, name: &str, what: &str) -> R<(&'a str, &'a str)> {
    let n = node(g, name, "Gather", 2, what)?;
    if attr(n, "axis").is_some_and(|a| a.i != 0) {
        return Err(format!("{what} gathers along an axis other than 0"));
    }
    Ok((&n.input[0], &n.input[1]))
}

/// `Slice(x, -window.., axis 1)`: the Slice node.
fn last_positions<'a>(g: &Graph<'a>, name: &str, window: usize, what: &str) -> R<&'a pb::NodeProto> {
    let slice = node(g, name, "Slice", 3, what)?;
    let (starts, ends) = (const_ints(g, &slice.input[1]), const_ints(g, &slice.input[2]));
    let axes = slice.input.get(3).filter(|s| !s.is_empty()).map(|a| const_ints(g, a));
    let steps = slice.input.get(4).filter(|s| !s.is_empty()).map(|a| const_ints(g, a));
    if starts.as_deref() != Some(&[-(window as i64)])
        || !ends.as_deref().is_some_and(|e| matches!(e, [e] if *e >= i64::from(i32::MAX)))
        || !axes.is_some_and(|a| matches!(a.as_deref(), Some([1] | [-1])))
        || steps.is_some_and(|s| s.as_deref() != Some(&[1]))
    {
        return Err(format!("{what} is not the last {window} positions of the sequence axis"));
    }
    Ok(slice)
}

/// `Concat(pad, input)` on the sequence axis, `pad` being `window` copies of one index: that index.
fn padded_input(g: &Graph<'_>, name: &str, input: &str, window: usize, what: &str) -> R<i64> {
    let concat = node(g, name, "Concat", 2, what)?;
    if concat.input.len() != 2 || concat.input[1] != input || !attr(concat, "axis").is_some_and(|a| a.i == 1 || a.i == -1) {
        return Err(format!("{what} does not pad the input at the front along the sequence axis"));
    }
    let pad = const_ints(g, &concat.input[0]).ok_or_else(|| format!("{what}'s padding is not a constant"))?;
    match pad[..] {
        [p, ..] if pad.len() == window && pad.iter().all(|&q| q == p) => Ok(p),
        _ => Err(format!("{what}'s padding is not {window} copies of one index")),
    }
}

/// When `out` is `Add(head, repeat term)`: the head's name and the term (unchecked until the
/// item count is known, `repeat_weights`); else `out` itself.
fn split_repeat<'a>(g: &Graph<'a>, out: &'a str) -> (&'a str, Option<&'a pb::NodeProto>) {
    let Some(add) = g.node(out).filter(|n| n.op_type == "Add" && n.input.len() == 2) else { return (out, None) };
    let is_term = |i: usize| {
        g.node(&add.input[i])
            .filter(|m| m.op_type == "MatMul" && m.input.len() == 2)
            .filter(|m| g.node(&m.input[1]).is_some_and(|c| c.op_type == "Cast"))
    };
    match (is_term(0), is_term(1)) {
        (None, Some(term)) => (&add.input[0], Some(term)),
        (Some(term), None) => (&add.input[1], Some(term)),
        _ => (out, None),
    }
}

/// The repeat term's weights, oldest first, checked against its definition (module docs).
fn repeat_weights(g: &Graph<'_>, term: &pb::NodeProto, input: &str, items: usize) -> R<Vec<f32>> {
    let what = "the repeat term";
    let weights_t = g.constant(&term.input[0]).ok_or("the repeat weights are not a constant")?;
    let weights = floats(weights_t).ok_or("the repeat weights are not float32")?;
    let window = weights.len();
    if window == 0 || !matches!(weights_t.dims[..], [1, w] if w as usize == window) {
        return Err("the repeat weights are not a [1, window] row".into());
    }
    let cast = node(g, &term.input[1], "Cast", 1, what)?;
    if attr(cast, "to").is_none_or(|a| a.i != pb::tensor_proto::DataType::Float as i64) {
        return Err("the repeat term's one-hot rows are not cast to float32".into());
    }
    let equal = node(g, &cast.input[0], "Equal", 2, what)?;
    let (column, range) = match (g.constant(&equal.input[0]), g.constant(&equal.input[1])) {
        (None, Some(r)) => (&equal.input[0], r),
        (Some(r), None) => (&equal.input[1], r),
        _ => return Err("the repeat term does not compare the input with a constant row of item indices".into()),
    };
    let indices = ints(range).ok_or("the repeat term's item indices are not integers")?;
    if !matches!(range.dims[..], [1, n] if n as usize == items) || indices.iter().enumerate().any(|(i, &v)| v != i as i64) {
        return Err(format!("the repeat term does not compare with the item indices 0..{items} as a [1, {items}] row"));
    }
    let reshape = node(g, column, "Reshape", 2, what)?;
    if const_ints(g, &reshape.input[1]).as_deref() != Some(&[-1, 1]) {
        return Err("the repeat term's positions are not reshaped to a column".into());
    }
    let slice = last_positions(g, &reshape.input[0], window, what)?;
    let pad = padded_input(g, &slice.input[0], input, window, what)?;
    if (0..items as i64).contains(&pad) {
        return Err(format!("the repeat term pads with item {pad}: padding would count as a purchase"));
    }
    Ok(weights)
}

/// The recommender `foresight-export train` writes, or why `bytes` is not one.
pub fn from_onnx(bytes: &[u8], output: Option<&str>) -> R<TransitionModel> {
    let model = decode(bytes)?;
    let g = graph_of(&model)?;
    let (head, repeat) = split_repeat(&g, output_name(&model, output)?);
    let ScoringHead { input: query, hidden: dim, items, matrix, bias, .. } = head_of(&g, head)?;
    let bias = bias.unwrap_or_else(|| vec![0.0; items]);
    let [input] = g.inputs[..] else {
        return Err(format!("the graph has {} inputs; the transition recommender reads one item sequence", g.inputs.len()));
    };
    let repeat_weights = repeat.map(|term| repeat_weights(&g, term, input, items)).transpose()?.unwrap_or_default();

    // query = recent + history.
    let sum = node(&g, &query, "Add", 2, "the query")?;
    let (recent, history) = split(&g, sum, "MatMul").ok_or("the query is not the sum of a recent-window MatMul and a history term")?;

    // The recent window: w [1, R] · Gather(E, Reshape(Slice(Concat(pad, input)))).
    let mm = node(&g, recent, "MatMul", 2, "the recent window")?;
    let weights_t = g.constant(&mm.input[0]).ok_or("the recency weights are not a constant")?;
    let weights = floats(weights_t).ok_or("the recency weights are not float32")?;
    let window = weights.len();
    if window == 0 || !matches!(weights_t.dims[..], [1, w] | [w] if w as usize == window) {
        return Err("the recency weights are not a [1, window] row".into());
    }
    let (table, indices) = gather(&g, &mm.input[1], "the recent window's factors")?;
    let slice = last_positions(&g, flatten(&g, indices, "the recent window")?, window, "the recent window")?;
    let pad = padded_input(&g, &slice.input[0], input, window, "the recent window")?;
    let pad_index = usize::try_from(pad).map_err(|_| format!("the recent window pads with row {pad}"))?;

    // The item factors E [rows, dim], rows ≥ items; the padding row is zero.
    let e_t = g.constant(table).ok_or("the item factors are not a constant")?;
    let rows = match e_t.dims[..] {
        [r, d] if r >= items as i64 && d == dim as i64 => r as usize,
        _ => return Err(format!("the item factors are not [≥{items}, {dim}]")),
    };
    let e = floats(e_t).filter(|v| Some(v.len()) == rows.checked_mul(dim)).ok_or("the item factors are not float32 of their shape")?;
    if pad_index >= rows || e[pad_index * dim..(pad_index + 1) * dim].iter().any(|&x| x != 0.0) {
        return Err("the padding does not index a zero row of the item factors".into());
    }

    // The history: Mul(ReduceMean(Gather(E, Reshape(input)), axes 0), weight).
    let mul = node(&g, history, "Mul", 2, "the history term")?;
    let (mean, weight) = split(&g, mul, "ReduceMean").ok_or("the history term is not a ReduceMean times a weight")?;
    let history_weight = g.scalar(weight).ok_or("the history weight is not one float32 constant")?;
    let mean = node(&g, mean, "ReduceMean", 1, "the history mean")?;
    let axes = attr(mean, "axes").map(|a| a.ints.clone()).or_else(|| mean.input.get(1).and_then(|a| const_ints(&g, a)));
    if axes.as_deref() != Some(&[0]) {
        return Err("the history mean is not over the positions (axis 0)".into());
    }
    let (table_h, indices_h) = gather(&g, &mean.input[0], "the history's factors")?;
    if table_h != table || flatten(&g, indices_h, "the history")? != input {
        return Err("the history does not gather the input's rows of the same item factors".into());
    }

    let spec = TransitionSpec { items, dim, recency_weights: weights, history_weight, repeat_weights };
    let mut blob = e[..items * dim].to_vec();
    blob.extend_from_slice(&matrix);
    blob.extend_from_slice(&bias);
    TransitionModel::new(spec, &blob).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_graphs_are_refused_with_a_reason() {
        assert!(from_onnx(b"not a protobuf", None).unwrap_err().contains("not an ONNX protobuf"));
        assert!(from_onnx(&[0xff; 7], None).is_err());
    }
}
