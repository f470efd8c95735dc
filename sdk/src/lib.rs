//! Foresight: on-device personalization for web shops.
//!
//! The loop, module by module: [`capture`] validates what the page reports, [`store`] keeps it
//! on the device, [`features`] turns it into model inputs, [`model`] runs ONNX models with
//! tract, [`recommend`] and [`intent`] answer the page, and [`client`] ties them together.
//! The browser layer (`web`, wasm32 only) exposes the client to JavaScript.

pub mod attention;
pub mod bundle;
pub mod capture;
pub mod error;
pub mod experiment;
pub mod features;
pub mod gru;
pub mod head;
#[cfg(feature = "onnx")]
pub mod graph;
pub(crate) mod kernels;
pub mod store;
pub mod sync;

pub use capture::Event;
pub use error::{Error, ModelError, Result, StorageError};
pub mod client;
pub mod intent;
pub mod model;
pub mod privacy;
pub mod recommend;
pub mod placements;
pub mod report;
pub mod rules;
pub mod score;
#[cfg(feature = "webgpu")]
pub mod gpu;

pub use client::{Client, Config};
pub use recommend::{RecommendOptions, Recommendations};

#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;
