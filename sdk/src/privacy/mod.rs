//! Privacy: consent, the ε budget, and the local differential-privacy mechanisms (with their
//! estimators). What leaves the device is randomized here first.

pub mod budget;
pub mod mechanism;
