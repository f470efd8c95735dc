//! Recognising purchase-intent models the SDK runs without tract ([`crate::infer::tabular`]):
//! ONNX-ML `LinearClassifier` / `LinearRegressor` / `TreeEnsembleClassifier` /
//! `TreeEnsembleRegressor` (ai.onnx.ml v1–v3, as skl2onnx and onnxmltools write them for
//! scikit-learn, LightGBM and XGBoost), and a PyTorch logistic regression (`Gemm`, or `MatMul`
//! [+ `Add`], then `Sigmoid` or `Softmax`). What may follow the model before the chosen output
//! is skipped when it does not change the values: `Identity`, `Cast` to float, a `Mul`/`Div` by
//! the constant 1 (onnxmltools), shape-only `Reshape`/`Squeeze`/`Unsqueeze`/`Flatten`; a `ZipMap`
//! output is traced back to the probability tensor it reads. A `Normalizer` (skl2onnx's
//! multi-class logistic regression) is kept and applied by the SDK too.
//!
//! Every quirk of onnxruntime that changes the numbers (see `infer::tabular`) is decided here,
//! from the attributes, so the SDK's kernels compute what onnxruntime computes. What cannot be
//! reproduced is refused with one sentence naming the node and the attribute.

use std::collections::HashMap;

use tract_onnx::pb;

use crate::import::graph::{attr, decode, floats, graph_of, Graph};
use crate::infer::tabular::{
    Aggregate, LeafWeight, LinearModel, LinearOutput, Normalize, PostTransform, Split, TabularModel, TreeNode, TreeRole, TreesModel,
};

/// A recognised model and the tensors it reads and writes.
#[derive(Debug, Clone)]
pub struct Recognised {
    pub model: TabularModel,
    /// The graph input holding the feature vector.
    pub input: String,
    /// The tensor whose values [`TabularModel::predict_into`] reproduces (a graph output, or
    /// the probability tensor a `ZipMap` reads).
    pub output: String,
    /// The node computing the model, `name (Op)`.
    pub node: String,
}

/// The model in an ONNX file, with the default input and output, or why it is not one the SDK
/// runs itself.
pub fn from_onnx(bytes: &[u8]) -> Result<TabularModel, String> {
    recognise(bytes, None, None, None).map(|r| r.model)
}

