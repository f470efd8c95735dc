//! The one top-k: a running selection ([`Selection`], O(1) per item below the current k-th)
//! and [`top_k`] over a score vector. Every ranking in the SDK — the heads, item scoring, the
//! placements — selects through here, so ties and NaN are treated the same everywhere.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The `k` best (index, score) pairs, best first, skipping excluded and NaN scores; ties go to
/// the lower index so results are deterministic. One pass that compares each score with the
/// current k-th and allocates only the answer; when k is most of the scores this is a heapsort.
pub fn top_k(scores: &[f32], k: usize, excluded: &[bool]) -> Vec<(usize, f32)> {
    // Through the selection's heap, not a select-then-sort: a slice sort instantiated here, at
    // this crate's opt-level 3, was 20 KB of the shipped wasm.
    let mut sel = Selection::new(k.min(scores.len()));
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_nan() && !excluded.get(i).copied().unwrap_or(false) {
            sel.offer(i, s);
        }
    }
    sel.into_sorted()
}

/// Sorts `pairs` best first (by [`best_first`]), through the selection's heap: callers outside
/// this crate sort with this rather than instantiating a slice sort of their own.
pub fn sort_best_first(pairs: &mut [(usize, f32)]) {
    let heap: BinaryHeap<Entry> = pairs.iter().map(|&(index, score)| Entry { score, index }).collect();
    for (slot, e) in pairs.iter_mut().zip(heap.into_sorted_vec()) {
        *slot = (e.index, e.score);
    }
}

/// Moves the `head` best pairs (by [`best_first`]) to the front of `pairs`, sorted; the rest
/// follow in no particular order. Indices (`.0`) are item ids, distinct; were one repeated, as
/// many pairs as were picked with it leave the rest, so none is lost or doubled.
pub fn sort_head_best_first(pairs: &mut Vec<(usize, f32)>, head: usize) {
    if head >= pairs.len() {
        return sort_best_first(pairs);
    }
    let mut sel = Selection::new(head);
    for &(index, score) in pairs.iter() {
        sel.offer(index, score);
    }
    let best = sel.into_sorted();
    let mut chosen = vec![0u32; pairs.iter().map(|p| p.0 + 1).max().unwrap_or(0)];
    for &(index, _) in &best {
        chosen[index] += 1;
    }
    pairs.retain(|p| {
        let picked = chosen[p.0] > 0;
        chosen[p.0] -= u32::from(picked);
        !picked
    });
    pairs.splice(0..0, best);
}

/// The one order of ranked `(item, score)` pairs: higher score first, then lower index, for
/// scores without NaN. Every ranking sorts with this function rather than a closure of its own:
/// each sort instantiated with another comparator is kilobytes more of the shipped wasm.
pub fn best_first(a: &(usize, f32), b: &(usize, f32)) -> Ordering {
    Entry { score: a.1, index: a.0 }.cmp(&Entry { score: b.1, index: b.0 })
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    index: usize,
}

/// "Greater" means worse, so the heap's top is the entry to evict; ascending is
/// [`best_first`]'s order, which is defined by this one.
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
        // The heap sorts itself in place (`Entry`'s order, as `best_first` writes it); its
        // memory goes back to the heap, emptied.
        let mut sorted = std::mem::take(&mut self.heap).into_sorted_vec();
        out.extend(sorted.iter().map(|e| (e.index, e.score)));
        sorted.clear();
        self.heap = BinaryHeap::from(sorted);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What every ranking must equal: the full sort by `best_first`, NaN and excluded left out.
    fn reference(scores: &[f32], k: usize, excluded: &[bool]) -> Vec<(usize, f32)> {
        let mut all: Vec<(usize, f32)> =
            scores.iter().copied().enumerate().filter(|&(i, s)| !s.is_nan() && !excluded.get(i).copied().unwrap_or(false)).collect();
        all.sort_by(best_first);
        all.truncate(k);
        all
    }

    #[test]
    fn top_k_matches_a_full_sort_for_every_k() {
        // Ties (2.0 three times, -0.0 against 0.0), NaN and an excluded item.
        let scores = [0.5, 2.0, f32::NAN, -1.0, 2.0, 0.0, -0.0, 7.0, 2.0, 0.5, -3.0];
        let mut excluded = vec![false; scores.len()];
        excluded[7] = true;
        for k in 0..=scores.len() + 2 {
            let got = top_k(&scores, k, &excluded);
            assert_eq!(got, reference(&scores, k, &excluded), "k = {k}");
        }
        assert_eq!(top_k(&scores, usize::MAX, &[]).len(), 10, "every score but the NaN");
    }

    #[test]
    fn sorts_by_the_heap_equal_a_slice_sort() {
        let pairs: Vec<(usize, f32)> =
            [(4, 0.5), (9, 2.0), (1, -1.0), (7, 2.0), (3, 0.0), (12, -0.0), (0, 7.0), (5, 2.0), (8, 0.5)].to_vec();
        let mut want = pairs.clone();
        want.sort_by(best_first);
        let mut got = pairs.clone();
        sort_best_first(&mut got);
        assert_eq!(got, want);
        for head in 0..=pairs.len() + 1 {
            let mut got = pairs.clone();
            sort_head_best_first(&mut got, head);
            let n = head.min(pairs.len());
            assert_eq!(got[..n], want[..n], "head {head}");
            let mut rest = got[n..].to_vec();
            rest.sort_by(best_first);
            assert_eq!(rest, want[n..], "head {head}: the rest is kept");
        }
    }

    #[test]
    fn a_reused_selection_drains_best_first_and_starts_empty() {
        let mut sel = Selection::new(3);
        let mut out = Vec::new();
        for round in 0..3 {
            sel.reset(3);
            for (i, s) in [1.0, 4.0, 4.0, -2.0, 3.0].iter().enumerate() {
                sel.offer(i + round, *s);
            }
            sel.drain_sorted_into(&mut out);
            assert_eq!(out, vec![(1 + round, 4.0), (2 + round, 4.0), (4 + round, 3.0)], "round {round}");
            assert_eq!(sel.threshold(), None, "drained");
        }
    }
}
