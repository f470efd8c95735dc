//! Session-based kNN baselines, SKNN and V-SKNN (Jannach & Ludewig, RecSys 2017; Ludewig,
//! Latifi, Jannach, "Empirical analysis of session-based recommendation algorithms", 2021),
//! which that study found as hard to beat as the neural session models on shop logs.
//!
//! The visitor's query session (a basket, a visit: `Case::session_items`) is compared with the
//! fit's past sessions that share an item with it. Of those, the `sample` most recent are
//! scored, the `k` most similar kept, and each item scores the summed similarity of the
//! neighbours that hold it.
//! - SKNN: cosine of the two item sets, `|s ∩ n| / sqrt(|s| |n|)`.
//! - V-SKNN: the query's items weigh by recency (the newest 1, then decaying linearly or as
//!   1/age), and the similarity is the summed weight of the shared items: what the visitor just
//!   did matters more than what they did at the start of the visit.
//!
//! `k`, `sample` and (V-SKNN) the decay are chosen on the validation targets by NDCG@10.

use super::evaluate::{counts, mark, Case, Metrics, Session};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// SKNN: every item of the query session counts the same; cosine similarity.
    Cosine,
    /// V-SKNN: weight `1 − 0.1·age` (0 from age 10 on), summed over shared items.
    Linear,
    /// V-SKNN: weight `1 / (1 + age)`, summed over shared items.
    Harmonic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub k: usize,
    pub sample: usize,
    pub weighting: Weighting,
}

const K_GRID: [usize; 3] = [50, 100, 200];
const SAMPLE_GRID: [usize; 2] = [500, 1000];

pub struct SessionKnn {
    sessions: Vec<Session>,
    /// For each item, the sessions that hold it, most recent first.
    by_item: Vec<Vec<u32>>,
    tie_break: Vec<f32>,
    pub params: Params,
}

impl SessionKnn {
    pub fn fit(sessions: &[Session], train: &[Vec<u32>], n: usize, weighting: Weighting) -> SessionKnn {
        let mut order: Vec<u32> = (0..sessions.len() as u32).collect();
        order.sort_by(|&a, &b| sessions[b as usize].end.total_cmp(&sessions[a as usize].end).then(a.cmp(&b)));
        let mut by_item = vec![Vec::new(); n];
        for &s in &order {
            for &i in &sessions[s as usize].items {
                by_item[i as usize].push(s);
            }
        }
        let pop = counts(train, n);
        let max_pop = pop.iter().copied().fold(0.0, f64::max);
        // Popularity in [0, 1e-6): below any similarity, so items no neighbour holds still rank.
        let tie_break = pop.iter().map(|p| (p / (max_pop + 1.0) * 1e-6) as f32).collect();
        SessionKnn { sessions: sessions.to_vec(), by_item, tie_break, params: Params { k: K_GRID[1], sample: SAMPLE_GRID[0], weighting } }
    }

