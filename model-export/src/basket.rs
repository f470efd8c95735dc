//! `foresight-export baskets`: next-basket evaluation with the protocol of "A Next Basket
//! Recommendation Reality Check" (Li, Jullien, Ariannezhad, de Rijke, TOIS 2023; its code,
//! github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check, is what this follows where
//! the paper leaves a detail open):
//!
//! - a basket is one customer's purchases of one day, a set of items;
//! - users with 3 to 50 baskets; each user's last basket is the target, the rest the history;
//! - items bought in at least 3 history baskets (over all users) are kept, in history and
//!   target alike; a user whose target or whole history is left empty drops out;
//! - users are split at random, 72% train / 8% validation / 20% test, several times (the
//!   paper's "keysets"), and the figures are the mean over the splits;
//! - Recall@K = hits in the top K / target size; NDCG@K with binary gains and the ideal DCG of
//!   the whole target (not cut at K, as the reference code computes it); PHR@K = share of users
//!   with a hit; the repetition ratio = share of the K predictions the user bought before;
//!   Recall@K on repeat / explore items = recall on the target's bought-before / new items,
//!   over the users whose target has any.
//!
//! The methods: G-TopFreq (most bought items), P-TopFreq (the user's most bought items),
//! TIFU-KNN (the user's decayed frequency vector blended with the mean vector of the nearest
//! training users) and the SDK's `buyAgain` scoring (`foresight::recommend::repeat`, the
//! function the device runs: the same personal vector with popularity instead of neighbours).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use foresight::recommend::repeat::{buy_again_scores, personal_scores, BuyAgainParams};
use serde::Serialize;

use crate::progress::Steps;

#[derive(Args)]
pub struct BasketArgs {
    /// Interaction log: CSV with the columns user_id, item_id, timestamp (seconds) and basket.
    #[arg(long)]
    interactions: PathBuf,
    /// Random user splits to average over (the paper's keysets).
    #[arg(long, default_value_t = 5)]
    folds: u64,
    /// Seed of the first split; split i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Protocol constants of the Reality Check.
const MIN_BASKETS: usize = 3;
const MAX_BASKETS: usize = 50;
const MIN_ITEM_BASKETS: u32 = 3;
/// Cut-offs reported.
const CUTOFFS: [usize; 2] = [10, 20];

/// The Reality Check's TIFU-KNN settings for Ta Feng (its README: k 300, r_b 0.9, r_g 0.7,
/// alpha 0.7, m 7).
const PAPER_TIFU: Tifu = Tifu { neighbours: 300, alpha: 0.7, similarity: Similarity::Euclidean };
/// What validation users choose from.
const TIFU_NEIGHBOURS: [usize; 5] = [50, 100, 300, 500, 900];
const TIFU_ALPHAS: [f32; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const SDK_ALPHAS: [f32; 11] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0];

/// One user after the protocol: item indices, baskets oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub history: Vec<Vec<u32>>,
    pub target: Vec<u32>,
}

/// One user's baskets as read: (time, items), any order.
pub type RawUser = Vec<(i64, Vec<u32>)>;

/// Baskets by basket id while reading: (first time, items).
type BasketsById = HashMap<String, (i64, Vec<u32>)>;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub users_read: usize,
    pub baskets_read: usize,
    pub users: usize,
    pub items: usize,
    pub history_baskets: usize,
    pub mean_basket_size: f64,
    /// Share of target items the user bought before.
    pub target_repeat_share: f64,
}

