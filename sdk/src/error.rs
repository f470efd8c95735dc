//! One error type for everything the SDK's public entry points can return.
//!
//! Callers (and JavaScript, through `code()`) match on a kind; the message names the field,
//! operator or input that is wrong and what to do about it.

use thiserror::Error as ThisError;

/// A number in a message: `format!("got {}", Num(x))`. Written by zmij, serde_json's float
/// writer, which the wasm carries anyway, because formatting any float with `core::fmt` links
/// its whole float printer (`flt2dec` and its tables: 19 KB of the core's gzip). As with `{}`,
/// the digits are the shortest that read back and whole numbers have no `.0`; very large or
/// small ones are written with an exponent (`1e21`, `1e-7`). `scripts/build-npm.sh` fails if the
/// core links `flt2dec`: then some `{}` of a float, `{:?}` of a struct holding one, or `clamp`
/// with bounds that are not constants (its panic prints them) is new in the core. The functions
/// whose LLVM IR (`--emit=llvm-ir`) names `core::fmt::float` are the ones to look at.
pub struct Num<F>(pub F);

impl<F: zmij::Float + Copy> std::fmt::Display for Num<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format(self.0);
        f.write_str(text.strip_suffix(".0").unwrap_or(text))
    }
}

/// Errors a shop engineer can act on. Every public entry point returns these; nothing panics on
/// input. What went wrong is its [`ErrorKind`].
// Boxed: nearly every function of the SDK returns `Result<_, Error>`, and a one-word error keeps
// each of those results small (in wasm, most are returned through memory otherwise), which
// shrinks the shipped core.
#[derive(Debug, ThisError)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

