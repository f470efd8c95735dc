//! `collect`: the report collector (HTTP server storing validated aggregate reports), and
//! `aggregates`: debiased, k-thresholded estimates from what it stored.

mod aggregate;
mod html;
mod intake;
mod limits;
mod server;
mod storage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::http::HeaderValue;
use foresight::recommend::CatalogItem;

use storage::{Db, Mode, Query};

#[derive(clap::Args, Debug)]
pub struct CollectArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// sqlite:PATH or postgres://USER[:PASSWORD]@HOST:PORT/DBNAME.
    #[arg(long)]
    db: String,
    /// A site and its key, SITE=KEY (repeatable; a site may have several keys).
    #[arg(long = "site", value_name = "SITE=KEY")]
    sites: Vec<String>,
    /// A JSON file of sites and keys: {"SITE": "KEY", ...} or [{"site": ..., "key": ...}].
    #[arg(long = "sites", value_name = "FILE")]
    sites_file: Option<PathBuf>,
    /// An origin whose pages may post reports, e.g. https://shop.example (repeatable; `*`
    /// allows any origin, for development).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// The most ε one report may spend.
    #[arg(long, default_value_t = 1.0)]
    max_epsilon: f64,
    /// Reports whose day is more than this many days ago are refused (the SDK keeps reports
    /// queued while a visitor is offline; older ones would reopen days already aggregated).
    #[arg(long, default_value_t = 31)]
    max_report_age_days: u32,
    /// Reports a minute per site (token bucket; bursts up to a minute's worth).
    #[arg(long, default_value_t = 600)]
    rate_per_minute: u32,
    /// The largest request body, in bytes (a report is about 600 bytes as JSON; the default
    /// fits a full batch of 50 with room for long site ids).
    #[arg(long, default_value_t = 65_536)]
    max_body: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Html,
}

#[derive(clap::Args, Debug)]
pub struct AggregatesArgs {
    /// sqlite:PATH or postgres://…, as given to `collect`.
    #[arg(long)]
    db: String,
    #[arg(long)]
    site: String,
    /// Candidate values: a catalog (JSON {"items": [{"id", "category", ...}]} or CSV) or a
    /// bundle (.fsb) whose manifest lists the items.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Release a group only when at least this many reports contributed to it.
    #[arg(long, default_value_t = 100)]
    min_contributors: u64,
    /// Only reports of this UTC day (YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    day: Option<String>,
    /// Only reports from this day on (YYYY-MM-DD, inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Only reports up to this day (YYYY-MM-DD, inclusive).
    #[arg(long)]
    to: Option<String>,
    /// Transitions `a>b` are estimated among this many most viewed items.
    #[arg(long, default_value_t = 10)]
    top_items: usize,
    /// Output format; without it, a short summary for a person.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write the output here (standard output when absent).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn init_logging() {
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::INFO).with_target(false).try_init();
}

fn parse_db(text: &str) -> Result<Db> {
    text.parse::<Db>().map_err(anyhow::Error::msg)
}

/// Key → site, from `--site SITE=KEY` and `--sites FILE`.
fn site_keys(pairs: &[String], file: Option<&Path>) -> Result<HashMap<String, String>> {
    let mut list: Vec<(String, String)> = Vec::new();
    for p in pairs {
        let (site, key) = p.split_once('=').with_context(|| format!("--site `{p}` must be SITE=KEY"))?;
        list.push((site.trim().to_owned(), key.trim().to_owned()));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        match value {
            serde_json::Value::Object(map) => {
                for (site, key) in map {
                    let key = key.as_str().with_context(|| format!("{}: the key of site `{site}` must be a string", path.display()))?;
                    list.push((site, key.to_owned()));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let field = |name: &str| item.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                    let (Some(site), Some(key)) = (field("site"), field("key")) else {
                        bail!("{}: entry {i} must be {{\"site\": ..., \"key\": ...}}", path.display());
                    };
                    list.push((site, key));
                }
            }
            _ => bail!("{}: expected {{\"SITE\": \"KEY\"}} or [{{\"site\", \"key\"}}]", path.display()),
        }
    }
    if list.is_empty() {
        bail!("no site configured: give --site SITE=KEY (repeatable) or --sites FILE");
    }
    let mut keys = HashMap::new();
    for (site, key) in list {
        if site.is_empty() {
            bail!("a site id must not be empty");
        }
        if key.len() < 8 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("the key of site `{site}` must be at least 8 printable characters without spaces");
        }
        if let Some(other) = keys.insert(key, site.clone()) {
            if other != site {
                bail!("sites `{other}` and `{site}` share a key; every key must name one site");
            }
        }
    }
    Ok(keys)
}

