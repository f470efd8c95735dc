//! What the fuzz targets share: the test signing key, bundle re-assembly, a client that runs
//! what it loaded, and the collector's pure modules compiled from `model-export`'s own files
//! (that crate is a binary, so its modules cannot be depended on).

use ed25519_dalek::SigningKey;
use foresight::client::{Client, Config, Graphs, Models};
use foresight::contract::bundle::{self, BundleWriter, MAGIC};
use foresight::contract::manifest::Manifest;
use foresight::platform::{ManualClock, MemoryStorage, SeededRandomness};
use foresight::privacy::budget::OptOutSignals;
use foresight::RecommendOptions;

// The collector's request intake and the `aggregates` computation, as `foresight-export`
// compiles them. Declared at the crate root, as siblings: they name each other through
// `super::`, as in `model-export/src/collect/`.
#[allow(dead_code, clippy::all)]
#[path = "../../model-export/src/collect/aggregate.rs"]
pub mod aggregate;
#[allow(dead_code, clippy::all)]
#[path = "../../model-export/src/collect/html.rs"]
pub mod html;
#[allow(dead_code, clippy::all)]
#[path = "../../model-export/src/collect/intake.rs"]
pub mod intake;
#[allow(dead_code, clippy::all)]
#[path = "../../model-export/src/collect/limits.rs"]
pub mod limits;

/// The collector's modules under the name they have in `foresight-export`.
pub mod collect {
    pub use super::{aggregate, html, intake, limits};
}

/// A fixed "now": 2023-11-14, so runs are reproducible.
pub const NOW_MS: f64 = 1_700_000_000_000.0;

/// The committed TEST key (`tests/fixtures/bundles/test-signing.key`): signing with it lets the
/// fuzzer's bundles through the signature check of a client configured with its public half.
pub fn signing_key() -> SigningKey {
    bundle::parse_signing_key(include_str!("../../tests/fixtures/bundles/test-signing.key")).expect("the committed test key parses")
}

pub fn public_key_text() -> String {
    include_str!("../../tests/fixtures/bundles/test-signing.pub").trim().to_owned()
}

pub fn verifying_key() -> bundle::PublicKey {
    signing_key().verifying_key().into()
}

/// No graph runtime in the fuzz build (tract is not compiled in): graph bundles are refused
/// as the core wasm refuses them without the tract module.
pub fn no_graphs() -> Graphs<'static> {
    Graphs::Unavailable("the fuzz build has no graph runtime")
}

/// Parts larger than this are not synthesized (a manifest may declare any length).
pub const MAX_SYNTH_PART: u64 = 1 << 20;

/// The header, manifest and parts region of bytes laid out as a bundle, without any check of
/// hashes or signature; `None` when the bytes are not even shaped like one.
pub fn split_bundle(data: &[u8]) -> Option<(Manifest, &[u8])> {
    if data.len() < 16 || &data[..8] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([data[12], data[13], data[14], data[15]]) as usize;
    let manifest_end = 16usize.checked_add(len)?;
    let manifest: Manifest = serde_json::from_slice(data.get(16..manifest_end)?).ok()?;
    let parts = data.get(manifest_end.checked_add(64)?..).unwrap_or(&[]);
    Some((manifest, parts))
}

/// Re-assembles a bundle from a manifest and a parts region: each part the manifest lists is
/// cut from `parts` where its entry says (clamped to what is there), then written and signed
/// with the test key, so hashes, `keyId` and signature all hold and only the manifest's and the
/// parts' contents decide what the loaders see.
pub fn resign(manifest: Manifest, parts: &[u8]) -> Option<Vec<u8>> {
    let entries = manifest.parts.clone();
    let mut writer = BundleWriter::new(manifest);
    for entry in entries {
        let start = usize::try_from(entry.offset).unwrap_or(usize::MAX).min(parts.len());
        let end = start.saturating_add(usize::try_from(entry.length).unwrap_or(usize::MAX)).min(parts.len());
        writer.add_part(entry.name, parts[start..end].to_vec());
    }
    writer.finish(Some(&signing_key())).ok()
}

/// A client over `models`, then what a page does with it: a few events, recommendations,
/// scores, the intent score, the session state, a report.
pub fn run_client(models: Models) {
    let Ok((mut client, _warnings)) =
        Client::with_models(Config::default(), MemoryStorage::default(), ManualClock::new(NOW_MS), models, no_graphs())
    else {
        return;
    };
    let ids: Vec<String> = (0..4).filter_map(|i| client.catalog().item(i)).map(|i| i.id.clone()).collect();
    for id in &ids {
        let _ = client.track(&serde_json::json!({"type": "product_view", "itemId": id, "price": 9.5}));
        client.clock().advance_ms(30_000.0);
    }
    if let Some(id) = ids.first() {
        let _ = client.track(&serde_json::json!({"type": "add_to_cart", "itemId": id, "quantity": 2, "price": 9.5}));
    }
    let _ = client.recommend(&RecommendOptions { k: Some(5), exclude: Vec::new() });
    let _ = client.scores();
    let _ = client.intent();
    let _ = client.intent_features();
    let _ = client.session_steps();
    let _ = client.prepare_report(OptOutSignals::default(), &mut SeededRandomness(7));
}

/// Loads `bytes` as a config's bundle (verified with the test key when `keyed`), then runs the
/// client over whatever loaded.
pub fn load_bundle(bytes: Vec<u8>, keyed: bool) {
    let config = Config { public_key: keyed.then(public_key_text), ..Config::default() };
    let Ok(mut models) = Models::for_config(&config) else {
        return;
    };
    models.add_bundle(bytes, no_graphs());
    run_client(models);
}
