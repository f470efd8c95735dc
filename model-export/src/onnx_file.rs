//! ONNX files as the bundle carries them: one self-contained file, external weights inlined.

use std::path::Path;

use anyhow::{bail, Context, Result};
use prost::Message;
use tract_onnx::pb;

/// The model's bytes with every externally stored tensor (`.onnx.data`, as the dynamo
/// exporter writes for large models) moved inside.
pub fn self_contained(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut proto = pb::ModelProto::decode(bytes.as_slice()).with_context(|| format!("{} is not an ONNX protobuf", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut changed = false;
    if let Some(graph) = proto.graph.as_mut() {
        for tensor in &mut graph.initializer {
            if tensor.data_location != Some(pb::tensor_proto::DataLocation::External as i32) {
                continue;
            }
            let get = |key: &str| tensor.external_data.iter().find(|e| e.key == key).map(|e| e.value.clone());
            let location = get("location").with_context(|| format!("tensor `{}` is external but names no file", tensor.name))?;
            let offset: usize = get("offset").map(|v| v.parse()).transpose()?.unwrap_or(0);
            let file = dir.join(&location);
            let data = std::fs::read(&file).with_context(|| format!("reading external weights {}", file.display()))?;
            let length: usize = get("length").map(|v| v.parse()).transpose()?.unwrap_or(data.len().saturating_sub(offset));
            if offset + length > data.len() {
                bail!("tensor `{}`: {} is shorter than its declared offset + length", tensor.name, file.display());
            }
            tensor.raw_data = data[offset..offset + length].to_vec();
            tensor.external_data.clear();
            tensor.data_location = None;
            changed = true;
        }
    }
    Ok(if changed { proto.encode_to_vec() } else { bytes })
}
