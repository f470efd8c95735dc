//! Where accepted reports are kept: a small trait with a SQLite and a PostgreSQL implementation.
//!
//! Both keep one row per report — the site, its idempotency key (unique per site, so a retried
//! delivery is stored once), its day, its ε, the UTC day it arrived and the validated report as
//! JSON — and nothing about the request that carried it (no IP address, no header). A write is
//! acknowledged only once its transaction is durably committed.
//!
//! The schema is versioned: `schema_version` lists the migrations applied, and opening a
//! database applies the missing ones in order (refusing one newer than this collector).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, Mutex, RwLock};

use super::aggregate::{Cell, Tallies};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database schema is at version {found}, newer than this collector understands ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("{0} holds no collector schema (run `foresight-export collect` on it first)")]
    NoSchema(String),
    #[error("the SQLite database {0} does not exist")]
    Missing(PathBuf),
    #[error("the storage writer has stopped")]
    WriterGone,
    #[error("this storage was opened read-only")]
    ReadOnly,
    #[error("a blocking storage task failed: {0}")]
    Task(String),
}

/// Which database: `sqlite:PATH` or `postgres://…` (also `postgresql://…`).
#[derive(Debug, Clone, PartialEq)]
pub enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl FromStr for Db {
    type Err = String;

    fn from_str(s: &str) -> Result<Db, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Db::Postgres(s.to_owned()))
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("`sqlite:` needs a file path, e.g. sqlite:collector.db".into());
            }
            Ok(Db::Sqlite(PathBuf::from(path)))
        } else {
            Err(format!("database `{s}` must be sqlite:PATH or postgres://USER@HOST:PORT/DBNAME"))
        }
    }
}

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            // Never print a password.
            Db::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let creds = &url[scheme + 3..at];
                    let user = creds.split(':').next().unwrap_or("");
                    write!(f, "{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
                }
                _ => write!(f, "{url}"),
            },
        }
    }
}

/// One validated report to store.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub idempotency_key: String,
    pub day: String,
    pub epsilon: f64,
    pub body_json: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Stored now.
    pub accepted: usize,
    /// Already stored (same site and idempotency key): acknowledged, not stored again.
    pub duplicates: usize,
}

/// The reports of a site, optionally limited to report days `from..=to` (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub site: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub trait Storage: Send + Sync + 'static {
    /// Stores the reports of one request atomically; resolves once they are committed.
    fn insert<'a>(&'a self, site: &'a str, received_day: &'a str, reports: Vec<NewReport>)
        -> BoxFuture<'a, Result<Inserted, StorageError>>;
    /// The reports' contributions summed per statistic, mechanism and sketch cell (or value)
    /// by the database, plus how many reports there were: what `aggregates` estimates from,
    /// in memory bounded by the sketches' sizes however many reports are stored.
    fn tally<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Tallies, StorageError>>;
    /// The highest migration applied.
    fn schema_version(&self) -> BoxFuture<'_, Result<i64, StorageError>>;
}

/// Whether the caller writes (the collector: creates and migrates the database) or only reads
/// (`aggregates`: the database must exist and hold the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Read,
}

pub async fn open(db: &Db, mode: Mode) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match db {
        Db::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, mode))
                .await
                .map_err(|e| StorageError::Task(e.to_string()))??;
            Arc::new(store)
        }
        Db::Postgres(url) => Arc::new(PgStore::open(url, mode).await?),
    })
}

/// The UTC day now, `YYYY-MM-DD` (the only arrival time stored).
pub fn today() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0);
    foresight::privacy::budget::utc_day(ms)
}

// ---------------------------------------------------------------------------------------------
// Migrations

/// SQLite migrations, in order; migration N is `SQLITE_MIGRATIONS[N - 1]`.
const SQLITE_MIGRATIONS: &[&str] = &["
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        day TEXT NOT NULL,
        epsilon REAL NOT NULL,
        received_day TEXT NOT NULL,
        body_json TEXT NOT NULL
    );
    CREATE UNIQUE INDEX reports_site_idempotency_key ON reports (site, idempotency_key);
    CREATE INDEX reports_site_day ON reports (site, day);
"];

