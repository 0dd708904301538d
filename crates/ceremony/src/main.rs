//! `ca-ceremony <type> --config FILE.toml [--credentials FILE] [--validate] [--dry-run]`
//!
//! The offline CA ceremony tool. See `docs/ceremony.md` for the runbook.

use std::path::PathBuf;
use std::process::ExitCode;

use carimbo_ceremony::{CeremonyKind, RunOptions, run};
use clap::Parser;

/// Carimbo's offline CA ceremonies: keys in an HSM, root and intermediate certificates,
/// root CRLs, verification of a finished hierarchy.
#[derive(Debug, Parser)]
#[command(name = "ca-ceremony", version, about)]
struct Cli {
    /// Ceremony type: token, key, root, intermediate, cross-sign, crl, backup, restore
    /// or verify.
    ceremony: CeremonyKind,
    /// The ceremony's config file (one strict TOML file per ceremony).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// HSM credentials file (module, token label/serial, PIN source); default from
    /// CARIMBO_CEREMONY_CREDENTIALS.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Check the config only (the certificate it describes is linted with a throwaway
    /// key); open no token.
    #[arg(long)]
    validate: bool,
    /// Open the tokens and run every check, but change nothing and write nothing.
    #[arg(long, conflicts_with = "validate")]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: invalid usage")
            );
            return ExitCode::from(2);
        }
    };
    let options = RunOptions {
        validate_only: cli.validate,
        dry_run: cli.dry_run,
        credentials: cli.credentials,
    };
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
    match runtime.block_on(run(cli.ceremony, &cli.config, &options)) {
        Ok(outcome) => {
            for line in outcome.report {
                println!("{line}");
            }
            for path in outcome.outputs {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", error.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
