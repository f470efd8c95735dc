//! `train --aggregates`: the closed loop. The baseline recommender is fitted from what private
//! sync released — debiased item→item transition counts and item view counts — so a shop can
//! train with no raw data at all.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::args::TrainArgs;
use super::fit::{add_step, fit_counts, Counts};
use super::onnx::export_onnx;
use super::output::{metadata, write_file};
use super::steps::{init_logging, secs, Steps};

/// The parts of `aggregates --format json` this reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Aggregates {
    site: String,
    reports: u64,
    min_contributors: u64,
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    statistic: String,
    reports: u64,
    released: bool,
    estimates: Vec<Released>,
}

#[derive(Deserialize)]
struct Released {
    value: String,
    estimate: f64,
}

impl Aggregates {
    /// The released group of a statistic with the most reports (groups with other mechanism
    /// parameters are estimated apart and cannot be added up).
    fn largest(&self, statistic: &str) -> Option<&Group> {
        self.groups.iter().filter(|g| g.released && g.statistic == statistic).max_by_key(|g| g.reports)
    }
}

fn read(path: &Path) -> Result<Aggregates> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the JSON of `foresight-export aggregates --format json`", path.display()))
}

pub fn run(args: &TrainArgs) -> Result<()> {
    init_logging(args.quiet);
    let started = Instant::now();
    let (Some(path), Some(catalog_path)) = (&args.aggregates, &args.catalog) else {
        bail!("--aggregates needs --catalog");
    };
    let steps = Steps::new(4);
    steps.message("reading");
    let aggregates = read(path)?;
    let mut catalog = crate::catalog::read(catalog_path)?;
    let index: HashMap<&str, u32> = catalog.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
    let n = catalog.len();

    let Some(transitions) = aggregates.largest("item_transition") else {
        bail!(
            "{}: no released item_transition group (site {}, {} reports, minimum {} contributors): collect more reports, \
             or run `aggregates` with a lower --min-contributors",
            path.display(),
            aggregates.site,
            aggregates.reports,
            aggregates.min_contributors
        );
    };
    if transitions.estimates.is_empty() {
        bail!("{}: the item_transition group has no estimates: run `aggregates` with --catalog", path.display());
    }
    let mut rows: Counts = vec![HashMap::new(); n];
    let (mut used, mut unknown, mut negative) = (0usize, 0usize, 0usize);
    for e in &transitions.estimates {
        let Some((a, b)) = e.value.split_once('>') else { continue };
        let (Some(&a), Some(&b)) = (index.get(a), index.get(b)) else {
            unknown += 1;
            continue;
        };
        // An unbiased estimate of a small count is often negative; as a weight it means "none".
        if e.estimate <= 0.0 {
            negative += 1;
            continue;
        }
        add_step(&mut rows, a, b, e.estimate);
        used += 1;
    }
    if used == 0 {
        bail!("{}: every transition estimate is zero or below: the noise swamps the signal, collect more reports", path.display());
    }
    if unknown > 0 {
        warn!("{unknown} transitions name items not in {}: left out", catalog_path.display());
    }

    // Popularity: the debiased view counts where released, else the catalog's own.
    let mut counts: Vec<u64> = catalog.iter().map(|i| i.popularity.max(0.0).round() as u64).collect();
    let views = aggregates.largest("item_view").filter(|g| !g.estimates.is_empty());
    if let Some(g) = views {
        counts = vec![0; n];
        for e in &g.estimates {
            if let Some(&i) = index.get(e.value.as_str()) {
                counts[i as usize] = e.estimate.max(0.0).round() as u64;
            }
        }
    }
    steps.step(format!(
        "{}: {} transition estimates used ({negative} at or below zero skipped) from {} reports; popularity from {}",
        path.display(),
        used,
        transitions.reports,
        match views {
            Some(g) => format!("{} item_view reports", g.reports),
            None => "the catalog".to_owned(),
        }
    ));

    let model = fit_counts(rows, counts, args.dim as usize, args.seed, Instant::now(), &steps);
    let trained_on = format!("debiased aggregates of site {} ({} reports)", aggregates.site, transitions.reports);
    let bytes = export_onnx(&model, &metadata(&model, args, &trained_on));
    let mut sdk = foresight::infer::model::RecommenderModel::load(&bytes, &foresight::infer::model::RecommenderIo::default(), n)
        .context("the exported model does not load in the SDK")?;
    let mut probe = Vec::new();
    sdk.scores_into(&[0], &mut probe).context("the exported model does not run in the SDK")?;
    write_file(&args.out_model, &bytes)?;
    for (item, &c) in catalog.iter_mut().zip(&model.counts) {
        item.popularity = c as f64;
    }
    write_file(&args.out_catalog, &serde_json::to_vec_pretty(&json!({ "items": catalog }))?)?;
    steps.step(format!("wrote {} ({} bytes, rank {}) and {}", args.out_model.display(), bytes.len(), model.k, args.out_catalog.display()));
    steps.bar().finish_and_clear();
    let summary = json!({
        "trainedOn": trained_on,
        "items": n,
        "transitionsUsed": used,
        "transitionsSkipped": negative,
        "rank": model.k,
        "onnxBytes": bytes.len(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "trained on {trained_on}: {used} transitions, {n} items, rank {}; {} is {} bytes ({})",
            model.k,
            args.out_model.display(),
            bytes.len(),
            secs(started.elapsed())
        );
    }
    Ok(())
}
