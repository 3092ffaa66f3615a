//! Storage: one sqlx pool per service, SQLite by default, PostgreSQL by URL.
//!
//! Services write SQL that both engines run: `$1` placeholders, TEXT ids and
//! times, BIGINT cents, BOOLEAN flags. Migrations are compiled into the
//! binary and run at start.
//!
//! Architecture invariant: each service opens only its own database.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Executor, SqlSafeStr};

pub type Db = sqlx::AnyPool;

/// One migration compiled into the binary: `(version, description, sql)`.
pub type MigrationSource = (i64, &'static str, &'static str);

/// The most connections a service holds to PostgreSQL unless
/// `DATABASE_POOL_MAX` says otherwise: small, because replicas multiply it
/// and the server's default limit is 100 connections in all.
pub const DEFAULT_POSTGRES_POOL: u32 = 6;
/// One connection per SQLite file: every statement of the service takes
/// its turn on it. A file has one writer anyway, and the statements are
/// microseconds; with more connections, each one's page cache is thrown
/// away whenever another has written (WAL), so every transaction began
/// by re-reading its pages from the file. Measured (docs/PERFORMANCE.md,
/// "One connection per SQLite file"): 13 % less CPU per order and the
/// highest order rate held from 150/s to 275/s.
const SQLITE_POOL: u32 = 1;

/// A pooled connection idle this long is pinged before it is handed out:
/// a server restarted meanwhile has dropped it, and the pool then opens a
/// fresh one instead of failing the caller's statement.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// The most connections to the database at `url` unless
/// `DATABASE_POOL_MAX` says otherwise.
pub fn default_pool_max(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        SQLITE_POOL
    } else {
        DEFAULT_POSTGRES_POOL
    }
}

impl crate::ServiceConfig {
    /// This service's database (`DATABASE_URL`, `DATABASE_POOL_MAX`),
    /// opened and migrated.
    pub async fn open_database(&self, migrations: &[MigrationSource]) -> anyhow::Result<Db> {
        connect_with(&self.database_url, self.database_pool_max, migrations).await
    }
}

/// Opens the database at `url` and brings its schema up to date.
///
/// A `sqlite://` file (and its directory) is created if missing and runs in
/// WAL mode, so readers never wait for the writer.
pub async fn connect(url: &str, migrations: &[MigrationSource]) -> anyhow::Result<Db> {
    connect_with(url, default_pool_max(url), migrations).await
}

/// [`connect`] with at most `pool_max` connections.
pub async fn connect_with(
    url: &str,
    pool_max: u32,
    migrations: &[MigrationSource],
) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    let url = if is_sqlite {
        prepare_sqlite(url)?
    } else {
        create_postgres_database(url).await?;
        url.to_owned()
    };
    let pool = AnyPoolOptions::new()
        .max_connections(pool_max.max(1))
        .min_connections(1)
        // A PostgreSQL connection is checked before use only when it has
        // sat idle a while (`STALE_AFTER`), which is when the server may
        // have dropped it: checking every one cost a round trip (a
        // backend's wake-up) per transaction, and a busy service's
        // connections are back in use within milliseconds. A SQLite
        // connection is a file handle in this process: never checked.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= STALE_AFTER && conn.backend_name() != "SQLite" {
                    use sqlx::Connection;
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("cannot open the database at {}", redact(&url)))?;

    let migrator = Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    migrator
        .run(&pool)
        .await
        .context("cannot migrate the database")?;
    Ok(pool)
}

/// Creates the PostgreSQL database `url` names if it does not exist yet
/// (one database per service; the server's `postgres` database is used to
/// issue the `CREATE DATABASE`).
async fn create_postgres_database(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let (server, name) = url
        .split_once('?')
        .map_or(url, |(u, _)| u)
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://"))
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL {} names no database", redact(url)))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        anyhow::bail!("database name {name:?} must be letters, digits and underscores");
    }
    let mut admin = sqlx::AnyConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("cannot reach the PostgreSQL server at {}", redact(server)))?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await;
        // Another replica may have created it a moment ago.
        if let Err(e) = created
            && !matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04") || d.is_unique_violation())
        {
            return Err(e).context("cannot create the database");
        }
    }
    let _ = admin.close().await;
    Ok(())
}

