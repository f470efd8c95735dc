//! Leave-one-out or time-split evaluation with full ranking, and the baselines it is compared
//! against.

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use serde_json::{json, Value};

use super::model::Model;

pub const PROTOCOL: &str = "leave-one-out, full ranking: per user (time-ordered, 3+ interactions) the last item is the \
     test target and the second-to-last the validation target; models are trained on the rest; the input is the last \
     max_seq_len items before the target; items already in the user's history are excluded from the ranking (the \
     target never is); ties in score count as the expected rank under a random order";

pub const TIME_PROTOCOL: &str = "time split, full ranking: the last `test_days` of the log are the test period and the \
     `test_days` before it the validation period; models are fitted on every interaction before the validation period; \
     each interaction of a period whose item was seen in the fit is a target, its input the last max_seq_len items the \
     visitor had before it (earlier periods included); nothing is excluded from the ranking (a shop's visitors buy \
     again); at most max_cases targets per period, every k-th in time order; ties in score count as the expected rank \
     under a random order";

/// One ranking query: everything before the target, and the target.
#[derive(Debug, Clone)]
pub struct Case {
    pub history: Vec<u32>,
    pub target: u32,
    /// Whether the items of the history are left out of the ranking (leave-one-out on films:
    /// nobody watches a film twice; not in a shop, where repeat purchases are the norm).
    pub exclude_history: bool,
}

impl Case {
    /// The model input: the most recent `max_len` items of the history.
    pub fn input(&self, max_len: usize) -> &[u32] {
        &self.history[self.history.len().saturating_sub(max_len)..]
    }
}

pub struct Split {
    /// Sequences to train on: each user's sequence without its last two items (whole when the
    /// user has fewer than 3 interactions, and then not evaluated); with a time split, the
    /// interactions before the validation period.
    pub train: Vec<Vec<u32>>,
    pub validation: Vec<Case>,
    pub test: Vec<Case>,
    /// Time split: targets left out because their item was never seen in the fit (validation,
    /// test), and the period boundaries (seconds).
    pub unseen: (usize, usize),
    pub periods: Option<(f64, f64, f64)>,
}

/// The time split (`TIME_PROTOCOL`): fit before `end − 2·days`, validate on the next `days`,
/// test on the last `days`.
pub fn by_time(sequences: &[Vec<u32>], times: &[Vec<f64>], n: usize, days: f64, max_cases: usize) -> Split {
    let end = times.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let test_from = end - days * 86_400.0;
    let validation_from = test_from - days * 86_400.0;
    let mut split = Split {
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
        unseen: (0, 0),
        periods: Some((validation_from, test_from, end)),
    };
    let mut seen = vec![false; n];
    for (s, t) in sequences.iter().zip(times) {
        let fit: Vec<u32> = s.iter().zip(t).filter(|(_, &ts)| ts <= validation_from).map(|(&i, _)| i).collect();
        for &i in &fit {
            seen[i as usize] = true;
        }
        if !fit.is_empty() {
            split.train.push(fit);
        }
    }
    // Time order across visitors, so "every k-th" spreads over the period.
    let mut events: Vec<(f64, usize, usize)> = Vec::new();
    for (u, t) in times.iter().enumerate() {
        for (p, &ts) in t.iter().enumerate() {
            if ts > validation_from && p > 0 {
                events.push((ts, u, p));
            }
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut validation, mut test) = (Vec::new(), Vec::new());
    for (ts, u, p) in events {
        let target = sequences[u][p];
        let is_test = ts > test_from;
        if !seen[target as usize] {
            if is_test {
                split.unseen.1 += 1;
            } else {
                split.unseen.0 += 1;
            }
            continue;
        }
        let case = Case { history: sequences[u][..p].to_vec(), target, exclude_history: false };
        if is_test {
            test.push(case);
        } else {
            validation.push(case);
        }
    }
    let every_kth = |cases: Vec<Case>| -> Vec<Case> {
        let k = cases.len().div_ceil(max_cases.max(1)).max(1);
        cases.into_iter().step_by(k).collect()
    };
    split.validation = every_kth(validation);
    split.test = every_kth(test);
    split
}

pub fn leave_one_out(sequences: &[Vec<u32>]) -> Split {
    let mut split = Split { train: Vec::new(), validation: Vec::new(), test: Vec::new(), unseen: (0, 0), periods: None };
    for s in sequences {
        let len = s.len();
        if len >= 3 {
            split.train.push(s[..len - 2].to_vec());
            split.validation.push(Case { history: s[..len - 2].to_vec(), target: s[len - 2], exclude_history: true });
            split.test.push(Case { history: s[..len - 1].to_vec(), target: s[len - 1], exclude_history: true });
        } else {
            split.train.push(s.clone());
        }
    }
    split
}

/// Marks (or unmarks) the items a case excludes from the ranking: its history, but not its target.
pub fn mark(excluded: &mut [bool], case: &Case, on: bool) {
    if !case.exclude_history {
        return;
    }
    for &h in &case.history {
        excluded[h as usize] = on;
    }
    excluded[case.target as usize] = false;
}

/// Sums of HR@10, HR@20, NDCG@10 and MRR@20 over the targets seen.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub users: usize,
    hr10: f64,
    hr20: f64,
    ndcg10: f64,
    mrr20: f64,
}

