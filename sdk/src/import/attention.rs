//! Recognising a SASRec-style graph, walking back from the scoring head.

use tract_onnx::pb;

use crate::contract::manifest::{Activation, AttentionSpec, NormPlacement};
use crate::import::graph::{attr, decode, floats, graph_of, head_of, ints, output_name, Graph, ScoringHead};
use crate::infer::attention::AttentionModel;

type R<T> = Result<T, String>;

/// What computes `name`, skipping nodes that pass their input through.
fn producer<'a>(g: &Graph<'a>, name: &str, what: &str) -> R<&'a pb::NodeProto> {
    let missing = || format!("{what} is not computed by a node");
    let mut n = g.node(name).ok_or_else(missing)?;
    for _ in 0..64 {
        if !matches!(n.op_type.as_str(), "Identity" | "Dropout") {
            return well_formed(n);
        }
        n = g.node(n.input.first().ok_or_else(missing)?).ok_or_else(missing)?;
    }
    Err(format!("{what} passes through a cycle of Identity nodes"))
}

/// `n` when it has the inputs its operator needs, so the walk can index them.
fn well_formed(n: &pb::NodeProto) -> R<&pb::NodeProto> {
    let needs = match n.op_type.as_str() {
        "Where" | "Slice" => 3,
        "MatMul" | "Add" | "Mul" | "Div" | "Gather" | "Reshape" | "LayerNormalization" => 2,
        _ => 1,
    };
    if n.input.len() < needs {
        return Err(format!("node `{}` ({}) has {} inputs; the operator needs {needs}", n.name, n.op_type, n.input.len()));
    }
    Ok(n)
}

struct Lin {
    input: String,
    rows: usize,
    cols: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// `MatMul(x, W) [+ b]` with constant `W` `[rows, cols]` and `b` `[cols]`, bias on either side.
fn linear(g: &Graph<'_>, name: &str, what: &str) -> R<Lin> {
    let n = producer(g, name, what)?;
    let (mm, bias) = match n.op_type.as_str() {
        "Add" => {
            let pick = |c: usize| -> Option<(&pb::NodeProto, Vec<f32>)> {
                let b = g.floats(&n.input[c])?;
                let m = producer(g, &n.input[1 - c], what).ok()?;
                (m.op_type == "MatMul").then_some((m, b))
            };
            let (m, b) = pick(1).or_else(|| pick(0)).ok_or_else(|| format!("{what} is an Add that is not MatMul + constant bias"))?;
            (m, Some(b))
        }
        "MatMul" => (n, None),
        other => return Err(format!("{what} comes from {other}, not a linear layer (MatMul + bias)")),
    };
    let w = g.constant(&mm.input[1]).ok_or_else(|| format!("the weight of {what} is not a constant"))?;
    if w.dims.len() != 2 {
        return Err(format!("the weight of {what} is not 2-D"));
    }
    let (rows, cols) = (w.dims[0] as usize, w.dims[1] as usize);
    let weight = floats(w).filter(|v| v.len() == rows * cols).ok_or_else(|| format!("the weight of {what} is not float32 of its shape"))?;
    let bias = bias.unwrap_or_else(|| vec![0.0; cols]);
    if bias.len() != cols {
        return Err(format!("the bias of {what} has {} values for {cols} outputs", bias.len()));
    }
    Ok(Lin { input: mm.input[0].clone(), rows, cols, weight, bias })
}

/// `LayerNormalization` over the last axis: (its input, γ, β, ε).
fn layer_norm(g: &Graph<'_>, name: &str, what: &str) -> R<(String, Vec<f32>, Vec<f32>, f32)> {
    let n = producer(g, name, what)?;
    if n.op_type != "LayerNormalization" {
        return Err(format!("{what} comes from {}, not LayerNormalization", n.op_type));
    }
    if attr(n, "axis").is_some_and(|a| a.i != -1 && a.i != 2) {
        return Err(format!("{what} normalizes an axis other than the last"));
    }
    let gamma = g.floats(&n.input[1]).ok_or_else(|| format!("the scale of {what} is not a float32 constant"))?;
    let beta = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(b) => g.floats(b).ok_or_else(|| format!("the bias of {what} is not a float32 constant"))?,
        None => vec![0.0; gamma.len()],
    };
    let eps = attr(n, "epsilon").map_or(1e-5, |a| a.f);
    Ok((n.input[0].clone(), gamma, beta, eps))
}

