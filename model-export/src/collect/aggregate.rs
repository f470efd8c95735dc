//! Debiased aggregates from stored reports.
//!
//! Reports are pooled per statistic only with reports that used the very same mechanism
//! parameters (their estimators differ otherwise). A group is released only when at least
//! `min_contributors` reports contributed to it (k-threshold); each released value carries
//! its unbiased estimate and 95% interval from the SDK's own estimators
//! (`HcmsSketch::estimate`, `KaryRr::estimate`).

use std::collections::{BTreeMap, HashSet};

use foresight::contract::report::{Contribution, RecStage, Report, INTENT_BUCKETS, NOTHING};
use foresight::experiment::{self, Comparison, VariantResult};
use foresight::privacy::mechanism::{Estimate, Hcms, HcmsSketch, KaryRr};
use foresight::recommend::CatalogItem;
use serde::Serialize;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_964;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregates {
    pub site: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_contributors: u64,
    pub confidence: f64,
    /// Reports read.
    pub reports: u64,
    /// Stored rows that did not parse as reports (none unless the database was edited).
    pub skipped: u64,
    pub catalog_items: usize,
    pub groups: Vec<Group>,
    /// The recommendation funnel, from the largest released `rec_outcome` group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Funnel>,
    /// Catalog coverage of the on-device recommendations, from the largest released `rec_item` group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// A/B experiments: per variant the debiased outcome counts and rates, and each variant
    /// against the first (the control).
    pub experiments: Vec<ExperimentResult>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentResult {
    pub name: String,
    pub mechanism: serde_json::Value,
    pub reports: u64,
    pub released: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    /// Variants in the order of the SDK's config (index 0 is the control).
    pub variants: Vec<VariantResult>,
    pub comparisons: Vec<Comparison>,
}

/// Visitor-days whose recommendations reached at least each stage, and the rates between.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    pub reports: u64,
    /// `shown`, `clicked`, `added to cart`, `bought`: visitor-days reaching at least that stage.
    pub stages: Vec<Released>,
    /// clicked / shown (CTR per visitor-day), added / shown, bought / shown (hit rate), as
    /// ratios of the debiased counts (no interval: both sides are noisy).
    pub click_rate: Option<f64>,
    pub add_rate: Option<f64>,
    pub purchase_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub reports: u64,
    /// Catalog items whose recommended-count lower 95% bound is above zero: certainly recommended.
    pub items_recommended: usize,
    pub catalog_items: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// One of `ORDER`.
    pub statistic: String,
    /// The mechanism's parameters, as in the reports.
    pub mechanism: serde_json::Value,
    /// Contributing reports.
    pub reports: u64,
    pub released: bool,
    /// Why a group is not released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    /// Released values, highest estimate first (intent buckets in bucket order).
    pub estimates: Vec<Released>,
    /// Reports whose true value was "nothing" (the visitor had none of this statistic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing: Option<Released>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    pub value: String,
    pub estimate: f64,
    pub std_error: f64,
    pub low: f64,
    pub high: f64,
}

impl Released {
    fn new(value: impl Into<String>, e: Estimate) -> Self {
        let (low, high) = e.interval(Z95);
        Released { value: value.into(), estimate: e.value, std_error: e.std_error, low, high }
    }
}

impl Group {
    pub fn label(&self) -> String {
        let m = &self.mechanism;
        match self.statistic.as_str() {
            "intent_bucket" | "rec_outcome" => format!("{} [k-RR k={} ε={}]", self.statistic, m["k"], m["epsilon"]),
            _ => format!("{} [HCMS {}×{} ε={}]", self.statistic, m["hashes"], m["width"], m["epsilon"]),
        }
    }
}

/// What to estimate for and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub site: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_contributors: u64,
    /// Candidate values: the catalog's item ids and categories.
    pub catalog: Option<Vec<CatalogItem>>,
    /// Transitions `a>b` are estimated among this many top items.
    pub top_items: usize,
}

