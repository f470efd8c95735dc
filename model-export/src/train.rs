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
//!    see [`tune`].
//!
//! The ONNX graph (opset 17, IR 8, only Concat/Slice/Reshape/Gather/MatMul/ReduceMean/Mul/Add):
//! `item_seq` int64 `[1, seq]` (model indices, oldest first) → `scores` float32 `[1, items]`.

use foresight::privacy::mechanism::{Randomness, SeededRandomness};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use serde_json::json;
use tract_onnx::pb;
use tracing::{info, warn};

use crate::evaluate::{self, Case, Metrics};

/// Positions the recency-weighted part of the query looks at (the graph pads shorter inputs).
pub const RECENT: usize = 8;
/// Skip-transition decay per extra step of distance.
const WINDOW_DECAY: f64 = 0.8;
/// Weight of "came before" relative to "came after".
const BACKWARD_WEIGHT: f64 = 0.5;
/// Row damping exponent: `T[i, j] = C[i, j] / rowsum_i^ROW_DAMPING`.
const ROW_DAMPING: f64 = 0.5;
/// Extra sketch columns and power iterations of the randomized SVD.
const OVERSAMPLE: usize = 10;
const POWER_ITERATIONS: usize = 4;

/// Grids searched on the validation targets (`tune`).
const RECENCY_GRID: [f64; 4] = [0.3, 0.5, 0.7, 0.9];
const HISTORY_WEIGHT_GRID: [f64; 3] = [0.0, 0.5, 2.0];
/// Relative to the typical top score of a query, so the grid means the same on any data.
const POPULARITY_WEIGHT_GRID: [f64; 4] = [1e-4, 0.02, 0.1, 0.3];
/// Used when no user has the three interactions a validation target needs.
const DEFAULT_QUERY: (f64, f64, f64) = (0.5, 0.0, 1e-4);

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
    /// Evaluate (leave-one-out, full ranking) against popularity and first-order Markov
    /// baselines, and print a table. The trained model is scored by running its ONNX export in
    /// the SDK's tract runtime.
    #[arg(long)]
    pub eval: bool,
    /// Print a JSON report on standard output (includes the evaluation).
    #[arg(long)]
    pub json: bool,
    /// Only warnings and errors on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Interactions grouped into per-user, time-ordered sequences of vocabulary indices.
pub struct Dataset {
    /// Item ids; the position is the model index.
    pub items: Vec<String>,
    pub sequences: Vec<Vec<u32>>,
    pub interactions: usize,
    /// Interactions per item in the last `TREND_WINDOW_SECONDS` of the log: the catalog's `trend`.
    pub recent: Vec<u64>,
}

/// The window of the catalog's `trend` (the `trending` placement), before the log's last timestamp.
pub const TREND_WINDOW_SECONDS: f64 = 30.0 * 86_400.0;

impl Dataset {
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

#[derive(Debug, Clone, Default)]
struct ItemMeta {
    title: Option<String>,
    year: Option<i32>,
    /// The first genre; every genre is in `genres`.
    category: Option<String>,
    genres: Vec<String>,
}

/// The query-time numbers of the model (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub recency: f64,
    pub history_weight: f64,
    /// Absolute weight of the normalized log-popularity bias.
    pub popularity_weight: f64,
}

/// A trained model: item factors, popularity bias and query weights.
pub struct Model {
    pub n: usize,
    pub k: usize,
    /// `[n, k]` row-major: the factors of an item as input.
    pub e: Vec<f32>,
    /// `[n, k]` row-major: the factors of an item as a candidate.
    pub v: Vec<f32>,
    /// `log1p(count) / log1p(max count)`, in [0, 1].
    pub pop_unit: Vec<f32>,
    pub counts: Vec<u64>,
    pub query: Query,
    pub singular_values: Vec<f64>,
}

impl Model {
    fn recent_weights(&self) -> [f32; RECENT] {
        recent_weights(self.query.recency)
    }

    /// The query vector, exactly as the ONNX graph computes it.
    fn query_vec(&self, seq: &[u32]) -> Vec<f32> {
        let (recent, mean) = recent_and_mean(&self.e, self.k, seq, self.query.recency);
        let beta = self.query.history_weight as f32;
        recent.iter().zip(&mean).map(|(r, m)| r + beta * m).collect()
    }

