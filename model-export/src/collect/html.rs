//! The aggregates as one self-contained HTML page: inline CSS and SVG bar charts with their 95%
//! intervals, no script, no external asset.

use std::fmt::Write;

use super::aggregate::{verdict_text, Aggregates, Group, Released, Z95};

const WIDTH: f64 = 760.0;
const LABEL: f64 = 230.0;
const ROW: f64 = 22.0;
const SHOWN: usize = 20;

pub fn page(a: &Aggregates) -> String {
    let mut s = String::new();
    let period = a.period();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Foresight aggregates — {site}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;color:#1d2330}}
h1{{font-size:1.4rem;margin-bottom:.2rem}} h2{{font-size:1.1rem;margin-top:2rem}} .meta{{color:#5b6372}}
svg{{display:block;max-width:100%;height:auto}} .bar{{fill:#4c78a8}} .ci{{stroke:#1d2330;stroke-width:1.2}}
.lbl{{font-size:12px;fill:#1d2330}} .num{{font-size:11px;fill:#5b6372}} .axis{{stroke:#c9ced8}}
table{{border-collapse:collapse}} td,th{{padding:.2rem .6rem;border-bottom:1px solid #e3e6ec;text-align:left}}
.note{{background:#f4f6fa;padding:.5rem .8rem;border-radius:4px}}
</style></head><body>
<h1>Foresight aggregates — {site}</h1>
<p class="meta">{period} · {reports} reports · minimum {k} contributors per released group · bars: debiased estimates, whiskers: 95% intervals (local differential privacy noise)</p>
"#,
        site = esc(&a.site),
        reports = a.reports,
        k = a.min_contributors,
    );
    for n in &a.notes {
        let _ = writeln!(s, r#"<p class="note">{}</p>"#, esc(n));
    }
    let largest = |statistic: &str| a.groups.iter().filter(|g| g.released && g.statistic == statistic).max_by_key(|g| g.reports);
    let sections = [
        ("item_view", "Popular items (views)"),
        ("category_view", "Categories (views)"),
        ("item_transition", "Item → item transitions"),
        ("intent_bucket", "Purchase-intent histogram (highest score of the day)"),
    ];
    for (statistic, title) in sections {
        let _ = writeln!(s, "<h2>{}</h2>", esc(title));
        match largest(statistic) {
            Some(g) if !g.estimates.is_empty() => {
                let _ = writeln!(s, r#"<p class="meta">{} · {} reports</p>"#, esc(&g.label()), g.reports);
                if statistic == "intent_bucket" {
                    s.push_str(&columns(&g.estimates));
                } else {
                    let rows: Vec<&Released> = g.estimates.iter().take(SHOWN).collect();
                    s.push_str(&bars(&rows));
                    if g.estimates.len() > SHOWN {
                        let _ = writeln!(s, r#"<p class="meta">top {SHOWN} of {} candidates</p>"#, g.estimates.len());
                    }
                }
            }
            Some(g) => {
                let _ = writeln!(
                    s,
                    r#"<p class="meta">{} · {} reports · no candidate values (give --catalog)</p>"#,
                    esc(&g.label()),
                    g.reports
                );
            }
            None => {
                let _ = writeln!(s, r#"<p class="meta">not released (no group reaches {} contributors)</p>"#, a.min_contributors);
            }
        }
    }
    s.push_str("<h2>Recommendation funnel (on-device recommendations, per visitor-day)</h2>\n");
    match &a.funnel {
        Some(f) => {
            let pct = |r: Option<f64>| r.map_or("–".to_owned(), |r| format!("{:.1}%", r * 100.0));
            let _ = writeln!(
                s,
                r#"<p class="meta">{} reports · visitor-days reaching at least each stage · click rate {} · add-to-cart rate {} · purchase rate {}</p>"#,
                f.reports,
                pct(f.click_rate),
                pct(f.add_rate),
                pct(f.purchase_rate)
            );
            let rows: Vec<&Released> = f.stages.iter().collect();
            s.push_str(&bars(&rows));
        }
        None => {
            let _ = writeln!(s, r#"<p class="meta">not released (no outcome group reaches {} contributors)</p>"#, a.min_contributors);
        }
    }
    if let Some(c) = &a.coverage {
        let _ = writeln!(
            s,
            r#"<p class="meta">Catalog coverage: {} of {} catalog items are certainly among those recommended (lower 95% bound above zero; {} reports). Rarely shown items cannot be told from noise, so this is a lower bound.</p>"#,
            c.items_recommended, c.catalog_items, c.reports
        );
    }
    for e in &a.experiments {
        let _ = writeln!(s, "<h2>Experiment {}</h2>", esc(&e.name));
        if !e.released {
            let _ = writeln!(s, r#"<p class="meta">withheld: {}</p>"#, esc(e.withheld.as_deref().unwrap_or("")));
            continue;
        }
        let _ = writeln!(
            s,
            r#"<p class="meta">{} reports · k-RR over variant × stage, ε {} · rates per assigned visitor-day, ±95%</p>"#,
            e.reports, e.mechanism["epsilon"]
        );
        s.push_str(
            "<table><tr><th>variant</th><th>visitor-days</th><th>click rate</th><th>add-to-cart rate</th><th>purchase rate</th></tr>\n",
        );
        for v in &e.variants {
            let cells: Vec<String> = v.rates.iter().map(|r| format!("{:.3} ± {:.3}", r.value, Z95 * r.std_error)).collect();
            let label = if v.variant == 0 { "0 (control)".to_owned() } else { v.variant.to_string() };
            let _ = writeln!(s, "<tr><td>{label}</td><td>{:.0}</td><td>{}</td></tr>", v.visitors.value, cells.join("</td><td>"));
        }
        s.push_str("</table>\n<ul>\n");
        for c in &e.comparisons {
            let _ = writeln!(
                s,
                "<li>variant {} vs control, {}: {:+.3} ± {:.3} — <strong>{}</strong></li>",
                c.variant,
                esc(c.metric),
                c.difference.value,
                Z95 * c.difference.std_error,
                verdict_text(c.verdict)
            );
        }
        s.push_str("</ul>\n");
    }
    let withheld: Vec<&Group> = a.groups.iter().filter(|g| !g.released).collect();
    if !withheld.is_empty() {
        s.push_str("<h2>Withheld groups</h2>\n<table><tr><th>statistic and mechanism</th><th>reports</th><th>why</th></tr>\n");
        for g in withheld {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.label()),
                g.reports,
                esc(g.withheld.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

/// Horizontal bars, one row per value.
fn bars(rows: &[&Released]) -> String {
    let top = rows.iter().map(|r| r.high.max(r.estimate)).fold(1.0, f64::max);
    let plot = WIDTH - LABEL - 70.0;
    let x = |v: f64| LABEL + (v.max(0.0) / top).min(1.0) * plot;
    let height = ROW * rows.len() as f64 + 10.0;
    let mut s = format!(r#"<svg viewBox="0 0 {WIDTH} {height}" role="img">"#);
    let _ = write!(s, r#"<line class="axis" x1="{LABEL}" y1="0" x2="{LABEL}" y2="{height}"/>"#);
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64 * ROW + 4.0;
        let mid = y + ROW / 2.0 - 2.0;
        let _ = write!(
            s,
            r#"<text class="lbl" x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect class="bar" x="{LABEL}" y="{y}" width="{w:.1}" height="{h}"><title>{title}</title></rect><line class="ci" x1="{lo:.1}" y1="{mid}" x2="{hi:.1}" y2="{mid}"/><line class="ci" x1="{hi:.1}" y1="{t1}" x2="{hi:.1}" y2="{t2}"/><text class="num" x="{nx:.1}" y="{ty}">{value:.0}</text>"#,
            lx = LABEL - 6.0,
            ty = mid + 4.0,
            label = esc(&truncate(&r.value, 34)),
            w = x(r.estimate) - LABEL,
            h = ROW - 6.0,
            title = esc(&format!("{}: {:.1} (95% interval {:.1} to {:.1})", r.value, r.estimate, r.low, r.high)),
            lo = x(r.low),
            hi = x(r.high),
            t1 = mid - 4.0,
            t2 = mid + 4.0,
            nx = x(r.high).max(x(r.estimate)) + 6.0,
            value = r.estimate,
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Vertical columns in their natural order (the intent histogram).
fn columns(rows: &[Released]) -> String {
    let top = rows.iter().map(|r| r.high.max(r.estimate)).fold(1.0, f64::max);
    let (height, base, left) = (260.0, 220.0, 40.0);
    let step = (WIDTH - left - 10.0) / rows.len().max(1) as f64;
    let y = |v: f64| base - (v.max(0.0) / top).min(1.0) * (base - 20.0);
    let mut s = format!(r#"<svg viewBox="0 0 {WIDTH} {height}" role="img">"#);
    let _ = write!(s, r#"<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}"/>"#);
    for (i, r) in rows.iter().enumerate() {
        let x0 = left + i as f64 * step + step * 0.15;
        let w = step * 0.7;
        let cx = x0 + w / 2.0;
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x0:.1}" y="{top_y:.1}" width="{w:.1}" height="{h:.1}"><title>{title}</title></rect><line class="ci" x1="{cx:.1}" y1="{lo:.1}" x2="{cx:.1}" y2="{hi:.1}"/><line class="ci" x1="{c1:.1}" y1="{hi:.1}" x2="{c2:.1}" y2="{hi:.1}"/><text class="lbl" x="{cx:.1}" y="{ly}" text-anchor="middle">{label}</text><text class="num" x="{cx:.1}" y="{vy:.1}" text-anchor="middle">{value:.0}</text>"#,
            top_y = y(r.estimate),
            h = base - y(r.estimate),
            title = esc(&format!("{}: {:.1} (95% interval {:.1} to {:.1})", r.value, r.estimate, r.low, r.high)),
            lo = y(r.low),
            hi = y(r.high),
            c1 = cx - 4.0,
            c2 = cx + 4.0,
            ly = base + 16.0,
            label = esc(&r.value),
            vy = y(r.high).min(y(r.estimate)) - 4.0,
            value = r.estimate,
        );
    }
    s.push_str("</svg>\n");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
