//! `carimbo` — the one binary Carimbo users run.
//!
//! It runs the issuing service (`serve`, `dev`, `configtest`), talks to it (`issue`,
//! `renew`, `revoke`, `token create`, `admin revoke`), keeps a workload's certificate
//! fresh (`agent`), and manages keys on a local keyring (`kms …`).
//! Every failure prints one line `error: …` and exits non-zero; no command leaves a
//! partial output file behind.

mod agent;
mod audit;
mod blob;
mod client;
mod kms;
mod local_keyring;
mod service;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Carimbo: private PKI and key management.
#[derive(Debug, Parser)]
#[command(name = "carimbo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Zero-setup development CA on 127.0.0.1 (SQLite, software keys, self-issued TLS).
    Dev(service::DevArgs),
    /// Run the issuing service (or, with --role ocsp, only its OCSP/CRL publication).
    Serve(service::ServeArgs),
    /// Check a service config: load it, open every key, check each matches its certificate.
    Configtest(service::ConfigArgs),
    /// Get a certificate: make a key locally, send a CSR with a bootstrap token.
    Issue(client::IssueArgs),
    /// Renew a certificate by proving possession of its key.
    Renew(client::RenewArgs),
    /// Keep a workload's key and certificate fresh: bootstrap, renew before 80% of the
    /// lifetime, publish atomically, tell the workload to reload.
    Agent(agent::AgentArgs),
    /// Revoke a certificate, as its holder (proof of possession) or an administrator.
    Revoke(client::RevokeArgs),
    /// Administration of a running service.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bootstrap tokens (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The service's hash-chained audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key management and envelope encryption on a local keyring.
    #[command(subcommand)]
    Kms(kms::KmsCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Revoke every certificate matching conditions (a dry run unless --execute).
    Revoke(client::BulkRevokeArgs),
    /// List the certificates matching conditions (name, provisioner, issuer, serial,
    /// public key, issue time, expiry window).
    Certs(client::CertsSearchArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every audit chain, check it against its signed heads and report the
    /// first problem of each.
    Verify(audit::AuditVerifyArgs),
    /// Export the issuance and revocation report of a period, with the audit events and
    /// signed heads behind it (JSON lines or CSV).
    Export(audit::AuditExportArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a one-time bootstrap token for a profile and names.
    Create(client::TokenCreateArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // Usage errors: the one line that says what is wrong, exit code 2.
            let rendered = error.render().to_string();
            let line = rendered.lines().next().unwrap_or("error: invalid usage");
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    // Logs to standard error; RUST_LOG sets the filter (default: warnings, without
    // cryptoki's complaints about mechanism numbers it has no name for; the agent's own
    // events too, as its log is its record), and CARIMBO_LOG_FORMAT=json switches to
    // JSON lines.
    let default_filter = if matches!(cli.command, Command::Agent(_)) {
        "warn,cryptoki=off,carimbo::agent=info"
    } else {
        "warn,cryptoki=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("CARIMBO_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => service::dev(args).await,
            Command::Serve(args) => service::serve(args).await,
            Command::Configtest(args) => service::configtest(args).await,
            Command::Issue(args) => client::issue(args).await,
            Command::Renew(args) => client::renew(args).await,
            Command::Revoke(args) => client::revoke(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Admin(AdminCommand::Revoke(args)) => client::bulk_revoke(args).await,
            Command::Admin(AdminCommand::Certs(args)) => client::certs_search(args).await,
            Command::Token(TokenCommand::Create(args)) => client::token_create(args).await,
            Command::Audit(AuditCommand::Verify(args)) => audit::verify(args).await,
            Command::Audit(AuditCommand::Export(args)) => audit::export(args).await,
            Command::Kms(command) => kms::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and its sources on one line.
fn one_line(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
