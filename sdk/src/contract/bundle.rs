//! The model bundle: one file a CDN can serve, holding a model, what the SDK needs to use it,
//! the SHA-256 of every part and an optional ed25519 signature. Defined here once; the
//! converter (`foresight-export`) writes it with [`BundleWriter`], the SDK reads it with
//! [`Bundle::parse`].
//!
//! Layout (integers little-endian):
//!
//! ```text
//! "FSBUNDLE"            8 bytes magic
//! format version        u32
//! manifest length M     u32
//! manifest              M bytes of JSON (Manifest)
//! signature             64 bytes: ed25519 over everything above, or zeros when unsigned
//! parts                 concatenated; offsets in the manifest count from here
//! ```
//!
//! The signature covers the manifest, and the manifest holds every part's hash, so one
//! signature check plus the hash checks cover every byte of the file.
//!
//! Signatures are checked in Rust (ed25519-dalek) with the `signatures` feature, which every
//! build but the browser's core turns on. The core leaves the curve arithmetic out (19 KB gzip
//! of its wasm) and checks them with the browser's WebCrypto (`web/signature.rs`), handing the
//! answer to [`Unverified::check_with`].

use sha2::{Digest, Sha256};

use super::manifest::{Manifest, ModelFormat, ModelKind, PartEntry};
pub use crate::error::BundleError;
use crate::json::FromJson;

pub const MAGIC: &[u8; 8] = b"FSBUNDLE";
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
pub const SIGNATURE_LEN: usize = 64;

/// A bundle signer's ed25519 public key: the 32 bytes `foresight-export keygen` writes (in
/// base64) to its `.pub` file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", key_id(self))
    }
}

#[cfg(feature = "signatures")]
impl From<ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: ed25519_dalek::VerifyingKey) -> Self {
        PublicKey(key.to_bytes())
    }
}

/// The converter's signing key.
#[cfg(feature = "signatures")]
pub use ed25519_dalek::SigningKey;

/// Without the `signatures` feature this build cannot sign: no value of this type exists, so
/// [`BundleWriter::finish`] takes only `None`.
#[cfg(not(feature = "signatures"))]
pub enum SigningKey {}

/// `signature` over `message` by `key`, checked here (the `signatures` feature).
#[cfg(feature = "signatures")]
pub fn verify_signature(key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<bool, BundleError> {
    use ed25519_dalek::Verifier;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|e| BundleError::Key(format!("not an ed25519 public key: {e}")))?;
    Ok(key.verify(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok())
}

/// Without the `signatures` feature there is no ed25519 here: the browser's core checks
/// signatures with WebCrypto instead ([`Unverified::check_with`]).
#[cfg(not(feature = "signatures"))]
pub fn verify_signature(_: &PublicKey, _: &[u8], _: &[u8; SIGNATURE_LEN]) -> Result<bool, BundleError> {
    Err(BundleError::Unverifiable("this build of the SDK checks signatures with the browser's WebCrypto only".into()))
}
/// Manifests beyond this are refused before parsing (a 1M-item catalog is ~60 MB of JSON;
/// this bound only guards against a corrupt length field).
const MAX_MANIFEST_BYTES: usize = 512 * 1024 * 1024;

/// A bundle whose structure, manifest and signature are verified; its parts' hashes are not yet.
pub struct Unhashed(Bundle);

impl Unhashed {
    /// Each part's bytes, in manifest order, for hashing elsewhere.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.0.manifest.parts.iter().map(|p| self.0.slice(p))
    }

    /// Finishes verification with the parts' SHA-256 (lowercase hex, in [`parts`](Self::parts)
    /// order) computed elsewhere.
    pub fn with_digests(self, digests: &[String]) -> Result<Bundle, BundleError> {
        let bundle = self.0;
        if digests.len() != bundle.manifest.parts.len() {
            return Err(BundleError::Manifest(format!("{} digests for {} parts", digests.len(), bundle.manifest.parts.len())));
        }
        for (part, digest) in bundle.manifest.parts.iter().zip(digests) {
            if *digest != part.sha256 {
                return Err(BundleError::PartHash { part: part.name.clone() });
            }
        }
        bundle.check_structure()?;
        Ok(bundle)
    }

    /// Finishes verification, hashing the parts here.
    pub fn hash_parts_here(self) -> Result<Bundle, BundleError> {
        let digests: Vec<String> = self.parts().map(sha256_hex).collect();
        self.with_digests(&digests)
    }
}

/// A parsed and verified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    bytes: Vec<u8>,
    parts_start: usize,
    pub signed: bool,
}

