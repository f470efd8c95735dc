//! The `train` command line, apart from the code that runs it so both training paths can read it.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Interaction log. Either RecBole's atomic `.inter` TSV (typed header such as
    /// `user_id:token item_id:token rating:float timestamp:float`) or a CSV/TSV whose header
    /// names `user_id`, `item_id` and `timestamp` (other columns are ignored; quoted fields must
    /// not contain the delimiter). Each user's interactions are ordered by timestamp, ties in
    /// file order.
    #[arg(long, value_name = "FILE", required_unless_present = "aggregates", conflicts_with = "aggregates")]
    pub interactions: Option<PathBuf>,
    /// Train with no raw data: the debiased aggregates of private sync (`foresight-export
    /// aggregates --format json --catalog …`). The released `item_transition` estimates are the
    /// transition weights (negative noise clamped to zero), the `item_view` estimates the
    /// popularity. Needs --catalog; the query weights are the defaults (there are no held-out
    /// sequences to choose them on), so --eval is not available.
    #[arg(long, value_name = "FILE", requires = "catalog", conflicts_with_all = ["eval", "items", "out_eval_model"])]
    pub aggregates: Option<PathBuf>,
    /// The shop's catalog (JSON or CSV, `{id, category, price, popularity}`) for --aggregates: the
    /// model's items, in this order; prices and categories are kept.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Item metadata: RecBole's `.item` TSV (`item_id`, `movie_title`, `release_year`, `class`)
    /// or a CSV/TSV with `item_id` and any of `title`, `year`, `genres`/`category`. Gives each
    /// catalog item its category (the first genre) and the year used in the price.
    #[arg(long, value_name = "FILE")]
    pub items: Option<PathBuf>,
    /// Where to write the ONNX model: trained on every interaction, with the query weights chosen
    /// on each user's second-to-last interaction by a model trained without the last two.
    #[arg(long, value_name = "FILE")]
    pub out_model: PathBuf,
    /// Where to write the catalog JSON, `{"items": [{"id", "category", "price", "popularity"}]}`,
    /// item i being the model's index i (the SDK's catalog format). `popularity` is the item's
    /// interaction count. MovieLens has no prices, so one is derived, deterministically:
    /// `3.99 + 0.10 * clamp(year - 1930, 0, 70) + 4.00 * popularity / max popularity`, rounded
    /// to cents (newer and more popular titles cost more; an unknown year counts as 1965).
    #[arg(long, value_name = "FILE")]
    pub out_catalog: PathBuf,
    /// Where to write titles, years and genres, `{"items": [{"id", "title", "year", "genres"}]}`, same order as the
    /// catalog (kept apart: the SDK's catalog accepts only its own four fields).
    #[arg(long, value_name = "FILE")]
    pub out_titles: Option<PathBuf>,
    /// Also write the model that was evaluated (trained without each user's last two
    /// interactions); needs --eval or --json.
    #[arg(long, value_name = "FILE")]
    pub out_eval_model: Option<PathBuf>,
    /// Rank of the item factors (capped at the number of items).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub dim: u32,
    /// Longest history fed to the model in evaluation (the most recent items).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_seq_len: u32,
    /// Transitions are counted between items up to this many positions apart.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub window: u32,
    /// Seed of the randomized SVD (the output is deterministic for a seed).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate (leave-one-out, full ranking) against popularity, first-order Markov, item-kNN
    /// and session-kNN baselines, and print a table. The trained model is scored by running
    /// its ONNX export in the SDK's tract runtime.
    #[arg(long)]
    pub eval: bool,
    /// Split by time instead of leave-one-out (a shop's log, e.g. `data/tafeng`): the last DAYS
    /// days are the test period, the DAYS before them the validation period, the fit sees what
    /// came before; every interaction of a period is a target and nothing is excluded from the
    /// ranking (repeat purchases count).
    #[arg(long, value_name = "DAYS", value_parser = positive_days)]
    pub test_days: Option<f64>,
    /// With --test-days: at most this many targets per period (every k-th in time order).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_cases: u32,
    /// With --eval: also score this recommender on the same targets, on the SDK's own kernels
    /// (a GRU4Rec or SASRec ONNX export the SDK recognises, e.g. from
    /// `model-export/training/train_sequence.py`, fitted on the same period). Its item index
    /// i must be item i of this command's catalog. Repeatable.
    #[arg(long = "eval-onnx", value_name = "NAME=PATH", value_parser = named_path)]
    pub eval_onnx: Vec<(String, PathBuf)>,
    /// Print a JSON report on standard output (includes the evaluation).
    #[arg(long)]
    pub json: bool,
    /// Only warnings and errors on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

fn named_path(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_owned(), PathBuf::from(path))),
        _ => Err(format!("`{text}` is not NAME=PATH (e.g. gru4rec=gru.onnx)")),
    }
}

fn positive_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 => Ok(d),
        _ => Err(format!("`{text}` is not a positive number of days")),
    }
}