    /// The query's distinct items with their weights (the newest occurrence decides the age).
    fn query(session: &[u32], weighting: Weighting) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::new();
        for (age, &i) in session.iter().rev().enumerate() {
            if out.iter().any(|&(j, _)| j == i) {
                continue;
            }
            let w = match weighting {
                Weighting::Cosine => 1.0,
                Weighting::Linear => (1.0 - 0.1 * age as f32).max(0.0),
                Weighting::Harmonic => 1.0 / (1.0 + age as f32),
            };
            out.push((i, w));
        }
        out
    }

    /// The `k` nearest of the `sample` most recent sessions sharing an item with the query,
    /// with their similarities.
    fn neighbours(&self, query: &[(u32, f32)], params: Params) -> Vec<(u32, f32)> {
        // The `sample` most recent sessions of the union are among each item's `sample` most
        // recent, so those are all that need looking at.
        let mut candidates: Vec<u32> =
            query.iter().flat_map(|&(i, _)| self.by_item[i as usize].iter().take(params.sample).copied()).collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.sort_by(|&a, &b| self.sessions[b as usize].end.total_cmp(&self.sessions[a as usize].end).then(a.cmp(&b)));
        candidates.truncate(params.sample);
        let mut scored: Vec<(u32, f32)> = candidates
            .into_iter()
            .map(|c| {
                let items = &self.sessions[c as usize].items;
                let shared: f32 = query.iter().filter(|(i, _)| items.binary_search(i).is_ok()).map(|&(_, w)| w).sum();
                let sim = match params.weighting {
                    Weighting::Cosine => shared / ((query.len() * items.len()) as f32).sqrt(),
                    Weighting::Linear | Weighting::Harmonic => shared,
                };
                (c, sim)
            })
            .filter(|&(_, sim)| sim > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(params.k);
        scored
    }

    fn scores_into(&self, case: &Case, params: Params, scores: &mut [f32]) {
        scores.copy_from_slice(&self.tie_break);
        let query = Self::query(case.session_items(), params.weighting);
        for (s, sim) in self.neighbours(&query, params) {
            for &i in &self.sessions[s as usize].items {
                scores[i as usize] += sim;
            }
        }
    }

    /// Chooses `k`, `sample` and (V-SKNN) the decay on the validation cases by NDCG@10.
    pub fn tune(&mut self, cases: &[Case]) -> Metrics {
        let weightings: &[Weighting] = match self.params.weighting {
            Weighting::Cosine => &[Weighting::Cosine],
            Weighting::Linear | Weighting::Harmonic => &[Weighting::Linear, Weighting::Harmonic],
        };
        let grid: Vec<Params> = weightings
            .iter()
            .flat_map(|&weighting| K_GRID.iter().flat_map(move |&k| SAMPLE_GRID.iter().map(move |&sample| Params { k, sample, weighting })))
            .collect();
        let n = self.tie_break.len();
        let mut acc = vec![Metrics::default(); grid.len()];
        let (mut excluded, mut scores) = (vec![false; n], vec![0f32; n]);
        for case in cases {
            mark(&mut excluded, case, true);
            for (m, &params) in acc.iter_mut().zip(&grid) {
                self.scores_into(case, params, &mut scores);
                m.add(&scores, case.target, &excluded);
            }
            mark(&mut excluded, case, false);
        }
        let best = (0..grid.len()).max_by(|&a, &b| acc[a].ndcg10().total_cmp(&acc[b].ndcg10()).then(b.cmp(&a))).unwrap_or(0);
        self.params = grid[best];
        acc.swap_remove(best)
    }

    pub fn evaluate(&self, cases: &[Case]) -> Metrics {
        let n = self.tie_break.len();
        let (mut m, mut excluded, mut scores) = (Metrics::listing(), vec![false; n], vec![0f32; n]);
        for case in cases {
            self.scores_into(case, self.params, &mut scores);
            mark(&mut excluded, case, true);
            m.add(&scores, case.target, &excluded);
            mark(&mut excluded, case, false);
        }
        m
    }

    pub fn label(&self) -> String {
        let Params { k, sample, weighting } = self.params;
        match weighting {
            Weighting::Cosine => format!("sknn (k {k}, sample {sample})"),
            Weighting::Linear => format!("v-sknn (k {k}, sample {sample}, linear decay)"),
            Weighting::Harmonic => format!("v-sknn (k {k}, sample {sample}, 1/age decay)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(items: &[u32], end: f64) -> Session {
        let mut items = items.to_vec();
        items.sort_unstable();
        Session { items, end }
    }

    fn case(history: &[u32], session: usize, target: u32) -> Case {
        Case { history: history.to_vec(), target, exclude_history: false, session }
    }

    #[test]
    fn neighbours_share_items_and_the_closest_sessions_vote_most() {
        // Items 0..6. Sessions holding 1 tend to hold 2; the one holding 1 and 3 holds 4.
        let sessions = vec![session(&[1, 2], 1.0), session(&[1, 2, 5], 2.0), session(&[1, 3, 4], 3.0), session(&[0, 5], 4.0)];
        let train: Vec<Vec<u32>> = sessions.iter().map(|s| s.items.clone()).collect();
        let mut knn = SessionKnn::fit(&sessions, &train, 6, Weighting::Cosine);
        knn.params = Params { k: 10, sample: 10, weighting: Weighting::Cosine };
        let mut scores = vec![0f32; 6];
        // The query session is [1] (history before index 2 is an older session).
        knn.scores_into(&case(&[0, 5, 1], 2, 9), knn.params, &mut scores);
        assert!(scores[2] > scores[3] && scores[2] > scores[5], "{scores:?}");
        assert!(scores[0] < 1e-5, "item 0 is only in a session without item 1: {scores:?}");
        // Adding 3 to the query makes the 1-and-3 session the nearest: 4 now beats 5.
        knn.scores_into(&case(&[1, 3], 0, 9), knn.params, &mut scores);
        assert!(scores[4] > scores[5], "{scores:?}");

        // V-SKNN: the newest item decides more. Query [3, 1], newest 1: session {1,2} family wins over 4.
        let mut v = SessionKnn::fit(&sessions, &train, 6, Weighting::Harmonic);
        v.params = Params { k: 10, sample: 10, weighting: Weighting::Harmonic };
        v.scores_into(&case(&[3, 1], 0, 9), v.params, &mut scores);
        assert!(scores[2] > scores[4], "{scores:?}");
        v.scores_into(&case(&[1, 3], 0, 9), v.params, &mut scores);
        assert!(scores[4] > scores[2], "{scores:?}");
    }

    #[test]
    fn only_the_most_recent_sessions_are_sampled_and_only_k_kept() {
        // Old sessions pair 1 with 2; the newest pairs 1 with 3.
        let sessions = vec![session(&[1, 2], 1.0), session(&[1, 2], 2.0), session(&[1, 3], 3.0)];
        let train: Vec<Vec<u32>> = sessions.iter().map(|s| s.items.clone()).collect();
        let knn = SessionKnn::fit(&sessions, &train, 4, Weighting::Cosine);
        let mut scores = vec![0f32; 4];
        let all = Params { k: 10, sample: 10, weighting: Weighting::Cosine };
        knn.scores_into(&case(&[1], 0, 0), all, &mut scores);
        assert!(scores[2] > scores[3]);
        knn.scores_into(&case(&[1], 0, 0), Params { sample: 1, ..all }, &mut scores);
        assert!(scores[3] > scores[2], "a sample of 1 sees only the newest session: {scores:?}");
        knn.scores_into(&case(&[1], 0, 0), Params { k: 1, ..all }, &mut scores);
        assert!(scores[2] < 1e-5 || scores[3] < 1e-5, "k = 1 keeps one neighbour: {scores:?}");
    }
}