impl Bundle {
    /// Parses and verifies: structure, version, manifest, signature (required when `key` is
    /// given), and every part's SHA-256.
    pub fn parse(bytes: Vec<u8>, key: Option<&PublicKey>) -> Result<Bundle, BundleError> {
        Self::open(bytes, key)?.hash_parts_here()
    }

    /// The first half of [`parse`](Self::parse): everything but the parts' hashes, which the
    /// caller may compute elsewhere (the browser's native SHA-256, off the page's thread) and
    /// hand to [`Unhashed::with_digests`].
    pub fn open(bytes: Vec<u8>, key: Option<&PublicKey>) -> Result<Unhashed, BundleError> {
        Bundle::read(bytes)?.check(key)
    }

    /// The first step of [`open`](Self::open): the header and the manifest, not yet the
    /// signature ([`Bundle::parse_manifest`], then [`Parsed::read`]).
    pub fn read(bytes: Vec<u8>) -> Result<Unverified, BundleError> {
        Bundle::parse_manifest(bytes)?.read()
    }

    /// [`read`](Self::read)'s first half: the header, and the manifest parsed as JSON. The
    /// browser runs the halves in tasks of their own: a catalog's manifest (hundreds of KB) took
    /// 20–80 ms of a page's main thread here, from text to its items.
    pub fn parse_manifest(bytes: Vec<u8>) -> Result<Parsed, BundleError> {
        let actual = bytes.len() as u64;
        if bytes.len() < HEADER_LEN {
            return if MAGIC.starts_with(&bytes) || bytes.starts_with(MAGIC) {
                Err(BundleError::Truncated { needed: HEADER_LEN as u64, actual })
            } else {
                Err(BundleError::NotABundle)
            };
        }
        if &bytes[..8] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        let manifest_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        if manifest_len > MAX_MANIFEST_BYTES {
            return Err(BundleError::Manifest(format!("declared length {manifest_len} is implausible")));
        }
        let signed_end = HEADER_LEN + manifest_len;
        let parts_start = signed_end + SIGNATURE_LEN;
        if bytes.len() < parts_start {
            return Err(BundleError::Truncated { needed: parts_start as u64, actual });
        }
        let json = std::str::from_utf8(&bytes[HEADER_LEN..signed_end])
            .map_err(|e| BundleError::Manifest(format!("the manifest is not UTF-8: {e}")))
            .and_then(|text| serde_json::from_str(text).map_err(|e| BundleError::Manifest(e.to_string())))?;
        Ok(Parsed { json, bytes, version, signed_end, parts_start })
    }
}

/// A bundle whose header was read and whose manifest was parsed as JSON
/// ([`Bundle::parse_manifest`]), not yet read as a [`Manifest`].
pub struct Parsed {
    json: serde_json::Value,
    bytes: Vec<u8>,
    version: u32,
    signed_end: usize,
    parts_start: usize,
}

impl Parsed {
    /// [`Bundle::read`]'s second half: the manifest read from its JSON.
    pub fn read(self) -> Result<Unverified, BundleError> {
        let Parsed { json, bytes, version, signed_end, parts_start } = self;
        let manifest = Manifest::from_json(&json).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if manifest.format_version != version {
            return Err(BundleError::Manifest(format!(
                "manifest says format version {} but the header says {version}",
                manifest.format_version
            )));
        }
        Ok(Unverified { manifest, bytes, signed_end, parts_start })
    }
}

/// A bundle whose header and manifest were read ([`Bundle::read`]) and whose signature is
/// still to be checked ([`Unverified::check`]).
pub struct Unverified {
    manifest: Manifest,
    bytes: Vec<u8>,
    signed_end: usize,
    parts_start: usize,
}

impl Unverified {
    /// The second step of [`Bundle::open`]: the signature (when a key is given), checked here
    /// ([`verify_signature`]), and that every part lies within the bytes.
    pub fn check(self, key: Option<&PublicKey>) -> Result<Unhashed, BundleError> {
        self.check_with(key, verify_signature)
    }

    /// What the signature covers (the header and the manifest) and the signature, all zeros
    /// when the bundle is unsigned: for a check elsewhere (the browser's WebCrypto).
    pub fn signed(&self) -> (&[u8], [u8; SIGNATURE_LEN]) {
        let mut signature = [0; SIGNATURE_LEN];
        signature.copy_from_slice(&self.bytes[self.signed_end..self.parts_start]);
        (&self.bytes[..self.signed_end], signature)
    }

