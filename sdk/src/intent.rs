//! Intent: the purchase-intent score of the current session, with the features behind it so a
//! page (or a privacy panel) can show why.

use serde::Serialize;

use crate::error::ModelError;
use crate::features::INTENT_FEATURES;
use crate::infer::model::IntentModel;

/// One named input of the intent model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedFeature {
    pub name: &'static str,
    pub value: f32,
}

/// The probability that this session ends in a purchase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentScore {
    pub probability: f32,
    pub features: Vec<NamedFeature>,
}

pub fn score(model: &mut IntentModel, features: Vec<f32>) -> Result<IntentScore, ModelError> {
    let probability = model.probability(&features)?;
    let features = INTENT_FEATURES.iter().zip(features).map(|(d, value)| NamedFeature { name: d.name, value }).collect();
    Ok(IntentScore { probability, features })
}
