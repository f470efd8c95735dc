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
    /// Where the session the session-based baselines query starts in `history`: the target's
    /// own session (a basket, a visit) when it already holds items, else the one before it.
    pub session: usize,
}

/// A gap longer than this starts a new session (the usual 30 minutes of web analytics; a shop
/// log whose baskets are days, like Ta Feng's, splits into its baskets).
pub const SESSION_GAP_SECONDS: f64 = 1_800.0;

/// The start of the session a case at position `p` queries (`Case::session`).
fn query_session(times: &[f64], p: usize) -> usize {
    let start_of = |end: usize| -> usize {
        let mut q = end;
        while q > 0 && times[q] - times[q - 1] <= SESSION_GAP_SECONDS {
            q -= 1;
        }
        q
    };
    let own = start_of(p);
    if own < p || own == 0 {
        own
    } else {
        start_of(own - 1)
    }
}

/// A past session (basket, visit) of the fit: its distinct items, sorted, and when it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub items: Vec<u32>,
    pub end: f64,
}

/// Cuts time-ordered interactions into sessions at gaps over `SESSION_GAP_SECONDS`.
pub fn sessions_of(items: &[u32], times: &[f64], out: &mut Vec<Session>) {
    let mut start = 0;
    for p in 1..=items.len() {
        if p == items.len() || times[p] - times[p - 1] > SESSION_GAP_SECONDS {
            let mut s = items[start..p].to_vec();
            s.sort_unstable();
            s.dedup();
            out.push(Session { items: s, end: times[p - 1] });
            start = p;
        }
    }
}