/// PostgreSQL migrations: the same schema, then (2) the reports partitioned by report day —
/// one partition a day, created as reports for it arrive (`PgStore::ensure_partitions`), so a
/// day's aggregation reads one partition and old days can be detached or dropped whole — with
/// the body as `jsonb` so the database sums the sketch cells itself. Partitioning puts the day
/// into the unique key: a retried report (same key, same day) is still stored once.
const PG_MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE reports (
        id BIGSERIAL PRIMARY KEY,
        site TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        day TEXT NOT NULL,
        epsilon DOUBLE PRECISION NOT NULL,
        received_day TEXT NOT NULL,
        body_json TEXT NOT NULL
    );
    CREATE UNIQUE INDEX reports_site_idempotency_key ON reports (site, idempotency_key);
    CREATE INDEX reports_site_day ON reports (site, day);
",
    r#"
    ALTER TABLE reports RENAME TO reports_unpartitioned;
    ALTER INDEX reports_site_idempotency_key RENAME TO reports_unpartitioned_key;
    ALTER INDEX reports_site_day RENAME TO reports_unpartitioned_site_day;
    CREATE TABLE reports (
        id BIGSERIAL,
        site TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        day TEXT COLLATE "C" NOT NULL,
        epsilon DOUBLE PRECISION NOT NULL,
        received_day TEXT NOT NULL,
        body_json JSONB NOT NULL,
        PRIMARY KEY (day, id),
        UNIQUE (day, site, idempotency_key)
    ) PARTITION BY RANGE (day);
    CREATE INDEX reports_site_day ON reports (site, day);
    -- Rows of days that are not calendar dates (accepted before days were checked as dates).
    CREATE TABLE reports_undated PARTITION OF reports DEFAULT;
    DO $$
    DECLARE d text;
    BEGIN
        FOR d IN SELECT DISTINCT day FROM reports_unpartitioned WHERE day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' LOOP
            BEGIN
                IF to_char(d::date, 'YYYY-MM-DD') = d THEN
                    EXECUTE format('CREATE TABLE %I PARTITION OF reports FOR VALUES FROM (%L) TO (%L)',
                        'reports_' || replace(d, '-', '_'), d, to_char(d::date + 1, 'YYYY-MM-DD'));
                END IF;
            EXCEPTION WHEN others THEN NULL;
            END;
        END LOOP;
    END $$;
    INSERT INTO reports (site, idempotency_key, day, epsilon, received_day, body_json)
        SELECT site, idempotency_key, day, epsilon, received_day, body_json::jsonb FROM reports_unpartitioned ORDER BY id;
    DROP TABLE reports_unpartitioned;
"#,
];

/// The name and bounds of the partition holding report day `day` (a calendar date: intake
/// checked it), `None` for anything else (it goes to the default partition).
fn pg_partition(day: &str) -> Option<(String, String)> {
    let n = foresight::privacy::budget::day_number(day)?;
    let next = foresight::privacy::budget::utc_day((n + 1) as f64 * 86_400_000.0);
    Some((format!("reports_{}", day.replace('-', "_")), next))
}

const SCHEMA_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_day TEXT NOT NULL)";

// ---------------------------------------------------------------------------------------------
// SQLite

/// SQLite in WAL mode with `synchronous=FULL`: a commit is on disk before it is acknowledged,
/// so it survives the process being killed (and a power loss). All writes go through one
/// dedicated thread that commits whatever requests are waiting in a single transaction (group
/// commit): one fsync serves many concurrent requests.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<Job>>,
    version: i64,
}

struct Job {
    site: String,
    received_day: String,
    reports: Vec<NewReport>,
    reply: oneshot::Sender<Result<Inserted, StorageError>>,
}

/// Hands one request's reports to the writer (a thread for SQLite, tasks for PostgreSQL) and
/// waits for its commit.
async fn submit(
    writer: Option<&mpsc::Sender<Job>>,
    site: &str,
    received_day: &str,
    reports: Vec<NewReport>,
) -> Result<Inserted, StorageError> {
    let writer = writer.ok_or(StorageError::ReadOnly)?;
    let (reply, answer) = oneshot::channel();
    writer
        .send(Job { site: site.to_owned(), received_day: received_day.to_owned(), reports, reply })
        .await
        .map_err(|_| StorageError::WriterGone)?;
    answer.await.map_err(|_| StorageError::WriterGone)?
}

