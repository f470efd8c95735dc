//! Reading the interaction log and the item metadata: CSV/TSV or RecBole's atomic files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tracing::warn;

/// Interactions grouped into per-user, time-ordered sequences of vocabulary indices.
pub struct Dataset {
    /// Item ids; the position is the model index.
    pub items: Vec<String>,
    pub sequences: Vec<Vec<u32>>,
    /// The timestamp of each item of `sequences`.
    pub times: Vec<Vec<f64>>,
    pub interactions: usize,
    /// Interactions per item in the last `TREND_WINDOW_SECONDS` of the log: the catalog's `trend`.
    pub recent: Vec<u64>,
}

/// The window of the catalog's `trend` (the `trending` placement), before the log's last timestamp.
pub const TREND_WINDOW_SECONDS: f64 = 30.0 * 86_400.0;

impl Dataset {
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct ItemMeta {
    pub(super) title: Option<String>,
    pub(super) year: Option<i32>,
    /// The first genre; every genre is in `genres`.
    pub(super) category: Option<String>,
    pub(super) genres: Vec<String>,
}

/// A delimited text file: the header's column names (RecBole `:type` suffixes dropped) and the
/// data lines, with 1-based line numbers.
struct Table {
    path: PathBuf,
    delim: char,
    columns: Vec<String>,
    text: String,
}

impl Table {
    fn read(path: &Path, what: &str) -> Result<Table> {
        let bytes = std::fs::read(path).with_context(|| format!("reading the {what} file {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text (byte {})", path.display(), e.utf8_error().valid_up_to()))?;
        let text = text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text);
        let header = text.lines().next().map(|l| l.trim_end_matches('\r')).unwrap_or("");
        if header.trim().is_empty() {
            bail!("{}: line 1: the file is empty; expected a header line naming the columns", path.display());
        }
        let delim = if header.contains('\t') { '\t' } else { ',' };
        let columns = header
            .split(delim)
            .map(|c| {
                let c = unquote(c.trim());
                c.split(':').next().unwrap_or("").trim().to_ascii_lowercase()
            })
            .collect();
        Ok(Table { path: path.to_owned(), delim, columns, text })
    }

    fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.columns.iter().position(|c| c == n))
    }

    fn require(&self, names: &[&str]) -> Result<usize> {
        self.column(names).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: line 1: missing column `{}` in the header (it names {})",
                self.path.display(),
                names[0],
                self.columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Data lines (blank ones skipped) as (line number, fields), checked to have `needed` fields.
    fn rows(&self, needed: usize) -> impl Iterator<Item = Result<(usize, Vec<&str>)>> + '_ {
        self.text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()).map(move |(i, line)| {
            let fields: Vec<&str> = line.trim_end_matches('\r').split(self.delim).map(|f| unquote(f.trim())).collect();
            if fields.len() < needed {
                bail!(
                    "{}: line {}: {} field(s), expected {} (the header's columns, separated by {}); column {} (`{}`) is missing",
                    self.path.display(),
                    i + 1,
                    fields.len(),
                    self.columns.len(),
                    if self.delim == '\t' { "tabs" } else { "commas" },
                    fields.len() + 1,
                    self.columns[fields.len()]
                );
            }
            Ok((i + 1, fields))
        })
    }

    fn field_error(&self, line: usize, col: usize, problem: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}: line {line}, column {} (`{}`): {problem}", self.path.display(), col + 1, self.columns[col])
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Numeric ids in numeric order, then the rest in byte order.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