/// `x + branch` where the branch ends in a linear layer: (x, the branch's output name).
fn residual<'a>(g: &Graph<'a>, name: &str, what: &str) -> R<(&'a str, &'a str)> {
    let n = producer(g, name, what)?;
    if n.op_type != "Add" || n.input.len() != 2 {
        return Err(format!("{what} is {}, not a residual Add", n.op_type));
    }
    let is_linear = |i: usize| g.constant(&n.input[i]).is_none() && linear(g, &n.input[i], what).is_ok();
    match (is_linear(0), is_linear(1)) {
        (false, true) => Ok((&n.input[0], &n.input[1])),
        (true, false) => Ok((&n.input[1], &n.input[0])),
        _ => Err(format!("{what} is not a residual Add of the stream and a linear branch")),
    }
}

/// Every node that `from` depends on, back to (not through) LayerNormalization nodes.
fn subgraph<'a>(g: &Graph<'a>, from: &str) -> Vec<&'a pb::NodeProto> {
    let mut seen: Vec<&pb::NodeProto> = Vec::new();
    let mut todo = vec![from.to_owned()];
    while let Some(name) = todo.pop() {
        let Some(n) = g.node(&name).and_then(|n| well_formed(n).ok()) else { continue };
        if seen.iter().any(|s| std::ptr::eq(*s, n)) {
            continue;
        }
        seen.push(n);
        if n.op_type != "LayerNormalization" {
            todo.extend(n.input.iter().filter(|i| !i.is_empty() && g.constant(i).is_none()).cloned());
        }
    }
    seen
}

struct Attn {
    /// The QKV projection; its input is what the attention reads (LN1's output in pre-LN
    /// blocks, the residual stream in post-LN ones).
    qkv: Lin,
    heads: usize,
    scale: f32,
}

/// The attention that computes its output projection's input, back to the QKV projection.
fn attention(g: &Graph<'_>, proj_input: &str, dim: usize) -> R<Attn> {
    let nodes = subgraph(g, proj_input);
    let ops = |t: &str| nodes.iter().filter(|n| n.op_type == t).count();
    if ops("Softmax") != 1 {
        return Err(format!("the attention has {} Softmax nodes (one, over the keys, is recognised)", ops("Softmax")));
    }
    let split = nodes
        .iter()
        .find(|n| n.op_type == "Split")
        .ok_or("the queries, keys and values are not one projection Split in three (separate projections are not recognised)")?;
    let qkv = linear(g, &split.input[0], "the QKV projection")?;
    if qkv.rows != dim || qkv.cols != 3 * dim {
        return Err(format!("the QKV projection is {}×{}, expected {dim}×{}", qkv.rows, qkv.cols, 3 * dim));
    }
    if split.output.len() != 3 {
        return Err("the QKV Split does not have three outputs".into());
    }
    // Heads: the Reshape of the projections to [batch, seq, heads, dim/heads].
    let mut heads = None;
    for n in nodes.iter().filter(|n| n.op_type == "Reshape") {
        let shape = match g.constant(&n.input[1]).and_then(ints) {
            Some(s) => s,
            None => match g.node(&n.input[1]) {
                Some(c) if c.op_type == "Concat" => {
                    c.input.iter().map(|i| g.constant(i).and_then(ints).and_then(|v| (v.len() == 1).then(|| v[0])).unwrap_or(0)).collect()
                }
                _ => continue,
            },
        };
        if let [.., h, w] = shape[..] {
            if shape.len() == 4 && h > 0 && w > 0 && (h * w) as usize == dim {
                if heads.is_some_and(|x| x != h as usize) {
                    return Err("the attention reshapes to different head counts".into());
                }
                heads = Some(h as usize);
            }
        }
    }
    let heads = heads.ok_or("the number of heads could not be read from a Reshape to [batch, seq, heads, dim/heads]")?;
    // The logits' scale: a scalar Mul or Div between the q·k MatMul and the Softmax.
    let softmax = nodes.iter().find(|n| n.op_type == "Softmax").ok_or("no Softmax")?;
    if attr(softmax, "axis").is_some_and(|a| a.i != -1 && a.i != 3) {
        return Err("the Softmax is not over the last axis".into());
    }
    let mut scale = 1f32;
    let mut name = softmax.input[0].as_str();
    for step in 0.. {
        if step == 64 {
            return Err("the attention logits pass through a cycle".into());
        }
        let n = producer(g, name, "the attention logits")?;
        match n.op_type.as_str() {
            "MatMul" => break,
            "Where" if n.input.len() == 3 => name = if g.constant(&n.input[1]).is_some() { &n.input[2] } else { &n.input[1] },
            "Mul" | "Div" => {
                let (c, other) = match (g.scalar(&n.input[1]), g.scalar(&n.input[0])) {
                    (Some(c), _) => (c, &n.input[0]),
                    (None, Some(c)) if n.op_type == "Mul" => (c, &n.input[1]),
                    _ => return Err("the attention logits are scaled by a non-constant".into()),
                };
                scale *= if n.op_type == "Mul" { c } else { 1.0 / c };
                name = other;
            }
            "Cast" => name = &n.input[0],
            other => {
                return Err(format!(
                    "{other} between the q·k MatMul and the Softmax is not recognised (a causal Where mask and a scale are)"
                ))
            }
        }
    }
    Ok(Attn { qkv, heads, scale })
}

