//! Report JSON → the collector's intake: parse, one report or a batch, validation, the site
//! check, and the JSON it stores.
#![no_main]

use foresight::contract::report::Report;
use foresight_fuzz::collect::intake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Today: 2026-12-07, reports up to 31 days old.
    let rules = intake::Rules { max_epsilon: 1.0, today: 20_794, max_age_days: 31 };
    if let Ok(reports) = intake::reports(data, "shop", &rules) {
        for (_, stored) in reports {
            // What the collector stores, `aggregates` must read back.
            serde_json::from_str::<Report>(&stored).expect("a stored report parses");
        }
    }
});
