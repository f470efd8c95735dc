//! Inference: one model API ([`model::RecommenderModel`], [`model::IntentModel`]) over the
//! engines that run it — tract for NNEF/ONNX graphs, the SDK's own kernels for GRU and
//! attention recommenders ([`gru`], [`attention`], with incremental state), and item scoring
//! for visitor towers ([`score`], on the GPU with `webgpu`). Below it: the f32 [`kernels`],
//! the scoring [`head`] and the one [`topk`] every ranking selects through.

pub mod attention;
#[cfg(feature = "webgpu")]
pub mod gpu;
pub mod gru;
pub mod head;
pub(crate) mod kernels;
pub mod model;
pub mod score;
pub mod topk;

pub use model::{IntentIo, IntentModel, RecommenderIo, RecommenderModel};