/// As [`from_onnx`], choosing the input and output (default: the first input, and the
/// `probabilities` output, or the first float32 output, or the tensor a `ZipMap` reads), and
/// checking the feature count when `n_features` is given.
pub fn recognise(bytes: &[u8], input: Option<&str>, output: Option<&str>, n_features: Option<usize>) -> Result<Recognised, String> {
    let model = decode(bytes)?;
    let g = model.graph.as_ref().ok_or("the model has no graph")?;
    let graph = graph_of(&model)?;
    let output = choose_output(g, &graph, output)?;

    // Walk back from the output to the model's node through value-preserving tails.
    let mut name = output.clone();
    let mut activation: Option<&pb::NodeProto> = None;
    let mut normalize = Normalize::None;
    let mut steps = 0;
    let core = loop {
        steps += 1;
        if steps > 64 {
            return Err(format!("more than 64 nodes between the model and its output `{output}`"));
        }
        let n = graph.node(&name).ok_or_else(|| format!("`{name}` is not computed by a node of the graph"))?;
        match n.op_type.as_str() {
            "LinearClassifier" | "LinearRegressor" | "TreeEnsembleClassifier" | "TreeEnsembleRegressor" | "TreeEnsemble"
                if n.domain == "ai.onnx.ml" =>
            {
                break n
            }
            "Gemm" | "MatMul" | "Add" => break n,
            "Identity" | "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten" => name = first_input(n)?,
            "Cast" => {
                if attr(n, "to").map(|a| a.i) != Some(pb::tensor_proto::DataType::Float as i64) {
                    return Err(format!("node {} casts the output to something other than float32", describe(n)));
                }
                name = first_input(n)?;
            }
            "Mul" | "Div" => {
                let unit = |i: usize| n.input.get(i).and_then(|t| graph.scalar(t)) == Some(1.0);
                name = match (unit(0), unit(1)) {
                    (_, true) => first_input(n)?,
                    (true, false) if n.op_type == "Mul" => n.input.get(1).cloned().unwrap_or_default(),
                    _ => return Err(format!("node {} scales the output by something other than the constant 1", describe(n))),
                };
            }
            "Normalizer" if n.domain == "ai.onnx.ml" && normalize == Normalize::None => {
                normalize = match attr(n, "norm").map(|a| a.s.as_slice()) {
                    Some(b"L1") => Normalize::L1,
                    Some(b"L2") => Normalize::L2,
                    None | Some(b"MAX") => Normalize::Max,
                    Some(other) => return Err(format!("node {} uses norm {}", describe(n), String::from_utf8_lossy(other))),
                };
                name = first_input(n)?;
            }
            "Sigmoid" | "Softmax" if activation.is_none() => {
                activation = Some(n);
                name = first_input(n)?;
            }
            _ => return Err(format!("node {} between the model and its output `{output}` is not recognised", describe(n))),
        }
    };
    if activation.is_some() && core.domain == "ai.onnx.ml" {
        return Err(format!("a Sigmoid or Softmax after node {} is not recognised", describe(core)));
    }
    let which = core.output.iter().position(|o| *o == name).unwrap_or(0);
    let expected = if matches!(core.op_type.as_str(), "LinearClassifier" | "TreeEnsembleClassifier") { 1 } else { 0 };
    if core.domain == "ai.onnx.ml" && which != expected {
        return Err(format!(
            "`{output}` is node {}'s predicted label, not its scores: choose its probability output `{}` (--output)",
            describe(core),
            core.output.get(expected).map(String::as_str).unwrap_or("?")
        ));
    }

    let declared = |name: &str| -> Option<usize> {
        let vi = g.input.iter().find(|i| i.name == name)?;
        let Some(pb::type_proto::Value::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else { return None };
        match t.shape.as_ref()?.dim.as_slice() {
            [_, d] => match d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => usize::try_from(v).ok(),
                _ => None,
            },
            _ => None,
        }
    };

    let node = describe(core);
    let (model, x) = match core.op_type.as_str() {
        "LinearClassifier" | "LinearRegressor" => {
            let x = trace_input(&graph, &first_input(core)?)?;
            (linear_ml(core, declared(&x).or(n_features))?, x)
        }
        "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => {
            let x = trace_input(&graph, &first_input(core)?)?;
            (trees(core, declared(&x).or(n_features))?, x)
        }
        "TreeEnsemble" => {
            return Err(format!(
                "node {node} is the ai.onnx.ml opset 5 TreeEnsemble, not recognised: convert with ai.onnx.ml opset 3 (target_opset={{'ai.onnx.ml': 3}})"
            ))
        }
        _ => linear_torch(&graph, core, activation, n_features)?,
    };
    if let Some(wanted) = input {
        if wanted != x {
            return Err(format!("node {node} reads the input `{x}`, not `{wanted}`"));
        }
    }
    if let (Some(d), Some(n)) = (declared(&x), n_features) {
        if d != n {
            return Err(format!("the input `{x}` takes {d} features, not {n}"));
        }
    }
    if let Some(n) = n_features {
        if model.n_features() != n {
            return Err(format!("node {node} reads {} features, not {n}", model.n_features()));
        }
    }
    Ok(Recognised { model: model.with_normalizer(normalize), input: x, output, node })
}

fn describe(n: &pb::NodeProto) -> String {
    let name = if n.name.is_empty() { n.output.first().map(String::as_str).unwrap_or("?") } else { n.name.as_str() };
    format!("`{name}` ({})", n.op_type)
}

fn first_input(n: &pb::NodeProto) -> Result<String, String> {
    n.input.first().filter(|s| !s.is_empty()).cloned().ok_or_else(|| format!("node {} has no input", describe(n)))
}

fn elem_type(vi: &pb::ValueInfoProto) -> Option<i32> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