/// The protocol's filtering: the users and the item count (items re-indexed from 0).
pub fn prepare(raw: Vec<RawUser>) -> (Vec<User>, usize, Stats) {
    let users_read = raw.len();
    let baskets_read = raw.iter().map(Vec::len).sum();
    let mut kept: Vec<Vec<Vec<u32>>> = Vec::new();
    for mut baskets in raw {
        if !(MIN_BASKETS..=MAX_BASKETS).contains(&baskets.len()) {
            continue;
        }
        baskets.sort_by_key(|b| b.0);
        kept.push(
            baskets
                .into_iter()
                .map(|(_, mut items)| {
                    items.sort_unstable();
                    items.dedup();
                    items
                })
                .collect(),
        );
    }
    // Items in at least 3 history baskets, counted before the split (the reference filters
    // on all users' histories).
    let mut count: HashMap<u32, u32> = HashMap::new();
    for baskets in &kept {
        for b in &baskets[..baskets.len() - 1] {
            for &i in b {
                *count.entry(i).or_default() += 1;
            }
        }
    }
    let mut keep: Vec<u32> = count.into_iter().filter(|&(_, n)| n >= MIN_ITEM_BASKETS).map(|(i, _)| i).collect();
    keep.sort_unstable();
    let index: HashMap<u32, u32> = keep.iter().enumerate().map(|(n, &i)| (i, n as u32)).collect();
    let mut users = Vec::new();
    for baskets in kept {
        let mut filtered: Vec<Vec<u32>> =
            baskets.into_iter().map(|b| b.into_iter().filter_map(|i| index.get(&i).copied()).collect::<Vec<u32>>()).collect();
        // An emptied target leaves nothing to predict; emptied history baskets vanish (the
        // reference's JSON has no row for them).
        let target = filtered.pop().unwrap_or_default();
        let history: Vec<Vec<u32>> = filtered.into_iter().filter(|b| !b.is_empty()).collect();
        if !target.is_empty() && !history.is_empty() {
            users.push(User { history, target });
        }
    }
    let history_baskets: usize = users.iter().map(|u| u.history.len()).sum();
    let all_baskets = users.iter().flat_map(|u| u.history.iter().chain(std::iter::once(&u.target)));
    let (sizes, n) = all_baskets.fold((0usize, 0usize), |(s, n), b| (s + b.len(), n + 1));
    let (repeat, target_items) = users.iter().fold((0usize, 0usize), |(r, t), u| {
        let seen = bought(u);
        (r + u.target.iter().filter(|i| seen.binary_search(i).is_ok()).count(), t + u.target.len())
    });
    let stats = Stats {
        users_read,
        baskets_read,
        users: users.len(),
        items: keep.len(),
        history_baskets,
        mean_basket_size: sizes as f64 / n.max(1) as f64,
        target_repeat_share: repeat as f64 / target_items.max(1) as f64,
    };
    (users, keep.len(), stats)
}

/// The user's bought-before items, sorted.
fn bought(u: &User) -> Vec<u32> {
    let mut seen: Vec<u32> = u.history.iter().flatten().copied().collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// The keyset split: shuffled users, 72% train, 8% validation, 20% test.
pub fn split(n: usize, seed: u64) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let train_end = (n as f64 * 0.8 * 0.9) as usize;
    let val_end = (n as f64 * 0.8) as usize;
    let test = order.split_off(val_end);
    let val = order.split_off(train_end);
    (order, val, test)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The figures of one list, as the reference computes them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserScore {
    pub recall: f64,
    pub ndcg: f64,
    pub hit: f64,
    pub repeat_ratio: f64,
    pub recall_repeat: Option<f64>,
    pub recall_explore: Option<f64>,
}

/// `truth` and `seen` sorted; `pred` best first, cut at `k`.
pub fn score(truth: &[u32], seen: &[u32], pred: &[u32], k: usize) -> UserScore {
    let top = &pred[..pred.len().min(k)];
    let has = |set: &[u32], i: &u32| set.binary_search(i).is_ok();
    let hits = top.iter().filter(|i| has(truth, i)).count();
    let dcg: f64 = top.iter().enumerate().filter(|(_, i)| has(truth, i)).map(|(r, _)| 1.0 / ((r + 2) as f64).log2()).sum();
    let idcg: f64 = (0..truth.len()).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    let (repeat, explore): (Vec<u32>, Vec<u32>) = truth.iter().partition(|i| has(seen, i));
    let recall_of = |part: &[u32]| (!part.is_empty()).then(|| top.iter().filter(|i| part.contains(i)).count() as f64 / part.len() as f64);
    UserScore {
        recall: hits as f64 / truth.len().max(1) as f64,
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        hit: if hits > 0 { 1.0 } else { 0.0 },
        repeat_ratio: top.iter().filter(|i| has(seen, i)).count() as f64 / k as f64,
        recall_repeat: recall_of(&repeat),
        recall_explore: recall_of(&explore),
    }
}

/// Means over users, per cut-off.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub recall: [f64; 2],
    pub ndcg: [f64; 2],
    pub phr: [f64; 2],
    pub repeat_ratio: [f64; 2],
    pub recall_repeat: [f64; 2],
    pub recall_explore: [f64; 2],
}