/// The activation between ff1's output and ff2's input, from the ops on the way.
fn activation(g: &Graph<'_>, ff2_input: &str, ff1_out_is: impl Fn(&str) -> bool) -> R<(String, Activation)> {
    let mut ops = Vec::new();
    let mut todo = vec![ff2_input.to_owned()];
    let mut ff1 = None;
    let mut steps = 0;
    while let Some(name) = todo.pop() {
        steps += 1;
        if steps > 32 {
            return Err("the feed-forward's activation is not recognised (too many ops)".into());
        }
        if ff1_out_is(&name) {
            ff1 = Some(name);
            continue;
        }
        let n = producer(g, &name, "the feed-forward's activation")?;
        ops.push(n.op_type.as_str());
        if n.op_type == "Gelu" {
            ops.push(if attr(n, "approximate").is_some_and(|a| a.s == b"tanh") { "Tanh" } else { "Erf" });
        }
        todo.extend(n.input.iter().filter(|i| !i.is_empty() && g.constant(i).is_none()).cloned());
    }
    let ff1 = ff1.ok_or("the feed-forward's second layer does not read its first")?;
    let act = if ops.contains(&"Erf") {
        Activation::GeluErf
    } else if ops.contains(&"Tanh") {
        Activation::GeluTanh
    } else if ops == ["Relu"] {
        Activation::Relu
    } else {
        return Err(format!("the feed-forward's activation ({}) is not GELU or ReLU", ops.join(", ")));
    };
    Ok((ff1, act))
}

struct BlockW {
    ln1: (Vec<f32>, Vec<f32>),
    qkv: Lin,
    proj: Lin,
    ln2: (Vec<f32>, Vec<f32>),
    ff1: Lin,
    ff2: Lin,
    eps: f32,
    heads: usize,
    scale: f32,
    act: Activation,
}

