//! `rec view FILE`: a local web page showing the recording's timeline, gaps, frames and
//! actions, and the small JSON API it uses (`api.rs`). Read-only; 127.0.0.1 unless `--bind`.

mod api;

use crate::exit;
use crate::output::{CliError, CliResult};
use api::{Query, View};
use recfile::RecFile;
use std::path::PathBuf;
use std::time::Duration;

/// The page: one file, its script and style inline (no network, no build step).
const PAGE: &str = include_str!("index.html");

#[derive(clap::Args)]
#[command(
    after_help = "API (JSON): /api/info, /api/density?stream=&bins=&from=&until=, /api/gaps?stream=&min=,\n/api/frame?stream=&ts=, /api/actions, /api/report; `session` takes what --session takes; times take\nseconds or ISO 8601, or *_ns integers.\n\nExamples:\n  rec view drive.rec --open\n  rec view drive.rec --port 8080 --report report.json"
)]
pub struct Args {
    /// The .rec file.
    pub file: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to bind (default 127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// A replay report (JSON from `rec replay --json` or the Python ReplayReport.to_dict()).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

fn respond(req: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()).ok();
    let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
    if let Some(h) = header {
        resp = resp.with_header(h);
    }
    // A client that went away is not the server's problem.
    let _ = req.respond(resp);
}

fn json_reply(req: tiny_http::Request, answer: Result<String, String>) {
    match answer {
        Ok(v) => respond(req, 200, "application/json", v),
        Err(msg) => respond(req, 400, "application/json", serde_json::json!({ "error": msg }).to_string()),
    }
}

/// Answers one request.
fn handle(view: &View, req: tiny_http::Request) {
    if *req.method() != tiny_http::Method::Get {
        return respond(req, 405, "text/plain", "read-only: GET only".into());
    }
    let url = req.url().to_string();
    if std::env::var_os("REC_VIEW_LOG").is_some() {
        eprintln!("rec view: GET {url}");
    }
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let q = Query::parse(query);
    // Nothing a query names can make the server panic; a panic in a handler would still be a
    // bug, so it is caught and answered with a 500 rather than taking the server down.
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match path {
        "/" | "/index.html" => None,
        "/api/info" => Some(Ok(view.info().to_string())),
        "/api/density" => Some(view.density(&q).map(|v| v.to_string())),
        "/api/gaps" => Some(view.gaps(&q).map(|v| v.to_string())),
        "/api/frame" => Some(view.frame(&q)),
        "/api/actions" => Some(view.actions(&q).map(|v| v.to_string())),
        "/api/report" => Some(view.report().map(|v| v.to_string())),
        _ => Some(Err(format!("no such endpoint: {path}"))),
    }));
    match answer {
        Ok(None) => respond(req, 200, "text/html; charset=utf-8", PAGE.to_string()),
        Ok(Some(Err(msg))) if msg.starts_with("no such endpoint") => {
            respond(req, 404, "application/json", serde_json::json!({ "error": msg }).to_string())
        }
        Ok(Some(a)) => json_reply(req, a),
        Err(_) => respond(req, 500, "application/json", r#"{"error":"internal error"}"#.into()),
    }
}

pub fn run(a: Args) -> CliResult {
    let file = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let report = match &a.report {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| CliError::new(format!("{}: {e}", p.display())))?;
            Some(serde_json::from_str(&text).map_err(|e| CliError::new(format!("{}: not JSON: {e}", p.display())))?)
        }
        None => None,
    };
    let view = View::new(file, report);
    let addr = format!("{}:{}", a.bind, a.port);
    let server = tiny_http::Server::http(&addr).map_err(|e| CliError::new(format!("cannot listen on {addr}: {e}")))?;
    let url = match server.server_addr().to_ip() {
        Some(ip) => format!("http://{ip}/"),
        None => format!("http://{addr}/"),
    };
    outln!("rec: viewing {} at {url} (Ctrl-C to stop)", a.file.display());
    if a.open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        if std::process::Command::new(opener).arg(&url).spawn().is_err() {
            eprintln!("rec: could not start a browser ({opener}); open {url}");
        }
    }
    let stop = crate::output::stop_flag();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => handle(&view, req),
            Ok(None) => {}
            Err(e) => return Err(CliError::new(format!("server: {e}"))),
        }
    }
    Ok(exit::OK)
}
