//! `train`: a non-neural session recommender, trained in seconds, emitted as a plain ONNX graph.
//!
//! The model, in three steps:
//!
//! 1. **Windowed transitions.** For each user's time-ordered sequence, every pair of positions
//!    `t < t+d` with `d <= window` adds `decay^(d-1)` to `C[item_t, item_t+d]` (what came
//!    after) and `backward * decay^(d-1)` to `C[item_t+d, item_t]` (what came before: a weaker,
//!    symmetric co-occurrence signal; items rated in one sitting are rarely in a meaningful
//!    order). Rows are damped by `rowsum^-0.5`, between raw counts (popular rows dominate) and
//!    transition probabilities (rare rows are as loud as frequent ones).
//! 2. **Low rank.** A randomized SVD (Halko, Martinsson & Tropp 2011: Gaussian sketch, power
//!    iterations, Gram-Schmidt, a Jacobi eigen-solve of the small Gram matrix), in plain Rust,
//!    gives `T ~ E Vᵀ` with `E, V` of shape `[items, dim]`: the graph stays `2 * items * dim`
//!    floats whatever the number of transitions, and the truncation smooths sparse rows.
//! 3. **Query.** `q = Σ_p recency^(age_p) E[x_p]` over the last `RECENT` positions (the newest
//!    has weight 1) `+ history_weight * mean_p E[x_p]` over the whole input; scores are
//!    `q Vᵀ + popularity_weight * log1p(count) / log1p(max count)`. Those three numbers are
//!    chosen on a validation target (each user's second-to-last interaction, never the last),
//!    see [`tune`](tune::tune).
//!
//! 4. **Repeat term** (a shop's log, `--test-days`): each of the last `REPEAT_WINDOW` input
//!    items adds `repeat_weight · repeat_decay^age` to its own score, since what a shopper
//!    bought is what they buy next. Chosen on the validation period after the three weights
//!    above, and kept only when it does better there (never on leave-one-out, which excludes
//!    the history from the ranking).
//!
//! The ONNX graph (opset 17, IR 8, only Concat/Slice/Reshape/Gather/MatMul/ReduceMean/Mul/Add,
//! and Equal/Cast for the repeat term):
//! `item_seq` int64 `[1, seq]` (model indices, oldest first) → `scores` float32 `[1, items]`.
//!
//! The submodules depend only downwards (the model and progress at the bottom, fitting and
//! evaluation above them, the two training paths on top), so each reads without the ones above.

mod args;
mod evaluate;
mod fit;
mod from_aggregates;
mod input;
mod model;
mod onnx;
mod output;
mod sknn;
mod steps;
mod svd;
mod tune;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use indicatif::ProgressBar;
use serde_json::json;
use tracing::{info, warn};

pub use args::TrainArgs;
use fit::{fit, BACKWARD_WEIGHT, ROW_DAMPING, WINDOW_DECAY};
use input::{read_interactions, read_items};
use model::RECENT;
use onnx::export_onnx;
use output::{derived_price, metadata, write_file};
use steps::{init_logging, secs, Steps};
use tune::tune;