#[derive(Default)]
struct Acc {
    n: f64,
    sums: [[f64; 4]; 2],
    repeat: [(f64, f64); 2],
    explore: [(f64, f64); 2],
}

impl Acc {
    fn add(&mut self, truth: &[u32], seen: &[u32], pred: &[u32]) {
        self.n += 1.0;
        for (c, &k) in CUTOFFS.iter().enumerate() {
            let s = score(truth, seen, pred, k);
            for (slot, v) in self.sums[c].iter_mut().zip([s.recall, s.ndcg, s.hit, s.repeat_ratio]) {
                *slot += v;
            }
            if let Some(r) = s.recall_repeat {
                self.repeat[c].0 += r;
                self.repeat[c].1 += 1.0;
            }
            if let Some(r) = s.recall_explore {
                self.explore[c].0 += r;
                self.explore[c].1 += 1.0;
            }
        }
    }

    fn figures(&self) -> Figures {
        let n = self.n.max(1.0);
        let per = |j: usize| [self.sums[0][j] / n, self.sums[1][j] / n];
        let part = |p: &[(f64, f64); 2]| [p[0].0 / p[0].1.max(1.0), p[1].0 / p[1].1.max(1.0)];
        Figures {
            recall: per(0),
            ndcg: per(1),
            phr: per(2),
            repeat_ratio: per(3),
            recall_repeat: part(&self.repeat),
            recall_explore: part(&self.explore),
        }
    }
}

fn mean_figures(all: &[Figures]) -> Figures {
    let n = all.len().max(1) as f64;
    let avg = |f: fn(&Figures) -> [f64; 2]| {
        let s = all.iter().map(f).fold([0.0, 0.0], |a, b| [a[0] + b[0], a[1] + b[1]]);
        [s[0] / n, s[1] / n]
    };
    Figures {
        recall: avg(|f| f.recall),
        ndcg: avg(|f| f.ndcg),
        phr: avg(|f| f.phr),
        repeat_ratio: avg(|f| f.repeat_ratio),
        recall_repeat: avg(|f| f.recall_repeat),
        recall_explore: avg(|f| f.recall_explore),
    }
}

const LIST: usize = CUTOFFS[1];

/// Best first, ties to the lower index, non-positive scores left out.
fn top(scores: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<u32> {
    let mut v: Vec<(u32, f32)> = scores.filter(|s| s.1 > 0.0).collect();
    let by = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, by);
        v.truncate(k);
    }
    v.sort_by(by);
    // Not `into_iter().collect()`: that reuses `v`'s buffer, catalog-sized, for every stored list.
    let mut ids = Vec::with_capacity(v.len());
    ids.extend(v.iter().map(|s| s.0));
    ids
}

/// Item counts over every user's history baskets (G-TopFreq's and the explore vector's
/// popularity; no target is counted).
pub fn popularity(users: &[User], items: usize) -> Vec<f32> {
    let mut pop = vec![0f32; items];
    for i in users.iter().flat_map(|u| u.history.iter().flatten()) {
        pop[*i as usize] += 1.0;
    }
    pop
}

/// P-TopFreq: the user's items by how many history baskets hold them; ties to the item
/// bought first (the reference's stable sort over the history in order).
pub fn p_topfreq(u: &User) -> Vec<u32> {
    let mut first: Vec<(u32, usize, usize)> = Vec::new();
    let mut at: HashMap<u32, usize> = HashMap::new();
    for (n, i) in u.history.iter().flatten().enumerate() {
        match at.get(i) {
            Some(&slot) => first[slot].1 += 1,
            None => {
                at.insert(*i, first.len());
                first.push((*i, 1, n));
            }
        }
    }
    first.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    first.into_iter().take(LIST).map(|f| f.0).collect()
}

