//! The SDK's hot loops, in a crate of their own so that the release profile can optimize them
//! for speed while the rest of the SDK (config readers, rules, the browser layer: code that runs
//! once per call, not once per item) is optimized for size. `foresight::infer` re-exports
//! these modules; nothing else should depend on this crate directly.
//!
//! Below every model of the SDK: the f32 [`kernels`] (SIMD on wasm32 with `simd128`), the
//! scoring [`head`] with its exact i16-ranked top-k, and the one [`topk`] every ranking
//! selects through.

pub mod head;
pub mod kernels;
pub mod topk;