impl Metrics {
    /// Adds one user: the target's rank among the items not excluded. With `e` other items tied
    /// with the target, each rank in `g+1 ..= g+e+1` is equally likely; the metrics are averaged
    /// over them (a random tie-break, without the randomness).
    pub fn add(&mut self, scores: &[f32], target: u32, excluded: &[bool]) {
        let t = target as usize;
        let st = scores[t];
        self.users += 1;
        if st.is_nan() {
            return;
        }
        let (mut greater, mut equal) = (0usize, 0usize);
        for (j, &s) in scores.iter().enumerate() {
            if j == t || excluded[j] {
                continue;
            }
            if s > st {
                greater += 1;
            } else if s == st {
                equal += 1;
            }
        }
        let weight = 1.0 / (equal + 1) as f64;
        for rank in (greater + 1)..=(greater + equal + 1).min(20) {
            let r = rank as f64;
            if rank <= 10 {
                self.hr10 += weight;
                self.ndcg10 += weight / (r + 1.0).log2();
            }
            self.mrr20 += weight / r;
            self.hr20 += weight;
        }
    }

    fn mean(&self, sum: f64) -> f64 {
        if self.users == 0 {
            0.0
        } else {
            sum / self.users as f64
        }
    }

    pub fn hr10(&self) -> f64 {
        self.mean(self.hr10)
    }

    pub fn hr20(&self) -> f64 {
        self.mean(self.hr20)
    }

    pub fn ndcg10(&self) -> f64 {
        self.mean(self.ndcg10)
    }

    pub fn mrr20(&self) -> f64 {
        self.mean(self.mrr20)
    }

    pub fn to_json(&self, name: &str) -> Value {
        json!({
            "model": name,
            "hr@10": self.hr10(),
            "hr@20": self.hr20(),
            "ndcg@10": self.ndcg10(),
            "mrr@20": self.mrr20(),
            "users": self.users,
        })
    }
}

fn counts(train: &[Vec<u32>], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n];
    for s in train {
        for &i in s {
            c[i as usize] += 1.0;
        }
    }
    c
}

/// Baseline (a): the most-interacted items of the training part, same for everyone.
pub fn popularity(train: &[Vec<u32>], n: usize, cases: &[Case]) -> Metrics {
    let pop: Vec<f32> = counts(train, n).into_iter().map(|c| c as f32).collect();
    let mut m = Metrics::default();
    let mut excluded = vec![false; n];
    for case in cases {
        mark(&mut excluded, case, true);
        m.add(&pop, case.target, &excluded);
        mark(&mut excluded, case, false);
    }
    m
}

/// Baseline (b): first-order Markov chain, counts of `last item → next item` in the training
/// part; popularity breaks ties and is all that is left when the last item has no transitions.
pub fn markov(train: &[Vec<u32>], n: usize, cases: &[Case]) -> Metrics {
    let mut next: Vec<std::collections::HashMap<u32, f64>> = vec![Default::default(); n];
    for s in train {
        for w in s.windows(2) {
            *next[w[0] as usize].entry(w[1]).or_default() += 1.0;
        }
    }
    let pop = counts(train, n);
    let max_pop = pop.iter().copied().fold(0.0, f64::max);
    // Popularity in [0, 1): below any difference of one transition.
    let tie_break: Vec<f64> = pop.iter().map(|p| p / (max_pop + 1.0)).collect();
    let mut m = Metrics::default();
    let mut excluded = vec![false; n];
    let mut scores = vec![0f32; n];
    for case in cases {
        let last = *case.history.last().expect("a case has history") as usize;
        for j in 0..n {
            scores[j] = (next[last].get(&(j as u32)).copied().unwrap_or(0.0) + tie_break[j]) as f32;
        }
        mark(&mut excluded, case, true);
        m.add(&scores, case.target, &excluded);
        mark(&mut excluded, case, false);
    }
    m
}