/// The tensor to reproduce: `wanted`, or the `probabilities` output, or the first float32
/// output, or what a `ZipMap` output reads.
fn choose_output(g: &pb::GraphProto, graph: &Graph<'_>, wanted: Option<&str>) -> Result<String, String> {
    if let Some(w) = wanted {
        let zipmap = graph.node(w).filter(|n| n.op_type == "ZipMap");
        return match zipmap {
            Some(z) => first_input(z),
            None => Ok(w.to_owned()),
        };
    }
    if let Some(o) = g.output.iter().find(|o| o.name == "probabilities") {
        return Ok(o.name.clone());
    }
    let float = pb::tensor_proto::DataType::Float as i32;
    if let Some(o) = g.output.iter().find(|o| elem_type(o) == Some(float)) {
        return Ok(o.name.clone());
    }
    for o in &g.output {
        if let Some(z) = graph.node(&o.name).filter(|n| n.op_type == "ZipMap") {
            return first_input(z);
        }
    }
    Err("the graph has no float32 output (probabilities or scores) to reproduce".into())
}

/// `name` back to a graph input through Identity, Cast to float or Flatten.
fn trace_input(graph: &Graph<'_>, name: &str) -> Result<String, String> {
    let mut name = name.to_owned();
    for _ in 0..16 {
        if graph.inputs.contains(&name.as_str()) {
            return Ok(name);
        }
        let n = graph.node(&name).ok_or_else(|| format!("the model reads `{name}`, which is neither a graph input nor computed"))?;
        match n.op_type.as_str() {
            "Identity" | "Flatten" => name = first_input(n)?,
            "Cast" if attr(n, "to").map(|a| a.i) == Some(pb::tensor_proto::DataType::Float as i64) => name = first_input(n)?,
            _ => return Err(format!("node {} between the graph input and the model is not recognised", describe(n))),
        }
    }
    Err(format!("the model's input `{name}` is not a graph input"))
}

fn post_transform(n: &pb::NodeProto) -> Result<PostTransform, String> {
    match attr(n, "post_transform").map(|a| a.s.as_slice()) {
        None | Some(b"NONE") => Ok(PostTransform::None),
        Some(b"LOGISTIC") => Ok(PostTransform::Logistic),
        Some(b"SOFTMAX") => Ok(PostTransform::Softmax),
        Some(b"SOFTMAX_ZERO") => Ok(PostTransform::SoftmaxZero),
        Some(b"PROBIT") => Ok(PostTransform::Probit),
        Some(other) => Err(format!("node {} uses post_transform {}", describe(n), String::from_utf8_lossy(other))),
    }
}

fn class_count(n: &pb::NodeProto, ints: &str, strings: &str) -> usize {
    attr(n, ints).map(|a| a.ints.len()).filter(|&c| c > 0).or_else(|| attr(n, strings).map(|a| a.strings.len())).unwrap_or(0)
}

