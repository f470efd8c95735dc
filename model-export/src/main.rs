//! `foresight-export`: the server-side half of Foresight.

mod basket;
mod catalog;
mod collect;
mod convert;
mod embeddings;
mod features;
mod inspect;
mod keys;
mod onnx_file;
mod parity;
mod progress;
mod quantize;
mod train;

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "foresight-export", version, about = "Turn server-trained models into Foresight bundles, and the tooling around them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an ONNX model (+ its item catalog) into a verified, optionally signed bundle.
    Convert(convert::ConvertArgs),
    /// Show what a bundle holds.
    Inspect(inspect::InspectArgs),
    /// Check a bundle's hashes and signature, load its model, and re-run parity.
    Verify(inspect::VerifyArgs),
    /// Make an ed25519 key pair for signing bundles.
    Keygen(keys::KeygenArgs),
    /// Print the intent feature spec (names, order, transforms) as JSON for training code.
    FeatureSpec,
    /// Compute intent feature vectors for training sessions, with the SDK's own code.
    ///
    /// Input: JSON lines {"now": ms, "events": [{"at": ms, "type": "product_view", ...}]}.
    /// Output: CSV, a header of feature names, then one row per input line.
    Features {
        /// JSON-lines file of sessions ("-" for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the CSV (standard output when absent).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Train the baseline session recommender from an interaction log and emit it as ONNX.
    Train(train::TrainArgs),
    /// Run the report collector: an HTTP server that validates and stores aggregate reports.
    Collect(collect::CollectArgs),
    /// Debiased, k-thresholded estimates (95% intervals) from the collected reports.
    Aggregates(collect::AggregatesArgs),
    /// Next-basket evaluation (the "Next Basket Recommendation Reality Check" protocol):
    /// popularity, personal frequency, TIFU-KNN and the SDK's `buyAgain` scoring.
    Baskets(basket::BasketArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Convert(args) => convert::run(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Verify(args) => inspect::verify(args),
        Command::Keygen(args) => keys::keygen(args),
        Command::FeatureSpec => features::print_spec(&mut io::stdout().lock()),
        Command::Features { input, output } => {
            let reader: Box<dyn io::BufRead> = if input.as_os_str() == "-" {
                Box::new(io::stdin().lock())
            } else {
                Box::new(BufReader::new(File::open(&input).with_context(|| format!("opening {}", input.display()))?))
            };
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(io::BufWriter::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)),
                None => Box::new(io::stdout().lock()),
            };
            features::compute(reader, &mut out)?;
            out.flush()?;
            Ok(())
        }
        Command::Train(args) => train::run(args),
        Command::Collect(args) => collect::run_collect(args),
        Command::Aggregates(args) => collect::run_aggregates(args),
        Command::Baskets(args) => basket::run(args),
    }
}