    /// Scores of every item for a non-empty sequence (the reference the graph is checked against).
    pub fn scores(&self, seq: &[u32]) -> Vec<f32> {
        let q = self.query_vec(seq);
        let pw = self.query.popularity_weight as f32;
        (0..self.n).map(|j| dot(&q, &self.v[j * self.k..][..self.k]) + pw * self.pop_unit[j]).collect()
    }
}

/// Recency weights of the last `RECENT` positions, oldest first: the newest has weight 1.
fn recent_weights(recency: f64) -> [f32; RECENT] {
    std::array::from_fn(|i| recency.powi((RECENT - 1 - i) as i32) as f32)
}

/// The two parts of the query: the recency-weighted last `RECENT` items and the mean of all.
fn recent_and_mean(e: &[f32], k: usize, seq: &[u32], recency: f64) -> (Vec<f32>, Vec<f32>) {
    let w = recent_weights(recency);
    let mut recent = vec![0f32; k];
    let start = seq.len().saturating_sub(RECENT);
    let offset = RECENT - (seq.len() - start);
    for (p, &item) in seq[start..].iter().enumerate() {
        axpy(&mut recent, w[offset + p], &e[item as usize * k..][..k]);
    }
    let mut mean = vec![0f32; k];
    for &item in seq {
        axpy(&mut mean, 1.0, &e[item as usize * k..][..k]);
    }
    let len = seq.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= len);
    (recent, mean)
}

fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

// ---------------------------------------------------------------------------------------------
// Input files

/// A delimited text file: the header's column names (RecBole `:type` suffixes dropped) and the
/// data lines, with 1-based line numbers.
struct Table {
    path: PathBuf,
    delim: char,
    columns: Vec<String>,
    text: String,
}

impl Table {
    fn read(path: &Path, what: &str) -> Result<Table> {
        let bytes = std::fs::read(path).with_context(|| format!("reading the {what} file {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text (byte {})", path.display(), e.utf8_error().valid_up_to()))?;
        let text = text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text);
        let header = text.lines().next().map(|l| l.trim_end_matches('\r')).unwrap_or("");
        if header.trim().is_empty() {
            bail!("{}: line 1: the file is empty; expected a header line naming the columns", path.display());
        }
        let delim = if header.contains('\t') { '\t' } else { ',' };
        let columns = header
            .split(delim)
            .map(|c| {
                let c = unquote(c.trim());
                c.split(':').next().unwrap_or("").trim().to_ascii_lowercase()
            })
            .collect();
        Ok(Table { path: path.to_owned(), delim, columns, text })
    }

    fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.columns.iter().position(|c| c == n))
    }

    fn require(&self, names: &[&str]) -> Result<usize> {
        self.column(names).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: line 1: missing column `{}` in the header (it names {})",
                self.path.display(),
                names[0],
                self.columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Data lines (blank ones skipped) as (line number, fields), checked to have `needed` fields.
    fn rows(&self, needed: usize) -> impl Iterator<Item = Result<(usize, Vec<&str>)>> + '_ {
        self.text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()).map(move |(i, line)| {
            let fields: Vec<&str> = line.trim_end_matches('\r').split(self.delim).map(|f| unquote(f.trim())).collect();
            if fields.len() < needed {
                bail!(
                    "{}: line {}: {} field(s), expected {} (the header's columns, separated by {}); column {} (`{}`) is missing",
                    self.path.display(),
                    i + 1,
                    fields.len(),
                    self.columns.len(),
                    if self.delim == '\t' { "tabs" } else { "commas" },
                    fields.len() + 1,
                    self.columns[fields.len()]
                );
            }
            Ok((i + 1, fields))
        })
    }

    fn field_error(&self, line: usize, col: usize, problem: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}: line {line}, column {} (`{}`): {problem}", self.path.display(), col + 1, self.columns[col])
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Numeric ids in numeric order, then the rest in byte order.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