/// `LinearClassifier` / `LinearRegressor`, with onnxruntime's single-row conventions.
fn linear_ml(n: &pb::NodeProto, width: Option<usize>) -> Result<TabularModel, String> {
    let what = describe(n);
    let coefficients = attr(n, "coefficients").map(|a| a.floats.clone()).unwrap_or_default();
    if coefficients.is_empty() {
        return Err(format!("node {what} has no coefficients"));
    }
    let post = post_transform(n)?;
    let classifier = n.op_type == "LinearClassifier";
    let (rows, intercepts) = if classifier {
        let intercepts = attr(n, "intercepts").map(|a| a.floats.clone()).unwrap_or_default();
        if intercepts.is_empty() {
            return Err(format!("node {what} has no intercepts (onnxruntime counts its classes by them)"));
        }
        (intercepts.len(), intercepts)
    } else {
        let targets = attr(n, "targets").map(|a| a.i).ok_or_else(|| format!("node {what} has no targets attribute"))?;
        let rows = usize::try_from(targets).ok().filter(|&t| t > 0).ok_or_else(|| format!("node {what} has targets = {targets}"))?;
        // onnxruntime ignores intercepts whose count is not the target count.
        let intercepts = attr(n, "intercepts").map(|a| a.floats.clone()).filter(|v| v.len() == rows).unwrap_or_else(|| vec![0.0; rows]);
        (rows, intercepts)
    };
    if !coefficients.len().is_multiple_of(rows) {
        return Err(format!("node {what} has {} coefficients for {rows} rows", coefficients.len()));
    }
    let n_features = coefficients.len() / rows;
    if let Some(w) = width.filter(|&w| w != n_features) {
        return Err(format!("node {what} has {n_features} coefficients per row for {w} input features"));
    }
    let output = if rows > 1 {
        LinearOutput::Scores(post)
    } else if classifier && class_count(n, "classlabels_ints", "classlabels_strings") == 2 {
        if post == PostTransform::Probit {
            return Err(format!(
                "node {what} has one coefficient row, two classes and post_transform PROBIT: onnxruntime leaves its second probability unset"
            ));
        }
        // onnxruntime writes [1 − σ(s), σ(s)], or [1 − s, s] for the other transforms.
        if post == PostTransform::Logistic {
            LinearOutput::LogisticComplement
        } else {
            LinearOutput::Complement
        }
    } else if post == PostTransform::Probit {
        LinearOutput::Scores(PostTransform::Probit)
    } else {
        // onnxruntime applies no other transform to a single score.
        LinearOutput::Scores(PostTransform::None)
    };
    TabularModel::from_linear(LinearModel { n_features, coefficients, intercepts, output }).map_err(|e| format!("node {what}: {e}"))
}

/// A float attribute, or its `_as_tensor` twin when that holds float32.
fn float_attr(n: &pb::NodeProto, name: &str) -> Result<Option<Vec<f32>>, String> {
    if let Some(a) = attr(n, name).filter(|a| !a.floats.is_empty()) {
        return Ok(Some(a.floats.clone()));
    }
    let tensor = format!("{name}_as_tensor");
    match attr(n, &tensor).and_then(|a| a.t.as_ref()) {
        Some(t) => floats(t).map(Some).ok_or_else(|| {
            format!(
                "node {} stores {tensor} as a non-float32 tensor (double thresholds need double input): convert the model for float input",
                describe(n)
            )
        }),
        None => Ok(None),
    }
}

fn int_attr(n: &pb::NodeProto, name: &str) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_default()
}