/// How many waiting requests one transaction may take.
const GROUP_COMMIT_MAX: usize = 128;

impl SqliteStore {
    pub fn open(path: &Path, mode: Mode) -> Result<SqliteStore, StorageError> {
        let conn = match mode {
            Mode::Serve => Connection::open(path)?,
            Mode::Read => {
                if !path.exists() {
                    return Err(StorageError::Missing(path.to_owned()));
                }
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?
            }
        };
        configure(&conn)?;
        let version = match mode {
            Mode::Serve => {
                let mut conn = conn;
                let version = migrate_sqlite(&mut conn)?;
                let (tx, rx) = mpsc::channel::<Job>(1024);
                std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || writer_loop(conn, rx))
                    .map_err(|e| StorageError::Task(e.to_string()))?;
                return Ok(SqliteStore { path: path.to_owned(), writer: Some(tx), version });
            }
            Mode::Read => sqlite_version(&conn)?.ok_or_else(|| StorageError::NoSchema(path.display().to_string()))?,
        };
        if version > SQLITE_MIGRATIONS.len() as i64 {
            return Err(StorageError::TooNew { found: version, known: SQLITE_MIGRATIONS.len() as i64 });
        }
        Ok(SqliteStore { path: path.to_owned(), writer: None, version })
    }
}

fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("SQLite did not switch to WAL mode (journal_mode={mode})");
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    Ok(())
}

fn sqlite_version(conn: &Connection) -> Result<Option<i64>, StorageError> {
    let exists: Option<String> =
        conn.query_row("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'", [], |r| r.get(0)).optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    Ok(Some(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?))
}

fn migrate_sqlite(conn: &mut Connection) -> Result<i64, StorageError> {
    let known = SQLITE_MIGRATIONS.len() as i64;
    // IMMEDIATE: two collectors starting on one file migrate one after the other.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA_VERSION_TABLE)?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
    if current > known {
        return Err(StorageError::TooNew { found: current, known });
    }
    for (i, sql) in SQLITE_MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_version (version, applied_day) VALUES (?1, ?2)", (i as i64 + 1, today()))?;
        tracing::info!("applied schema migration {}", i + 1);
    }
    tx.commit()?;
    Ok(known)
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match insert_group(&mut conn, &jobs) {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            // The group failed as a whole (rolled back): each request on its own, so one cannot
            // fail the others.
            Err(_) if jobs.len() > 1 => {
                for job in jobs {
                    let result = insert_group(&mut conn, std::slice::from_ref(&job)).map(|mut r| r.remove(0));
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(StorageError::Task(e.to_string())));
                }
            }
        }
    }
}

fn insert_group(conn: &mut Connection, jobs: &[Job]) -> Result<Vec<Inserted>, StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(jobs.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO reports (site, idempotency_key, day, epsilon, received_day, body_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site, idempotency_key) DO NOTHING",
        )?;
        for job in jobs {
            let mut r = Inserted::default();
            for report in &job.reports {
                let n =
                    stmt.execute((&job.site, &report.idempotency_key, &report.day, report.epsilon, &job.received_day, &report.body_json))?;
                if n == 1 {
                    r.accepted += 1;
                } else {
                    r.duplicates += 1;
                }
            }
            results.push(r);
        }
    }
    tx.commit()?;
    Ok(results)
}

impl Storage for SqliteStore {
    fn insert<'a>(
        &'a self,
        site: &'a str,
        received_day: &'a str,
        reports: Vec<NewReport>,
    ) -> BoxFuture<'a, Result<Inserted, StorageError>> {
        Box::pin(submit(self.writer.as_ref(), site, received_day, reports))
    }

    fn tally<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Tallies, StorageError>> {
        let path = self.path.clone();
        let query = query.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || -> Result<Tallies, StorageError> {
                let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                let params = (&query.site, &query.from, &query.to);
                let mut tallies = Tallies::default();
                let (reports, skipped): (i64, i64) = conn.query_row(
                    &format!("SELECT COUNT(*), COALESCE(SUM(NOT json_valid(body_json)), 0) FROM reports WHERE {SQLITE_WHERE}"),
                    params,
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                tallies.skipped = skipped as u64;
                tallies.reports = (reports - skipped) as u64;
                let mut stmt = conn.prepare(SQLITE_CELLS)?;
                let mut rows = stmt.query(params)?;
                while let Some(row) = rows.next()? {
                    let cell = Cell {
                        statistic: row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        mechanism: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        experiment: row.get(2)?,
                        hash: row.get(3)?,
                        coord: row.get(4)?,
                        value: row.get(5)?,
                        sum: row.get(6)?,
                        count: row.get(7)?,
                    };
                    tallies.add_cell(&cell);
                }
                Ok(tallies)
            })
            .await
            .map_err(|e| StorageError::Task(e.to_string()))?
        })
    }

    fn schema_version(&self) -> BoxFuture<'_, Result<i64, StorageError>> {
        Box::pin(async move { Ok(self.version) })
    }
}