/// Baseline (c): item-kNN. Items are similar when visitors have them near each other: cosine
/// of co-occurrence counts within `KNN_WINDOW` positions of a training sequence. A query scores
/// each item by Σ decay^age · similarity to the visitor's last `items` items; popularity
/// breaks ties. `items` and `decay` are chosen on the validation targets (NDCG@10).
pub struct ItemKnn {
    neighbours: Vec<Vec<(u32, f32)>>,
    tie_break: Vec<f32>,
    items: usize,
    decay: f32,
}

const KNN_WINDOW: usize = 5;
const KNN_ITEMS: [usize; 3] = [1, 3, 10];
const KNN_DECAY: [f32; 2] = [0.5, 0.9];

impl ItemKnn {
    pub fn fit(train: &[Vec<u32>], n: usize) -> ItemKnn {
        let mut co: Vec<std::collections::HashMap<u32, f32>> = vec![Default::default(); n];
        for s in train {
            for (p, &a) in s.iter().enumerate() {
                for &b in s.iter().skip(p + 1).take(KNN_WINDOW) {
                    if a != b {
                        *co[a as usize].entry(b).or_default() += 1.0;
                        *co[b as usize].entry(a).or_default() += 1.0;
                    }
                }
            }
        }
        let pop = counts(train, n);
        let max_pop = pop.iter().copied().fold(0.0, f64::max);
        let neighbours = co
            .into_iter()
            .enumerate()
            .map(|(a, row)| row.into_iter().map(|(b, c)| (b, c / ((pop[a] * pop[b as usize]).sqrt() as f32).max(1.0))).collect::<Vec<_>>())
            .collect();
        // Popularity in [0, 1e-6): below any similarity.
        let tie_break = pop.iter().map(|p| (p / (max_pop + 1.0) * 1e-6) as f32).collect();
        ItemKnn { neighbours, tie_break, items: KNN_ITEMS[1], decay: KNN_DECAY[0] }
    }

    fn scores_into(&self, history: &[u32], items: usize, decay: f32, scores: &mut [f32]) {
        scores.copy_from_slice(&self.tie_break);
        let mut w = 1.0;
        for &h in history.iter().rev().take(items) {
            for &(j, sim) in &self.neighbours[h as usize] {
                scores[j as usize] += w * sim;
            }
            w *= decay;
        }
    }

    /// Picks `items` and `decay` on the validation cases; their validation metrics.
    pub fn tune(&mut self, cases: &[Case]) -> Metrics {
        let n = self.tie_break.len();
        let grid: Vec<(usize, f32)> = KNN_ITEMS.iter().flat_map(|&i| KNN_DECAY.iter().map(move |&d| (i, d))).collect();
        let mut acc = vec![Metrics::default(); grid.len()];
        let (mut excluded, mut scores) = (vec![false; n], vec![0f32; n]);
        for case in cases {
            mark(&mut excluded, case, true);
            for (m, &(items, decay)) in acc.iter_mut().zip(&grid) {
                self.scores_into(&case.history, items, decay, &mut scores);
                m.add(&scores, case.target, &excluded);
            }
            mark(&mut excluded, case, false);
        }
        let best = (0..grid.len()).max_by(|&a, &b| acc[a].ndcg10().total_cmp(&acc[b].ndcg10())).unwrap_or(0);
        (self.items, self.decay) = grid[best];
        acc.swap_remove(best)
    }

    pub fn evaluate(&self, cases: &[Case]) -> Metrics {
        let n = self.tie_break.len();
        let (mut m, mut excluded, mut scores) = (Metrics::default(), vec![false; n], vec![0f32; n]);
        for case in cases {
            self.scores_into(&case.history, self.items, self.decay, &mut scores);
            mark(&mut excluded, case, true);
            m.add(&scores, case.target, &excluded);
            mark(&mut excluded, case, false);
        }
        m
    }

    pub fn label(&self) -> String {
        format!("item-knn (last {}, decay {})", self.items, self.decay)
    }
}

fn load(bytes: &[u8], n: usize) -> Result<foresight::infer::model::RecommenderModel> {
    foresight::infer::model::RecommenderModel::load(bytes, &foresight::infer::model::RecommenderIo::default(), n)
        .context("the exported model does not load in the SDK")
}