pub fn read_interactions(path: &Path) -> Result<Dataset> {
    let table = Table::read(path, "interactions")?;
    let user_col = table.require(&["user_id", "user", "session_id"])?;
    let item_col = table.require(&["item_id", "item"])?;
    let ts_col = table.require(&["timestamp", "time", "ts"])?;
    let needed = user_col.max(item_col).max(ts_col) + 1;

    let mut users: HashMap<String, Vec<(f64, u32)>> = HashMap::new();
    let mut item_ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut interactions = 0usize;
    let mut last_ts = f64::NEG_INFINITY;
    for row in table.rows(needed) {
        let (line, f) = row?;
        let (user, item, ts) = (f[user_col], f[item_col], f[ts_col]);
        if user.is_empty() {
            return Err(table.field_error(line, user_col, "empty user id"));
        }
        if item.is_empty() {
            return Err(table.field_error(line, item_col, "empty item id"));
        }
        let ts: f64 = match ts.parse::<f64>() {
            Ok(t) if t.is_finite() => t,
            _ => return Err(table.field_error(line, ts_col, format!("`{ts}` is not a number"))),
        };
        let next = names.len() as u32;
        let id = *item_ids.entry(item.to_owned()).or_insert_with(|| {
            names.push(item.to_owned());
            next
        });
        users.entry(user.to_owned()).or_default().push((ts, id));
        last_ts = last_ts.max(ts);
        interactions += 1;
    }
    if interactions == 0 {
        bail!("{}: line 2: no interactions after the header", path.display());
    }

    // The vocabulary in natural id order, so the index of an item does not depend on file order.
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|&a, &b| natural_order(&names[a as usize], &names[b as usize]));
    let mut remap = vec![0u32; names.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    let items: Vec<String> = order.iter().map(|&o| names[o as usize].clone()).collect();

    let mut recent = vec![0u64; items.len()];
    for events in users.values() {
        for &(ts, i) in events {
            if ts > last_ts - TREND_WINDOW_SECONDS {
                recent[remap[i as usize] as usize] += 1;
            }
        }
    }
    let mut user_names: Vec<String> = users.keys().cloned().collect();
    user_names.sort_by(|a, b| natural_order(a, b));
    let sequences = user_names
        .iter()
        .map(|u| {
            let mut events = users.remove(u).unwrap_or_default();
            // Stable: ties keep file order.
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
            events.into_iter().map(|(_, i)| remap[i as usize]).collect()
        })
        .collect();
    Ok(Dataset { items, sequences, interactions, recent })
}