const ORDER: [&str; 6] = ["item_view", "item_transition", "category_view", "intent_bucket", "rec_outcome", "rec_item"];
const REC_ITEM: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HcmsKey {
    statistic: usize,
    hashes: u32,
    width: u32,
    epsilon_bits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RrKey {
    statistic: usize,
    k: u32,
    epsilon_bits: u64,
}

/// One cell of the stored contributions, summed over reports: what the database hands back
/// when it aggregates (`storage::Storage::tally`), so raw reports never reach memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub statistic: String,
    /// The mechanism's parameters as JSON (pooled by their values once parsed).
    pub mechanism: String,
    /// An experiment's name (experiment outcomes only).
    pub experiment: Option<String>,
    /// HCMS: the row and column the reports fell in; -1 for k-RR.
    pub hash: i64,
    pub coord: i64,
    /// k-RR: the reported value; -1 for HCMS.
    pub value: i64,
    /// HCMS: Σ sign; k-RR: the count.
    pub sum: i64,
    /// Contributions in the cell.
    pub count: i64,
}

/// The pooled sums every estimate is computed from: per statistic and mechanism, an HCMS
/// sketch or a k-RR histogram.
#[derive(Debug, Default)]
pub struct Tallies {
    sketches: BTreeMap<HcmsKey, HcmsSketch>,
    tallies: BTreeMap<RrKey, (KaryRr, Vec<u64>)>,
    experiments: BTreeMap<(String, u32, u64), (KaryRr, Vec<u64>)>,
    /// Reports read.
    pub reports: u64,
    /// Stored rows that are not reports (none unless the database was edited).
    pub skipped: u64,
}

impl Tallies {
    fn sketch(&mut self, statistic: &str, mechanism: &Hcms) -> Option<&mut HcmsSketch> {
        let statistic = ORDER.iter().position(|s| *s == statistic)?;
        mechanism.validate().ok()?;
        let key = HcmsKey { statistic, hashes: mechanism.hashes, width: mechanism.width, epsilon_bits: mechanism.epsilon.to_bits() };
        Some(self.sketches.entry(key).or_insert_with(|| HcmsSketch::new(*mechanism)))
    }

    fn histogram(&mut self, statistic: &str, experiment: Option<&str>, mechanism: &KaryRr, value: u32) -> Option<&mut u64> {
        if mechanism.validate().is_err() || value >= mechanism.k {
            return None;
        }
        let (_, t) = match experiment {
            Some(name) => {
                if !mechanism.k.is_multiple_of(RecStage::COUNT) {
                    return None;
                }
                let key = (name.to_owned(), mechanism.k, mechanism.epsilon.to_bits());
                self.experiments.entry(key).or_insert_with(|| (*mechanism, vec![0; mechanism.k as usize]))
            }
            None => {
                let statistic = ORDER.iter().position(|s| *s == statistic)?;
                let key = RrKey { statistic, k: mechanism.k, epsilon_bits: mechanism.epsilon.to_bits() };
                self.tallies.entry(key).or_insert_with(|| (*mechanism, vec![0; mechanism.k as usize]))
            }
        };
        t.get_mut(value as usize)
    }

    /// Adds one stored report body (a row that does not parse is counted as skipped).
    // The collector sums in SQL (`add_cell`); pooling whole reports is what the fuzz target
    // `aggregates` and the storage test check those sums against.
    #[allow(dead_code)]
    pub fn add_body(&mut self, body: &str) {
        match serde_json::from_str::<Report>(body) {
            Ok(report) => self.add_report(&report),
            Err(_) => self.skipped += 1,
        }
    }