const SQLITE_WHERE: &str = "site = ?1 AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3)";

/// Σ sign (HCMS) or the count (k-RR) per statistic, mechanism, experiment and cell. `CAST`
/// keeps an edited row from failing the query (its cells are dropped by `Tallies::add_cell`).
const SQLITE_CELLS: &str = "
    SELECT CAST(json_extract(c.value, '$.statistic') AS TEXT),
           CAST(json_extract(c.value, '$.mechanism') AS TEXT),
           CAST(json_extract(c.value, '$.experiment') AS TEXT),
           CAST(COALESCE(json_extract(c.value, '$.report.hash'), -1) AS INTEGER),
           CAST(COALESCE(json_extract(c.value, '$.report.coord'), -1) AS INTEGER),
           CAST(COALESCE(json_extract(c.value, '$.value'), -1) AS INTEGER),
           SUM(CAST(COALESCE(json_extract(c.value, '$.report.sign'), 1) AS INTEGER)),
           COUNT(*)
    FROM reports r,
         json_each(CASE WHEN json_valid(r.body_json) AND json_type(r.body_json, '$.contributions') = 'array'
                        THEN r.body_json ELSE '{\"contributions\": []}' END, '$.contributions') c
    WHERE r.site = ?1 AND (?2 IS NULL OR r.day >= ?2) AND (?3 IS NULL OR r.day <= ?3)
    GROUP BY 1, 2, 3, 4, 5, 6";

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// PostgreSQL through a few `tokio-postgres` connections. Writes go through `PG_CONNECTIONS`
/// writer tasks that each take every request waiting when they are free and store them in one
/// `INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING RETURNING` statement (group commit:
/// one durable commit, `synchronous_commit` on, serves them all); a request is acknowledged
/// only after that commit. A group that fails is retried request by request, so one cannot
/// fail the others.
pub struct PgStore {
    inner: Arc<PgInner>,
    writer: Option<mpsc::Sender<Job>>,
}

struct PgInner {
    url: String,
    conns: Vec<RwLock<Option<PgConn>>>,
    next: AtomicUsize,
    version: i64,
    /// Report days whose partition is known to exist.
    partitions: Mutex<std::collections::HashSet<String>>,
}

struct PgConn {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
}

const PG_CONNECTIONS: usize = 4;
const PG_INSERT: &str = "INSERT INTO reports (site, idempotency_key, day, epsilon, received_day, body_json)
    SELECT s, k, d, e, r, b::jsonb FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[]) AS t(s, k, d, e, r, b)
    ON CONFLICT (day, site, idempotency_key) DO NOTHING
    RETURNING site, idempotency_key, day";

/// The PostgreSQL twin of `SQLITE_CELLS`.
const PG_CELLS: &str = "
    SELECT c->>'statistic', (c->'mechanism')::text, c->>'experiment',
           COALESCE((c->'report'->>'hash')::bigint, -1), COALESCE((c->'report'->>'coord')::bigint, -1),
           COALESCE((c->>'value')::bigint, -1), SUM(COALESCE((c->'report'->>'sign')::bigint, 1))::bigint, COUNT(*)::bigint
    FROM reports r,
         jsonb_array_elements(CASE WHEN jsonb_typeof(r.body_json->'contributions') = 'array'
                                   THEN r.body_json->'contributions' ELSE '[]'::jsonb END) c
    WHERE r.site = $1 AND ($2::text IS NULL OR r.day >= $2) AND ($3::text IS NULL OR r.day <= $3)
    GROUP BY 1, 2, 3, 4, 5, 6";

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, StorageError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("PostgreSQL connection closed: {e}");
        }
    });
    Ok(client)
}

