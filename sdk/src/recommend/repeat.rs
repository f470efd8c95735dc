//! Buy again: next-basket scores from the visitor's own purchases, computed on the device.
//!
//! The personal part is TIFU-KNN's user vector (Hu et al., KDD 2020) as the "Next Basket
//! Recommendation Reality Check" (Li et al., TOIS 2023) runs it: baskets in time order, each
//! basket a 0/1 item vector decayed by `within_decay` per basket it lies back, the history cut
//! into `groups` consecutive groups that are averaged, each group decayed by `group_decay` per
//! group it lies back, divided by the number of groups. TIFU-KNN's neighbour part needs other
//! visitors' vectors, which never reach the device; in their place an explore vector the
//! bundle already carries (the catalog's popularity) fills the places the visitor's own items
//! leave. `foresight-export baskets` measures this function on Ta Feng, so the figures there
//! are the device's.

/// How the visitor's purchases become scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuyAgainParams {
    /// r_b: weight factor per basket back in time (the last basket weighs 1).
    pub within_decay: f32,
    /// r_g: weight factor per group back in time.
    pub group_decay: f32,
    /// m: how many groups the history is cut into (each basket its own group when fewer).
    pub groups: usize,
    /// Share of the personal scores against the explore vector, each scaled to a maximum of 1.
    pub alpha: f32,
}

impl Default for BuyAgainParams {
    /// The Reality Check's TIFU-KNN settings for Ta Feng (r_b 0.9, r_g 0.7, m 7); alpha 0.5,
    /// what Ta Feng's validation users chose in 4 of 5 splits (`foresight-export baskets`,
    /// model-export/training/shop-results.md): with few repeat purchases, popular items
    /// belong beside the visitor's own.
    fn default() -> Self {
        BuyAgainParams { within_decay: 0.9, group_decay: 0.7, groups: 7, alpha: 0.5 }
    }
}

/// Each basket's weight (oldest first): its group's weight times `within_decay` per basket it
/// lies back.
fn basket_weights(n: usize, params: &BuyAgainParams) -> Vec<f32> {
    let m = params.groups.max(1);
    // Group sizes as the reference code cuts them: with n ≥ m, the first m - n mod m groups
    // hold ⌊n/m⌋ baskets and the rest one more; with n < m each basket is a group.
    let (group_count, base, longer_from) = if n < m { (n, 1, n) } else { (m, n / m, m - n % m) };
    let mut weights = Vec::with_capacity(n);
    for g in 0..group_count {
        let len = if g < longer_from { base } else { base + 1 };
        // The reference decays groups from m - 1, not from the real count: with n < m the
        // whole vector is scaled by r_g^(m - n), which matters once it is blended.
        let group_weight = params.group_decay.powi((m - 1 - g) as i32) / (len as f32 * group_count as f32);
        for _ in 0..len {
            let i = weights.len();
            weights.push(group_weight * params.within_decay.powi((n - 1 - i) as i32));
        }
    }
    weights
}

/// The personal vector over `items` catalog items (others ignored): an item twice in one basket
/// counts once (a basket is a set). Dense, so the device sorts nothing.
fn personal_dense<B: AsRef<[usize]>>(baskets: &[B], items: usize, params: &BuyAgainParams) -> Vec<f32> {
    let mut dense = vec![0f32; items];
    // The basket (1-based) that last counted each item.
    let mut counted = vec![0usize; items];
    for (b, (basket, w)) in baskets.iter().zip(basket_weights(baskets.len(), params)).enumerate() {
        for &item in basket.as_ref() {
            if item < items && counted[item] != b + 1 {
                counted[item] = b + 1;
                dense[item] += w;
            }
        }
    }
    dense
}

/// The personal vector, sparse: `(item, score)` sorted by item, scores > 0; `baskets` oldest
/// first (the evaluation's TIFU-KNN neighbours need it sparse).
pub fn personal_scores<B: AsRef<[usize]>>(baskets: &[B], params: &BuyAgainParams) -> Vec<(usize, f32)> {
    let items = baskets.iter().flat_map(|b| b.as_ref().iter().copied()).max().map_or(0, |m| m + 1);
    personal_dense(baskets, items, params).into_iter().enumerate().filter(|&(_, s)| s > 0.0).collect()
}