    #[allow(dead_code)]
    pub fn add_report(&mut self, report: &Report) {
        self.reports += 1;
        for c in &report.contributions {
            match c {
                Contribution::ItemView { mechanism, report }
                | Contribution::ItemTransition { mechanism, report }
                | Contribution::CategoryView { mechanism, report }
                | Contribution::RecItem { mechanism, report } => {
                    if let Some(sketch) = self.sketch(c.statistic(), mechanism) {
                        let _ = sketch.add(report);
                    }
                }
                Contribution::ExperimentOutcome { experiment, mechanism, value } => {
                    if let Some(n) = self.histogram(c.statistic(), Some(experiment), mechanism, *value) {
                        *n += 1;
                    }
                }
                Contribution::IntentBucket { mechanism, value } | Contribution::RecOutcome { mechanism, value } => {
                    if let Some(n) = self.histogram(c.statistic(), None, mechanism, *value) {
                        *n += 1;
                    }
                }
            }
        }
    }

    /// Adds one summed cell; a cell outside its mechanism (an edited database) is dropped, and
    /// `false` says so.
    pub fn add_cell(&mut self, cell: &Cell) -> bool {
        let count = u64::try_from(cell.count).unwrap_or(0);
        if count == 0 || cell.sum.unsigned_abs() > count {
            return false;
        }
        match cell.statistic.as_str() {
            "item_view" | "item_transition" | "category_view" | "rec_item" => {
                let Ok(mechanism) = serde_json::from_str::<Hcms>(&cell.mechanism) else { return false };
                let Some(sketch) = self.sketch(&cell.statistic, &mechanism) else { return false };
                let (Ok(hash), Ok(coord)) = (u32::try_from(cell.hash), u32::try_from(cell.coord)) else { return false };
                if hash >= mechanism.hashes || coord >= mechanism.width {
                    return false;
                }
                sketch.sums[(hash * mechanism.width + coord) as usize] += cell.sum;
                sketch.reports += count;
                true
            }
            "intent_bucket" | "rec_outcome" | "experiment_outcome" => {
                let Ok(mechanism) = serde_json::from_str::<KaryRr>(&cell.mechanism) else { return false };
                let Ok(value) = u32::try_from(cell.value) else { return false };
                let experiment = if cell.statistic == "experiment_outcome" {
                    match cell.experiment.as_deref() {
                        Some(name) => Some(name),
                        None => return false,
                    }
                } else {
                    None
                };
                match self.histogram(&cell.statistic, experiment, &mechanism, value) {
                    Some(n) => {
                        *n += count;
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }
}

/// Pools the stored report bodies and releases what the k-threshold allows.
#[allow(dead_code)] // see `Tallies::add_body`
pub fn aggregate(bodies: &[String], options: &Options) -> Aggregates {
    let mut tallies = Tallies::default();
    for body in bodies {
        tallies.add_body(body);
    }
    release(tallies, options)
}

/// The estimates from pooled sums, released where the k-threshold allows.
pub fn release(pooled: Tallies, options: &Options) -> Aggregates {
    let Tallies { sketches, tallies, experiments: experiment_tallies, reports, skipped } = pooled;
    let mut notes = Vec::new();
    let k = options.min_contributors;
    let catalog = options.catalog.as_deref().unwrap_or(&[]);
    if options.catalog.is_none() {
        notes.push(
            "no catalog given: item, transition and category counts need candidate values (--catalog); only the \"nothing\" counts and the intent histogram are estimated"
                .into(),
        );
    }
    let item_ids: Vec<&str> = catalog.iter().map(|i| i.id.as_str()).collect();
    let mut categories: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for c in catalog.iter().filter_map(|i| i.category.as_deref()) {
        if seen.insert(c) {
            categories.push(c);
        }
    }

    // The top items, for the transition candidates: by estimated views in the largest item_view
    // group, else by the catalog's popularity.
    let top_items: Vec<String> = {
        let largest = sketches.iter().filter(|(key, _)| key.statistic == 0).max_by_key(|(_, s)| s.reports).map(|(_, s)| s);
        let mut ranked: Vec<(String, f64)> = match largest {
            Some(sketch) => {
                let t = sketch.transformed();
                item_ids.iter().map(|id| (id.to_string(), sketch.estimate(&t, id).value)).collect()
            }
            None => catalog.iter().map(|i| (i.id.clone(), i.popularity)).collect(),
        };
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.into_iter().take(options.top_items).map(|(id, _)| id).collect()
    };
    let transitions: Vec<String> =
        top_items.iter().flat_map(|a| top_items.iter().filter(move |b| *b != a).map(move |b| format!("{a}>{b}"))).collect();

    let mut groups = Vec::new();
    for (key, sketch) in &sketches {
        let statistic = ORDER[key.statistic];
        let mut group = new_group(statistic, serde_json::to_value(sketch.params).unwrap_or_default(), sketch.reports, k);
        if group.released {
            let t = sketch.transformed();
            let candidates: Vec<String> = match key.statistic {
                0 | REC_ITEM => item_ids.iter().map(|s| s.to_string()).collect(),
                1 => transitions.clone(),
                _ => categories.iter().map(|s| s.to_string()).collect(),
            };
            group.estimates = candidates
                .into_iter()
                .map(|v| {
                    let e = sketch.estimate(&t, &v);
                    Released::new(v, e)
                })
                .collect();
            group.estimates.sort_by(|a, b| b.estimate.total_cmp(&a.estimate));
            group.nothing = Some(Released::new(NOTHING, sketch.estimate(&t, NOTHING)));
        }
        groups.push(group);
    }
    let mut funnel: Option<Funnel> = None;
    for (key, (rr, t)) in &tallies {
        let n: u64 = t.iter().sum();
        let statistic = ORDER[key.statistic];
        let mut group = new_group(statistic, serde_json::to_value(rr).unwrap_or_default(), n, k);
        if group.released {
            let label = |b: u32| if statistic == "rec_outcome" { stage_label(b, rr.k) } else { bucket_label(b, rr.k) };
            group.estimates = rr.estimate(t).into_iter().enumerate().map(|(b, e)| Released::new(label(b as u32), e)).collect();
            if statistic == "rec_outcome" && rr.k == RecStage::COUNT && funnel.as_ref().is_none_or(|f| f.reports < n) {
                funnel = Some(funnel_from(rr, t, n));
            }
        }
        groups.push(group);
    }
    let coverage =
        sketches.iter().filter(|(key, s)| key.statistic == REC_ITEM && s.reports >= k && s.reports > 0).max_by_key(|(_, s)| s.reports).map(
            |(_, sketch)| {
                let t = sketch.transformed();
                let items_recommended = item_ids.iter().filter(|id| sketch.estimate(&t, id).interval(Z95).0 > 0.0).count();
                Coverage { reports: sketch.reports, items_recommended, catalog_items: item_ids.len() }
            },
        );
    let experiments = experiment_tallies
        .into_iter()
        .map(|((name, _, _), (rr, t))| {
            let n: u64 = t.iter().sum();
            let (released, withheld) = threshold(n, k);
            let (variants, comparisons) =
                if released { experiment::analyze(&rr, (rr.k / RecStage::COUNT) as usize, &t, Z95) } else { (Vec::new(), Vec::new()) };
            let mechanism = serde_json::to_value(rr).unwrap_or_default();
            ExperimentResult { name, mechanism, reports: n, released, withheld, variants, comparisons }
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.reports));
    groups.sort_by_key(|g| ORDER.iter().position(|s| *s == g.statistic));
    if reports == 0 {
        notes.push("no stored reports match this site and period".into());
    }
    Aggregates {
        site: options.site.clone(),
        from: options.from.clone(),
        to: options.to.clone(),
        min_contributors: k,
        confidence: 0.95,
        reports,
        skipped,
        catalog_items: catalog.len(),
        groups,
        funnel,
        coverage,
        experiments,
        notes,
    }
}

/// Cumulative stages: "at least shown" pools the values shown, clicked, added and bought.
fn funnel_from(rr: &KaryRr, tallies: &[u64], reports: u64) -> Funnel {
    let stages: Vec<Released> = (RecStage::Shown as u32..RecStage::COUNT)
        .map(|from| {
            let set: Vec<u32> = (from..RecStage::COUNT).collect();
            Released::new(RecStage::LABELS[from as usize], rr.estimate_set(tallies, &set))
        })
        .collect();
    let shown = stages[0].estimate;
    let rate = |i: usize| (shown > 0.0).then(|| (stages[i].estimate / shown).clamp(0.0, 1.0));
    Funnel { reports, click_rate: rate(1), add_rate: rate(2), purchase_rate: rate(3), stages }
}

pub fn stage_label(value: u32, k: u32) -> String {
    match RecStage::LABELS.get(value as usize) {
        Some(l) if k == RecStage::COUNT => (*l).to_owned(),
        _ => format!("value {value}"),
    }
}

/// The k-threshold: whether a group of `reports` may be released, and why not.
fn threshold(reports: u64, k: u64) -> (bool, Option<String>) {
    let released = reports >= k && reports > 0;
    (released, (!released).then(|| format!("{reports} contributing reports, fewer than the minimum of {k}")))
}

fn new_group(statistic: &str, mechanism: serde_json::Value, reports: u64, k: u64) -> Group {
    let (released, withheld) = threshold(reports, k);
    Group { statistic: statistic.to_owned(), mechanism, reports, released, withheld, estimates: Vec::new(), nothing: None }
}

/// `0.0–0.1` … `0.9–1.0`, then `no score`.
pub fn bucket_label(bucket: u32, k: u32) -> String {
    if k == INTENT_BUCKETS + 1 {
        if bucket == INTENT_BUCKETS {
            "no score".to_owned()
        } else {
            let w = 1.0 / f64::from(INTENT_BUCKETS);
            format!("{:.1}–{:.1}", f64::from(bucket) * w, f64::from(bucket + 1) * w)
        }
    } else {
        format!("value {bucket}")
    }
}

impl Aggregates {
    /// The days covered, in words.
    pub fn period(&self) -> String {
        match (&self.from, &self.to) {
            (Some(f), Some(t)) if f == t => format!("day {f}"),
            (Some(f), Some(t)) => format!("{f} to {t}"),
            (Some(f), None) => format!("from {f}"),
            (None, Some(t)) => format!("until {t}"),
            (None, None) => "all days".to_owned(),
        }
    }
}

/// A few lines for a person.
pub fn summary(a: &Aggregates) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let period = a.period();
    let released = a.groups.iter().filter(|g| g.released).count();
    let _ = writeln!(
        s,
        "site {}, {period}: {} reports; {} groups, {released} released (minimum {} contributors), 95% intervals",
        a.site,
        a.reports,
        a.groups.len(),
        a.min_contributors
    );
    for g in &a.groups {
        if !g.released {
            let _ = writeln!(s, "  {}: withheld — {}", g.label(), g.withheld.as_deref().unwrap_or(""));
            continue;
        }
        let small_domain = g.statistic == "intent_bucket" || g.statistic == "rec_outcome";
        let shown: Vec<String> = if small_domain {
            g.estimates.iter().map(|e| format!("{} {:.0}±{:.0}", e.value, e.estimate, e.high - e.estimate)).collect()
        } else {
            g.estimates.iter().take(5).map(|e| format!("{} {:.0}±{:.0}", e.value, e.estimate, e.high - e.estimate)).collect()
        };
        let more = if !small_domain && g.estimates.len() > 5 { format!(" (+{} more)", g.estimates.len() - 5) } else { String::new() };
        let _ = writeln!(
            s,
            "  {}: {} reports — {}{more}",
            g.label(),
            g.reports,
            if shown.is_empty() { "no candidates".to_owned() } else { shown.join(", ") }
        );
    }
    if let Some(f) = &a.funnel {
        let stages: Vec<String> = f.stages.iter().map(|e| format!("{} {:.0}±{:.0}", e.value, e.estimate, e.high - e.estimate)).collect();
        let pct = |r: Option<f64>| r.map_or("–".to_owned(), |r| format!("{:.1}%", r * 100.0));
        let _ = writeln!(
            s,
            "  recommendation funnel ({} reports): {}; click rate {}, add rate {}, purchase rate {}",
            f.reports,
            stages.join(" → "),
            pct(f.click_rate),
            pct(f.add_rate),
            pct(f.purchase_rate)
        );
    }
    for e in &a.experiments {
        if !e.released {
            let _ = writeln!(s, "  experiment {}: withheld — {}", e.name, e.withheld.as_deref().unwrap_or(""));
            continue;
        }
        let _ = writeln!(s, "  experiment {} ({} reports):", e.name, e.reports);
        for v in &e.variants {
            let rates: Vec<String> =
                experiment::METRICS.iter().zip(&v.rates).map(|(m, r)| format!("{m} {:.3}±{:.3}", r.value, Z95 * r.std_error)).collect();
            let _ = writeln!(s, "    variant {} ({:.0} visitor-days): {}", v.variant, v.visitors.value, rates.join(", "));
        }
        for c in &e.comparisons {
            let _ = writeln!(
                s,
                "    variant {} vs 0, {}: {:+.3} ± {:.3} — {}",
                c.variant,
                c.metric,
                c.difference.value,
                Z95 * c.difference.std_error,
                verdict_text(c.verdict)
            );
        }
    }
    if let Some(c) = &a.coverage {
        let _ = writeln!(
            s,
            "  catalog coverage: {} of {} items certainly recommended ({} reports)",
            c.items_recommended, c.catalog_items, c.reports
        );
    }
    for n in &a.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    if a.skipped > 0 {
        let _ = writeln!(s, "  note: {} stored rows did not parse as reports and were skipped", a.skipped);
    }
    s
}

pub fn verdict_text(v: experiment::Verdict) -> &'static str {
    match v {
        experiment::Verdict::Significant => "significant at 95%",
        experiment::Verdict::NoDifference => "no significant difference",
        experiment::Verdict::TooSmallToTell => "population too small to tell",
    }
}

/// One row per released value.
pub fn csv(a: &Aggregates) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["statistic", "mechanism", "reports", "value", "estimate", "std_error", "ci95_low", "ci95_high"])?;
    for g in a.groups.iter().filter(|g| g.released) {
        let mechanism = g.mechanism.to_string();
        for e in g.estimates.iter().chain(g.nothing.as_ref()) {
            w.write_record([
                g.statistic.clone(),
                mechanism.clone(),
                g.reports.to_string(),
                e.value.clone(),
                format!("{:.3}", e.estimate),
                format!("{:.3}", e.std_error),
                format!("{:.3}", e.low),
                format!("{:.3}", e.high),
            ])?;
        }
    }
    if let Some(f) = &a.funnel {
        for e in &f.stages {
            w.write_record([
                "rec_funnel".to_owned(),
                "at least this stage".to_owned(),
                f.reports.to_string(),
                e.value.clone(),
                format!("{:.3}", e.estimate),
                format!("{:.3}", e.std_error),
                format!("{:.3}", e.low),
                format!("{:.3}", e.high),
            ])?;
        }
    }
    for e in a.experiments.iter().filter(|e| e.released) {
        for v in &e.variants {
            for (metric, r) in experiment::METRICS.iter().zip(&v.rates) {
                w.write_record([
                    format!("experiment:{}", e.name),
                    e.mechanism.to_string(),
                    e.reports.to_string(),
                    format!("variant {} {metric}", v.variant),
                    format!("{:.4}", r.value),
                    format!("{:.4}", r.std_error),
                    format!("{:.4}", r.value - Z95 * r.std_error),
                    format!("{:.4}", r.value + Z95 * r.std_error),
                ])?;
            }
        }
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}