fn origins(list: &[String]) -> Result<server::Origins> {
    if list.iter().any(|o| o == "*") {
        return Ok(server::Origins::Any);
    }
    let mut out = Vec::new();
    for o in list {
        let o = o.trim_end_matches('/');
        let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
            bail!("--allow-origin `{o}` must be an origin such as https://shop.example (scheme and host, no path), or `*`");
        }
        out.push(HeaderValue::from_str(o).with_context(|| format!("--allow-origin `{o}`"))?);
    }
    Ok(server::Origins::List(out))
}

pub fn run_collect(args: CollectArgs) -> Result<()> {
    init_logging();
    let db = parse_db(&args.db)?;
    let keys = site_keys(&args.sites, args.sites_file.as_deref())?;
    let origins = origins(&args.allow_origins)?;
    if !(args.max_epsilon > 0.0 && args.max_epsilon.is_finite()) {
        bail!("--max-epsilon must be positive, got {}", args.max_epsilon);
    }
    if args.rate_per_minute == 0 {
        bail!("--rate-per-minute must be at least 1");
    }
    if args.max_body < 1024 {
        bail!("--max-body must be at least 1024 bytes");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let store = storage::open(&db, Mode::Serve).await.with_context(|| format!("opening {db}"))?;
        let sites: std::collections::BTreeSet<&String> = keys.values().collect();
        let sites = sites.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ");
        let state = Arc::new(server::AppState {
            store,
            keys: keys.clone(),
            max_epsilon: args.max_epsilon,
            max_age_days: i64::from(args.max_report_age_days),
            max_body: args.max_body,
            limiter: limits::RateLimiter::new(args.rate_per_minute),
        });
        let app = server::router(state, origins);
        let listener = tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("listening on {}", args.addr))?;
        let local = listener.local_addr()?;
        tracing::info!("collecting reports for {sites} into {db} on http://{local}/v1/reports");
        println!("listening on http://{local}");
        axum::serve(listener, app).with_graceful_shutdown(shutdown()).await.context("serving")?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// A calendar date, as the collector checks reports' days: 2026-02-30 is refused here too.
fn check_day(day: &str, flag: &str) -> Result<String> {
    if foresight::privacy::budget::day_number(day).is_none() {
        bail!("{flag} `{day}` is not a calendar date YYYY-MM-DD");
    }
    Ok(day.to_owned())
}

/// The candidate values: a catalog file, or a bundle's manifest items.
fn read_catalog(path: &Path) -> Result<Vec<CatalogItem>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(foresight::contract::bundle::MAGIC) {
        let bundle = foresight::contract::bundle::Bundle::parse(bytes, None).with_context(|| format!("bundle {}", path.display()))?;
        if bundle.manifest.items.is_empty() {
            bail!("the bundle {} lists no items", path.display());
        }
        return Ok(bundle.manifest.items);
    }
    crate::catalog::read(path)
}

pub fn run_aggregates(args: AggregatesArgs) -> Result<()> {
    let db = parse_db(&args.db)?;
    let (from, to) = match &args.day {
        Some(d) => {
            let d = check_day(d, "--day")?;
            (Some(d.clone()), Some(d))
        }
        None => (
            args.from.as_deref().map(|d| check_day(d, "--from")).transpose()?,
            args.to.as_deref().map(|d| check_day(d, "--to")).transpose()?,
        ),
    };
    if let (Some(f), Some(t)) = (&from, &to) {
        if f > t {
            bail!("--from {f} is after --to {t}");
        }
    }
    let catalog = args.catalog.as_deref().map(read_catalog).transpose()?;
    let query = Query { site: args.site.clone(), from: from.clone(), to: to.clone() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let tallies = runtime.block_on(async {
        let store = storage::open(&db, Mode::Read).await.with_context(|| format!("opening {db}"))?;
        store.tally(&query).await.with_context(|| format!("summing the reports in {db}"))
    })?;
    let options = aggregate::Options {
        site: args.site.clone(),
        from,
        to,
        min_contributors: args.min_contributors.max(1),
        catalog,
        top_items: args.top_items,
    };
    let result = aggregate::release(tallies, &options);
    let summary = aggregate::summary(&result);
    let output = match args.format {
        None => {
            print!("{summary}");
            return Ok(());
        }
        Some(Format::Json) => {
            let mut text = serde_json::to_string_pretty(&result)?;
            text.push('\n');
            text.into_bytes()
        }
        Some(Format::Csv) => aggregate::csv(&result)?,
        Some(Format::Html) => html::page(&result).into_bytes(),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &output).with_context(|| format!("writing {}", path.display()))?;
            eprint!("{summary}");
            eprintln!("wrote {}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(&output)?;
        }
    }
    Ok(())
}
