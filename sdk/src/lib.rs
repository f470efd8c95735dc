//! Foresight: on-device personalization for web shops.
//!
//! Layers, each using only those above it in this list (`ARCHITECTURE.md`;
//! `scripts/check-layers.py` enforces it):
//!
//! - [`error`], [`platform`]: the error type; `Storage`, `Clock`, `Randomness`.
//! - [`privacy`]: consent, the local differential-privacy mechanisms, the ε budget.
//! - [`contract`]: the model bundle and the aggregate report, shared with `foresight-export`.
//! - [`capture`] → [`store`] → [`features`]: events, the on-device log, model inputs.
//! - [`infer`]: one model API over tract and the SDK's own kernels.
//! - [`recommend`]: placements, catalog, rules, explanations; [`intent`].
//! - [`experiment`], [`sync`]: on-device A/B assignment; reports, outbox, backoff.
//! - [`client`]: one visitor's SDK instance, tying them together.
//! - `web` (wasm32): the JavaScript API; `import` (feature `import`): ONNX recognisers and the
//!   NNEF writer for the converter.

pub mod error;
pub mod json;
pub mod platform;

pub mod privacy;

pub mod contract;

pub mod capture;
pub mod features;
pub mod store;

pub mod infer;

pub mod intent;
pub mod recommend;

pub mod experiment;
pub mod sync;

pub mod client;

#[cfg(feature = "import")]
pub mod import;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use capture::Event;
pub use client::{Client, Config};
pub use error::{Error, ErrorKind, ModelError, Result, StorageError};
pub use recommend::{RecommendOptions, Recommendations};