    /// [`check`](Self::check) with `verify(key, message, signature)` as the signature check,
    /// called only when a key is given and the bundle is signed by a key of that id.
    pub fn check_with(
        self,
        key: Option<&PublicKey>,
        verify: impl FnOnce(&PublicKey, &[u8], &[u8; SIGNATURE_LEN]) -> Result<bool, BundleError>,
    ) -> Result<Unhashed, BundleError> {
        let (message, sig_bytes) = self.signed();
        let signed = sig_bytes.iter().any(|&b| b != 0);
        if let Some(key) = key {
            if !signed {
                return Err(BundleError::Unsigned);
            }
            let expected = key_id(key);
            if let Some(found) = &self.manifest.key_id {
                if *found != expected {
                    return Err(BundleError::WrongKey { found: found.clone(), expected });
                }
            }
            if !verify(key, message, &sig_bytes)? {
                return Err(BundleError::BadSignature);
            }
        }
        let Unverified { manifest, bytes, signed_end: _, parts_start } = self;
        let actual = bytes.len() as u64;
        let mut needed = parts_start as u64;
        for part in &manifest.parts {
            needed = needed.max(parts_start as u64 + part.offset.saturating_add(part.length));
        }
        if needed > actual {
            return Err(BundleError::Truncated { needed, actual });
        }
        Ok(Unhashed(Bundle { manifest, bytes, parts_start, signed }))
    }
}

impl Bundle {
    fn slice(&self, part: &PartEntry) -> &[u8] {
        let start = self.parts_start + part.offset as usize;
        &self.bytes[start..start + part.length as usize]
    }

    /// The bytes of a named part.
    pub fn part(&self, name: &str) -> Result<&[u8], BundleError> {
        self.manifest.parts.iter().find(|p| p.name == name).map(|p| self.slice(p)).ok_or_else(|| BundleError::MissingPart(name.to_owned()))
    }

    pub fn model_bytes(&self) -> Result<&[u8], BundleError> {
        self.part(&self.manifest.model.part)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn check_structure(&self) -> Result<(), BundleError> {
        let m = &self.manifest;
        let bad = |s: &str| Err(BundleError::Manifest(s.to_owned()));
        self.model_bytes()?;
        match m.kind {
            ModelKind::Recommender if m.items.is_empty() => return bad("a recommender bundle must list its items"),
            ModelKind::Intent if m.intent.is_none() => return bad("an intent bundle must carry its feature spec"),
            ModelKind::Intent if m.model.format.is_kernels() => {
                return bad("an intent model cannot be in the gru, attention or transition format")
            }
            ModelKind::Recommender if m.model.format.is_tabular() => {
                return bad("a recommender cannot be in the linear or trees format (those are intent models)")
            }
            _ => {}
        }
        if m.model.format.is_tabular() && m.embeddings.is_some() {
            return bad("an intent model in the linear or trees format cannot carry item embeddings");
        }
        match m.model.format {
            ModelFormat::Gru if m.gru.is_none() => return bad("format gru without a gru section"),
            ModelFormat::Attention if m.attention.is_none() => return bad("format attention without an attention section"),
            ModelFormat::Transition if m.transition.is_none() => return bad("format transition without a transition section"),
            f if f.is_kernels() && m.embeddings.is_some() => {
                return bad("a model on the SDK's kernels scores items itself; it cannot carry item embeddings")
            }
            _ => {}
        }
        if let Some(e) = &m.embeddings {
            let width = match e.dtype.as_str() {
                "f32" => 4,
                "f16" => 2,
                other => return Err(BundleError::Manifest(format!("embedding dtype `{other}` is not f32 or f16"))),
            };
            if e.rows.checked_mul(e.dims).and_then(|n| n.checked_mul(width)) != Some(self.part(&e.part)?.len()) {
                return bad("the embedding part's size does not match rows × dims");
            }
        }
        Ok(())
    }
}

/// Assembles a bundle; the converter's side of the format.
pub struct BundleWriter {
    manifest: Manifest,
    parts: Vec<(String, Vec<u8>)>,
}

impl BundleWriter {
    /// `manifest.parts` and `manifest.key_id` are filled in by `finish`.
    pub fn new(manifest: Manifest) -> Self {
        BundleWriter { manifest, parts: Vec::new() }
    }

    pub fn add_part(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.parts.push((name.into(), bytes));
    }

