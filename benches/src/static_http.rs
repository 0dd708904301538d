//! `carimbo-bench static-http`: the baseline next to the OCSP responder's figure — an
//! axum server answering every GET with the same bytes from memory, no work per request.
//!
//! ```text
//! carimbo-bench static-http --listen 127.0.0.1:PORT --body FILE
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;

use crate::BenchResult;

/// What `static-http` serves, and where.
pub struct Options {
    listen: SocketAddr,
    body: PathBuf,
}

/// Parses `--listen ADDR --body FILE`.
pub fn parse(args: &[String]) -> BenchResult<Options> {
    let mut listen = None;
    let mut body = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(value()?.parse()?),
            "--body" => body = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen is required")?,
        body: body.ok_or("--body is required")?,
    })
}

/// Serves the file's bytes at every path until killed.
pub async fn run(options: Options) -> BenchResult {
    let body = Bytes::from(std::fs::read(&options.body)?);
    let handler = move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/ocsp-response")], body) }
    };
    let router = Router::new()
        .route("/", get(handler.clone()))
        .route("/{*path}", get(handler));
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    eprintln!("serving on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