/// `TreeEnsembleClassifier` / `TreeEnsembleRegressor`, as onnxruntime builds its trees.
fn trees(n: &pb::NodeProto, width: Option<usize>) -> Result<TabularModel, String> {
    let what = describe(n);
    let classifier = n.op_type == "TreeEnsembleClassifier";
    let post = post_transform(n)?;
    let n_targets = if classifier {
        class_count(n, "classlabels_int64s", "classlabels_strings")
    } else {
        attr(n, "n_targets").and_then(|a| usize::try_from(a.i).ok()).unwrap_or(0)
    };
    if n_targets == 0 {
        return Err(format!("node {what} declares no {}", if classifier { "class labels" } else { "n_targets" }));
    }
    let role = if classifier {
        if n_targets < 2 {
            return Err(format!("node {what} has a single class"));
        }
        let (ids, weights) = (int_attr(n, "class_ids"), float_attr(n, "class_weights")?.unwrap_or_default());
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let binary_case = n_targets == 2 && distinct.len() == 1;
        if binary_case && post == PostTransform::Probit {
            return Err(format!(
                "node {what} is a binary classifier with one score column and post_transform PROBIT: onnxruntime leaves its second probability unset"
            ));
        }
        TreeRole::Classifier { binary_case, weights_all_positive: weights.iter().all(|&w| w >= 0.0 || w.is_nan()) }
    } else {
        TreeRole::Regressor(match attr(n, "aggregate_function").map(|a| a.s.as_slice()) {
            None | Some(b"SUM") => Aggregate::Sum,
            Some(b"AVERAGE") => Aggregate::Average,
            Some(b"MIN") => Aggregate::Min,
            Some(b"MAX") => Aggregate::Max,
            Some(other) => return Err(format!("node {what} uses aggregate_function {}", String::from_utf8_lossy(other))),
        })
    };
    let base_values = float_attr(n, "base_values")?.unwrap_or_default();
    let base_ok = match role {
        TreeRole::Classifier { .. } => {
            base_values.is_empty() || base_values.len() == n_targets || (n_targets == 2 && base_values.len() == 1)
        }
        TreeRole::Regressor(_) => base_values.is_empty() || base_values.len() == 1 || base_values.len() == n_targets,
    };
    if !base_ok {
        return Err(format!("node {what} has {} base_values for {n_targets} outputs", base_values.len()));
    }

    let tree_ids = int_attr(n, "nodes_treeids");
    let node_ids = int_attr(n, "nodes_nodeids");
    let feature_ids = int_attr(n, "nodes_featureids");
    let true_ids = int_attr(n, "nodes_truenodeids");
    let false_ids = int_attr(n, "nodes_falsenodeids");
    let missing = int_attr(n, "nodes_missing_value_tracks_true");
    let modes: Vec<Vec<u8>> = attr(n, "nodes_modes").map(|a| a.strings.clone()).unwrap_or_default();
    let values = float_attr(n, "nodes_values")?.unwrap_or_default();
    let count = tree_ids.len();
    if count == 0 {
        return Err(format!("node {what} has no tree nodes"));
    }
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", values.len()),
    ] {
        if len != count {
            return Err(format!("node {what} has {len} {name} for {count} nodes"));
        }
    }
    let max_feature = feature_ids.iter().copied().max().unwrap_or(0);
    let n_features = match width {
        Some(w) => w,
        None => usize::try_from(max_feature).map_err(|_| format!("node {what} reads feature {max_feature}"))? + 1,
    };

    // The node table as onnxruntime keys it: (tree id, node id) → position.
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(count);
    let mut splits: Vec<Option<Split>> = Vec::with_capacity(count);
    for i in 0..count {
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return Err(format!("node {what} lists node {} of tree {} twice", node_ids[i], tree_ids[i]));
        }
        splits.push(match modes[i].as_slice() {
            b"LEAF" => None,
            b"BRANCH_LEQ" => Some(Split::Leq),
            b"BRANCH_LT" => Some(Split::Lt),
            b"BRANCH_GTE" => Some(Split::Gte),
            b"BRANCH_GT" => Some(Split::Gt),
            b"BRANCH_EQ" => Some(Split::Eq),
            b"BRANCH_NEQ" => Some(Split::Neq),
            other => return Err(format!("node {what} uses nodes_modes {}", String::from_utf8_lossy(other))),
        });
        if splits[i].is_some() && !(0..i64::try_from(n_features).unwrap_or(i64::MAX)).contains(&feature_ids[i]) {
            return Err(format!("node {what} splits on feature {} of an input of {n_features}", feature_ids[i]));
        }
    }
    let child = |i: usize, id: i64, side: &str| -> Result<usize, String> {
        index.get(&(tree_ids[i], id)).copied().filter(|&c| c != i).ok_or_else(|| {
            format!("node {what}: node {} of tree {} has {side} child {id}, which is not a node of that tree", node_ids[i], tree_ids[i])
        })
    };
    let mut children = vec![(0usize, 0usize); count];
    for i in 0..count {
        if splits[i].is_some() {
            children[i] = (child(i, true_ids[i], "true")?, child(i, false_ids[i], "false")?);
        }
    }

    // Leaf weights, in attribute order per leaf; weights on branches are ignored (onnxruntime).
    let prefix = if classifier { "class" } else { "target" };
    let w_ids = int_attr(n, &format!("{prefix}_ids"));
    let w_nodes = int_attr(n, &format!("{prefix}_nodeids"));
    let w_trees = int_attr(n, &format!("{prefix}_treeids"));
    let w_values = float_attr(n, &format!("{prefix}_weights"))?.unwrap_or_default();
    if w_nodes.len() != w_ids.len() || w_trees.len() != w_ids.len() || w_values.len() != w_ids.len() {
        return Err(format!("node {what}'s {prefix}_ids, _nodeids, _treeids and _weights differ in length"));
    }
    let mut leaf_weights: Vec<Vec<LeafWeight>> = vec![Vec::new(); count];
    for k in 0..w_ids.len() {
        let &leaf = index
            .get(&(w_trees[k], w_nodes[k]))
            .ok_or_else(|| format!("node {what} has a weight for node {} of tree {}, which does not exist", w_nodes[k], w_trees[k]))?;
        if splits[leaf].is_some() {
            continue;
        }
        let target = u32::try_from(w_ids[k])
            .ok()
            .filter(|&t| (t as usize) < n_targets)
            .ok_or_else(|| format!("node {what} has a weight for {prefix} {} of {n_targets}", w_ids[k]))?;
        leaf_weights[leaf].push(LeafWeight { target, value: w_values[k] });
    }

    // Roots: the first node of each run of one tree id, as onnxruntime finds them.
    let mut roots_old = Vec::new();
    for i in 0..count {
        if i == 0 || tree_ids[i] != tree_ids[i - 1] {
            roots_old.push(i);
        }
    }

    // Renumber reachable nodes so every child comes after its parent (reverse post-order),
    // refusing cycles.
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; count];
    let mut post_order = Vec::with_capacity(count);
    for &root in &roots_old {
        if state[root] == DONE {
            continue;
        }
        let mut stack = vec![(root, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                state[i] = DONE;
                post_order.push(i);
                continue;
            }
            match state[i] {
                DONE => continue,
                OPEN => return Err(format!("node {what}: tree {} loops back to node {}", tree_ids[i], node_ids[i])),
                _ => {}
            }
            state[i] = OPEN;
            stack.push((i, true));
            if splits[i].is_some() {
                let (t, f) = children[i];
                for c in [f, t] {
                    match state[c] {
                        OPEN => return Err(format!("node {what}: tree {} loops back to node {}", tree_ids[c], node_ids[c])),
                        NEW => stack.push((c, false)),
                        _ => {}
                    }
                }
            }
        }
    }
    post_order.reverse();
    let mut new_index = vec![u32::MAX; count];
    for (new, &old) in post_order.iter().enumerate() {
        new_index[old] = u32::try_from(new).map_err(|_| format!("node {what} has too many nodes"))?;
    }
    let mut nodes = Vec::with_capacity(post_order.len());
    let mut weights = Vec::new();
    for &old in &post_order {
        nodes.push(match splits[old] {
            Some(split) => TreeNode::Branch {
                feature: feature_ids[old] as u32,
                split,
                threshold: values[old],
                missing_true: missing.get(old) == Some(&1),
                if_true: new_index[children[old].0],
                if_false: new_index[children[old].1],
            },
            None => {
                if leaf_weights[old].is_empty() {
                    return Err(format!("node {what}: leaf {} of tree {} has no weight", node_ids[old], tree_ids[old]));
                }
                let first = weights.len() as u32;
                weights.extend_from_slice(&leaf_weights[old]);
                TreeNode::Leaf { first, count: leaf_weights[old].len() as u32 }
            }
        });
    }
    let roots = roots_old.iter().map(|&r| new_index[r]).collect();
    TabularModel::from_trees(TreesModel { n_features, n_targets, role, post, base_values, roots, nodes, weights })
        .map_err(|e| format!("node {what}: {e}"))
}

