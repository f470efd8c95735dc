//! The input of `foresight-export aggregates`: the stored report bodies (one per line, as the
//! database hands them back; a database may hold anything) and its options, through the
//! estimates and every output format.
#![no_main]

use foresight::recommend::CatalogItem;
use foresight_fuzz::collect::{aggregate, html};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    // The first byte sets the options: the k-threshold (1 to 4, so groups are released), the
    // top items for transitions (0 to 15), and whether a catalog is given.
    let catalog = (options & 0x40 != 0).then(|| {
        ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, id)| CatalogItem {
                id: (*id).into(),
                category: Some(if i % 2 == 0 { "even" } else { "odd" }.into()),
                popularity: i as f64,
                ..Default::default()
            })
            .collect()
    });
    let options = aggregate::Options {
        site: "shop".into(),
        from: None,
        to: None,
        min_contributors: u64::from(options & 3) + 1,
        catalog,
        top_items: usize::from((options >> 2) & 15),
    };
    let bodies: Vec<String> = String::from_utf8_lossy(rest).lines().map(str::to_owned).collect();
    let result = aggregate::aggregate(&bodies, &options);
    let _ = aggregate::summary(&result);
    let _ = aggregate::csv(&result);
    let _ = html::page(&result);
    let _ = serde_json::to_string_pretty(&result);
});
