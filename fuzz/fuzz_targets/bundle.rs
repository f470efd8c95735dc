//! Bundle bytes → verify → load → run: the path a bundle from the CDN takes.
#![no_main]

use foresight_fuzz::{load_bundle, resign, split_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As they are, into a client without a public key (unsigned bundles are accepted): the
    // header, manifest, part bounds and hashes are checked on the fuzzer's own bytes.
    load_bundle(data.to_vec(), false);
    // Re-assembled and signed with the test key, into a client that requires it: hashes and
    // signature hold, so changes to the manifest and the parts reach the model loaders and
    // the kernels that run them.
    if let Some((manifest, parts)) = split_bundle(data) {
        if let Some(signed) = resign(manifest, parts) {
            load_bundle(signed, true);
        }
    }
});
