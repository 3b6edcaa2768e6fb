//! `postie mock`: run the mock standalone until Ctrl-C / SIGTERM.

use std::path::PathBuf;

use clap::Args;

use super::{MockConfig, MockServer};

/// Arguments of `postie mock`.
#[derive(Debug, Clone, Args)]
pub struct MockArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8911)]
    pub port: u16,
    /// Redirect from authorize at once, without the consent page; approve device codes at once.
    #[arg(long)]
    pub auto_approve: bool,
    /// Configuration file (default: the bundled mocks/constant_contact.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Keep the simulation in this file: a snapshot plus a journal of every change beside it
    /// (`FILE.wal`); restarting with the same file continues where it stopped.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// When a write is acknowledged with --state: `always` (on disk first), `batch` (on disk
    /// first, sharing one flush with the writes of the next millisecond), `none` (handed to the
    /// operating system; a machine crash may lose the last ones).
    #[arg(long, value_enum, default_value_t = super::wal::SyncMode::Batch)]
    pub sync: super::wal::SyncMode,
    /// Enforce 4 requests/second and 10,000/day per application.
    #[arg(long)]
    pub rate_limit: bool,
    /// Register a confidential client ID:SECRET:REDIRECT_URI (repeatable).
    #[arg(long = "client", value_name = "ID:SECRET:REDIRECT_URI")]
    pub clients: Vec<String>,
    /// Print client secrets.
    #[arg(long)]
    pub show_secrets: bool,
    /// Serve this OpenAPI 3.0/3.1 or Swagger 2.0 document: every operation answers, requests are
    /// checked, responses come from its examples or its schemas.
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Changes the values made up for responses (the same seed gives the same bodies).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A served document keeps no resources: every answer is made up anew.
    #[arg(long)]
    pub stateless: bool,
    /// With --spec: serve the authorization server too, and accept only its tokens where the
    /// document asks for OAuth2 or a bearer token.
    #[arg(long)]
    pub oauth: bool,
    /// Serve the stubs of this file (repeatable): a stub file (`mocks/NAME.yaml`, see docs/mock.md)
    /// or a postie collection, whose saved examples answer. Stubs answer first where they match;
    /// files are read again when they change.
    #[arg(long = "stubs", value_name = "FILE")]
    pub stubs: Vec<PathBuf>,
    /// The vendor pack to serve: `constant_contact` (the default without --spec or --stubs) or
    /// `none` (the default with them). With both, the pack answers what it implements, the
    /// document the rest.
    #[arg(long, value_parser = ["constant_contact", "none"])]
    pub pack: Option<String>,
    /// Protect the admin area (`/__postie/*`): it then needs `Authorization: Bearer TOKEN`. Without
    /// a value, a random token is generated and printed. Without the flag the admin area is open
    /// (on loopback, the default bind, that is only this machine).
    #[arg(long, value_name = "TOKEN", num_args = 0..=1, default_missing_value = "", env = "POSTIE_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// A fault in force from the start, in the compact form: `ROUTE key=value ...`, e.g.
    /// `--fault "GET /v3/contacts status=503 times=2"` or `--fault "* delay=100ms..1s"`
    /// (repeatable; see docs/mock.md, Faults).
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<String>,
}

/// Runs the mock; returns the exit code.
pub fn run(args: MockArgs) -> i32 {
    let cfg = match &args.config {
        Some(p) => MockConfig::load(p),
        None => MockConfig::bundled(),
    };
    let mut cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::COLLECTION;
        }
    };
    for spec in &args.clients {
        if let Err(e) = cfg.add_client_spec(spec) {
            eprintln!("error: {e}");
            return crate::exit::COLLECTION;
        }
    }
    cfg.host = args.host.clone();
    cfg.port = args.port;
    cfg.auto_approve |= args.auto_approve;
    cfg.rate_limit = args.rate_limit;
    cfg.state_file = args.state.clone();
    cfg.sync = args.sync;
    cfg.pack = match args.pack.as_deref() {
        Some(p) => p == "constant_contact",
        None => args.spec.is_none() && args.stubs.is_empty(),
    };
    cfg.oauth = args.oauth;
    let generated = args.admin_token.as_deref() == Some("");
    cfg.admin_token = args.admin_token.as_ref().map(|t| {
        if t.is_empty() {
            crate::template::random_token(32)
        } else {
            t.clone()
        }
    });
    let loopback = args
        .host
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(args.host == "localhost");
    if !loopback && cfg.admin_token.is_none() {
        eprintln!(
            "warning: binding {} without --admin-token: anyone who can reach it can reset the data, move the clock and inject faults through /__postie/*",
            args.host
        );
    }
    for f in &args.faults {
        let checked = super::engine::faults::parse_compact(f).and_then(|spec| {
            super::engine::faults::Faults::default()
                .add(spec.clone())
                .map(|_| spec)
        });
        match checked {
            Ok(spec) => cfg.faults.push(spec),
            Err(e) => {
                eprintln!("error: --fault `{f}`: {e}");
                return crate::exit::COLLECTION;
            }
        }
    }
    if !args.stubs.is_empty() {
        match super::engine::stubs::Stubs::load(&args.stubs) {
            Ok(s) => {
                eprintln!(
                    "serving {} stubs from {} file(s)",
                    s.len(),
                    args.stubs.len()
                );
                cfg.stubs = Some(std::sync::Arc::new(s));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::COLLECTION;
            }
        }
    }
    if let Some(path) = &args.spec {
        let started = std::time::Instant::now();
        match super::engine::spec::SpecServer::load(path, args.seed, !args.stateless) {
            Ok(s) => {
                eprintln!(
                    "serving {} ({} operations, loaded in {:.0} ms)",
                    path.display(),
                    s.operations(),
                    started.elapsed().as_secs_f64() * 1e3
                );
                cfg.spec = Some(std::sync::Arc::new(s));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::COLLECTION;
            }
        }
    }
    let clients = cfg.clients.clone();
    let server_admin_token = cfg.admin_token.clone();
    // Clients belong to the authorization server, which runs with the pack or --oauth.
    let serves_oauth = cfg.pack || cfg.oauth;
    let server = match MockServer::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot start the mock on {}:{}: {e}",
                args.host, args.port
            );
            return crate::exit::HTTP;
        }
    };
    // Write errors (a closed pipe) must not take the server down.
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.url());
    if generated && let Some(t) = &server_admin_token {
        let _ = writeln!(stdout, "admin token {t}");
    }
    for c in clients.iter().filter(|_| serves_oauth) {
        let secret = match (&c.client_secret, args.show_secrets) {
            (None, _) => "(public, PKCE)".to_string(),
            (Some(s), true) => s.clone(),
            (Some(_), false) => crate::redact::MASK.to_string(),
        };
        let _ = writeln!(
            stdout,
            "client {}  secret {secret}  redirect_uris {}",
            c.client_id,
            c.redirect_uris.join(" ")
        );
    }
    let _ = stdout.flush();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::HTTP;
        }
    };
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    });
    let _ = writeln!(std::io::stderr(), "shutting down");
    server.stop();
    0
}