/// Scores over the catalog (`explore.len()` items): `alpha` × the personal vector scaled to a
/// maximum of 1, plus `1 - alpha` × `explore` scaled the same way (negative or non-finite
/// explore scores count 0). Items outside the catalog are ignored. This is what `buyAgain`
/// ranks.
pub fn buy_again_scores<B: AsRef<[usize]>>(baskets: &[B], explore: &[f32], params: &BuyAgainParams) -> Vec<f32> {
    let alpha = params.alpha.clamp(0.0, 1.0);
    let clean = |s: f32| if s.is_finite() && s > 0.0 { s } else { 0.0 };
    let explore_max = explore.iter().map(|&s| clean(s)).fold(0.0f32, f32::max);
    let explore_scale = if explore_max > 0.0 { (1.0 - alpha) / explore_max } else { 0.0 };
    let personal = personal_dense(baskets, explore.len(), params);
    let personal_max = personal.iter().copied().fold(0.0f32, f32::max);
    let personal_scale = if personal_max > 0.0 { alpha / personal_max } else { 0.0 };
    explore.iter().zip(&personal).map(|(&e, &p)| clean(e) * explore_scale + p * personal_scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(groups: usize) -> BuyAgainParams {
        BuyAgainParams { within_decay: 0.5, group_decay: 0.25, groups, alpha: 0.9 }
    }

    fn close(a: &[(usize, f32)], b: &[(usize, f32)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-6)
    }

    #[test]
    fn fewer_baskets_than_groups_each_basket_is_a_group() {
        // n = 2 < m = 3: groups [b0], [b1]; b0 = {1, 2} (twice 1), b1 = {2}.
        // b0: 0.5^1 × 0.25^(3-1-0) / (1 × 2) = 0.5 × 0.0625 / 2; b1: 1 × 0.25 / 2.
        let got = personal_scores(&[vec![1, 1, 2], vec![2]], &params(3));
        let b0 = 0.5 * 0.0625 / 2.0;
        let b1 = 0.25 / 2.0;
        assert!(close(&got, &[(1, b0), (2, b0 + b1)]), "{got:?}");
    }

    #[test]
    fn groups_are_cut_as_the_reference_cuts_them() {
        // n = 5, m = 2: the first group holds 2 baskets, the second 3 (5 mod 2 = 1 longer group).
        let baskets = [vec![0], vec![1], vec![2], vec![3], vec![4]];
        let got = personal_scores(&baskets, &params(2));
        let w = |i: i32, group: i32, len: f32| 0.5f32.powi(4 - i) * 0.25f32.powi(1 - group) / (len * 2.0);
        let want = [(0, w(0, 0, 2.0)), (1, w(1, 0, 2.0)), (2, w(2, 1, 3.0)), (3, w(3, 1, 3.0)), (4, w(4, 1, 3.0))];
        assert!(close(&got, &want), "{got:?}");
        assert!(personal_scores::<Vec<usize>>(&[], &params(2)).is_empty());
    }

    #[test]
    fn a_repeatedly_bought_item_outranks_popular_ones_and_explore_fills_the_rest() {
        let baskets = [vec![3, 1], vec![3], vec![3, 2]];
        let popularity = [10.0, 0.0, 0.0, 1.0, 50.0, f32::NAN];
        let scores = buy_again_scores(&baskets, &popularity, &BuyAgainParams::default());
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        assert_eq!(order[0], 3, "bought three times: {scores:?}");
        // Own items before popular ones at alpha 0.9.
        let scores = buy_again_scores(&baskets, &popularity, &BuyAgainParams { alpha: 0.9, ..Default::default() });
        assert!(scores[1] > scores[4] && scores[2] > scores[4] && scores[4] > scores[0], "{scores:?}");
        assert_eq!(scores[5], 0.0, "non-finite explore scores count 0");
        // Alpha 0: popularity alone.
        let pop_only = buy_again_scores(&baskets, &popularity, &BuyAgainParams { alpha: 0.0, ..Default::default() });
        assert!(pop_only[4] > pop_only[0] && pop_only[0] > pop_only[3] && pop_only[1] == 0.0);
        // Items outside the catalog are ignored, not a panic.
        assert_eq!(buy_again_scores(&[vec![99]], &popularity, &BuyAgainParams::default()).len(), 6);
    }
}