pub fn read_interactions(path: &Path) -> Result<Dataset> {
    let table = Table::read(path, "interactions")?;
    let user_col = table.require(&["user_id", "user", "session_id"])?;
    let item_col = table.require(&["item_id", "item"])?;
    let ts_col = table.require(&["timestamp", "time", "ts"])?;
    let needed = user_col.max(item_col).max(ts_col) + 1;

    let mut users: HashMap<String, Vec<(f64, u32)>> = HashMap::new();
    let mut item_ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut interactions = 0usize;
    let mut last_ts = f64::NEG_INFINITY;
    for row in table.rows(needed) {
        let (line, f) = row?;
        let (user, item, ts) = (f[user_col], f[item_col], f[ts_col]);
        if user.is_empty() {
            return Err(table.field_error(line, user_col, "empty user id"));
        }
        if item.is_empty() {
            return Err(table.field_error(line, item_col, "empty item id"));
        }
        let ts: f64 = match ts.parse::<f64>() {
            Ok(t) if t.is_finite() => t,
            _ => return Err(table.field_error(line, ts_col, format!("`{ts}` is not a number"))),
        };
        let next = names.len() as u32;
        let id = *item_ids.entry(item.to_owned()).or_insert_with(|| {
            names.push(item.to_owned());
            next
        });
        users.entry(user.to_owned()).or_default().push((ts, id));
        last_ts = last_ts.max(ts);
        interactions += 1;
    }
    if interactions == 0 {
        bail!("{}: line 2: no interactions after the header", path.display());
    }

    // The vocabulary in natural id order, so the index of an item does not depend on file order.
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|&a, &b| natural_order(&names[a as usize], &names[b as usize]));
    let mut remap = vec![0u32; names.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    let items: Vec<String> = order.iter().map(|&o| names[o as usize].clone()).collect();

    let mut recent = vec![0u64; items.len()];
    for events in users.values() {
        for &(ts, i) in events {
            if ts > last_ts - TREND_WINDOW_SECONDS {
                recent[remap[i as usize] as usize] += 1;
            }
        }
    }
    let mut user_names: Vec<String> = users.keys().cloned().collect();
    user_names.sort_by(|a, b| natural_order(a, b));
    let (sequences, times) = user_names
        .iter()
        .map(|u| {
            let mut events = users.remove(u).unwrap_or_default();
            // Stable: ties keep file order.
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
            events.into_iter().map(|(t, i)| (remap[i as usize], t)).unzip::<u32, f64, Vec<u32>, Vec<f64>>()
        })
        .unzip();
    Ok(Dataset { items, sequences, times, interactions, recent })
}

pub(super) fn read_items(path: &Path) -> Result<HashMap<String, ItemMeta>> {
    let table = Table::read(path, "items")?;
    let id_col = table.require(&["item_id", "item", "id"])?;
    let title_col = table.column(&["movie_title", "title", "name"]);
    let year_col = table.column(&["release_year", "year"]);
    let cat_col = table.column(&["class", "genres", "genre", "category", "categories"]);
    let needed = [Some(id_col), title_col, year_col, cat_col].into_iter().flatten().max().unwrap_or(0) + 1;
    let mut out: HashMap<String, ItemMeta> = HashMap::new();
    for row in table.rows(needed) {
        let (line, f) = row?;
        let id = f[id_col];
        if id.is_empty() {
            return Err(table.field_error(line, id_col, "empty item id"));
        }
        // Metadata is best effort: MovieLens itself has `unkonwn` and `V` as years. Such a year
        // counts as unknown (a warning names the line); ids and the shape of lines are checked.
        let year = match year_col.map(|c| (c, f[c])) {
            None | Some((_, "")) => None,
            Some((c, y)) => {
                let parsed = y.parse::<f64>().ok().filter(|y| y.is_finite() && y.fract() == 0.0 && y.abs() < 1e5);
                if parsed.is_none() {
                    warn!("{}; taken as unknown", table.field_error(line, c, format!("`{y}` is not a year")));
                }
                parsed.map(|y| y as i32)
            }
        };
        let title = title_col.map(|c| f[c].to_owned()).filter(|t| !t.is_empty());
        // RecBole token_seq is space-separated, MovieLens' own files use `|`.
        let genres: Vec<String> = cat_col
            .map(|c| f[c].split(['|', ' ', ',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let category = genres.first().cloned();
        if out.insert(id.to_owned(), ItemMeta { title, year, category, genres }).is_some() {
            warn!("{}: line {line}: item `{id}` listed again; the last line wins", path.display());
        }
    }
    Ok(out)
}