impl PgStore {
    pub async fn open(url: &str, mode: Mode) -> Result<PgStore, StorageError> {
        let mut client = pg_connect(url).await?;
        let known = PG_MIGRATIONS.len() as i64;
        let version = match mode {
            Mode::Serve => {
                let tx = client.transaction().await?;
                // Two collectors starting together migrate one after the other.
                tx.execute("SELECT pg_advisory_xact_lock(4747700001)", &[]).await?;
                tx.batch_execute(SCHEMA_VERSION_TABLE).await?;
                let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version", &[]).await?.get(0);
                if current > known {
                    return Err(StorageError::TooNew { found: current, known });
                }
                for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(current as usize) {
                    tx.batch_execute(sql).await?;
                    tx.execute("INSERT INTO schema_version (version, applied_day) VALUES ($1, $2)", &[&(i as i32 + 1), &today()]).await?;
                    tracing::info!("applied schema migration {}", i + 1);
                }
                tx.commit().await?;
                known
            }
            Mode::Read => {
                let exists: bool = client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
                if !exists {
                    return Err(StorageError::NoSchema(Db::Postgres(url.to_owned()).to_string()));
                }
                let current: i64 = client.query_one("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version", &[]).await?.get(0);
                if current > known {
                    return Err(StorageError::TooNew { found: current, known });
                }
                current
            }
        };
        let first = PgConn { insert: client.prepare(PG_INSERT).await?, client };
        let mut conns = vec![RwLock::new(Some(first))];
        if mode == Mode::Serve {
            for _ in 1..PG_CONNECTIONS {
                conns.push(RwLock::new(None));
            }
        }
        let inner = Arc::new(PgInner { url: url.to_owned(), conns, next: AtomicUsize::new(0), version, partitions: Mutex::default() });
        let writer = (mode == Mode::Serve).then(|| {
            let (tx, rx) = mpsc::channel::<Job>(1024);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..PG_CONNECTIONS {
                let (inner, rx) = (inner.clone(), rx.clone());
                tokio::spawn(async move {
                    while let Some(jobs) = next_group(&rx).await {
                        inner.write_group(jobs).await;
                    }
                });
            }
            tx
        });
        Ok(PgStore { inner, writer })
    }
}