/// The weights of a SASRec-style graph, or why the graph is not one.
pub fn from_onnx(bytes: &[u8], output: Option<&str>) -> Result<AttentionModel, String> {
    let model = decode(bytes)?;
    let g = graph_of(&model)?;
    let ScoringHead { input: head_in, hidden: dim, items, matrix: head, bias, .. } = head_of(&g, output_name(&model, output)?)?;
    let bias = bias.unwrap_or_else(|| vec![0.0; items]);

    // The last position: Gather(axis 1, index -1) of the last block's output, or of the
    // final LayerNorm over it.
    let last = producer(&g, &head_in, "the scoring head's input")?;
    let index = g.constant(last.input.get(1).map_or("", String::as_str)).and_then(ints);
    if last.op_type != "Gather" || attr(last, "axis").map_or(0, |a| a.i) != 1 || index.as_deref() != Some(&[-1]) {
        return Err(format!("the scoring head reads {}, not the last position (Gather axis 1, index -1)", last.op_type));
    }
    let top = last.input[0].as_str();
    // Four shapes end here: pre-LN blocks end in a residual Add, with or without a final
    // LayerNorm over it; post-LN blocks end in their second LayerNorm, with or without a
    // final one after it. A LayerNorm over an Add is either pre-LN's final one or post-LN's
    // last block's: the blocks' walk tells which.
    let top_op = producer(&g, top, "the final LayerNorm")?.op_type.as_str();
    let (Parsed { mut blocks, embedding: (emb_name, scale_e, pos, input) }, norm, final_ln) = if top_op != "LayerNormalization" {
        let parsed = walk_blocks(&g, top, dim, NormPlacement::Pre).map_err(|e| {
            format!(
                "the final LayerNorm comes from {top_op}, not LayerNormalization; nor is `{top}` the output of pre-LN blocks without one: {e}"
            )
        })?;
        (parsed, NormPlacement::Pre, None)
    } else {
        let (inner, gf, bf, eps_f) = layer_norm(&g, top, "the final LayerNorm")?;
        let inner_is_ln = producer(&g, &inner, "the final LayerNorm's input").is_ok_and(|n| n.op_type == "LayerNormalization");
        if inner_is_ln {
            (walk_blocks(&g, &inner, dim, NormPlacement::Post)?, NormPlacement::Post, Some((gf, bf, eps_f)))
        } else {
            match walk_blocks(&g, &inner, dim, NormPlacement::Pre) {
                Ok(parsed) => (parsed, NormPlacement::Pre, Some((gf, bf, eps_f))),
                Err(pre) => match walk_blocks(&g, top, dim, NormPlacement::Post) {
                    Ok(parsed) => (parsed, NormPlacement::Post, None),
                    Err(post) => return Err(format!("as pre-LN blocks under a final LayerNorm: {pre}; as post-LN blocks: {post}")),
                },
            }
        }
    };
    if let Some(eps_f) = final_ln.as_ref().map(|f| f.2) {
        if blocks.iter().any(|b| b.eps != eps_f) {
            return Err("the LayerNorms use different epsilons".into());
        }
    }
    blocks.reverse();
    let Some(first) = blocks.first() else { return Err("no attention block before the final LayerNorm".into()) };
    if blocks.iter().any(|b| b.heads != first.heads || b.scale != first.scale || b.act != first.act || b.ff1.cols != first.ff1.cols) {
        return Err("the blocks differ in heads, scale, activation or width (one shape for all is recognised)".into());
    }
    if !g.inputs.contains(&input.as_str()) {
        return Err("the embedding lookup does not read the graph's input".into());
    }
    let emb_t = g.constant(&emb_name).ok_or("the embedding table is not a constant")?;
    if emb_t.dims.len() != 2 || emb_t.dims[1] as usize != dim {
        return Err(format!("the embedding table is not [rows, {dim}]"));
    }
    let embedding = floats(emb_t).ok_or("the embedding table is not float32")?;
    let pos_t = g.constant(&pos).ok_or("the positions are not a constant")?;
    if pos_t.dims.len() != 2 || pos_t.dims[1] as usize != dim {
        return Err(format!("the learned positions are not [positions, {dim}]"));
    }
    let positions = floats(pos_t).ok_or("the positions are not float32")?;
    let spec = AttentionSpec {
        items,
        embedding_rows: emb_t.dims[0] as usize,
        dim,
        heads: first.heads,
        blocks: blocks.len(),
        ffn: first.ff1.cols,
        positions: pos_t.dims[0] as usize,
        embedding_scale: scale_e,
        attention_scale: first.scale,
        epsilon: first.eps,
        activation: first.act,
        norm,
        final_norm: final_ln.is_some(),
    };
    let mut blob = embedding;
    blob.extend(positions);
    for b in blocks {
        for part in [
            b.ln1.0,
            b.ln1.1,
            b.qkv.weight,
            b.qkv.bias,
            b.proj.weight,
            b.proj.bias,
            b.ln2.0,
            b.ln2.1,
            b.ff1.weight,
            b.ff1.bias,
            b.ff2.weight,
            b.ff2.bias,
        ] {
            blob.extend(part);
        }
    }
    if let Some((gf, bf, _)) = final_ln {
        blob.extend(gf);
        blob.extend(bf);
    }
    blob.extend(head);
    blob.extend(bias);
    AttentionModel::new(spec, &blob).map_err(|e| e.to_string())
}