/// Creates the directory of a SQLite file and asks for the file to be
/// created if missing.
fn prepare_sqlite(url: &str) -> anyhow::Result<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("DATABASE_URL {url:?} names no file; FeastFast keeps its data in a file");
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    Ok(if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Which engine a pool talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(db: &Db) -> Backend {
        match db.connect_options().database_url.scheme() {
            "postgres" | "postgresql" => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// A transaction that will write. On SQLite it starts `IMMEDIATE`, taking
/// the write lock up front: a deferred transaction that reads and then
/// writes fails at once (`SQLITE_BUSY_SNAPSHOT`, no busy wait) whenever
/// another writer committed in between. And on SQLite the process's
/// writers to one file first queue on an async lane, so they wait their
/// turn without SQLite's busy handler sleeping and polling (the file has
/// one writer at a time anyway; measured: 2,000 busy sleeps in 5 s in
/// orders at 60 orders/s). PostgreSQL needs neither.
pub async fn begin_write(db: &Db) -> Result<WriteTx, sqlx::Error> {
    match Backend::of(db) {
        Backend::Sqlite => {
            let lane = write_lane(db);
            // As long as SQLite's own busy timeout: a writer that cannot
            // get its turn is told the service is overloaded.
            let turn = tokio::time::timeout(Duration::from_secs(5), lane.lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?;
            Ok(WriteTx {
                tx: db.begin_with("BEGIN IMMEDIATE").await?,
                _turn: Some(turn),
            })
        }
        Backend::Postgres => Ok(WriteTx {
            tx: db.begin().await?,
            _turn: None,
        }),
    }
}

/// A write transaction from [`begin_write`]: use it as the connection
/// (`&mut *tx`), then [`WriteTx::commit`]; dropped, it rolls back (and
/// gives up its turn).
pub struct WriteTx {
    // Declared first, so dropped (rolled back) before the turn is freed.
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back now, where dropping would leave it to the connection's
    /// next use.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// The write lane of a SQLite file in this process.
fn write_lane(db: &Db) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LANES: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<usize, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    // Keyed by the pool's options, shared by every clone of the pool for
    // its life: no allocation on the write path.
    let pool = std::sync::Arc::as_ptr(&db.connect_options()) as usize;
    LANES
        .lock()
        .expect("the lanes lock is never poisoned")
        .entry(pool)
        .or_default()
        .clone()
}

/// Whether `e` is a unique-constraint violation (so the caller answers 409).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Reads a column of TEXT as a parsed value, turning a parse failure into a
/// decode error (it means the row was written by something else).
pub fn parse_column<T>(value: &str, column: &str) -> Result<T, sqlx::Error>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: format!("{e}").into(),
        })
}

/// A database readiness check: one round trip.
pub async fn ping(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:secret@localhost/orders"),
            "postgres://app:***@localhost/orders"
        );
        assert_eq!(redact("sqlite://data/users.db"), "sqlite://data/users.db");
    }

    #[tokio::test]
    async fn creates_migrates_and_reopens_a_sqlite_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/nested/t.db", dir.path().display());
        let migrations = [(
            1,
            "init",
            "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
        )];
        let db = connect(&url, &migrations).await.expect("connects");
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
            .bind("a")
            .bind(1_i64)
            .execute(&db)
            .await
            .expect("inserts");
        let dup = sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
            .bind("a")
            .bind(2_i64)
            .execute(&db)
            .await
            .expect_err("duplicate");
        assert!(is_unique_violation(&dup));
        db.close().await;

        let db = connect(&url, &migrations).await.expect("reopens");
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = $1")
            .bind("a")
            .fetch_one(&db)
            .await
            .expect("reads");
        assert_eq!(n, 1);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&db)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
    }
}
