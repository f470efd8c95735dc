//! The ONNX graph of a [`Model`] (see the `train` module docs for its shape and operators).

use prost::Message;
use tract_onnx::pb;

use super::model::{Model, RECENT, REPEAT_WINDOW};

fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attributes,
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i, ..Default::default() }
}

fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: pb::tensor_proto::DataType, dims: &[Result<i64, &str>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Ok(v) => Value::DimValue(*v),
                Err(p) => Value::DimParam(p.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The model as ONNX bytes. `E` gets one extra zero row (index `n`) that pads short inputs.
pub fn export_onnx(model: &Model, metadata: &[(&str, String)]) -> Vec<u8> {
    use pb::tensor_proto::DataType;
    let (n, k) = (model.n as i64, model.k as i64);
    let mut e_ext = model.e.clone();
    e_ext.extend(std::iter::repeat_n(0f32, model.k));
    let mut vt = vec![0f32; model.n * model.k];
    for j in 0..model.n {
        for c in 0..model.k {
            vt[c * model.n + j] = model.v[j * model.k + c];
        }
    }
    let bias: Vec<f32> = model.pop_unit.iter().map(|p| p * model.query.popularity_weight as f32).collect();
    let recent = RECENT as i64;
    let mut initializer = vec![
        tensor_f32("item_factors", &[n + 1, k], &e_ext),
        tensor_f32("candidate_factors_t", &[k, n], &vt),
        tensor_f32("popularity_bias", &[n], &bias),
        tensor_f32("recency_weights", &[1, recent], &model.recent_weights()),
        tensor_f32("history_weight", &[1], &[model.query.history_weight as f32]),
        tensor_i64("padding", &[1, recent], &[n; RECENT]),
        tensor_i64("recent_start", &[1], &[-recent]),
        tensor_i64("recent_end", &[1], &[i64::MAX]),
        tensor_i64("axis_1", &[1], &[1]),
        tensor_i64("flat", &[1], &[-1]),
    ];
    let mut nodes = vec![
        // The last RECENT positions, padded at the front with the zero row for short inputs.
        node("Concat", &["padding", "item_seq"], "padded_seq", vec![attr_int("axis", 1)]),
        node("Slice", &["padded_seq", "recent_start", "recent_end", "axis_1"], "recent_seq", vec![]),
        node("Reshape", &["recent_seq", "flat"], "recent_flat", vec![]),
        node("Gather", &["item_factors", "recent_flat"], "recent_factors", vec![attr_int("axis", 0)]),
        node("MatMul", &["recency_weights", "recent_factors"], "recent_query", vec![]),
        // Plus the mean over the whole input.
        node("Reshape", &["item_seq", "flat"], "seq_flat", vec![]),
        node("Gather", &["item_factors", "seq_flat"], "seq_factors", vec![attr_int("axis", 0)]),
        node("ReduceMean", &["seq_factors"], "history_mean", vec![attr_ints("axes", &[0]), attr_int("keepdims", 1)]),
        node("Mul", &["history_mean", "history_weight"], "history_query", vec![]),
        node("Add", &["recent_query", "history_query"], "query", vec![]),
        node("MatMul", &["query", "candidate_factors_t"], "affinity", vec![]),
    ];
    if model.query.repeat_weight == 0.0 {
        nodes.push(node("Add", &["affinity", "popularity_bias"], "scores", vec![]));
    } else {
        // The repeat term: one-hot rows of the last REPEAT_WINDOW items (padding with index n,
        // which equals no item), weighted and summed by one MatMul.
        let window = REPEAT_WINDOW as i64;
        initializer.extend([
            tensor_f32("repeat_weights", &[1, window], &model.repeat_weights()),
            tensor_i64("repeat_padding", &[1, window], &[n; REPEAT_WINDOW]),
            tensor_i64("repeat_start", &[1], &[-window]),
            tensor_i64("column", &[2], &[-1, 1]),
            tensor_i64("item_indices", &[1, n], &(0..n).collect::<Vec<i64>>()),
        ]);
        nodes.extend([
            node("Add", &["affinity", "popularity_bias"], "model_scores", vec![]),
            node("Concat", &["repeat_padding", "item_seq"], "repeat_padded", vec![attr_int("axis", 1)]),
            node("Slice", &["repeat_padded", "repeat_start", "recent_end", "axis_1"], "repeat_seq", vec![]),
            node("Reshape", &["repeat_seq", "column"], "repeat_column", vec![]),
            node("Equal", &["repeat_column", "item_indices"], "repeat_hits", vec![]),
            node("Cast", &["repeat_hits"], "repeat_one_hot", vec![attr_int("to", DataType::Float as i64)]),
            node("MatMul", &["repeat_weights", "repeat_one_hot"], "repeat", vec![]),
            node("Add", &["model_scores", "repeat"], "scores", vec![]),
        ]);
    }
    let graph = pb::GraphProto {
        name: "foresight_transition_svd".into(),
        node: nodes,
        initializer,
        input: vec![value_info("item_seq", DataType::Int64, &[Ok(1), Err("seq")])],
        output: vec![value_info("scores", DataType::Float, &[Ok(1), Ok(n)])],
        doc_string: "Item-to-item windowed transitions, randomized-SVD factors; item_seq: model indices, oldest first.".into(),
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "foresight-export".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata.iter().map(|(k, v)| pb::StringStringEntryProto { key: k.to_string(), value: v.clone() }).collect(),
        ..Default::default()
    };
    proto.encode_to_vec()
}
