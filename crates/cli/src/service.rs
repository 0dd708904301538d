//! `carimbo serve`, `carimbo configtest` and `carimbo dev`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carimbo_ceremony::{CeremonyKind, RunOptions};
use carimbo_pki::{LeafKind, SubjectAltName};
use carimbo_server::config::DatabaseChoice;
use carimbo_server::config::LoadedConfig;
use carimbo_server::issuance::{self, TokenRequest};
use carimbo_server::{AppState, Listeners, Role};
use carimbo_store::SqliteStore;
use clap::Args;

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `carimbo serve` / `configtest` arguments.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Service config file.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,
}

/// `carimbo serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// What to serve: `all` (API, publication, CRL publishing) or `ocsp` (only the
    /// plain-HTTP publication listener: OCSP, CRLs, caIssuers — scaled apart from
    /// issuance).
    #[arg(long, default_value = "all", value_parser = ["all", "ocsp"])]
    role: String,
}

/// `carimbo dev` arguments.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Data directory (created on first run, reused afterwards).
    #[arg(long, value_name = "DIR", default_value = "carimbo-dev")]
    data_dir: PathBuf,
    /// HTTPS API address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Plain-HTTP publication address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    publication_listen: SocketAddr,
}

/// Opens the database the config names.
pub(crate) async fn open_store(
    loaded: &LoadedConfig,
) -> Result<Arc<dyn carimbo_store::Store>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(match loaded.database()? {
        DatabaseChoice::Sqlite(path) => Arc::new(SqliteStore::open(&path).await?),
        DatabaseChoice::Postgres {
            url,
            max_connections,
        } => Arc::new(
            carimbo_store::PostgresStore::connect(
                &url,
                &carimbo_store::PostgresOptions {
                    max_connections,
                    // Below the request time limit: with the database down a request
                    // gets its 503 database_unavailable, not a request timeout.
                    acquire_timeout: std::time::Duration::from_secs(2),
                },
            )
            .await?,
        ),
    })
}

async fn build(
    loaded: &LoadedConfig,
    role: Role,
) -> Result<Arc<AppState>, Box<dyn std::error::Error + Send + Sync>> {
    let store = open_store(loaded).await?;
    let mut state = AppState::build(loaded, store).await?;
    state.role = role;
    if role == Role::Ocsp {
        // An OCSP replica never issues; intents belong to the issuing replicas.
        return Ok(Arc::new(state));
    }
    let reconciled = state.reconcile_pending(time::Duration::minutes(2)).await?;
    if reconciled > 0 {
        tracing::warn!(
            reconciled,
            "pending issuance intents from an earlier run marked failed"
        );
    }
    Ok(Arc::new(state))
}

/// Completes on SIGINT or SIGTERM (what systemd and container runtimes send): the
/// listeners stop accepting and requests in flight finish.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// `carimbo serve --config FILE [--role ocsp]`.
pub async fn serve(args: ServeArgs) -> CliResult {
    let loaded = LoadedConfig::load(&args.config.config)?;
    if args.role == "ocsp" {
        let state = build(&loaded, Role::Ocsp).await?;
        carimbo_server::prepare(&state).await?;
        let address = loaded.config.server.publication_listen.ok_or(
            "the ocsp role serves the publication listener: set server.publication-listen",
        )?;
        let publication = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "carimbo: OCSP role; publication on http://{}",
                publication.local_addr()?
            );
        }
        carimbo_server::serve(
            Listeners {
                api: None,
                publication: Some(publication),
            },
            None,
            state,
            shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    let state = build(&loaded, Role::All).await?;
    run_listeners(&loaded, state, None).await
}

