//! The one top-k: a running selection ([`Selection`], O(1) per item below the current k-th)
//! and [`top_k`] over a score vector. Every ranking in the SDK — the heads, item scoring, the
//! placements — selects through here, so ties and NaN are treated the same everywhere.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The `k` best (index, score) pairs, best first, skipping excluded and NaN scores; ties go to
/// the lower index so results are deterministic. Partial selection, not a full sort.
pub fn top_k(scores: &[f32], k: usize, excluded: &[bool]) -> Vec<(usize, f32)> {
    // Few picks from many scores (a recommendation's top-k): one pass that compares each score
    // with the current k-th and allocates only the answer. Many picks: select, then sort.
    if k.saturating_mul(16) < scores.len() {
        let mut sel = Selection::new(k);
        for (i, &s) in scores.iter().enumerate() {
            if !s.is_nan() && !excluded.get(i).copied().unwrap_or(false) {
                sel.offer(i, s);
            }
        }
        return sel.into_sorted();
    }
    let mut candidates: Vec<(usize, f32)> =
        scores.iter().copied().enumerate().filter(|&(i, s)| !s.is_nan() && !excluded.get(i).copied().unwrap_or(false)).collect();
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k, best_first);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(best_first);
    candidates
}

/// The one order of ranked `(item, score)` pairs: higher score first, then lower index, for
/// scores without NaN. Every ranking sorts with this function rather than a closure of its own:
/// each sort instantiated with another comparator is kilobytes more of the shipped wasm.
pub fn best_first(a: &(usize, f32), b: &(usize, f32)) -> Ordering {
    b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then(a.0.cmp(&b.0))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    index: usize,
}

/// "Greater" means worse, so the heap's top is the entry to evict.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.score.partial_cmp(&self.score).unwrap_or(std::cmp::Ordering::Equal).then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Eq for Entry {}

/// A running top-k: O(log k) per item that beats the current k-th, O(1) otherwise.
#[derive(Debug)]
pub struct Selection {
    k: usize,
    heap: BinaryHeap<Entry>,
    /// The k-th entry once there are k: most offers lose to it and never touch the heap.
    floor: Option<Entry>,
}

impl Selection {
    pub fn new(k: usize) -> Self {
        Selection { k, heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1), floor: None }
    }

    #[inline]
    pub fn offer(&mut self, index: usize, score: f32) {
        let e = Entry { score, index };
        match self.floor {
            Some(f) if e >= f => {}
            Some(_) => {
                if let Some(mut worst) = self.heap.peek_mut() {
                    *worst = e;
                }
                self.floor = self.heap.peek().copied();
            }
            None if self.k == 0 => {}
            None => {
                self.heap.push(e);
                if self.heap.len() == self.k {
                    self.floor = self.heap.peek().copied();
                }
            }
        }
    }

    /// Starts over for a new ranking of `k`, keeping the heap's memory.
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
        self.floor = None;
    }

    /// The picks, best first (as [`Selection::into_sorted`]), into `out`; the selection is left
    /// empty and its memory kept.
    pub fn drain_sorted_into(&mut self, out: &mut Vec<(usize, f32)>) {
        out.clear();
        out.extend(self.heap.drain().map(|e| (e.index, e.score)));
        // `Entry`'s order, as `best_first` writes it.
        out.sort_unstable_by(best_first);
        self.floor = None;
    }

    /// The k-th best score so far, once there are k.
    pub fn threshold(&self) -> Option<f32> {
        (self.heap.len() == self.k && self.k > 0).then(|| self.heap.peek().map(|e| e.score)).flatten()
    }

    pub fn into_sorted(self) -> Vec<(usize, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|e| (e.index, e.score)).collect()
    }
}