fn history_slices(u: &User) -> Vec<Vec<usize>> {
    u.history.iter().map(|b| b.iter().map(|&i| i as usize).collect()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// What the reference runs (scikit-learn's default metric).
    Euclidean,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tifu {
    pub neighbours: usize,
    pub alpha: f32,
    pub similarity: Similarity,
}

/// TIFU-KNN's training side: the training users' personal vectors and an inverted index.
pub struct Neighbours {
    vectors: Vec<Vec<(u32, f32)>>,
    norms: Vec<f32>,
    postings: Vec<Vec<(u32, f32)>>,
}

impl Neighbours {
    pub fn new(train: &[&User], items: usize, params: &BuyAgainParams) -> Self {
        let vectors: Vec<Vec<(u32, f32)>> =
            train.iter().map(|u| personal_scores(&history_slices(u), params).into_iter().map(|(i, s)| (i as u32, s)).collect()).collect();
        let norms = vectors.iter().map(|v| v.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt()).collect();
        let mut postings = vec![Vec::new(); items];
        for (n, v) in vectors.iter().enumerate() {
            for &(i, s) in v {
                postings[i as usize].push((n as u32, s));
            }
        }
        Neighbours { vectors, norms, postings }
    }

    /// The training users nearest `query`, nearest first, at most `k`.
    fn nearest(&self, query: &[(u32, f32)], k: usize, similarity: Similarity, dots: &mut Vec<f32>) -> Vec<u32> {
        dots.clear();
        dots.resize(self.vectors.len(), 0.0);
        for &(i, s) in query {
            for &(u, t) in &self.postings[i as usize] {
                dots[u as usize] += s * t;
            }
        }
        let qn = query.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
        // Smaller is nearer: squared distance, or minus the cosine.
        let mut d: Vec<(f32, u32)> = dots
            .iter()
            .zip(&self.norms)
            .enumerate()
            .map(|(u, (&dot, &n))| {
                let key = match similarity {
                    Similarity::Euclidean => qn * qn + n * n - 2.0 * dot,
                    Similarity::Cosine => -dot / (qn * n).max(f32::MIN_POSITIVE),
                };
                (key, u as u32)
            })
            .collect();
        let by = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if d.len() > k && k > 0 {
            d.select_nth_unstable_by(k - 1, by);
            d.truncate(k);
        }
        d.sort_by(by);
        d.into_iter().map(|e| e.1).collect()
    }
}

/// TIFU-KNN lists for `users` under each of `configs` (neighbour lists found once per
/// similarity at the largest k).
fn tifu_lists(nb: &Neighbours, users: &[&User], items: usize, params: &BuyAgainParams, configs: &[Tifu]) -> Vec<Vec<Vec<u32>>> {
    let mut out = vec![Vec::with_capacity(users.len()); configs.len()];
    let mut dots = Vec::new();
    let mut mean = vec![0f32; items];
    let mut marked = vec![false; items];
    let mut touched: Vec<u32> = Vec::new();
    for u in users {
        let own: Vec<(u32, f32)> = personal_scores(&history_slices(u), params).into_iter().map(|(i, s)| (i as u32, s)).collect();
        let mut found: Vec<(Similarity, Vec<u32>)> = Vec::new();
        for (c, cfg) in configs.iter().enumerate() {
            if !found.iter().any(|f| f.0 == cfg.similarity) {
                let k_max = configs.iter().filter(|c| c.similarity == cfg.similarity).map(|c| c.neighbours).max().unwrap_or(0);
                found.push((cfg.similarity, nb.nearest(&own, k_max, cfg.similarity, &mut dots)));
            }
            let near = found.iter().find(|f| f.0 == cfg.similarity).map(|f| &f.1[..cfg.neighbours.min(f.1.len())]).unwrap_or(&[]);
            for &t in &touched {
                mean[t as usize] = 0.0;
                marked[t as usize] = false;
            }
            touched.clear();
            let share = (1.0 - cfg.alpha) / near.len().max(1) as f32;
            for &n in near {
                for &(i, s) in &nb.vectors[n as usize] {
                    if !marked[i as usize] {
                        marked[i as usize] = true;
                        touched.push(i);
                    }
                    mean[i as usize] += share * s;
                }
            }
            for &(i, s) in &own {
                if !marked[i as usize] {
                    marked[i as usize] = true;
                    touched.push(i);
                }
                mean[i as usize] += cfg.alpha * s;
            }
            out[c].push(top(touched.iter().map(|&i| (i, mean[i as usize])), LIST));
        }
    }
    out
}

fn sdk_lists(users: &[&User], popularity: &[f32], params: &BuyAgainParams) -> Vec<Vec<u32>> {
    users
        .iter()
        .map(|u| {
            // The device's function, on this user's purchases.
            let scores = buy_again_scores(&history_slices(u), popularity, params);
            top(scores.iter().enumerate().map(|(i, &s)| (i as u32, s)), LIST)
        })
        .collect()
}

fn evaluate(users: &[&User], lists: &[Vec<u32>]) -> Figures {
    let mut acc = Acc::default();
    for (u, pred) in users.iter().zip(lists) {
        let mut truth = u.target.clone();
        truth.sort_unstable();
        acc.add(&truth, &bought(u), pred);
    }
    acc.figures()
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub method: String,
    pub figures: Figures,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub stats: Stats,
    pub folds: u64,
    pub seed: u64,
    /// Per split: the TIFU-KNN settings and the SDK alpha validation chose.
    pub chosen_tifu: Vec<Tifu>,
    pub chosen_sdk_alpha: Vec<f32>,
    pub rows: Vec<Row>,
    pub seconds: f64,
}

/// The figures of every method on `users` over `folds` splits.
pub fn run_protocol(users: &[User], items: usize, stats: Stats, folds: u64, seed: u64, steps: &Steps) -> Report {
    let started = std::time::Instant::now();
    let tifu_params = BuyAgainParams::default();
    let pop = popularity(users, items);
    let g_list = top(pop.iter().enumerate().map(|(i, &s)| (i as u32, s)), LIST);
    let names = [
        "G-TopFreq",
        "P-TopFreq",
        "TIFU-KNN (paper's settings)",
        "TIFU-KNN (tuned on validation)",
        "SDK buyAgain (defaults)",
        "SDK buyAgain (alpha tuned on validation)",
    ];
    let mut per_method: Vec<Vec<Figures>> = vec![Vec::new(); names.len()];
    let (mut chosen_tifu, mut chosen_sdk_alpha) = (Vec::new(), Vec::new());
    let grid: Vec<Tifu> = [Similarity::Euclidean, Similarity::Cosine]
        .into_iter()
        .flat_map(|similarity| {
            TIFU_NEIGHBOURS
                .into_iter()
                .flat_map(move |neighbours| TIFU_ALPHAS.into_iter().map(move |alpha| Tifu { neighbours, alpha, similarity }))
        })
        .collect();
    for fold in 0..folds {
        let (train, val, test) = split(users.len(), seed + fold);
        let pick = |ix: &[usize]| ix.iter().map(|&i| &users[i]).collect::<Vec<&User>>();
        let (train, val, test) = (pick(&train), pick(&val), pick(&test));
        steps.step("TIFU-KNN: training users' vectors");
        let nb = Neighbours::new(&train, items, &tifu_params);
        steps.step("TIFU-KNN: choosing k, alpha and the similarity on validation users");
        let val_lists = tifu_lists(&nb, &val, items, &tifu_params, &grid);
        let best = grid
            .iter()
            .zip(&val_lists)
            .map(|(cfg, lists)| (*cfg, evaluate(&val, lists).recall[0]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(PAPER_TIFU, |b| b.0);
        chosen_tifu.push(best);
        let sdk_alpha = SDK_ALPHAS
            .iter()
            .map(|&alpha| (alpha, evaluate(&val, &sdk_lists(&val, &pop, &BuyAgainParams { alpha, ..tifu_params })).recall[0]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(tifu_params.alpha, |b| b.0);
        chosen_sdk_alpha.push(sdk_alpha);
        steps.step("test users: every method");
        let tifu = tifu_lists(&nb, &test, items, &tifu_params, &[PAPER_TIFU, best]);
        let lists: [Vec<Vec<u32>>; 6] = [
            test.iter().map(|_| g_list.clone()).collect(),
            test.iter().map(|u| p_topfreq(u)).collect(),
            tifu[0].clone(),
            tifu[1].clone(),
            sdk_lists(&test, &pop, &BuyAgainParams::default()),
            sdk_lists(&test, &pop, &BuyAgainParams { alpha: sdk_alpha, ..tifu_params }),
        ];
        for (m, l) in lists.iter().enumerate() {
            per_method[m].push(evaluate(&test, l));
        }
    }
    let rows = names.iter().zip(&per_method).map(|(n, f)| Row { method: (*n).to_owned(), figures: mean_figures(f) }).collect();
    Report { stats, folds, seed, chosen_tifu, chosen_sdk_alpha, rows, seconds: started.elapsed().as_secs_f64() }
}

/// Reads the log: one raw user per user id, one basket per basket id (time: its first row).
pub fn read(path: &std::path::Path) -> Result<Vec<RawUser>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("reading the header of {}", path.display()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).with_context(|| format!("{}: no `{name}` column", path.display()));
    let (cu, ci, ct, cb) = (col("user_id")?, col("item_id")?, col("timestamp")?, col("basket")?);
    let mut items: HashMap<String, u32> = HashMap::new();
    let mut users: HashMap<String, BasketsById> = HashMap::new();
    for (n, record) in reader.records().enumerate() {
        let r = record.with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        let field = |c: usize| r.get(c).with_context(|| format!("{}: row {} is short", path.display(), n + 2));
        let ts: i64 = field(ct)?.parse().with_context(|| format!("{}: row {}: timestamp", path.display(), n + 2))?;
        let next = items.len() as u32;
        let item = *items.entry(field(ci)?.to_owned()).or_insert(next);
        let basket = users.entry(field(cu)?.to_owned()).or_default().entry(field(cb)?.to_owned()).or_insert((ts, Vec::new()));
        basket.0 = basket.0.min(ts);
        basket.1.push(item);
    }
    if users.is_empty() {
        bail!("{}: no interactions", path.display());
    }
    // Sorted by user id so a seed names the same split on every run.
    let mut users: Vec<(String, BasketsById)> = users.into_iter().collect();
    users.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(users
        .into_iter()
        .map(|(_, baskets)| {
            let mut b: Vec<(String, (i64, Vec<u32>))> = baskets.into_iter().collect();
            // Same-time baskets in id order (`<user>-<yyyymmdd>` sorts by day).
            b.sort_by(|x, y| x.1 .0.cmp(&y.1 .0).then(x.0.cmp(&y.0)));
            b.into_iter().map(|(_, v)| v).collect()
        })
        .collect())
}

pub fn run(args: BasketArgs) -> Result<()> {
    if args.folds == 0 {
        bail!("--folds must be at least 1");
    }
    let steps = Steps::new(2 + 3 * args.folds, args.json);
    steps.step("reading the log");
    let raw = read(&args.interactions)?;
    steps.step("the protocol's user and item filters");
    let (users, items, stats) = prepare(raw);
    if users.len() < 10 {
        bail!("only {} users pass the protocol's filters; too few to split", users.len());
    }
    let report = run_protocol(&users, items, stats, args.folds, args.seed, &steps);
    steps.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    let s = &r.stats;
    println!(
        "{} users, {} items after the filters ({} users and {} baskets read); {} history baskets, {:.2} items a basket, {:.1}% of target items bought before",
        s.users, s.items, s.users_read, s.baskets_read, s.history_baskets, s.mean_basket_size, 100.0 * s.target_repeat_share
    );
    println!("mean over {} random user splits (seeds {}..{}), test users; {:.1} s", r.folds, r.seed, r.seed + r.folds - 1, r.seconds);
    println!();
    println!(
        "| method | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | PHR@10 | repetition ratio@10 | Recall@10 repeat | Recall@10 explore |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in &r.rows {
        let f = &row.figures;
        println!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.4} | {:.4} |",
            row.method,
            f.recall[0],
            f.ndcg[0],
            f.recall[1],
            f.ndcg[1],
            f.phr[0],
            f.repeat_ratio[0],
            f.recall_repeat[0],
            f.recall_explore[0]
        );
    }
    println!("| TIFU-KNN, published (Li et al., TOIS 2023) | 0.129 | 0.099 | | | | | | |");
    println!();
    for (n, (t, a)) in r.chosen_tifu.iter().zip(&r.chosen_sdk_alpha).enumerate() {
        println!("split {n}: TIFU-KNN chose k {} alpha {} {:?}; buyAgain chose alpha {a}", t.neighbours, t.alpha, t.similarity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(baskets: &[(i64, &[u32])]) -> RawUser {
        baskets.iter().map(|(t, b)| (*t, b.to_vec())).collect()
    }

    #[test]
    fn the_protocol_filters_users_and_items_and_targets_the_last_basket() {
        let users = vec![
            // Item 7 is in 4 history baskets, 9 in 3 (kept); 8 in 2 (dropped everywhere).
            raw(&[(3, &[7, 9]), (1, &[7, 8]), (2, &[7, 8, 8]), (4, &[7, 9, 8])]),
            // Two baskets: too few.
            raw(&[(1, &[7]), (2, &[7])]),
            // Its target holds only item 8, which the filter drops: the user drops out.
            raw(&[(1, &[7, 9]), (2, &[9]), (3, &[8])]),
        ];
        let (users, items, stats) = prepare(users);
        assert_eq!(items, 2);
        assert_eq!(stats.users, 1);
        assert_eq!(stats.users_read, 3);
        // Time order: baskets at 1, 2, 3 are history, the one at 4 the target; 7 → 0, 9 → 1.
        assert_eq!(users[0], User { history: vec![vec![0], vec![0], vec![0, 1]], target: vec![0, 1] });
        assert!((stats.target_repeat_share - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_split_is_72_8_20_disjoint_and_seeded() {
        let (train, val, test) = split(100, 3);
        assert_eq!((train.len(), val.len(), test.len()), (72, 8, 20));
        let mut all: Vec<usize> = train.iter().chain(&val).chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split(100, 3), (train.clone(), val, test));
        assert_ne!(split(100, 4).0, train);
    }

    #[test]
    fn recall_and_ndcg_match_the_reference_formulas() {
        // Target {1, 2, 3}; predictions 5, 1, 6, 3: hits at ranks 2 and 4.
        let s = score(&[1, 2, 3], &[1, 5], &[5, 1, 6, 3], 10);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((s.ndcg - dcg / idcg).abs() < 1e-12, "{}", s.ndcg);
        assert_eq!(s.hit, 1.0);
        // Two of the predictions (5, 1) were bought before: 2 / k.
        assert!((s.repeat_ratio - 0.2).abs() < 1e-12);
        assert_eq!(s.recall_repeat, Some(1.0), "the one repeat item, 1, is found");
        assert_eq!(s.recall_explore, Some(0.5), "of 2 and 3, 3 is found");
        // Cut at 2: only the hit at rank 2 counts; the ideal DCG still covers all 3 items.
        let s = score(&[1, 2, 3], &[], &[5, 1, 6, 3], 2);
        assert!((s.recall - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.ndcg - (1.0 / 3f64.log2()) / idcg).abs() < 1e-12);
        assert_eq!(s.recall_repeat, None);
    }

    #[test]
    fn tifu_p_topfreq_and_buy_again_rank_the_repeatedly_bought_item_first() {
        // Item 4 in every basket of user 0; item 0 is the most popular overall.
        let mut users = vec![User { history: vec![vec![4, 1], vec![4, 2], vec![4, 3], vec![4]], target: vec![4] }];
        for n in 0..12u32 {
            users.push(User { history: vec![vec![0, 5 + n % 3], vec![0], vec![0, 4]], target: vec![0] });
        }
        let items = 8;
        let u = &users[0];
        assert_eq!(p_topfreq(u)[0], 4);
        let train: Vec<&User> = users[1..].iter().collect();
        let params = BuyAgainParams::default();
        let nb = Neighbours::new(&train, items, &params);
        for similarity in [Similarity::Euclidean, Similarity::Cosine] {
            let lists = tifu_lists(&nb, &[u], items, &params, &[Tifu { neighbours: 5, alpha: 0.7, similarity }]);
            assert_eq!(lists[0][0][0], 4, "{similarity:?}: {:?}", lists[0][0]);
            assert!(lists[0][0].contains(&0), "the neighbours add the popular item");
        }
        let pop = popularity(&users, items);
        let g = top(pop.iter().enumerate().map(|(i, &s)| (i as u32, s)), LIST);
        assert_eq!(g[0], 0);
        let sdk = sdk_lists(&[u], &pop, &params);
        assert_eq!(sdk[0][0], 4);
        assert!(sdk[0].contains(&0), "popularity fills the list");
        // Evaluated: the target {4} is hit at rank 1 by P-TopFreq, missed at rank 1 by G-TopFreq.
        let f = evaluate(&[u], &[p_topfreq(u)]);
        assert_eq!((f.recall[0], f.ndcg[0]), (1.0, 1.0));
        let f = evaluate(&[u], &[g]);
        assert!(f.ndcg[0] < 1.0 && f.recall[0] == 1.0);
    }
}
