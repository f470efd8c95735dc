//! Importing models, ahead of time (`foresight-export convert`, behind the `import` feature):
//! ONNX graphs read by data flow ([`graph`]) to recognise the recommenders the SDK runs on its
//! own kernels ([`gru`], [`attention`]), the linear and tree-ensemble intent models it runs
//! without tract ([`tabular`]) and the scoring head a visitor tower splits off, and the [`nnef`]
//! writer. None of it ships in the browser's wasm.

pub mod attention;
pub mod graph;
pub mod gru;
pub mod nnef;
pub mod tabular;
pub mod transition;