/// The blocks (last first) and the embedding lookup under them.
struct Parsed {
    blocks: Vec<BlockW>,
    /// (embedding, scale, positions, graph input), from [`embedding_input`].
    embedding: (String, f32, String, String),
}

/// Two names for the same tensor, `Identity` and `Dropout` aside.
fn same(g: &Graph<'_>, a: &str, b: &str) -> bool {
    a == b || matches!((producer(g, a, "a"), producer(g, b, "b")), (Ok(x), Ok(y)) if std::ptr::eq(x, y))
}

/// Walks attention blocks back from `stream` (the last block's output) to the embedding
/// lookup. Pre-LN: `x + attn(LN1(x))`, then `+ ff(LN2(·))`. Post-LN: `LN1(x + attn(x))`, then
/// `LN2(· + ff(·))`.
fn walk_blocks(g: &Graph<'_>, stream: &str, dim: usize, norm: NormPlacement) -> R<Parsed> {
    let post = norm == NormPlacement::Post;
    let mut stream = stream.to_owned();
    let mut blocks = Vec::new();
    loop {
        if let Some(found) = embedding_input(g, &stream)? {
            if blocks.is_empty() {
                return Err("no attention block before the scoring head".into());
            }
            return Ok(Parsed { blocks, embedding: found });
        }
        if blocks.len() >= 64 {
            return Err("more than 64 blocks".into());
        }
        let what = format!("block {} (from the end)", blocks.len() + 1);
        // Post-LN: the block's output is LN2 of the feed-forward's residual sum.
        let (ff_sum, ln2_post) = if post {
            let (sum, g2, b2, eps2) = layer_norm(g, &stream, &format!("the output of {what}"))?;
            (sum, Some((g2, b2, eps2)))
        } else {
            (stream.clone(), None)
        };
        let (mid, ff_out) = residual(g, &ff_sum, &format!("the output of {what}"))?;
        let ff2 = linear(g, ff_out, &format!("the feed-forward output of {what}"))?;
        // ff1 is the linear layer on the path from ff2 back to the feed-forward's input: LN2's
        // output (pre-LN) or the residual stream itself (post-LN).
        let is_ff1 = |n: &str| {
            linear(g, n, "ff1")
                .is_ok_and(|l| l.cols == ff2.rows && if post { same(g, &l.input, mid) } else { layer_norm(g, &l.input, "ln2").is_ok() })
        };
        let (ff1_out, act) = activation(g, &ff2.input, is_ff1)?;
        let ff1 = linear(g, &ff1_out, &format!("the feed-forward input of {what}"))?;
        let (att_sum, ln1_post, ln2, eps2) = match ln2_post {
            Some((g2, b2, eps2)) => {
                let (sum, g1, b1, eps1) = layer_norm(g, mid, &format!("the attention's LayerNorm in {what}"))?;
                if eps1 != eps2 {
                    return Err("the LayerNorms use different epsilons".into());
                }
                (sum, Some((g1, b1)), (g2, b2), eps2)
            }
            None => {
                let (ln2_in, g2, b2, eps2) = layer_norm(g, &ff1.input, &format!("the feed-forward's LayerNorm in {what}"))?;
                if ln2_in != mid {
                    return Err(format!("the feed-forward of {what} does not read the residual stream through its LayerNorm"));
                }
                (mid.to_owned(), None, (g2, b2), eps2)
            }
        };
        let (x_in, att_out) = residual(g, &att_sum, &format!("the attention output of {what}"))?;
        let proj = linear(g, att_out, &format!("the attention projection of {what}"))?;
        if proj.rows != dim || proj.cols != dim || ff2.cols != dim || ff1.rows != dim {
            return Err(format!("the layer shapes of {what} do not match the head's width {dim}"));
        }
        let a = attention(g, &proj.input, dim).map_err(|e| format!("{what}: {e}"))?;
        let ln1 = match ln1_post {
            Some(ln1) => {
                if !same(g, &a.qkv.input, x_in) {
                    return Err(format!("the attention of {what} does not read the residual stream"));
                }
                ln1
            }
            None => {
                let (ln_input, g1, b1, eps1) = layer_norm(g, &a.qkv.input, &format!("the attention's LayerNorm in {what}"))?;
                if ln_input != x_in {
                    return Err(format!("the attention of {what} does not read the residual stream through its LayerNorm"));
                }
                if eps1 != eps2 {
                    return Err("the LayerNorms use different epsilons".into());
                }
                (g1, b1)
            }
        };
        blocks.push(BlockW { ln1, qkv: a.qkv, proj, ln2, ff1, ff2, eps: eps2, heads: a.heads, scale: a.scale, act });
        stream = x_in.to_owned();
    }
}

