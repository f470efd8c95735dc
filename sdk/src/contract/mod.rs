//! The contracts both sides share, defined once: the model bundle ([`bundle`], [`manifest`])
//! that `foresight-export` writes and the SDK reads, and the aggregate [`report`] the SDK sends
//! and the collector validates. Nothing here knows how a model runs or how a report is built.

pub mod bundle;
pub mod manifest;
pub mod report;