/// The next request and every one waiting behind it (up to `GROUP_COMMIT_MAX`); `None` once
/// the store is dropped.
async fn next_group(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut jobs = vec![first];
    while jobs.len() < GROUP_COMMIT_MAX {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

impl PgInner {
    async fn write_group(&self, jobs: Vec<Job>) {
        match self.insert_group(&jobs).await {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(_) if jobs.len() > 1 => {
                for job in jobs {
                    let result = self.insert_group(std::slice::from_ref(&job)).await.map(|mut r| r.remove(0));
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(StorageError::Task(e.to_string())));
                }
            }
        }
    }

    /// One statement for all the jobs' reports; per job, how many were stored now (a key
    /// stored by an earlier job of the group counts as a duplicate for the later one).
    async fn insert_group(&self, jobs: &[Job]) -> Result<Vec<Inserted>, StorageError> {
        let total: usize = jobs.iter().map(|j| j.reports.len()).sum();
        let (mut sites, mut keys, mut days, mut epsilons, mut received, mut bodies) = (
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
        );
        for job in jobs {
            for r in &job.reports {
                sites.push(job.site.as_str());
                keys.push(r.idempotency_key.as_str());
                days.push(r.day.as_str());
                epsilons.push(r.epsilon);
                received.push(job.received_day.as_str());
                bodies.push(r.body_json.as_str());
            }
        }
        self.ensure_partitions(&days).await?;
        let guard = self.conn().await?;
        let conn = guard.as_ref().ok_or(StorageError::WriterGone)?;
        let rows = conn.client.query(&conn.insert, &[&sites, &keys, &days, &epsilons, &received, &bodies]).await?;
        let mut stored: std::collections::HashSet<(String, String, String)> =
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2))).collect();
        Ok(jobs
            .iter()
            .map(|job| {
                let mut result = Inserted::default();
                for r in &job.reports {
                    if stored.remove(&(job.site.clone(), r.idempotency_key.clone(), r.day.clone())) {
                        result.accepted += 1;
                    } else {
                        result.duplicates += 1;
                    }
                }
                result
            })
            .collect())
    }

    /// Creates the partitions of the report days in `days` that do not exist yet. An advisory
    /// lock orders the collectors sharing the database, so two creating one day's partition
    /// together do not fail each other.
    async fn ensure_partitions(&self, days: &[&str]) -> Result<(), StorageError> {
        let mut known = self.partitions.lock().await;
        let mut missing: Vec<&str> = days.iter().copied().filter(|d| !known.contains(*d)).collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let guard = self.conn().await?;
        let conn = guard.as_ref().ok_or(StorageError::WriterGone)?;
        // One simple-query message: PostgreSQL runs it as one implicit transaction (rolled
        // back whole on an error), and no other request pipelined on this connection can
        // land inside it.
        let mut sql = String::from("SELECT pg_advisory_xact_lock(4747700002);");
        for day in &missing {
            // Only calendar dates (checked at intake) name a partition; the text is digits
            // and dashes, so it is safe in the statement.
            if let Some((name, next)) = pg_partition(day) {
                sql.push_str(&format!(" CREATE TABLE IF NOT EXISTS {name} PARTITION OF reports FOR VALUES FROM ('{day}') TO ('{next}');"));
            }
        }
        conn.client.batch_execute(&sql).await?;
        known.extend(missing.into_iter().map(str::to_owned));
        Ok(())
    }

    /// A live connection, (re)connecting the slot when it has none or lost it.
    async fn conn(&self) -> Result<tokio::sync::RwLockReadGuard<'_, Option<PgConn>>, StorageError> {
        let slot = &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()];
        {
            let guard = slot.read().await;
            if guard.as_ref().is_some_and(|c| !c.client.is_closed()) {
                return Ok(guard);
            }
        }
        let mut guard = slot.write().await;
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            let client = pg_connect(&self.url).await?;
            *guard = Some(PgConn { insert: client.prepare(PG_INSERT).await?, client });
        }
        Ok(guard.downgrade())
    }
}

