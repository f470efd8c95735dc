//! `keygen` and key files: base64 of the 32-byte ed25519 secret seed (`.key`, readable by the
//! owner only) and of the public key (`.pub`, what the SDK's `publicKey` takes).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use foresight::contract::bundle::{encode_key, key_id, parse_public_key, parse_signing_key, PublicKey};

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Path prefix: writes PREFIX.key (secret) and PREFIX.pub (public).
    #[arg(long, default_value = "foresight")]
    pub out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    let secret_path = args.out.with_extension("key");
    let public_path = args.out.with_extension("pub");
    for p in [&secret_path, &public_path] {
        if p.exists() && !args.force {
            bail!("{} exists; pass --force to replace it (bundles signed with the old key will then be refused)", p.display());
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    write_private(&secret_path, &(encode_key(&seed) + "\n"))?;
    std::fs::write(&public_path, encode_key(key.verifying_key().as_bytes()) + "\n")
        .with_context(|| format!("writing {}", public_path.display()))?;
    println!("secret key: {} (keep it off the CDN)", secret_path.display());
    println!("public key: {} → init({{publicKey: \"{}\"}})", public_path.display(), encode_key(key.verifying_key().as_bytes()));
    println!("key id: {}", key_id(&key.verifying_key().into()));
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the signing key {}", path.display()))?;
    parse_signing_key(&text).with_context(|| format!("{} is not a key from `foresight-export keygen`", path.display()))
}

/// A public key given as a file path or as the base64 text itself.
pub fn read_public_key(arg: &str) -> Result<PublicKey> {
    let text =
        if Path::new(arg).exists() { std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))? } else { arg.to_owned() };
    parse_public_key(&text).with_context(|| format!("`{arg}` is neither a .pub file nor a base64 public key"))
}
