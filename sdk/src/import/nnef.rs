//! The NNEF writer: the converter stores a tract-optimized model in a bundle with it; the SDK
//! itself only reads NNEF (`infer::tract::read_nnef`).

use tract_nnef::prelude::*;

use crate::error::ModelError;
use crate::infer::tract::nnef;

/// Writes a typed model as a tract NNEF archive, deterministically (same model, same bytes).
pub fn write_nnef(model: &'static str, typed: &TypedModel) -> Result<Vec<u8>, ModelError> {
    // ONNX metadata (producer name, doc strings) travels as model properties; tract 0.23.9
    // writes them in a form its own NNEF reader rejects, and the SDK has no use for them.
    let mut typed = typed.clone();
    typed.properties.clear();
    nnef()
        .write_to_tar_with_config(&typed, Vec::new(), false, true)
        .map_err(|e| ModelError::Prepare { model, detail: format!("writing NNEF: {e:#}") })
}