pub fn run(args: TrainArgs) -> Result<()> {
    init_logging(args.quiet);
    let evaluate = args.eval || args.json;
    ensure!(args.out_eval_model.is_none() || evaluate, "--out-eval-model writes the evaluated model: it needs --eval or --json");
    ensure!(args.eval_onnx.is_empty() || evaluate, "--eval-onnx scores a model on the evaluation's targets: it needs --eval or --json");
    let started = Instant::now();
    let steps = Steps::new(if evaluate { 9 } else { 8 });
    steps.message("reading");

    let Some(interactions) = args.interactions.clone() else {
        return from_aggregates::run(&args);
    };
    let data = read_interactions(&interactions)?;
    let n = data.n_items();
    steps.step(format!("{}: {} interactions, {} users, {} items", interactions.display(), data.interactions, data.sequences.len(), n));
    let meta = match &args.items {
        Some(p) => {
            let m = read_items(p)?;
            let missing = data.items.iter().filter(|id| !m.contains_key(*id)).count();
            if missing > 0 {
                warn!("{} of {n} interacted items are not in {}: no category or year for them", missing, p.display());
            }
            let unused = m.len().saturating_sub(n - missing);
            if unused > 0 {
                info!("{unused} items of {} have no interaction and are left out of the catalog", p.display());
            }
            m
        }
        None => HashMap::new(),
    };
    steps.step(format!("{} item descriptions", meta.len()));

    let dim = args.dim as usize;
    let window = args.window as usize;
    let max_len = args.max_seq_len as usize;

    // Held-out fit: without each user's last two interactions, to choose the query weights on
    // the second-to-last one and (with --eval) to test on the last one.
    steps.message("held-out fit");
    let held_out_start = Instant::now();
    let split = match args.test_days {
        Some(days) => {
            let split = evaluate::by_time(&data.sequences, &data.times, n, days, args.max_cases as usize);
            ensure!(
                !split.train.is_empty() && !split.test.is_empty() && !split.validation.is_empty(),
                "{}: a time split of {days} test days leaves {} interacting visitors to fit on, {} validation and {} test targets: \
                 the log must span more than {} days with activity in each period (give fewer --test-days)",
                interactions.display(),
                split.train.len(),
                split.validation.len(),
                split.test.len(),
                2.0 * days
            );
            if split.unseen.0 + split.unseen.1 > 0 {
                info!(
                    "{} validation and {} test targets are items the fit never saw (new products): left out",
                    split.unseen.0, split.unseen.1
                );
            }
            split
        }
        None => evaluate::leave_one_out(&data.sequences, &data.times),
    };
    ensure!(
        !evaluate || !split.test.is_empty(),
        "{}: no user has the 3 interactions leave-one-out evaluation needs (train, validation, test)",
        interactions.display()
    );
    let protocol = if args.test_days.is_some() { evaluate::TIME_PROTOCOL } else { evaluate::PROTOCOL };
    let mut held_out = fit(&split.train, n, dim, window, args.seed, &steps);
    steps.message("tuning");
    let tuned = tune(&held_out, &split.validation, max_len, &steps);
    match &tuned {
        Some(t) => {
            held_out.query = t.query;
            steps.step(format!(
                "query weights chosen on {} validation targets: recency {}, history weight {}, popularity weight \
                 {:.3e} ({} of the mean top score), repeat weight {:.3e} ({} of it, decay {}); validation NDCG@10 {:.4}",
                t.validation.users,
                t.query.recency,
                t.query.history_weight,
                t.query.popularity_weight,
                t.relative_popularity_weight,
                t.query.repeat_weight,
                t.relative_repeat_weight,
                t.query.repeat_decay,
                t.validation.ndcg10()
            ));
        }
        None => {
            warn!("no user has 3 interactions: no validation targets, default query weights");
            steps.bar().inc(1);
        }
    }
    let held_out_seconds = held_out_start.elapsed();

    let mut report = None;
    if evaluate {
        steps.message("evaluating");
        let bytes = export_onnx(&held_out, &metadata(&held_out, &args, "held-out (leave-one-out evaluation)"));
        if let Some(p) = &args.out_eval_model {
            write_file(p, &bytes)?;
        }
        let eval_bar = ProgressBar::new(split.test.len() as u64);
        let onnx_check = evaluate::check_against_reference(&bytes, &held_out, &split.test, max_len)?;
        steps.note(format!("ONNX (tract) vs Rust reference scores: max |Δ| {onnx_check:.2e}"));
        let mut knn = evaluate::ItemKnn::fit(&split.train, n);
        knn.tune(&split.validation);
        let mut session_knn = Vec::new();
        for weighting in [sknn::Weighting::Cosine, sknn::Weighting::Linear] {
            let mut m = sknn::SessionKnn::fit(&split.sessions, &split.train, n, weighting);
            m.tune(&split.validation);
            session_knn.push((m.label(), m.evaluate(&split.test)));
        }
        let mut rows = vec![
            ("popularity".to_owned(), evaluate::popularity(&split.train, n, &split.test)),
            ("markov (1st order)".to_owned(), evaluate::markov(&split.train, n, &split.test)),
            (knn.label(), knn.evaluate(&split.test)),
        ];
        rows.extend(session_knn);
        for (name, path) in &args.eval_onnx {
            let bytes = std::fs::read(path).with_context(|| format!("--eval-onnx {name}: reading {}", path.display()))?;
            let (mut model, kind) = evaluate::sdk_kernel(&bytes, n).with_context(|| format!("--eval-onnx {name} ({})", path.display()))?;
            let metrics = evaluate::scored(&mut model, n, &split.test, max_len, &ProgressBar::hidden())
                .with_context(|| format!("--eval-onnx {name}"))?;
            rows.push((format!("{name} ({kind} kernel)"), metrics));
        }
        rows.extend([(
            "transition-svd (onnx)".to_owned(),
            steps.bar().suspend(|| evaluate::onnx_model(&bytes, n, &split.test, max_len, &eval_bar))?,
        )]);
        eval_bar.finish_and_clear();
        steps.step(format!("evaluated on {} users", split.test.len()));
        report = Some((rows, onnx_check, bytes.len(), evaluate::counts(&split.train, n)));
    }

    // The shipped model: every interaction, the chosen query weights.
    steps.message("full fit");
    let full_start = Instant::now();
    let mut model = fit(&data.sequences, n, dim, window, args.seed, &steps);
    model.query = tuned.as_ref().map(|t| t.query).unwrap_or(held_out.query);
    let full_seconds = full_start.elapsed();
    let bytes = export_onnx(&model, &metadata(&model, &args, "all interactions"));
    // The export must load in the SDK as it will on the device.
    let mut sdk = foresight::infer::model::RecommenderModel::load(&bytes, &foresight::infer::model::RecommenderIo::default(), n)
        .context("the exported model does not load in the SDK")?;
    let mut probe = Vec::new();
    sdk.scores_into(&[0], &mut probe).context("the exported model does not run in the SDK")?;
    write_file(&args.out_model, &bytes)?;

    let max_pop = model.counts.iter().copied().max().unwrap_or(0);
    let catalog: Vec<foresight::recommend::CatalogItem> = data
        .items
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let m = meta.get(id).cloned().unwrap_or_default();
            foresight::recommend::CatalogItem {
                id: id.clone(),
                category: m.category,
                price: Some(derived_price(m.year, model.counts[i], max_pop)),
                popularity: model.counts[i] as f64,
                trend: Some(data.recent[i] as f64),
                ..Default::default()
            }
        })
        .collect();
    foresight::recommend::Catalog::new(catalog.clone()).context("the catalog is not valid for the SDK")?;
    write_file(&args.out_catalog, &serde_json::to_vec_pretty(&json!({ "items": catalog }))?)?;
    if let Some(p) = &args.out_titles {
        let titles: Vec<_> = data
            .items
            .iter()
            .map(|id| {
                let m = meta.get(id).cloned().unwrap_or_default();
                json!({"id": id, "title": m.title, "year": m.year, "genres": m.genres})
            })
            .collect();
        write_file(p, &serde_json::to_vec_pretty(&json!({ "items": titles }))?)?;
    }
    steps.step(format!("wrote {} ({} bytes, rank {}) and {}", args.out_model.display(), bytes.len(), model.k, args.out_catalog.display()));
    steps.bar().finish_and_clear();

    let total = started.elapsed();
    if args.json {
        let (rows, onnx_check, eval_bytes, fit_counts) = report.as_ref().expect("evaluated with --json");
        let out = json!({
            "data": {
                "interactions_file": interactions.display().to_string(),
                "interactions": data.interactions,
                "users": data.sequences.len(),
                "items": n,
            },
            "model": {
                "kind": "windowed-transitions-randomized-svd",
                "rank": model.k,
                "dim": args.dim,
                "window": args.window,
                "window_decay": WINDOW_DECAY,
                "backward_weight": BACKWARD_WEIGHT,
                "row_damping": ROW_DAMPING,
                "recent_positions": RECENT,
                "recency": model.query.recency,
                "history_weight": model.query.history_weight,
                "popularity_weight": model.query.popularity_weight,
                "relative_popularity_weight": tuned.as_ref().map(|t| t.relative_popularity_weight),
                "repeat_weight": model.query.repeat_weight,
                "repeat_decay": model.query.repeat_decay,
                "repeat_window": model::REPEAT_WINDOW,
                "relative_repeat_weight": tuned.as_ref().map(|t| t.relative_repeat_weight),
                "top_singular_values": model.singular_values.iter().take(8).collect::<Vec<_>>(),
                "onnx_bytes": bytes.len(),
                "out_model": args.out_model.display().to_string(),
                "out_catalog": args.out_catalog.display().to_string(),
            },
            "seconds": {
                "held_out_fit_and_tuning": held_out_seconds.as_secs_f64(),
                "full_fit": full_seconds.as_secs_f64(),
                "total": total.as_secs_f64(),
            },
            "evaluation": {
                "protocol": protocol,
                "test_days": args.test_days,
                "periods": split.periods.map(|(v, t, e)| json!({"validation_from": v, "test_from": t, "end": e})),
                "targets_of_unseen_items": {"validation": split.unseen.0, "test": split.unseen.1},
                "max_seq_len": args.max_seq_len,
                "validation": tuned.as_ref().map(|t| t.validation.to_json("transition-svd (rust, validation)", fit_counts)),
                "onnx_vs_reference_max_abs_diff": onnx_check,
                "evaluated_onnx_bytes": eval_bytes,
                "models": rows.iter().map(|(name, m)| m.to_json(name, fit_counts)).collect::<Vec<_>>(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = String::new();
        if let Some((rows, _, _, fit_counts)) = &report {
            text.push_str(&evaluate::table(rows, fit_counts));
            writeln!(text, "({protocol})")?;
        }
        writeln!(
            text,
            "training: {} on all {} interactions (plus {} for the held-out fit and tuning; {} in all); {} is {} bytes ({} items, rank {})",
            secs(full_seconds),
            data.interactions,
            secs(held_out_seconds),
            secs(total),
            args.out_model.display(),
            bytes.len(),
            n,
            model.k
        )?;
        print!("{text}");
    }
    Ok(())
}