async fn run_listeners(
    loaded: &LoadedConfig,
    state: Arc<AppState>,
    banner: Option<String>,
) -> CliResult {
    carimbo_server::prepare(&state).await?;
    let config = &loaded.config;
    if let Some(self_issue) = &config.tls.self_issue {
        let sans = self_issue
            .sans
            .iter()
            .map(|s| s.parse::<SubjectAltName>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("tls.self-issue.sans: {e}"))?;
        let certificate = loaded.resolve(&config.tls.certificate);
        let directory = certificate.parent().unwrap_or(Path::new("."));
        carimbo_server::tls::issue_listener_certificate(
            &state,
            &self_issue.provisioner,
            directory,
            &sans,
        )
        .await?;
    }
    let tls = carimbo_server::tls::server_config(
        &loaded.resolve(&config.tls.certificate),
        &loaded.resolve(&config.tls.key),
        &state.client_anchors(),
    )?;
    let api = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let publication = match config.server.publication_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address}: {e}"))?,
        ),
        None => None,
    };
    {
        use std::io::Write;
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "carimbo: API on https://{}", api.local_addr()?);
        if let Some(listener) = &publication {
            let _ = writeln!(
                stderr,
                "carimbo: publication on http://{}",
                listener.local_addr()?
            );
        }
    }
    if let Some(banner) = banner {
        // Not println!: a closed standard output must not stop the service.
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{banner}").and_then(|()| stdout.flush());
    }
    carimbo_server::serve(
        Listeners {
            api: Some(api),
            publication,
        },
        Some(tls),
        state,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// `carimbo configtest --config FILE`: loads the config, opens every key and checks it
/// matches its certificate, binds nothing.
pub async fn configtest(args: ConfigArgs) -> CliResult {
    let loaded = LoadedConfig::load(&args.config)?;
    let state = build(&loaded, Role::All).await?;
    carimbo_server::tls::server_config(
        &loaded.resolve(&loaded.config.tls.certificate),
        &loaded.resolve(&loaded.config.tls.key),
        &state.client_anchors(),
    )?;
    for issuer in &state.issuers {
        println!(
            "issuer {}: key matches its certificate; profiles {}; {}",
            issuer.name,
            issuer
                .profiles
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if issuer.active { "active" } else { "inactive" }
        );
    }
    println!("{}: OK", args.config.display());
    Ok(())
}

/// Writes `text` to `path` (mode `mode`) unless it exists.
fn write_if_absent(path: &Path, text: &str, mode: u32) -> CliResult {
    if path.exists() {
        return Ok(());
    }
    let mut pending = carimbo_kms::PendingFile::create(path, mode)?;
    std::io::Write::write_all(pending.file(), text.as_bytes())?;
    pending.commit()?;
    Ok(())
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs the development ceremony (software tokens) in `dir`, if not done yet.
async fn dev_ceremony(dir: &Path) -> CliResult {
    if dir.join("int-workload.pem").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let now = time::OffsetDateTime::now_utc();
    let start = rfc3339(now - time::Duration::hours(1));
    let root_end = rfc3339(now + time::Duration::days(365 * 10));
    let int_end = rfc3339(now + time::Duration::days(365 * 5));
    write_if_absent(
        &dir.join("credentials.toml"),
        "# Development only: software tokens (keys encrypted under a file KEK beside them).\n\
         version = 1\n\
         [tokens.root]\nprovider = \"file\"\ndirectory = \"dev-root\"\ntoken-label = \"dev-root\"\n\
         [tokens.ca]\nprovider = \"file\"\ndirectory = \"dev-ca\"\ntoken-label = \"dev-ca\"\n",
        0o600,
    )?;
    let operators = "operators = [\"carimbo dev\"]";
    let files = [
        (
            CeremonyKind::Root,
            "root.toml",
            format!(
                "version = 1\nceremony = \"root\"\n{operators}\n\
                 [key]\ntoken = \"root\"\nlabel = \"dev-root\"\nalgorithm = \"ecdsa-p384-sha384\"\n\
                 [certificate]\nsubject = {{ common-name = \"Carimbo Development Root\" }}\n\
                 not-before = \"{start}\"\nnot-after = \"{root_end}\"\n\
                 [outputs]\ncertificate = \"root.pem\"\npublic-key = \"root.pub.pem\"\n\
                 key-reference = \"root.key.toml\"\ntranscript = \"root.transcript.jsonl\"\n"
            ),
        ),
        (
            CeremonyKind::Key,
            "int-server-key.toml",
            key_config("int-server", operators),
        ),
        (
            CeremonyKind::Key,
            "int-workload-key.toml",
            key_config("int-workload", operators),
        ),
        (
            CeremonyKind::Intermediate,
            "int-server.toml",
            intermediate_config("int-server", "server", operators, &start, &int_end),
        ),
        (
            CeremonyKind::Intermediate,
            "int-workload.toml",
            intermediate_config("int-workload", "workload", operators, &start, &int_end),
        ),
    ];
    let options = RunOptions {
        credentials: Some(dir.join("credentials.toml")),
        ..RunOptions::default()
    };
    for (kind, name, text) in files {
        let path = dir.join(name);
        write_if_absent(&path, &text, 0o644)?;
        let outcome = carimbo_ceremony::run(kind, &path, &options).await?;
        for line in outcome.report {
            eprintln!("carimbo dev: {line}");
        }
    }
    Ok(())
}

fn key_config(name: &str, operators: &str) -> String {
    format!(
        "version = 1\nceremony = \"key\"\n{operators}\n\
         [key]\ntoken = \"ca\"\nlabel = \"{name}\"\nalgorithm = \"ecdsa-p256-sha256\"\n\
         [outputs]\npublic-key = \"{name}.pub.pem\"\nkey-reference = \"{name}.key.toml\"\n\
         transcript = \"{name}-key.transcript.jsonl\"\n"
    )
}

fn intermediate_config(name: &str, usage: &str, operators: &str, start: &str, end: &str) -> String {
    format!(
        "version = 1\nceremony = \"intermediate\"\n{operators}\n\
         [issuer]\ncertificate = \"root.pem\"\ntoken = \"root\"\nkey-label = \"dev-root\"\n\
         key-algorithm = \"ecdsa-p384-sha384\"\n\
         [subject-key]\npublic-key = \"{name}.pub.pem\"\n\
         [certificate]\nusage = \"{usage}\"\nsubject = {{ common-name = \"Carimbo Development {name}\" }}\n\
         not-before = \"{start}\"\nnot-after = \"{end}\"\n\
         crl-distribution-points = [\"http://127.0.0.1:8080/crl/root.crl\"]\n\
         ca-issuers = [\"http://127.0.0.1:8080/ca/root.cer\"]\n\
         [outputs]\ncertificate = \"{name}.pem\"\ntranscript = \"{name}.transcript.jsonl\"\n"
    )
}

/// The development service config: `config/dev.toml` with the addresses asked for.
fn dev_config(args: &DevArgs) -> String {
    include_str!("../../../config/dev.toml")
        .replace("127.0.0.1:8443", &args.listen.to_string())
        .replace("127.0.0.1:8080", &args.publication_listen.to_string())
}

/// `carimbo dev`: the zero-setup service on 127.0.0.1.
pub async fn dev(args: DevArgs) -> CliResult {
    let dir = &args.data_dir;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let first_run = !dir.join("carimbo.toml").exists();
    dev_ceremony(&dir.join("ceremony")).await?;
    if first_run {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| "random generator failed")?;
        write_if_absent(
            &dir.join("admin.token"),
            &format!("cat_{}\n", hex::encode(secret)),
            0o600,
        )?;
        write_if_absent(&dir.join("carimbo.toml"), &dev_config(&args), 0o644)?;
    }
    let loaded = LoadedConfig::load(&dir.join("carimbo.toml"))?;
    let state = build(&loaded, Role::All).await?;
    let sans = [
        SubjectAltName::Dns("localhost".into()),
        SubjectAltName::Ip(loaded.config.server.listen.ip()),
    ];
    carimbo_server::tls::issue_listener_certificate(&state, "dev", &dir.join("tls"), &sans).await?;
    let bundle = dir.join("ca-bundle.pem");
    let root = std::fs::read_to_string(dir.join("ceremony/root.pem"))?;
    carimbo_kms::write_private_file_atomically(&bundle, root.as_bytes())?;
    let (token, expires_at) = issuance::create_token(
        &state,
        "carimbo dev",
        TokenRequest {
            provisioner: "dev".into(),
            profile: LeafKind::Server,
            sans: vec![SubjectAltName::Dns("app.localhost".into())],
            ttl: time::Duration::hours(24),
            expires_in: time::Duration::hours(1),
        },
    )
    .await?;
    let api = format!("https://{}", loaded.config.server.listen);
    let banner = format!(
        "\nCarimbo development CA (development only: software keys)\n\
         \x20 API:          {api}\n\
         \x20 publication:  {}\n\
         \x20 CA bundle:    {bundle}\n\
         \x20 admin token:  {admin}\n\
         \x20 bootstrap token for dns:app.localhost (server, single use, until {expires}):\n\
         \x20   {token}\n\n\
         Try:\n\
         \x20 carimbo issue --ca {api} --ca-bundle {bundle} --token {token} \\\n\
         \x20     --profile server --san dns:app.localhost --out ./app-cert\n",
        loaded.config.server.publication_url,
        bundle = bundle.display(),
        admin = dir.join("admin.token").display(),
        expires = rfc3339(expires_at),
    );
    run_listeners(&loaded, state, Some(banner)).await
}

/// `carimbo kms migrate`: runs (or resumes) the rewrap job of one key over the
/// service's database, printing progress on stderr.
/// Options of `carimbo kms migrate`.
#[derive(Debug)]
pub struct MigrateArgs {
    /// Only count.
    pub dry_run: bool,
    /// Rewraps per second at most.
    pub rate: u32,
    /// Attempts before the dead letter.
    pub max_attempts: u32,
    /// Rows at once.
    pub concurrency: usize,
    /// Lease TTL, seconds.
    pub lease_ttl: u64,
}

pub async fn kms_migrate(
    config: &std::path::Path,
    key: carimbo_kms::KeyName,
    to: String,
    args: MigrateArgs,
) -> CliResult {
    let MigrateArgs {
        dry_run,
        rate,
        max_attempts,
        concurrency,
        lease_ttl,
    } = args;
    use std::io::IsTerminal;
    let loaded = LoadedConfig::load(config)?;
    let section = loaded
        .config
        .kms
        .as_ref()
        .ok_or("the config has no [kms] section")?;
    let store = open_store(&loaded).await?;
    let kms =
        carimbo_server::kms_api::KmsService::build(&loaded, section, Arc::clone(&store)).await?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let options = carimbo_server::kms_migrate::MigrateOptions {
        key,
        to_provider: to,
        dry_run,
        rate,
        max_attempts: max_attempts.max(1),
        concurrency: concurrency.clamp(1, 256),
        holder: format!("cli:{user}/{}", std::process::id()),
        lease_ttl: time::Duration::seconds(i64::try_from(lease_ttl.max(1)).unwrap_or(15)),
    };
    let tty = std::io::stderr().is_terminal();
    let report = carimbo_server::kms_migrate::migrate(&kms, store.as_ref(), &options, |job| {
        let width = 30usize;
        let filled = (job.done * width as u64)
            .checked_div(job.total)
            .map_or(width, |f| usize::try_from(f).unwrap_or(width));
        let line = format!(
            "[{}{}] {}/{} rewrapped, {} dead (job {})",
            "#".repeat(filled.min(width)),
            ".".repeat(width - filled.min(width)),
            job.done,
            job.total,
            job.dead,
            job.id
        );
        if tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    })
    .await?;
    if tty {
        eprintln!();
    }
    let counts = store.inventory_counts(Some(options.key.as_str())).await?;
    let versions: Vec<serde_json::Value> = counts
        .iter()
        .map(|c| {
            serde_json::json!({
                "version": c.key_version, "provider": c.provider, "rows": c.live, "dead": c.dead,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "dry_run": dry_run,
            "target_version": report.target_version,
            "to_move": report.to_move,
            "job": report.job.as_ref().map(carimbo_server::kms_migrate::job_json),
            "inventory": versions,
        })
    );
    Ok(())
}
