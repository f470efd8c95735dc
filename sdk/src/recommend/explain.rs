//! Why an item was recommended, by occlusion over the visitor's recent items.

use super::{Explanation, EXPLAIN_PROBES};
use crate::error::ModelError;
use crate::features::SeqItem;
use crate::infer::model::RecommenderModel;

/// Attribution by occlusion: for each of the last few distinct items in the sequence, rerun
/// the model without it; a recommendation is explained by the item whose removal lowers its
/// score most (the most recent one on ties). Works for any model, with a handful of extra runs.
pub(crate) fn explain(
    model: &mut RecommenderModel,
    seq: &[SeqItem<'_>],
    picks: &[(usize, f32)],
    scratch: &mut Vec<f32>,
) -> Result<Vec<Explanation>, ModelError> {
    let mut probes: Vec<&SeqItem<'_>> = Vec::new();
    for item in seq.iter().rev() {
        if probes.len() == EXPLAIN_PROBES {
            break;
        }
        if !probes.iter().any(|p| p.index == item.index) {
            probes.push(item);
        }
    }
    let Some(&latest) = probes.first() else { return Ok(Vec::new()) };
    let mut best: Vec<(f32, &SeqItem<'_>)> = picks.iter().map(|_| (f32::NEG_INFINITY, latest)).collect();
    if probes.len() > 1 {
        let indices: Vec<usize> = picks.iter().map(|p| p.0).collect();
        for probe in &probes {
            let rest: Vec<usize> = seq.iter().filter(|s| s.index != probe.index).map(|s| s.index).collect();
            if rest.is_empty() {
                continue;
            }
            model.scores_of(&rest, &indices, scratch)?;
            for ((&(_, score), b), &without) in picks.iter().zip(best.iter_mut()).zip(scratch.iter()) {
                let drop = score - without;
                if drop > b.0 {
                    *b = (drop, probe);
                }
            }
        }
    }
    Ok(best.into_iter().map(|(_, p)| Explanation::because(p.event, p.item_id)).collect())
}
