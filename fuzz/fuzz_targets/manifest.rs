//! Manifest JSON → parse → a bundle around it → verify → load → run. The parts the manifest
//! lists are synthesized at the lengths it declares (small float weights), so the manifest's
//! shapes, not the weights, decide what the loaders see.
#![no_main]

use foresight::contract::manifest::Manifest;
use foresight_fuzz::{load_bundle, resign, MAX_SYNTH_PART};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    // What the converter writes the SDK must read back (non-finite floats are refused on
    // reading, so nothing parsed can be written as `null`).
    let written = serde_json::to_vec(&manifest).expect("a parsed manifest serializes");
    if let Err(e) = serde_json::from_slice::<Manifest>(&written) {
        panic!("a written manifest does not parse: {e}");
    }

    // One region holding every part at the offset and length its entry declares.
    let end = manifest.parts.iter().map(|p| p.offset.saturating_add(p.length)).max().unwrap_or(0);
    if end > MAX_SYNTH_PART {
        return;
    }
    // 0.01f32, repeated: finite weights whatever the part's length.
    let parts: Vec<u8> = 0.01f32.to_le_bytes().iter().copied().cycle().take(end as usize).collect();
    if let Some(signed) = resign(manifest, &parts) {
        load_bundle(signed, true);
    }
});
