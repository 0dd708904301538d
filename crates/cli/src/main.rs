//! `carimbo` — the one binary Carimbo users run.
//!
//! Today it offers `carimbo kms …`: key management and envelope encryption on a local
//! keyring directory, with the file provider (development) or a PKCS#11 token. The
//! service commands (`serve`, `dev`, `issue`, `agent`, …) join it as they are built.
//! Every failure prints one line `error: …` and exits non-zero; no command leaves a
//! partial output file behind.

mod kms;
mod local_keyring;

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
    /// Key management and envelope encryption on a local keyring.
    #[command(subcommand)]
    Kms(kms::KmsCommand),
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