/// `Gather(embedding, input) [· scale] + Slice(positions, 0, len)`: (embedding, scale,
/// positions, input), or `None` when `name` is not that (it is then a block's output).
fn embedding_input(g: &Graph<'_>, name: &str) -> R<Option<(String, f32, String, String)>> {
    let n = producer(g, name, "the residual stream")?;
    if n.op_type != "Add" || n.input.len() != 2 {
        return Ok(None);
    }
    let slice_of = |i: usize| producer(g, &n.input[i], "positions").ok().filter(|s| s.op_type == "Slice");
    let (slice, other) = match (slice_of(0), slice_of(1)) {
        (Some(s), None) => (s, &n.input[1]),
        (None, Some(s)) => (s, &n.input[0]),
        _ => return Ok(None),
    };
    let starts = g.constant(&slice.input[1]).and_then(ints);
    let axes = slice.input.get(3).and_then(|a| g.constant(a)).and_then(ints);
    if starts.as_deref() != Some(&[0])
        || axes.as_deref().is_some_and(|a| a != [0])
        || slice.input.get(4).and_then(|s| g.constant(s)).and_then(ints).is_some_and(|s| s != [1])
    {
        return Err("the learned positions are not sliced from the first (Slice starts 0, axis 0, step 1)".into());
    }
    let mut scale = 1f32;
    let mut e = producer(g, other, "the item embedding")?;
    for step in 0.. {
        if !matches!(e.op_type.as_str(), "Mul" | "Div") {
            break;
        }
        if step == 64 {
            return Err("the item embedding passes through a cycle".into());
        }
        let (c, rest) = match (g.scalar(&e.input[1]), g.scalar(&e.input[0])) {
            (Some(c), _) => (c, &e.input[0]),
            (None, Some(c)) if e.op_type == "Mul" => (c, &e.input[1]),
            _ => return Err("the item embedding is scaled by a non-constant".into()),
        };
        scale *= if e.op_type == "Mul" { c } else { 1.0 / c };
        e = producer(g, rest, "the item embedding")?;
    }
    if e.op_type != "Gather" || attr(e, "axis").is_some_and(|a| a.i != 0) {
        return Err(format!("the item embedding comes from {}, not an embedding lookup (Gather on axis 0)", e.op_type));
    }
    Ok(Some((e.input[0].clone(), scale, slice.input[0].clone(), e.input[1].clone())))
}
