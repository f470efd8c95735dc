//! Inference: one model API ([`model::RecommenderModel`], [`model::IntentModel`]) over the
//! engines that run it — the SDK's own kernels for GRU and attention recommenders ([`gru`],
//! [`attention`], with incremental state) and for linear/tree intent models ([`tabular`]),
//! item scoring for visitor towers ([`score`], on the GPU with `webgpu`), and graphs
//! (NNEF/ONNX) on a [`model::GraphLoader`]'s runtime: [`tract`] natively, the lazily fetched
//! tract module in the browser. Below it, in the `foresight-kernels` crate: the f32 `kernels`,
//! the scoring [`head`] and the one [`topk`] every ranking selects through.

pub mod attention;
#[cfg(feature = "webgpu")]
pub mod gpu;
pub mod gru;
pub mod model;
pub mod score;
pub mod tabular;
#[cfg(feature = "tract")]
pub mod tract;
pub mod transition;

// The hot loops are a crate of their own: the web profile builds them for speed and the rest of
// the SDK for size.
pub(crate) use foresight_kernels::kernels;
pub use foresight_kernels::{head, topk};

pub use model::{GraphLoader, GraphRunner, IntentIo, IntentModel, RecommenderIo, RecommenderModel};

/// The graph runtime compiled into this build, if any.
pub fn builtin_graphs() -> Option<&'static dyn GraphLoader> {
    #[cfg(feature = "tract")]
    return Some(&tract::TractLoader);
    #[cfg(not(feature = "tract"))]
    None
}