    pub fn finish(mut self, key: Option<&SigningKey>) -> Result<Vec<u8>, BundleError> {
        let mut offset = 0u64;
        self.manifest.parts = self
            .parts
            .iter()
            .map(|(name, bytes)| {
                let entry = PartEntry { name: name.clone(), offset, length: bytes.len() as u64, sha256: sha256_hex(bytes) };
                offset += bytes.len() as u64;
                entry
            })
            .collect();
        self.manifest.format_version = FORMAT_VERSION;
        self.manifest.key_id = key.map(|k| key_id(&signing_public_key(k)));
        let manifest = serde_json::to_vec(&self.manifest).map_err(|e| BundleError::Manifest(e.to_string()))?;
        let manifest_len = u32::try_from(manifest.len()).map_err(|_| BundleError::Manifest("manifest over 4 GB".into()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + manifest.len() + SIGNATURE_LEN + offset as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&manifest_len.to_le_bytes());
        out.extend_from_slice(&manifest);
        let signature = key.map(|k| sign(k, &out)).unwrap_or([0; SIGNATURE_LEN]);
        out.extend_from_slice(&signature);
        for (_, bytes) in &self.parts {
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(feature = "signatures")]
fn sign(key: &SigningKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    use ed25519_dalek::Signer;
    key.sign(message).to_bytes()
}

#[cfg(not(feature = "signatures"))]
fn sign(key: &SigningKey, _: &[u8]) -> [u8; SIGNATURE_LEN] {
    match *key {}
}

#[cfg(feature = "signatures")]
fn signing_public_key(key: &SigningKey) -> PublicKey {
    key.verifying_key().into()
}

#[cfg(not(feature = "signatures"))]
fn signing_public_key(key: &SigningKey) -> PublicKey {
    match *key {}
}

/// A short, stable fingerprint of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(key: &PublicKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_owned()
}

/// Parses a public key given as base64 (the contents of `foresight-export keygen`'s `.pub`).
/// With the `signatures` feature it must also be a point of the curve; the browser's core
/// leaves that to WebCrypto, which refuses such a key when it checks a bundle.
pub fn parse_public_key(text: &str) -> Result<PublicKey, BundleError> {
    let key = PublicKey(decode_key(text)?);
    #[cfg(feature = "signatures")]
    ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|e| BundleError::Key(format!("not an ed25519 public key: {e}")))?;
    Ok(key)
}

/// Parses a secret (signing) key given as base64.
#[cfg(feature = "signatures")]
pub fn parse_signing_key(text: &str) -> Result<SigningKey, BundleError> {
    Ok(SigningKey::from_bytes(&decode_key(text)?))
}

fn decode_key(text: &str) -> Result<[u8; 32], BundleError> {
    let bytes = decode_base64(text.trim()).map_err(|e| BundleError::Key(format!("not base64: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| BundleError::Key(format!("{} bytes, expected 32", b.len())))
}

/// Standard base64 with its padding (RFC 4648 §4), strictly, as the base64 crate's `STANDARD`
/// engine reads it: canonical padding, and the bits after the last byte zero, so that a key has
/// one text. By hand because the browser's core decodes just one 44-character key, and the
/// crate's general engine was 1.2 KB of the core's gzip; the tests hold it to the crate.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err(format!("{} characters, not a multiple of 4", b.len()));
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(format!("{pad} `=` at the end, at most 2"));
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let (mut pending, mut bits) = (0u32, 0);
    for (i, &c) in b[..b.len() - pad].iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("`{}` at offset {i}", c.escape_ascii())),
        };
        pending = (pending << 6 | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((pending >> bits) as u8);
        }
    }
    if pending & ((1 << bits) - 1) != 0 {
        return Err("the last character has bits set past the last byte".into());
    }
    Ok(out)
}

#[cfg(feature = "signatures")]
pub fn encode_key(bytes: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(all(test, feature = "signatures"))]
mod tests {
    use super::*;
    use crate::contract::manifest::{CatalogItem, ModelSection, Quantization};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn manifest() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ModelKind::Recommender,
            created_by: "test".into(),
            model: ModelSection {
                part: "model".into(),
                format: ModelFormat::Onnx,
                inputs: vec![],
                outputs: vec![],
                quantization: Quantization::None,
            },
            items: vec![CatalogItem { id: "a".into(), popularity: 1.0, ..Default::default() }],
            max_seq_len: Some(50),
            intent: None,
            embeddings: None,
            gru: None,
            attention: None,
            transition: None,
            parts: vec![],
            parity: vec![],
            key_id: None,
        }
    }

    fn bundle(signing: Option<&SigningKey>) -> Vec<u8> {
        let mut w = BundleWriter::new(manifest());
        w.add_part("model", b"model bytes".to_vec());
        w.add_part("extra", vec![7; 100]);
        w.finish(signing).expect("writes")
    }

    #[test]
    fn roundtrip_signed_and_unsigned() {
        let k = key(1);
        let b = Bundle::parse(bundle(Some(&k)), Some(&k.verifying_key().into())).expect("verifies");
        assert!(b.signed);
        assert_eq!(b.model_bytes().expect("model"), b"model bytes");
        assert_eq!(b.part("extra").expect("extra"), &[7; 100][..]);
        let b = Bundle::parse(bundle(None), None).expect("unsigned without a key is fine");
        assert!(!b.signed);
    }

    #[test]
    fn refusals_are_specific() {
        let k = key(1);
        let vk: PublicKey = k.verifying_key().into();
        let good = bundle(Some(&k));

        assert_eq!(Bundle::parse(bundle(None), Some(&vk)).err(), Some(BundleError::Unsigned));
        let other: PublicKey = key(2).verifying_key().into();
        assert!(matches!(Bundle::parse(good.clone(), Some(&other)).err(), Some(BundleError::WrongKey { .. })));

        // A flipped byte in a part: the hash catches it (signature or not).
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(Bundle::parse(tampered.clone(), Some(&vk)).err(), Some(BundleError::PartHash { part: "extra".into() }));
        assert_eq!(Bundle::parse(tampered, None).err(), Some(BundleError::PartHash { part: "extra".into() }));

        // A flipped byte in the manifest (still valid JSON): the signature catches it.
        let mut tampered = good.clone();
        let pos = tampered.windows(4).position(|w| w == b"test").expect("created_by");
        tampered[pos] = b'T';
        assert_eq!(Bundle::parse(tampered, Some(&vk)).err(), Some(BundleError::BadSignature));

        for cut in [5, 20, good.len() - 10] {
            assert!(matches!(Bundle::parse(good[..cut].to_vec(), Some(&vk)).err(), Some(BundleError::Truncated { .. })), "cut {cut}");
        }
        let mut v2 = good.clone();
        v2[8] = 2;
        assert_eq!(Bundle::parse(v2, None).err(), Some(BundleError::UnsupportedVersion { found: 2, supported: FORMAT_VERSION }));
        assert_eq!(Bundle::parse(b"<html>404</html>".to_vec(), None).err(), Some(BundleError::NotABundle));
    }

    #[test]
    fn formats_must_suit_the_kind() {
        let mut m = manifest();
        m.model.format = ModelFormat::Trees;
        let mut w = BundleWriter::new(m);
        w.add_part("model", b"FTAB".to_vec());
        let err = Bundle::parse(w.finish(None).expect("writes"), None).expect_err("a recommender in the trees format");
        assert!(err.to_string().contains("linear or trees"), "{err}");
    }

    #[test]
    fn keys_roundtrip_through_base64() {
        let k = key(9);
        let text = encode_key(k.verifying_key().as_bytes());
        assert_eq!(parse_public_key(&text).expect("parses"), k.verifying_key().into());
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key(&encode_key(&[0; 32])[..10]).is_err());
    }

    /// The hand-written decoder reads what the base64 crate reads, and refuses what it refuses.
    #[test]
    fn base64_is_decoded_as_the_crate_decodes_it() {
        use base64::Engine;
        let crate_decode = |t: &str| base64::engine::general_purpose::STANDARD.decode(t).ok();
        use crate::platform::{Randomness, SeededRandomness};
        let mut rng = SeededRandomness(9);
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(decode_base64(&text).as_deref(), Ok(bytes.as_slice()), "{text}");
        }
        // Near misses: random texts of up to 8 characters over a small alphabet that holds the
        // padding, both ends of the alphabet and characters outside it.
        let alphabet = [b'A', b'B', b'Q', b'g', b'z', b'0', b'9', b'+', b'/', b'=', b'-', b' '];
        let mut checked = 0;
        for _ in 0..200_000 {
            let len = rng.below(9) as usize;
            let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char).collect();
            assert_eq!(decode_base64(&text).ok(), crate_decode(&text), "{text:?}");
            checked += usize::from(crate_decode(&text).is_some());
        }
        assert!(checked > 1000, "only {checked} valid texts were drawn");
        let err = decode_key("AAAA").expect_err("3 bytes");
        assert!(err.to_string().contains("3 bytes, expected 32"), "{err}");
        let err = decode_key("AA-A").expect_err("not base64");
        assert!(err.to_string().contains("`-` at offset 2"), "{err}");
    }
}
