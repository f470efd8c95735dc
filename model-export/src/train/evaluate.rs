//! Leave-one-out evaluation with full ranking, and the two baselines it is compared against.

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use serde_json::{json, Value};

use super::model::Model;

pub const PROTOCOL: &str = "leave-one-out, full ranking: per user (time-ordered, 3+ interactions) the last item is the \
     test target and the second-to-last the validation target; models are trained on the rest; the input is the last \
     max_seq_len items before the target; items already in the user's history are excluded from the ranking (the \
     target never is); ties in score count as the expected rank under a random order";

/// One ranking query: everything before the target, and the target.
#[derive(Debug, Clone)]
pub struct Case {
    pub history: Vec<u32>,
    pub target: u32,
}

impl Case {
    /// The model input: the most recent `max_len` items of the history.
    pub fn input(&self, max_len: usize) -> &[u32] {
        &self.history[self.history.len().saturating_sub(max_len)..]
    }
}

pub struct Split {
    /// Sequences to train on: each user's sequence without its last two items (whole when the
    /// user has fewer than 3 interactions, and then not evaluated).
    pub train: Vec<Vec<u32>>,
    pub validation: Vec<Case>,
    pub test: Vec<Case>,
}

pub fn leave_one_out(sequences: &[Vec<u32>]) -> Split {
    let mut split = Split { train: Vec::new(), validation: Vec::new(), test: Vec::new() };
    for s in sequences {
        let len = s.len();
        if len >= 3 {
            split.train.push(s[..len - 2].to_vec());
            split.validation.push(Case { history: s[..len - 2].to_vec(), target: s[len - 2] });
            split.test.push(Case { history: s[..len - 1].to_vec(), target: s[len - 1] });
        } else {
            split.train.push(s.clone());
        }
    }
    split
}

/// Marks (or unmarks) the items a case excludes from the ranking: its history, but not its target.
pub fn mark(excluded: &mut [bool], case: &Case, on: bool) {
    for &h in &case.history {
        excluded[h as usize] = on;
    }
    excluded[case.target as usize] = false;
}

/// Sums of HR@10, NDCG@10 and MRR@20 over the users seen.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub users: usize,
    hr10: f64,
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
    let mut out = format!("{:<width$} | {:>7} | {:>7} | {:>7} | {:>5}\n", "model", "HR@10", "NDCG@10", "MRR@20", "users");
    out.push_str(&format!("{}-|-{}-|-{}-|-{}-|-{}\n", "-".repeat(width), "-".repeat(7), "-".repeat(7), "-".repeat(7), "-".repeat(5)));
    for (name, m) in rows {
        out.push_str(&format!("{:<width$} | {:>7.4} | {:>7.4} | {:>7.4} | {:>5}\n", name, m.hr10(), m.ndcg10(), m.mrr20(), m.users));
    }
    out
}