/// What went wrong.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An event given to `track` is malformed.
    #[error("invalid event: `{field}` {problem}")]
    InvalidEvent { field: String, problem: String },
    /// A configuration value or call option is unusable.
    #[error("invalid {field}: {problem}")]
    InvalidOption { field: String, problem: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The call needs a model the SDK was not initialised with.
    #[error("no {0} model is loaded: pass one in the config given to init()")]
    NoModel(&'static str),
    /// The shop's config makes personalization wait for consent, and there is none.
    #[error("personalization waits for the visitor's consent (config `personalization: \"with_consent\"`)")]
    NoConsent,
}

impl Error {
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    pub fn into_kind(self) -> ErrorKind {
        *self.0
    }

    /// A stable machine-readable code, the same in Rust and JavaScript.
    pub fn code(&self) -> &'static str {
        match self.kind() {
            ErrorKind::InvalidEvent { .. } => "invalid_event",
            ErrorKind::InvalidOption { .. } => "invalid_option",
            ErrorKind::Model(e) => e.code(),
            ErrorKind::Storage(_) => "storage",
            ErrorKind::Bundle(e) => e.code(),
            ErrorKind::NoModel(_) => "no_model",
            ErrorKind::NoConsent => "no_consent",
        }
    }

    /// The event field or option an `invalid_event` / `invalid_option` error names (JavaScript
    /// gets it as the error's `field` property).
    pub fn field(&self) -> Option<&str> {
        match self.kind() {
            ErrorKind::InvalidEvent { field, .. } | ErrorKind::InvalidOption { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn event(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ErrorKind::InvalidEvent { field: field.into(), problem: problem.into() }.into()
    }

    pub(crate) fn option(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ErrorKind::InvalidOption { field: field.into(), problem: problem.into() }.into()
    }

    pub(crate) fn no_model(which: &'static str) -> Self {
        ErrorKind::NoModel(which).into()
    }
}

impl From<ErrorKind> for Error {
    // Out of line: `?` converts at every call site, and the allocation is the cold path.
    #[cold]
    #[inline(never)]
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        ErrorKind::Model(e).into()
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        ErrorKind::Storage(e).into()
    }
}

impl From<BundleError> for Error {
    fn from(e: BundleError) -> Self {
        ErrorKind::Bundle(e).into()
    }
}

/// An ONNX operator tract does not implement, by the node that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    pub node: String,
    pub op: String,
}

/// Why a model could not be loaded or run.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum ModelError {
    #[error("the {model} model is not a readable {format} file: {detail}")]
    Parse { model: &'static str, format: &'static str, detail: String },
    #[error("the {model} model uses operators the runtime does not support: {}", list_ops(.ops))]
    UnsupportedOps { model: &'static str, ops: Vec<UnsupportedOp> },
    #[error("the {model} model's input `{name}` {problem}")]
    Input { model: &'static str, name: String, problem: String },
    #[error("the {model} model's output `{name}` {problem}")]
    Output { model: &'static str, name: String, problem: String },
    #[error("the {model} model could not be prepared for inference: {detail}")]
    Prepare { model: &'static str, detail: String },
    #[error("the {model} model failed while running: {detail}")]
    Run { model: &'static str, detail: String },
    /// A graph (NNEF/ONNX) needs a runtime this build or page does not have: the core wasm
    /// leaves tract out, and the tract module could not be fetched (or is not configured).
    #[error("the {model} model is a {format} graph and no graph runtime is available: {detail}")]
    NoGraphRuntime { model: &'static str, format: &'static str, detail: String },
    /// Raised by the graph runtime module the browser fetched (its code kept when known).
    #[error("the {model} model: {message}")]
    Graph { model: &'static str, code: &'static str, message: String },
}

impl ModelError {
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Parse { .. } => "model_parse",
            ModelError::UnsupportedOps { .. } => "model_unsupported_op",
            ModelError::Input { .. } => "model_input",
            ModelError::Output { .. } => "model_output",
            ModelError::Prepare { .. } => "model_prepare",
            ModelError::Run { .. } => "model_run",
            ModelError::NoGraphRuntime { .. } => "model_runtime_unavailable",
            ModelError::Graph { code, .. } => code,
        }
    }

    /// One of this enum's codes, for an error that crossed from the tract module as text
    /// (anything else becomes `model_run`).
    pub fn known_code(code: &str) -> &'static str {
        ["model_parse", "model_unsupported_op", "model_input", "model_output", "model_prepare", "model_run", "model_runtime_unavailable"]
            .into_iter()
            .find(|&c| c == code)
            .unwrap_or("model_run")
    }
}

fn list_ops(ops: &[UnsupportedOp]) -> String {
    ops.iter().map(|o| format!("{} (node `{}`)", o.op, o.node)).collect::<Vec<_>>().join(", ")
}

/// Failures of the persistent store underneath the event log.
#[derive(Debug, Clone, PartialEq, ThisError)]
#[non_exhaustive]
pub enum StorageError {
    #[error("the browser's storage quota is exhausted")]
    QuotaExceeded,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, ThisError)]
#[non_exhaustive]
pub enum BundleError {
    #[error("not a Foresight bundle (the file does not start with FSBUNDLE); is the URL right?")]
    NotABundle,
    #[error("bundle format version {found} is not supported by this SDK (it reads version {supported}); convert the model with a matching foresight-export")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("the bundle is truncated: {needed} bytes needed, {actual} present (an interrupted download?)")]
    Truncated { needed: u64, actual: u64 },
    #[error("the bundle's manifest is invalid: {0}")]
    Manifest(String),
    #[error("the bundle is not signed, but a public key is configured: sign it with `foresight-export convert --signing-key`")]
    Unsigned,
    #[error("the bundle was signed by another key (key id {found}, expected {expected})")]
    WrongKey { found: String, expected: String },
    #[error("the bundle's signature does not match its contents: it was modified after signing")]
    BadSignature,
    #[error("part `{part}` does not match its SHA-256: the file was modified or corrupted")]
    PartHash { part: String },
    #[error("the bundle has no part `{0}`")]
    MissingPart(String),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("the bundle's signature cannot be checked here: {0}")]
    Unverifiable(String),
}

impl BundleError {
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::NotABundle => "bundle_format",
            BundleError::UnsupportedVersion { .. } => "bundle_version",
            BundleError::Truncated { .. } => "bundle_truncated",
            BundleError::Manifest(_) | BundleError::MissingPart(_) => "bundle_manifest",
            BundleError::Unsigned => "bundle_unsigned",
            BundleError::WrongKey { .. } => "bundle_wrong_key",
            BundleError::BadSignature | BundleError::PartHash { .. } => "bundle_tampered",
            BundleError::Key(_) => "bundle_key",
            BundleError::Unverifiable(_) => "bundle_unverifiable",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod num_tests {
    use super::Num;

    #[test]
    fn numbers_in_messages_read_as_with_display() {
        for (x, text) in
            [(30.0, "30"), (-1.0, "-1"), (0.0, "0"), (0.3, "0.3"), (1.5e-7, "1.5e-7"), (f64::NAN, "NaN"), (f64::NEG_INFINITY, "-inf")]
        {
            assert_eq!(Num(x).to_string(), text);
        }
        // An f32 reads as the f32 it is, not as its f64 widening (0.10000000149011612).
        assert_eq!(Num(0.1f32).to_string(), "0.1");
        assert_eq!(Num(2f32).to_string(), "2");
    }
}
