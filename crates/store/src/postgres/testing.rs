//! A real, throwaway PostgreSQL server for the tests of this crate.
//!
//! Once per test process: `initdb` in a fresh temporary directory (SCRAM passwords, so
//! the tests go through real authentication), then `pg_ctl start` on a free port of
//! 127.0.0.1 with `fsync=off`. When the tests run as root (CI), `initdb` and `pg_ctl`
//! run as the `postgres` user, which then owns the directory. Every test gets its own
//! database (`CREATE DATABASE t_…`), so tests run in parallel without seeing each
//! other's rows.
//!
//! A small watchdog process, in its own session, waits for the test process to end
//! (however it ends: success, panic, abort or a signal) and then stops the server and
//! removes the directory — only a directory this module created (absolute, named
//! `carimbo-pg-…`, holding the server's `data/`).
//!
//! Without PostgreSQL the tests print `SKIPPED (PostgreSQL unavailable: …)` and pass,
//! unless `CARIMBO_REQUIRE_BACKENDS=1`, which makes them fail (the rule of
//! `tests/src/lib.rs`, repeated here because this crate cannot depend on that one).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The role the tests connect as.
const USER: &str = "carimbo";

/// The running server of this test process.
#[derive(Debug)]
pub struct Server {
    /// Temporary directory: `data/` (the cluster), the socket, `log`, `pwfile`.
    pub dir: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Password of [`USER`].
    pub password: String,
    bindir: PathBuf,
    user: Option<(u32, u32)>,
}

impl Server {
    /// Stops the server (fast shutdown: connections are cut), as a crash or a
    /// maintenance restart would look to clients.
    pub fn stop(&self) {
        let mut pg_ctl = as_server_user(&self.bindir.join("pg_ctl"), self.user);
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "fast", "-w", "-t", "60"]);
        run(pg_ctl, "pg_ctl stop").unwrap();
    }

    /// Starts a stopped server again, on the same port.
    pub fn start_again(&self) {
        run(
            pg_ctl_start(&self.bindir, self.user, &self.dir, self.port),
            "pg_ctl start",
        )
        .unwrap();
    }

    /// Turns TLS on with this certificate chain and key (PEM) and, from then on,
    /// refuses TCP connections that do not use it (`hostssl` only in `pg_hba.conf`);
    /// restarts the server. For a test's private server.
    pub fn require_tls(&self, certificate_pem: &[u8], key_pem: &[u8]) {
        let data = self.dir.join("data");
        for (name, bytes, mode) in [
            ("server.crt", certificate_pem, 0o644),
            ("server.key", key_pem, 0o600),
        ] {
            let path = data.join(name);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        let hba = data.join("pg_hba.conf");
        let text: String = std::fs::read_to_string(&hba)
            .unwrap()
            .lines()
            .map(|line| match line.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&hba, text).unwrap();
        self.stop();
        self.start_again();
    }

    /// URL of `database` on this server, with the password.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }
}

/// Whether an absent backend must fail the test run instead of skipping.
fn backends_required() -> bool {
    std::env::var("CARIMBO_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Prints a skip notice, or panics when backends are required.
fn skip(why: &str) {
    if backends_required() {
        panic!("PostgreSQL is required (CARIMBO_REQUIRE_BACKENDS=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED (PostgreSQL unavailable: {why}; scripts/test.sh sets it up)");
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// The server of this process, started on first use; `None` (after a skip notice) when
/// PostgreSQL is not installed or does not start.
pub fn server() -> Option<&'static Server> {
    match SERVER.get_or_init(start) {
        Ok(server) => Some(server),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// A database of one test, dropped (with any connections left) when the guard is.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, with the password.
    pub url: String,
    name: String,
    admin: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // The test's runtime may be gone or single-threaded: a runtime of its own, on
        // a thread of its own. Best effort: the server goes at process exit anyway.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()?;
                admin.close().await.ok()
            })
        });
        drop(dropped.join());
    }
}

/// A new, empty database on the test server.
pub async fn database() -> Option<TestDatabase> {
    Some(database_on(server()?).await)
}