fn read_items(path: &Path) -> Result<HashMap<String, ItemMeta>> {
    let table = Table::read(path, "items")?;
    let id_col = table.require(&["item_id", "item", "id"])?;
    let title_col = table.column(&["movie_title", "title", "name"]);
    let year_col = table.column(&["release_year", "year"]);
    let cat_col = table.column(&["class", "genres", "genre", "category", "categories"]);
    let needed = [Some(id_col), title_col, year_col, cat_col].into_iter().flatten().max().unwrap_or(0) + 1;
    let mut out: HashMap<String, ItemMeta> = HashMap::new();
    for row in table.rows(needed) {
        let (line, f) = row?;
        let id = f[id_col];
        if id.is_empty() {
            return Err(table.field_error(line, id_col, "empty item id"));
        }
        // Metadata is best effort: MovieLens itself has `unkonwn` and `V` as years. Such a year
        // counts as unknown (a warning names the line); ids and the shape of lines are checked.
        let year = match year_col.map(|c| (c, f[c])) {
            None | Some((_, "")) => None,
            Some((c, y)) => {
                let parsed = y.parse::<f64>().ok().filter(|y| y.is_finite() && y.fract() == 0.0 && y.abs() < 1e5);
                if parsed.is_none() {
                    warn!("{}; taken as unknown", table.field_error(line, c, format!("`{y}` is not a year")));
                }
                parsed.map(|y| y as i32)
            }
        };
        let title = title_col.map(|c| f[c].to_owned()).filter(|t| !t.is_empty());
        // RecBole token_seq is space-separated, MovieLens' own files use `|`.
        let genres: Vec<String> =
            cat_col.map(|c| f[c].split(['|', ' ', ',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
        let category = genres.first().cloned();
        if out.insert(id.to_owned(), ItemMeta { title, year, category, genres }).is_some() {
            warn!("{}: line {line}: item `{id}` listed again; the last line wins", path.display());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Training

/// Sparse matrix, compressed rows.
struct Csr {
    n: usize,
    row_start: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

impl Csr {
    /// `Y = A X` for row-major `X` of shape `[n, l]`.
    fn mul(&self, x: &[f64], l: usize) -> Vec<f64> {
        let mut y = vec![0.0; self.n * l];
        for i in 0..self.n {
            let yi = &mut y[i * l..(i + 1) * l];
            for p in self.row_start[i]..self.row_start[i + 1] {
                let (j, a) = (self.cols[p] as usize, self.vals[p]);
                for (y, x) in yi.iter_mut().zip(&x[j * l..(j + 1) * l]) {
                    *y += a * x;
                }
            }
        }
        y
    }

    /// `Y = Aᵀ X` for row-major `X` of shape `[n, l]`.
    fn mul_t(&self, x: &[f64], l: usize) -> Vec<f64> {
        let mut y = vec![0.0; self.n * l];
        for i in 0..self.n {
            let xi = &x[i * l..(i + 1) * l];
            for p in self.row_start[i]..self.row_start[i + 1] {
                let (j, a) = (self.cols[p] as usize, self.vals[p]);
                for (y, x) in y[j * l..(j + 1) * l].iter_mut().zip(xi) {
                    *y += a * x;
                }
            }
        }
        y
    }
}

/// Transition weights `rows[a][b]`, before damping.
pub type Counts = Vec<HashMap<u32, f64>>;

/// The windowed transition weights of the sequences.
fn windowed_counts(sequences: &[Vec<u32>], n: usize, window: usize) -> Counts {
    let mut rows: Counts = vec![HashMap::new(); n];
    for seq in sequences {
        for t in 0..seq.len() {
            let mut w = 1.0;
            for d in 1..=window {
                let Some(&next) = seq.get(t + d) else { break };
                add_step(&mut rows, seq[t], next, w);
                w *= WINDOW_DECAY;
            }
        }
    }
    rows
}

/// One step `a → b` of weight `w`: "came after" for `a`, the weaker "came before" for `b`.
pub fn add_step(rows: &mut Counts, a: u32, b: u32, w: f64) {
    if a != b {
        *rows[a as usize].entry(b).or_default() += w;
        *rows[b as usize].entry(a).or_default() += BACKWARD_WEIGHT * w;
    }
}

/// The damped transition matrix.
fn damped(rows: Counts) -> Csr {
    let n = rows.len();
    let mut row_start = Vec::with_capacity(n + 1);
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    row_start.push(0);
    for row in rows {
        // Sorted before summing: the same data gives the same bits, whatever the hash order.
        let mut entries: Vec<(u32, f64)> = row.into_iter().filter(|e| e.1 > 0.0).collect();
        entries.sort_unstable_by_key(|e| e.0);
        let sum: f64 = entries.iter().map(|e| e.1).sum();
        let scale = if sum > 0.0 { sum.powf(-ROW_DAMPING) } else { 0.0 };
        for (j, c) in entries {
            cols.push(j);
            vals.push(c * scale);
        }
        row_start.push(cols.len());
    }
    Csr { n, row_start, cols, vals }
}

/// Standard normal noise by Box-Muller over the SDK's seeded generator (deterministic per seed).
fn gaussian(rng: &mut SeededRandomness) -> f64 {
    // Shifted by half a step so the logarithm never sees 0.
    let mut open_unit = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u, v) = (open_unit(), open_unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Orthonormalizes the columns of row-major `[n, l]` in place (modified Gram-Schmidt, twice);
/// columns that vanish become zero.
fn orthonormalize(y: &mut [f64], n: usize, l: usize) {
    let mut cols: Vec<Vec<f64>> = (0..l).map(|c| (0..n).map(|r| y[r * l + c]).collect()).collect();
    for c in 0..l {
        let norm0 = cols[c].iter().map(|x| x * x).sum::<f64>().sqrt();
        for _ in 0..2 {
            for p in 0..c {
                let (done, rest) = cols.split_at_mut(c);
                let proj: f64 = done[p].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
                for (x, q) in rest[0].iter_mut().zip(&done[p]) {
                    *x -= proj * q;
                }
            }
        }
        let norm = cols[c].iter().map(|x| x * x).sum::<f64>().sqrt();
        let keep = norm > 1e-10 * norm0.max(1e-300);
        for x in cols[c].iter_mut() {
            *x = if keep { *x / norm } else { 0.0 };
        }
    }
    for (c, col) in cols.iter().enumerate() {
        for (r, x) in col.iter().enumerate() {
            y[r * l + c] = *x;
        }
    }
}

/// Eigen-decomposition of a symmetric `[l, l]` matrix by cyclic Jacobi rotations:
/// eigenvalues descending, eigenvectors as the columns of the returned row-major matrix.
fn symmetric_eigen(mut a: Vec<f64>, l: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; l * l];
    for i in 0..l {
        v[i * l + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..l).flat_map(|i| (0..l).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * l + j].powi(2)).sum();
        if off <= 1e-26 * total {
            break;
        }
        for p in 0..l {
            for q in p + 1..l {
                let apq = a[p * l + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * l + q] - a[p * l + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..l {
                    let (akp, akq) = (a[k * l + p], a[k * l + q]);
                    a[k * l + p] = c * akp - s * akq;
                    a[k * l + q] = s * akp + c * akq;
                }
                for k in 0..l {
                    let (apk, aqk) = (a[p * l + k], a[q * l + k]);
                    a[p * l + k] = c * apk - s * aqk;
                    a[q * l + k] = s * apk + c * aqk;
                }
                for k in 0..l {
                    let (vkp, vkq) = (v[k * l + p], v[k * l + q]);
                    v[k * l + p] = c * vkp - s * vkq;
                    v[k * l + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|&x, &y| a[y * l + y].total_cmp(&a[x * l + x]));
    let values = order.iter().map(|&i| a[i * l + i]).collect();
    let mut vectors = vec![0.0; l * l];
    for (new, &old) in order.iter().enumerate() {
        for r in 0..l {
            vectors[r * l + new] = v[r * l + old];
        }
    }
    (values, vectors)
}

/// Rank-`k` factors `E, V` (`[n, k]` row-major, `E Vᵀ ~ A`, each carrying `sqrt(σ)`), and σ.
fn randomized_svd(a: &Csr, k: usize, seed: u64, progress: &Steps) -> (Vec<f64>, Vec<f64>, usize, Vec<f64>) {
    let n = a.n;
    let l = (k + OVERSAMPLE).min(n);
    let mut rng = SeededRandomness(seed);
    let omega: Vec<f64> = (0..n * l).map(|_| gaussian(&mut rng)).collect();
    let mut q = a.mul(&omega, l);
    orthonormalize(&mut q, n, l);
    for _ in 0..POWER_ITERATIONS {
        let mut z = a.mul_t(&q, l);
        orthonormalize(&mut z, n, l);
        q = a.mul(&z, l);
        orthonormalize(&mut q, n, l);
        progress.tick();
    }
    // B = Qᵀ A, kept as Bᵀ = Aᵀ Q ([n, l]); its Gram matrix B Bᵀ is [l, l].
    let bt = a.mul_t(&q, l);
    let mut gram = vec![0.0; l * l];
    for r in 0..n {
        let row = &bt[r * l..(r + 1) * l];
        for i in 0..l {
            for j in i..l {
                gram[i * l + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..l {
        for j in 0..i {
            gram[i * l + j] = gram[j * l + i];
        }
    }
    let (eig, w) = symmetric_eigen(gram, l);
    let sigma_max = eig.first().copied().unwrap_or(0.0).max(0.0).sqrt();
    let sigma: Vec<f64> =
        eig.iter().take(k).map(|&e| e.max(0.0).sqrt()).take_while(|&s| s > 1e-9 * sigma_max && s > 0.0).collect();
    let r = sigma.len().max(1);
    // U = Q W, V = Bᵀ W σ⁻¹; E = U σ^½, V' = V σ^½ = Bᵀ W σ^-½.
    let mut e = vec![0.0; n * r];
    let mut v = vec![0.0; n * r];
    for row in 0..n {
        for c in 0..sigma.len() {
            let (mut u_rc, mut b_rc) = (0.0, 0.0);
            for i in 0..l {
                u_rc += q[row * l + i] * w[i * l + c];
                b_rc += bt[row * l + i] * w[i * l + c];
            }
            e[row * r + c] = u_rc * sigma[c].sqrt();
            v[row * r + c] = b_rc / sigma[c].sqrt();
        }
    }
    (e, v, r, sigma)
}

/// Fits the factors and the popularity bias; the query weights are set afterwards.
pub fn fit(sequences: &[Vec<u32>], n: usize, dim: usize, window: usize, seed: u64, progress: &Steps) -> Model {
    let started = Instant::now();
    let rows = windowed_counts(sequences, n, window);
    let mut counts = vec![0u64; n];
    for s in sequences {
        for &i in s {
            counts[i as usize] += 1;
        }
    }
    fit_counts(rows, counts, dim, seed, started, progress)
}

/// Fits from transition weights and item counts directly (e.g. debiased aggregates).
pub fn fit_counts(rows: Counts, counts: Vec<u64>, dim: usize, seed: u64, started: Instant, progress: &Steps) -> Model {
    let n = rows.len();
    let t = damped(rows);
    progress.step(format!("{} item pairs counted ({})", t.cols.len(), secs(started.elapsed())));
    let started = Instant::now();
    let (e, v, k, singular_values) = randomized_svd(&t, dim.min(n), seed, progress);
    progress.step(format!("rank {k} factorization ({})", secs(started.elapsed())));
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let pop_unit = counts.iter().map(|&c| if max > 0.0 { ((c as f64).ln_1p() / max.ln_1p()) as f32 } else { 0.0 }).collect();
    let (recency, history_weight, popularity_weight) = DEFAULT_QUERY;
    Model {
        n,
        k,
        e: e.into_iter().map(|x| x as f32).collect(),
        v: v.into_iter().map(|x| x as f32).collect(),
        pop_unit,
        counts,
        query: Query { recency, history_weight, popularity_weight },
        singular_values,
    }
}

/// What `tune` chose and how the choice did on the validation targets.
struct Tuned {
    query: Query,
    relative_popularity_weight: f64,
    validation: Metrics,
}

/// Picks recency, history weight and popularity weight by NDCG@10 on the validation cases
/// (history → second-to-last item), computed from the Rust factors: each score vector is
/// `a_recency + β c + λ b`, so one pass over the users evaluates the whole grid.
fn tune(model: &Model, cases: &[Case], max_len: usize, progress: &Steps) -> Option<Tuned> {
    if cases.is_empty() {
        return None;
    }
    let (n, k) = (model.n, model.k);
    let scores_of = |q: &[f32]| -> Vec<f32> { (0..n).map(|j| dot(q, &model.v[j * k..][..k])).collect() };
    // The scale the popularity grid is relative to: the mean top score of a plain query.
    let mut scale = 0.0;
    for case in cases {
        let (recent, _) = recent_and_mean(&model.e, k, case.input(max_len), 0.5);
        scale += scores_of(&recent).iter().copied().fold(f32::MIN, f32::max) as f64;
    }
    scale = (scale / cases.len() as f64).abs().max(1e-12);

    let combos = RECENCY_GRID.len() * HISTORY_WEIGHT_GRID.len() * POPULARITY_WEIGHT_GRID.len();
    let mut acc = vec![Metrics::default(); combos];
    let mut excluded = vec![false; n];
    let mut total = vec![0f32; n];
    for case in cases {
        let input = case.input(max_len);
        let (_, mean) = recent_and_mean(&model.e, k, input, 0.0);
        let c = scores_of(&mean);
        evaluate::mark(&mut excluded, case, true);
        let mut ix = 0;
        for &recency in &RECENCY_GRID {
            let (recent, _) = recent_and_mean(&model.e, k, input, recency);
            let a = scores_of(&recent);
            for &beta in &HISTORY_WEIGHT_GRID {
                for &lambda in &POPULARITY_WEIGHT_GRID {
                    let (b, l) = (beta as f32, (lambda * scale) as f32);
                    for j in 0..n {
                        total[j] = a[j] + b * c[j] + l * model.pop_unit[j];
                    }
                    acc[ix].add(&total, case.target, &excluded);
                    ix += 1;
                }
            }
        }
        evaluate::mark(&mut excluded, case, false);
        progress.tick();
    }
    let mut best = 0;
    for (i, m) in acc.iter().enumerate() {
        if m.ndcg10() > acc[best].ndcg10() + 1e-12 {
            best = i;
        }
    }
    let pi = best % POPULARITY_WEIGHT_GRID.len();
    let hi = (best / POPULARITY_WEIGHT_GRID.len()) % HISTORY_WEIGHT_GRID.len();
    let ri = best / (POPULARITY_WEIGHT_GRID.len() * HISTORY_WEIGHT_GRID.len());
    Some(Tuned {
        query: Query {
            recency: RECENCY_GRID[ri],
            history_weight: HISTORY_WEIGHT_GRID[hi],
            popularity_weight: POPULARITY_WEIGHT_GRID[pi] * scale,
        },
        relative_popularity_weight: POPULARITY_WEIGHT_GRID[pi],
        validation: acc[best].clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// ONNX

fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attributes,
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i, ..Default::default() }
}

fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: pb::tensor_proto::DataType, dims: &[Result<i64, &str>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Ok(v) => Value::DimValue(*v),
                Err(p) => Value::DimParam(p.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The model as ONNX bytes. `E` gets one extra zero row (index `n`) that pads short inputs.
pub fn export_onnx(model: &Model, metadata: &[(&str, String)]) -> Vec<u8> {
    use pb::tensor_proto::DataType;
    let (n, k) = (model.n as i64, model.k as i64);
    let mut e_ext = model.e.clone();
    e_ext.extend(std::iter::repeat_n(0f32, model.k));
    let mut vt = vec![0f32; model.n * model.k];
    for j in 0..model.n {
        for c in 0..model.k {
            vt[c * model.n + j] = model.v[j * model.k + c];
        }
    }
    let bias: Vec<f32> = model.pop_unit.iter().map(|p| p * model.query.popularity_weight as f32).collect();
    let recent = RECENT as i64;
    let initializer = vec![
        tensor_f32("item_factors", &[n + 1, k], &e_ext),
        tensor_f32("candidate_factors_t", &[k, n], &vt),
        tensor_f32("popularity_bias", &[n], &bias),
        tensor_f32("recency_weights", &[1, recent], &model.recent_weights()),
        tensor_f32("history_weight", &[1], &[model.query.history_weight as f32]),
        tensor_i64("padding", &[1, recent], &vec![n; RECENT]),
        tensor_i64("recent_start", &[1], &[-recent]),
        tensor_i64("recent_end", &[1], &[i64::MAX]),
        tensor_i64("axis_1", &[1], &[1]),
        tensor_i64("flat", &[1], &[-1]),
    ];
    let nodes = vec![
        // The last RECENT positions, padded at the front with the zero row for short inputs.
        node("Concat", &["padding", "item_seq"], "padded_seq", vec![attr_int("axis", 1)]),
        node("Slice", &["padded_seq", "recent_start", "recent_end", "axis_1"], "recent_seq", vec![]),
        node("Reshape", &["recent_seq", "flat"], "recent_flat", vec![]),
        node("Gather", &["item_factors", "recent_flat"], "recent_factors", vec![attr_int("axis", 0)]),
        node("MatMul", &["recency_weights", "recent_factors"], "recent_query", vec![]),
        // Plus the mean over the whole input.
        node("Reshape", &["item_seq", "flat"], "seq_flat", vec![]),
        node("Gather", &["item_factors", "seq_flat"], "seq_factors", vec![attr_int("axis", 0)]),
        node("ReduceMean", &["seq_factors"], "history_mean", vec![attr_ints("axes", &[0]), attr_int("keepdims", 1)]),
        node("Mul", &["history_mean", "history_weight"], "history_query", vec![]),
        node("Add", &["recent_query", "history_query"], "query", vec![]),
        node("MatMul", &["query", "candidate_factors_t"], "affinity", vec![]),
        node("Add", &["affinity", "popularity_bias"], "scores", vec![]),
    ];
    let graph = pb::GraphProto {
        name: "foresight_transition_svd".into(),
        node: nodes,
        initializer,
        input: vec![value_info("item_seq", DataType::Int64, &[Ok(1), Err("seq")])],
        output: vec![value_info("scores", DataType::Float, &[Ok(1), Ok(n)])],
        doc_string: "Item-to-item windowed transitions, randomized-SVD factors; item_seq: model indices, oldest first."
            .into(),
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "foresight-export".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto { key: k.to_string(), value: v.clone() })
            .collect(),
        ..Default::default()
    };
    proto.encode_to_vec()
}

// ---------------------------------------------------------------------------------------------
// The command

/// Progress over the training steps (drawn only on a terminal) and log lines that do not tear it.
pub struct Steps {
    bar: ProgressBar,
}

impl Steps {
    pub(crate) fn new(len: u64) -> Steps {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Steps { bar }
    }

    pub fn step(&self, msg: String) {
        self.bar.suspend(|| info!("{msg}"));
        self.bar.inc(1);
    }

    pub fn tick(&self) {
        self.bar.tick();
    }

    pub fn note(&self, msg: String) {
        self.bar.suspend(|| info!("{msg}"));
    }

    pub fn message(&self, msg: &'static str) {
        self.bar.set_message(msg);
    }

    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

pub(crate) fn init_logging(quiet: bool) {
    let level = if quiet { tracing::Level::WARN } else { tracing::Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .try_init();
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The documented price rule (see `--out-catalog`).
fn derived_price(year: Option<i32>, popularity: u64, max_popularity: u64) -> f64 {
    let age_term = 0.10 * (year.unwrap_or(1965) as f64 - 1930.0).clamp(0.0, 70.0);
    let pop_term = if max_popularity > 0 { 4.00 * popularity as f64 / max_popularity as f64 } else { 0.0 };
    round2(3.99 + age_term + pop_term)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn metadata(model: &Model, args: &TrainArgs, trained_on: &str) -> Vec<(&'static str, String)> {
    vec![
        ("foresight.kind", "recommender".into()),
        ("foresight.model", "windowed-transitions-randomized-svd".into()),
        ("foresight.items", model.n.to_string()),
        ("foresight.rank", model.k.to_string()),
        ("foresight.max_seq_len", args.max_seq_len.to_string()),
        ("foresight.window", args.window.to_string()),
        ("foresight.recency", model.query.recency.to_string()),
        ("foresight.history_weight", model.query.history_weight.to_string()),
        ("foresight.popularity_weight", model.query.popularity_weight.to_string()),
        ("foresight.trained_on", trained_on.into()),
    ]
}

pub fn run(args: TrainArgs) -> Result<()> {
    init_logging(args.quiet);
    let evaluate = args.eval || args.json;
    ensure!(
        args.out_eval_model.is_none() || evaluate,
        "--out-eval-model writes the evaluated model: it needs --eval or --json"
    );
    let started = Instant::now();
    let steps = Steps::new(if evaluate { 9 } else { 8 });
    steps.message("reading");

    let Some(interactions) = args.interactions.clone() else {
        return crate::retrain::run(&args);
    };
    let data = read_interactions(&interactions)?;
    let n = data.n_items();
    steps.step(format!(
        "{}: {} interactions, {} users, {} items",
        interactions.display(),
        data.interactions,
        data.sequences.len(),
        n
    ));
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
    let split = evaluate::leave_one_out(&data.sequences);
    ensure!(
        !evaluate || !split.test.is_empty(),
        "{}: no user has the 3 interactions leave-one-out evaluation needs (train, validation, test)",
        interactions.display()
    );
    let mut held_out = fit(&split.train, n, dim, window, args.seed, &steps);
    steps.message("tuning");
    let tuned = tune(&held_out, &split.validation, max_len, &steps);
    match &tuned {
        Some(t) => {
            held_out.query = t.query;
            steps.step(format!(
                "query weights chosen on {} validation targets: recency {}, history weight {}, popularity weight \
                 {:.3e} ({} of the mean top score); validation NDCG@10 {:.4}",
                t.validation.users,
                t.query.recency,
                t.query.history_weight,
                t.query.popularity_weight,
                t.relative_popularity_weight,
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
        let rows = vec![
            ("popularity".to_owned(), evaluate::popularity(&split.train, n, &split.test)),
            ("markov (1st order)".to_owned(), evaluate::markov(&split.train, n, &split.test)),
            (
                "transition-svd (onnx)".to_owned(),
                steps.bar().suspend(|| evaluate::onnx_model(&bytes, n, &split.test, max_len, &eval_bar))?,
            ),
        ];
        eval_bar.finish_and_clear();
        steps.step(format!("evaluated on {} users", split.test.len()));
        report = Some((rows, onnx_check, bytes.len()));
    }

    // The shipped model: every interaction, the chosen query weights.
    steps.message("full fit");
    let full_start = Instant::now();
    let mut model = fit(&data.sequences, n, dim, window, args.seed, &steps);
    model.query = tuned.as_ref().map(|t| t.query).unwrap_or(held_out.query);
    let full_seconds = full_start.elapsed();
    let bytes = export_onnx(&model, &metadata(&model, &args, "all interactions"));
    // The export must load in the SDK as it will on the device.
    let mut sdk = foresight::model::RecommenderModel::load(&bytes, &foresight::model::RecommenderIo::default(), n)
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
    steps.step(format!(
        "wrote {} ({} bytes, rank {}) and {}",
        args.out_model.display(),
        bytes.len(),
        model.k,
        args.out_catalog.display()
    ));
    steps.bar().finish_and_clear();

    let total = started.elapsed();
    if args.json {
        let (rows, onnx_check, eval_bytes) = report.as_ref().expect("evaluated with --json");
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
                "protocol": evaluate::PROTOCOL,
                "max_seq_len": args.max_seq_len,
                "validation": tuned.as_ref().map(|t| t.validation.to_json("transition-svd (rust, validation)")),
                "onnx_vs_reference_max_abs_diff": onnx_check,
                "evaluated_onnx_bytes": eval_bytes,
                "models": rows.iter().map(|(name, m)| m.to_json(name)).collect::<Vec<_>>(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = String::new();
        if let Some((rows, _, _)) = &report {
            text.push_str(&evaluate::table(rows));
            writeln!(text, "({})", evaluate::PROTOCOL)?;
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

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