impl Case {
    /// The items of the session the session-based baselines query.
    pub fn session_items(&self) -> &[u32] {
        &self.history[self.session.min(self.history.len())..]
    }

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
    /// The fit's interactions cut into sessions (session-kNN's neighbours).
    pub sessions: Vec<Session>,
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
        sessions: Vec::new(),
        unseen: (0, 0),
        periods: Some((validation_from, test_from, end)),
    };
    let mut seen = vec![false; n];
    for (s, t) in sequences.iter().zip(times) {
        // Times are sorted within a visitor, so the fit is a prefix.
        let len = t.partition_point(|&ts| ts <= validation_from);
        let fit = s[..len].to_vec();
        for &i in &fit {
            seen[i as usize] = true;
        }
        if !fit.is_empty() {
            sessions_of(&fit, &t[..len], &mut split.sessions);
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
        let case = Case { history: sequences[u][..p].to_vec(), target, exclude_history: false, session: query_session(&times[u], p) };
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

pub fn leave_one_out(sequences: &[Vec<u32>], times: &[Vec<f64>]) -> Split {
    let mut split =
        Split { train: Vec::new(), validation: Vec::new(), test: Vec::new(), sessions: Vec::new(), unseen: (0, 0), periods: None };
    for (s, t) in sequences.iter().zip(times) {
        let len = s.len();
        let fit = if len >= 3 { len - 2 } else { len };
        if len >= 3 {
            let case = |p: usize| Case { history: s[..p].to_vec(), target: s[p], exclude_history: true, session: query_session(t, p) };
            split.validation.push(case(len - 2));
            split.test.push(case(len - 1));
        }
        sessions_of(&s[..fit], &t[..fit], &mut split.sessions);
        split.train.push(s[..fit].to_vec());
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

/// Sums of HR@10, HR@20, NDCG@10 and MRR@20 over the targets seen; for a model's test row also
/// every top-10 list, for coverage and novelty.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub users: usize,
    hr10: f64,
    hr20: f64,
    ndcg10: f64,
    mrr20: f64,
    /// The top-10 lists, one after the other (`Metrics::listing`); `None` while tuning, where
    /// only NDCG@10 decides.
    lists: Option<Vec<u32>>,
}

/// Catalog coverage@10 and novelty of the top-10 lists of a test row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeyondAccuracy {
    /// The share of the catalog that is in at least one top-10 list.
    pub coverage10: f64,
    /// The mean self-information, −log₂ p(i), of the recommended items, p(i) being the item's
    /// share of the fit's interactions (add-one smoothed, so an item never seen is finite):
    /// higher means less obvious recommendations.
    pub novelty10: f64,
}

impl Metrics {
    /// Metrics that also keep each top-10 list (`beyond_accuracy`).
    pub fn listing() -> Metrics {
        Metrics { lists: Some(Vec::new()), ..Metrics::default() }
    }

    /// Coverage@10 and novelty over the kept lists, against the fit's interaction counts;
    /// `None` without lists.
    pub fn beyond_accuracy(&self, counts: &[f64]) -> Option<BeyondAccuracy> {
        let lists = self.lists.as_ref()?;
        let n = counts.len();
        let mut listed = vec![false; n];
        for &i in lists {
            listed[i as usize] = true;
        }
        let total: f64 = counts.iter().sum::<f64>() + n as f64;
        let novelty = lists.iter().map(|&i| -((counts[i as usize] + 1.0) / total).log2()).sum::<f64>() / lists.len().max(1) as f64;
        Some(BeyondAccuracy { coverage10: listed.iter().filter(|&&l| l).count() as f64 / n.max(1) as f64, novelty10: novelty })
    }

    /// Appends the 10 best-scored items not excluded (ties to the lower index), when listing.
    fn keep_list(&mut self, scores: &[f32], excluded: &[bool]) {
        let Some(lists) = self.lists.as_mut() else { return };
        let mut top: Vec<(f32, u32)> = Vec::with_capacity(11);
        for (j, &s) in scores.iter().enumerate() {
            if excluded[j] || s.is_nan() || (top.len() == 10 && s <= top[9].0) {
                continue;
            }
            let at = top.partition_point(|&(t, _)| t >= s);
            top.insert(at, (s, j as u32));
            top.truncate(10);
        }
        lists.extend(top.iter().map(|&(_, j)| j));
    }

    /// Adds one user: the target's rank among the items not excluded. With `e` other items tied
    /// with the target, each rank in `g+1 ..= g+e+1` is equally likely; the metrics are averaged
    /// over them (a random tie-break, without the randomness).
    pub fn add(&mut self, scores: &[f32], target: u32, excluded: &[bool]) {
        let t = target as usize;
        let st = scores[t];
        self.users += 1;
        self.keep_list(scores, excluded);
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

    pub fn to_json(&self, name: &str, counts: &[f64]) -> Value {
        let beyond = self.beyond_accuracy(counts);
        json!({
            "model": name,
            "hr@10": self.hr10(),
            "hr@20": self.hr20(),
            "ndcg@10": self.ndcg10(),
            "mrr@20": self.mrr20(),
            "coverage@10": beyond.map(|b| b.coverage10),
            "novelty@10": beyond.map(|b| b.novelty10),
            "users": self.users,
        })
    }
}

/// How often each item occurs in the fit (popularity, and novelty's p(i)).
pub fn counts(train: &[Vec<u32>], n: usize) -> Vec<f64> {
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
    let mut m = Metrics::listing();
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
    let mut m = Metrics::listing();
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
        let (mut m, mut excluded, mut scores) = (Metrics::listing(), vec![false; n], vec![0f32; n]);
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
    scored(&mut load(bytes, n)?, n, cases, max_len, bar)
}

/// An ONNX recommender on the SDK's own kernels, as `convert` would run it (GRU, then
/// attention, then the windowed transition), with the kernel's name; why not, per kernel, when
/// none recognises it.
pub fn sdk_kernel(bytes: &[u8], n: usize) -> Result<(foresight::infer::model::RecommenderModel, &'static str)> {
    use foresight::import;
    use foresight::infer::model::RecommenderModel;
    let (model, kind, items) = match import::gru::from_onnx(bytes, None) {
        Ok(g) => {
            let items = g.head().bias().len();
            (RecommenderModel::from_gru(g), "gru", items)
        }
        Err(g) => match import::attention::from_onnx(bytes, None) {
            Ok(a) => {
                let items = a.head().bias().len();
                (RecommenderModel::from_attention(a), "attention", items)
            }
            Err(a) => match import::transition::from_onnx(bytes, None) {
                Ok(t) => {
                    let items = t.spec.items;
                    (RecommenderModel::from_transition(t), "transition", items)
                }
                Err(t) => bail!("no SDK kernel recognises it (gru: {g}; attention: {a}; transition: {t})"),
            },
        },
    };
    if items != n {
        bail!("it scores {items} items, the catalog has {n}: its item indices must be this command's catalog order");
    }
    Ok((model, kind))
}

/// A recommender loaded in the SDK (its kernels, or tract on a graph) over the cases: the
/// metrics of `--eval-onnx` rows and of the trained model's own row.
pub fn scored(
    model: &mut foresight::infer::model::RecommenderModel,
    n: usize,
    cases: &[Case],
    max_len: usize,
    bar: &ProgressBar,
) -> Result<Metrics> {
    let (mut m, mut excluded, mut scores, mut input) = (Metrics::listing(), vec![false; n], Vec::with_capacity(n), Vec::new());
    for case in cases {
        input.clear();
        input.extend(case.input(max_len).iter().map(|&i| i as usize));
        model.scores_into(&input, &mut scores).context("running the model in the SDK")?;
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

pub fn table(rows: &[(String, Metrics)], counts: &[f64]) -> String {
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(5).max(5);
    let heads = ["HR@10", "HR@20", "NDCG@10", "MRR@20", "Cov@10", "Nov@10", "targets"];
    let mut out = format!("{:<width$}", "model");
    for h in heads {
        out.push_str(&format!(" | {h:>7}"));
    }
    out.push('\n');
    out.push_str(&"-".repeat(width));
    for _ in heads {
        out.push_str(&format!("-|-{}", "-".repeat(7)));
    }
    out.push('\n');
    for (name, m) in rows {
        let beyond = m.beyond_accuracy(counts);
        let (cov, nov) =
            beyond.map_or(("-".to_owned(), "-".to_owned()), |b| (format!("{:.4}", b.coverage10), format!("{:.2}", b.novelty10)));
        out.push_str(&format!(
            "{:<width$} | {:>7.4} | {:>7.4} | {:>7.4} | {:>7.4} | {cov:>7} | {nov:>7} | {:>7}\n",
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

    #[test]
    fn sessions_cut_at_gaps_and_a_case_queries_its_own_session_or_the_one_before() {
        let items = [4, 5, 5, 6, 7];
        let times = [0.0, 10.0, 20.0, DAY, DAY + 60.0];
        let mut out = Vec::new();
        sessions_of(&items, &times, &mut out);
        assert_eq!(out, vec![Session { items: vec![4, 5], end: 20.0 }, Session { items: vec![6, 7], end: DAY + 60.0 }]);
        // Target 7 (position 4): its session already holds 6.
        assert_eq!(query_session(&times, 4), 3);
        // Target 6 opens a new session: the query is the session before, from position 0.
        assert_eq!(query_session(&times, 3), 0);
        assert_eq!(query_session(&times, 2), 0);
    }

    #[test]
    fn coverage_and_novelty_count_the_top_ten_lists() {
        // 20 items; scores rank 0..9 first for one target and 10..19 for the other.
        let counts: Vec<f64> = (0..20).map(|i| if i < 10 { 99.0 } else { 0.0 }).collect();
        let mut m = Metrics::listing();
        let excluded = vec![false; 20];
        let first: Vec<f32> = (0..20).map(|i| 20.0 - i as f32).collect();
        m.add(&first, 3, &excluded);
        assert_eq!(m.beyond_accuracy(&counts).map(|b| b.coverage10), Some(0.5));
        let second: Vec<f32> = (0..20).map(|i| i as f32).collect();
        m.add(&second, 3, &excluded);
        let b = m.beyond_accuracy(&counts).expect("listing");
        assert_eq!(b.coverage10, 1.0);
        // p = 100/1010 for the popular half and 1/1010 for the rest.
        let expected = (-(100.0f64 / 1010.0).log2() - (1.0f64 / 1010.0).log2()) / 2.0;
        assert!((b.novelty10 - expected).abs() < 1e-12, "{} vs {expected}", b.novelty10);
        // Excluded items never enter a list; tuning metrics keep none.
        let mut only = Metrics::listing();
        let mut ex = vec![true; 20];
        ex[5] = false;
        only.add(&first, 5, &ex);
        assert_eq!(only.beyond_accuracy(&counts).map(|b| b.coverage10), Some(0.05));
        assert_eq!(Metrics::default().beyond_accuracy(&counts), None);
    }
}