/// A server of its own for a test that stops and starts it (the shared one serves
/// tests running in parallel); `None` (after a skip notice) without PostgreSQL. It is
/// stopped and removed when this process ends.
pub fn private_server() -> Option<Server> {
    match start() {
        Ok(server) => Some(server),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

/// A new, empty database on `server`.
pub async fn database_on(server: &Server) -> TestDatabase {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // A connection of its own (not a pool): each test has its own runtime.
    let mut admin = PgConnection::connect(&server.url("postgres"))
        .await
        .expect("connect to the test server's postgres database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    admin.close().await.ok();
    TestDatabase {
        url: server.url(&name),
        name,
        admin: server.url("postgres"),
    }
}

/// Where the PostgreSQL server programs are: `pg_config --bindir`, then the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH), then PATH.
fn find_bindir() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| has_initdb(dir))
}

/// The user the server programs run as: `None` for the current user, or the
/// `postgres` user's uid and gid when running as root (initdb refuses root).
fn server_user() -> Result<Option<(u32, u32)>, String> {
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot tell the effective user: {e}"))?;
    if euid != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| "running as root and there is no `postgres` user to run initdb as".into())
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// A command running `program` as the server user.
fn as_server_user(program: &Path, user: Option<(u32, u32)>) -> Command {
    match user {
        None => Command::new(program),
        Some(_) => {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        }
    }
}

fn run(mut command: Command, what: &str) -> Result<Output, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// A password for this run only (it guards a server on 127.0.0.1 for minutes).
fn fresh_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(&nanos.to_be_bytes());
    context.update(&std::process::id().to_be_bytes());
    hex::encode(&context.finish().as_ref()[..16])
}

fn start() -> Result<Server, String> {
    let bindir = find_bindir().ok_or(
        "initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH); \
         install PostgreSQL (Debian: apt-get install postgresql)",
    )?;
    let user = server_user()?;
    let dir = tempfile::Builder::new()
        .prefix("carimbo-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    // From here on the watchdog owns the directory, whatever happens next.
    start_watchdog(&bindir, &dir, user)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    let password = fresh_password();
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, &password).map_err(|e| format!("write {}: {e}", pwfile.display()))?;
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", pwfile.display()))?;
    if let Some((uid, gid)) = user {
        for path in [&dir, &pwfile] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", path.display()))?;
        }
    }
    let data = dir.join("data");
    let mut initdb = as_server_user(&bindir.join("initdb"), user);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", USER, "-A", "scram-sha-256", "-E", "UTF8"])
        .args(["--no-locale", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()));
    run(initdb, "initdb")?;

    // The port is free when chosen, but could be taken before the server binds it.
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        match run(pg_ctl_start(&bindir, user, &dir, port), "pg_ctl start") {
            Ok(_) => {
                return Ok(Server {
                    dir,
                    port,
                    password,
                    bindir,
                    user,
                });
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                last_error = format!("{e}\n{log}");
            }
        }
    }
    Err(last_error)
}

/// `pg_ctl start` of the cluster in `dir` on `port`.
fn pg_ctl_start(bindir: &Path, user: Option<(u32, u32)>, dir: &Path, port: u16) -> Command {
    let mut pg_ctl = as_server_user(&bindir.join("pg_ctl"), user);
    pg_ctl
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-o")
        .arg(format!(
            "-k {} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            dir.display()
        ))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["start", "-w", "-t", "60"]);
    pg_ctl
}

/// Starts the process that stops the server and removes `dir` once this process ends.
fn start_watchdog(bindir: &Path, dir: &Path, user: Option<(u32, u32)>) -> Result<(), String> {
    let name_ok = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("carimbo-pg-"));
    if !dir.is_absolute() || !name_ok {
        return Err(format!("unexpected temporary directory {}", dir.display()));
    }
    // $1: pid to wait for; $2: the directory; $3: pg_ctl; $4: "root" when the server
    // runs as postgres. The directory is removed only if it still looks like ours.
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        if [ -f "$2/data/postmaster.pid" ]; then
            if [ "$4" = root ]; then
                runuser -u postgres -- "$3" -D "$2/data" stop -m immediate -w >/dev/null 2>&1
            else
                "$3" -D "$2/data" stop -m immediate -w >/dev/null 2>&1
            fi
        fi
        case "$2" in
            /*/carimbo-pg-*) rm -rf -- "$2" ;;
        esac
    "#;
    let mut command = if Path::new("/usr/bin/setsid").exists() || Path::new("/bin/setsid").exists()
    {
        // Its own session: a Ctrl-C to the test run does not kill the cleanup.
        let mut command = Command::new("setsid");
        command.arg("sh");
        command
    } else {
        Command::new("sh")
    };
    command
        .arg("-c")
        .arg(script)
        .arg("carimbo-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(bindir.join("pg_ctl"))
        .arg(if user.is_some() { "root" } else { "user" })
        // No inherited pipes: cargo would wait for the watchdog to close them.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("start the cleanup watchdog: {e}"))
}