/// The trained model, scored by the SDK's runtime (tract) on its ONNX export.
pub fn onnx_model(bytes: &[u8], n: usize, cases: &[Case], max_len: usize, bar: &ProgressBar) -> Result<Metrics> {
    let mut model = load(bytes, n)?;
    let mut m = Metrics::default();
    let mut excluded = vec![false; n];
    let mut scores = Vec::with_capacity(n);
    let mut input: Vec<usize> = Vec::new();
    for case in cases {
        input.clear();
        input.extend(case.input(max_len).iter().map(|&i| i as usize));
        model.scores_into(&input, &mut scores).context("running the exported model in the SDK")?;
        mark(&mut excluded, case, true);
        m.add(&scores, case.target, &excluded);
        mark(&mut excluded, case, false);
        bar.inc(1);
    }
    Ok(m)
}

/// Largest |ONNX − Rust reference| score over (up to) the first 20 cases; an error when the two
/// disagree beyond float rounding, i.e. when the graph does not compute the model.
pub fn check_against_reference(bytes: &[u8], reference: &Model, cases: &[Case], max_len: usize) -> Result<f64> {
    let mut model = load(bytes, reference.n)?;
    let mut scores = Vec::new();
    let mut worst = 0f64;
    let mut magnitude = 0f64;
    for case in cases.iter().take(20) {
        let input = case.input(max_len);
        let idx: Vec<usize> = input.iter().map(|&i| i as usize).collect();
        model.scores_into(&idx, &mut scores)?;
        for (a, b) in scores.iter().zip(reference.scores(input)) {
            worst = worst.max((a - b).abs() as f64);
            magnitude = magnitude.max(b.abs() as f64);
        }
    }
    if worst > 1e-4 * (1.0 + magnitude) {
        bail!("the ONNX graph's scores differ from the model's by up to {worst} (scores up to {magnitude})");
    }
    Ok(worst)
}

pub fn table(rows: &[(String, Metrics)]) -> String {
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(5).max(5);
    let mut out =
        format!("{:<width$} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7}\n", "model", "HR@10", "HR@20", "NDCG@10", "MRR@20", "targets");
    let dash = "-".repeat(7);
    out.push_str(&format!("{}-|-{dash}-|-{dash}-|-{dash}-|-{dash}-|-{dash}\n", "-".repeat(width)));
    for (name, m) in rows {
        out.push_str(&format!(
            "{:<width$} | {:>7.4} | {:>7.4} | {:>7.4} | {:>7.4} | {:>7}\n",
            name,
            m.hr10(),
            m.hr20(),
            m.ndcg10(),
            m.mrr20(),
            m.users
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    #[test]
    fn the_time_split_fits_before_validation_and_tests_the_last_days_without_exclusion() {
        // Items 0..4; visitor 0 buys 0, 1 early, then 1 again in validation and 2, 0 in test;
        // visitor 1 buys 3 early and item 4 (never seen in the fit) in the test period.
        let sequences = vec![vec![0, 1, 1, 2, 0], vec![3, 4]];
        let times = vec![vec![0.0, 1.0 * DAY, 8.5 * DAY, 9.2 * DAY, 9.5 * DAY], vec![0.5 * DAY, 9.9 * DAY]];
        let split = by_time(&sequences, &times, 5, 1.0, 100);
        assert_eq!(split.periods, Some((7.9 * DAY, 8.9 * DAY, 9.9 * DAY)));
        assert_eq!(split.train, vec![vec![0, 1], vec![3]]);
        assert_eq!(split.validation.iter().map(|c| (c.history.clone(), c.target)).collect::<Vec<_>>(), vec![(vec![0, 1], 1)]);
        let test: Vec<_> = split.test.iter().map(|c| (c.history.clone(), c.target)).collect();
        // Item 2 was never in the fit: left out and counted; the repeat purchase of 0 is a target.
        assert_eq!(test, vec![(vec![0, 1, 1, 2], 0)]);
        assert_eq!(split.unseen, (0, 2));
        // Nothing is excluded: the repeated item ranks among the others.
        let mut excluded = vec![false; 5];
        mark(&mut excluded, &split.test[0], true);
        assert!(excluded.iter().all(|e| !e));

        // At most one target per period: every second one is kept.
        let long = vec![(0..10).map(|i| i % 3).collect::<Vec<u32>>()];
        let t = vec![(0..10).map(|i| f64::from(i) * DAY).collect::<Vec<f64>>()];
        let split = by_time(&long, &t, 3, 3.0, 2);
        assert_eq!(split.test.len(), 2, "{:?}", split.test);
        assert_eq!(split.test.iter().map(|c| c.history.len()).collect::<Vec<_>>(), vec![7, 9]);
    }
}
