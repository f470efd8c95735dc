//! `train`: the baseline session recommender (being written).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct TrainArgs {}

pub fn run(_args: TrainArgs) -> Result<()> {
    bail!("train is not available in this build yet")
}