impl Storage for PgStore {
    fn insert<'a>(
        &'a self,
        site: &'a str,
        received_day: &'a str,
        reports: Vec<NewReport>,
    ) -> BoxFuture<'a, Result<Inserted, StorageError>> {
        Box::pin(submit(self.writer.as_ref(), site, received_day, reports))
    }

    fn tally<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Tallies, StorageError>> {
        Box::pin(async move {
            let guard = self.inner.conn().await?;
            let conn = guard.as_ref().ok_or(StorageError::WriterGone)?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&query.site, &query.from, &query.to];
            let mut tallies = Tallies::default();
            let reports: i64 = conn
                .client
                .query_one(
                    "SELECT COUNT(*)::bigint FROM reports WHERE site = $1 AND ($2::text IS NULL OR day >= $2) AND ($3::text IS NULL OR day <= $3)",
                    &params,
                )
                .await?
                .get(0);
            tallies.reports = reports as u64;
            for row in conn.client.query(PG_CELLS, &params).await? {
                let cell = Cell {
                    statistic: row.get::<_, Option<String>>(0).unwrap_or_default(),
                    mechanism: row.get::<_, Option<String>>(1).unwrap_or_default(),
                    experiment: row.get(2),
                    hash: row.get(3),
                    coord: row.get(4),
                    value: row.get(5),
                    sum: row.get(6),
                    count: row.get(7),
                };
                tallies.add_cell(&cell);
            }
            Ok(tallies)
        })
    }

    fn schema_version(&self) -> BoxFuture<'_, Result<i64, StorageError>> {
        Box::pin(async move { Ok(self.inner.version) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::aggregate::{self, Options};
    use foresight::contract::report::{Mechanisms, RecStage};
    use foresight::platform::{Randomness, SeededRandomness};
    use foresight::sync::day::DaySummary;

    /// What the database sums equals what pooling every report in memory gives, estimate for
    /// estimate, with several mechanisms, an experiment, another site, another day and an
    /// edited row that is not a report.
    #[test]
    fn sqlite_cell_sums_give_the_same_aggregates_as_the_reports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut rng = SeededRandomness(7);
        let other =
            Mechanisms { item_view: foresight::privacy::mechanism::Hcms { hashes: 8, width: 512, epsilon: 0.25 }, ..Mechanisms::default() };
        let mut rows = Vec::new();
        for v in 0..600u32 {
            let i = rng.below(30);
            let summary = DaySummary {
                viewed_items: vec![format!("i{i}")],
                transitions: if v % 3 == 0 { vec![] } else { vec![format!("i{i}>i{}", (i + 1) % 30)] },
                categories: vec![format!("c{}", i % 4)],
                max_intent: (v % 5 != 0).then_some(i as f32 / 30.0),
                recommended: vec![format!("i{}", (i * 7) % 30)],
                rec_stage: if v % 2 == 0 { RecStage::Clicked } else { RecStage::Shown },
                experiments: if v % 4 == 0 {
                    let mechanism = foresight::privacy::mechanism::KaryRr { k: 2 * RecStage::COUNT, epsilon: 0.05 };
                    vec![("hero".into(), mechanism, foresight::experiment::encode_value((v / 4 % 2) as usize, RecStage::Shown))]
                } else {
                    vec![]
                },
            };
            let mechanisms = if v % 7 == 0 { &other } else { &Mechanisms::default() };
            let site = if v % 11 == 0 { "elsewhere" } else { "shop" };
            let day = if v % 13 == 0 { "2026-12-02" } else { "2026-12-01" };
            let report = foresight::sync::day::build(site, day, &summary, mechanisms, &mut rng);
            rows.push((
                site,
                NewReport {
                    idempotency_key: report.idempotency_key.clone(),
                    day: report.day.clone(),
                    epsilon: report.epsilon,
                    body_json: serde_json::to_string(&report).expect("json"),
                },
            ));
        }
        let catalog: Vec<foresight::recommend::CatalogItem> = (0..30)
            .map(|i| foresight::recommend::CatalogItem { id: format!("i{i}"), category: Some(format!("c{}", i % 4)), ..Default::default() })
            .collect();
        runtime.block_on(async {
            let store = open(&Db::Sqlite(path.clone()), Mode::Serve).await.expect("open");
            for (site, row) in rows {
                store.insert(site, "2026-12-02", vec![row]).await.expect("insert");
            }
            let conn = Connection::open(&path).expect("open");
            conn.execute("INSERT INTO reports (site, idempotency_key, day, epsilon, received_day, body_json) VALUES ('shop', 'edited', '2026-12-01', 1.0, '2026-12-02', '{not json')", []).expect("edit");
            for (from, to) in [(None, None), (Some("2026-12-01"), Some("2026-12-01")), (Some("2026-12-02"), None)] {
                let query = Query { site: "shop".into(), from: from.map(str::to_owned), to: to.map(str::to_owned) };
                let options = Options { site: "shop".into(), from: query.from.clone(), to: query.to.clone(), min_contributors: 10, catalog: Some(catalog.clone()), top_items: 5 };
                let bodies: Vec<String> = conn
                    .prepare("SELECT body_json FROM reports WHERE site = ?1 AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3) ORDER BY id")
                    .expect("prepare")
                    .query_map((&query.site, &query.from, &query.to), |r| r.get(0))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows");
                let in_memory = serde_json::to_value(aggregate::aggregate(&bodies, &options)).expect("json");
                let summed = serde_json::to_value(aggregate::release(store.tally(&query).await.expect("tally"), &options)).expect("json");
                assert_eq!(summed, in_memory, "{from:?}..{to:?}");
                assert!(summed["groups"].as_array().is_some_and(|g| g.len() >= 7), "{summed}");
                assert_eq!(summed["skipped"], u64::from(from != Some("2026-12-02")));
            }
        });
    }

    #[test]
    fn database_urls() {
        assert_eq!("sqlite:collector.db".parse::<Db>(), Ok(Db::Sqlite("collector.db".into())));
        assert_eq!("sqlite:///tmp/x.db".parse::<Db>(), Ok(Db::Sqlite("/tmp/x.db".into())));
        assert!(matches!("postgres://u@h/db".parse::<Db>(), Ok(Db::Postgres(_))));
        assert!("mysql://x".parse::<Db>().is_err());
        assert_eq!(Db::Postgres("postgres://u:secret@h:5432/db".into()).to_string(), "postgres://u@h:5432/db");
    }
}