/// A PyTorch logistic regression: `Gemm(x, W, b)`, `MatMul(x, W) [+ b]`, then `Sigmoid`,
/// `Softmax` or nothing.
fn linear_torch(
    graph: &Graph<'_>,
    core: &pb::NodeProto,
    activation: Option<&pb::NodeProto>,
    n_features: Option<usize>,
) -> Result<(TabularModel, String), String> {
    let what = describe(core);
    let constant = |name: &str, role: &str| -> Result<(Vec<f32>, Vec<i64>), String> {
        let t = graph.constant(name).ok_or_else(|| format!("node {what}'s {role} `{name}` is not a constant"))?;
        Ok((floats(t).ok_or_else(|| format!("node {what}'s {role} is not float32"))?, t.dims.clone()))
    };
    // (input, weight [features, outputs] row-major, bias)
    let (x, w, dims, bias): (String, Vec<f32>, Vec<i64>, Option<Vec<f32>>) = match core.op_type.as_str() {
        "Gemm" => {
            let get = |a: &str, d: i64| attr(core, a).map_or(d, |a| a.i);
            let getf = |a: &str| attr(core, a).map_or(1.0, |a| a.f);
            if get("transA", 0) != 0 || getf("alpha") != 1.0 || getf("beta") != 1.0 {
                return Err(format!("node {what} transposes its input or scales (only transB is recognised)"));
            }
            let (w, dims) = constant(core.input.get(1).map(String::as_str).unwrap_or(""), "weight")?;
            let (w, dims) = if get("transB", 0) != 0 && dims.len() == 2 {
                (transpose(&w, dims[0] as usize, dims[1] as usize), vec![dims[1], dims[0]])
            } else {
                (w, dims)
            };
            let bias = match core.input.get(2).filter(|s| !s.is_empty()) {
                Some(b) => Some(constant(b, "bias")?.0),
                None => None,
            };
            (first_input(core)?, w, dims, bias)
        }
        "MatMul" => {
            let (w, dims) = constant(core.input.get(1).map(String::as_str).unwrap_or(""), "weight")?;
            (first_input(core)?, w, dims, None)
        }
        _ => {
            // Add(MatMul(x, W), b), either operand order.
            let pick = |mm: usize| -> Option<(&pb::NodeProto, &str)> {
                let m = graph.node(core.input.get(mm)?).filter(|n| n.op_type == "MatMul")?;
                Some((m, core.input.get(1 - mm)?.as_str()))
            };
            let (mm, b) = pick(0).or_else(|| pick(1)).ok_or_else(|| format!("node {what} is not a MatMul plus a constant bias"))?;
            let (w, dims) = constant(mm.input.get(1).map(String::as_str).unwrap_or(""), "weight")?;
            (first_input(mm)?, w, dims, Some(constant(b, "bias")?.0))
        }
    };
    let x = trace_input(graph, &x)?;
    let [f, k] = dims.as_slice() else { return Err(format!("node {what}'s weight is not a matrix")) };
    let (f, k) = (usize::try_from(*f).map_err(|_| "a negative dimension")?, usize::try_from(*k).map_err(|_| "a negative dimension")?);
    if f.checked_mul(k) != Some(w.len()) || f == 0 || k == 0 {
        return Err(format!("node {what}'s weight data does not match its shape"));
    }
    if let Some(n) = n_features.filter(|&n| n != f) {
        return Err(format!("node {what} reads {f} features, not {n}"));
    }
    let intercepts = match bias {
        None => vec![0.0; k],
        Some(b) if b.len() == k => b,
        Some(b) if b.len() == 1 => vec![b[0]; k],
        Some(b) => return Err(format!("node {what}'s bias has {} values for {k} outputs", b.len())),
    };
    let post = match activation {
        None => PostTransform::None,
        Some(a) if a.op_type == "Sigmoid" => PostTransform::Logistic,
        Some(a) => {
            let axis = attr(a, "axis").map(|x| x.i);
            if !matches!(axis, None | Some(1) | Some(-1)) {
                return Err(format!("node {} is a Softmax over axis {}, not over the outputs", describe(a), axis.unwrap_or(0)));
            }
            PostTransform::Softmax
        }
    };
    let model = TabularModel::from_linear(LinearModel {
        n_features: f,
        coefficients: transpose(&w, f, k),
        intercepts,
        output: LinearOutput::Scores(post),
    })
    .map_err(|e| format!("node {what}: {e}"))?;
    Ok((model, x))
}

/// `m` (`rows × cols`, row-major) transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for i in 0..rows {
        for j in 0..cols {
            if let (Some(v), Some(slot)) = (m.get(i * cols + j), t.get_mut(j * rows + i)) {
                *slot = *v;
            }
        }
    }
    t
}
