//! The OAuth2 client engine: log in once (browser with a loopback callback, or the device flow),
//! then keep the access token fresh — proactively before it expires, reactively on a 401.
//!
//! It drives the collection's own requests (named in `oauth2:`), so what it sends is exactly what
//! the collection documents. A refresh goes through the runner's normal record path, which saves
//! state (atomically, 0600) as soon as a token is bound — so a rotated refresh token is on disk
//! before the new access token is used.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::SendOpts;
use crate::collection::OAuth2Config;
use crate::runner::{Runner, StepResult};

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_SKEW_SECS: i64 = 60;

/// How long to wait for the browser (the authorization code's own lifetime).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

fn config(r: &Runner) -> Result<OAuth2Config, String> {
    r.collection.oauth2.clone().ok_or_else(|| "the collection has no `oauth2:` section naming its authorize, token and refresh requests".into())
}

/// A variable's value, by the scope's precedence (`--var`, then state, then the collection),
/// without building the whole scope in the common cases: this runs before every request.
fn var(r: &Runner, name: &str) -> Option<String> {
    if let Some((_, v)) = r.inputs.vars.iter().rev().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    if let Some(v) = r.env_state().vars.get(name) {
        return v.value.as_str().map(String::from);
    }
    r.scope()
        .ctx
        .get(name)
        .and_then(|v| v.as_str().map(String::from))
}

/// Seconds until the access token expires (negative when expired), if it is a JWT.
pub fn remaining(r: &Runner) -> Option<i64> {
    let o = r.collection.oauth2.as_ref()?;
    let token = var(r, &o.access_token)?;
    crate::jwt::expiry(&token).map(|exp| exp - r.now())
}

/// Refreshes when the access token expires within [`REFRESH_SKEW_SECS`].
pub async fn ensure_fresh(r: &mut Runner) -> Result<Option<String>, String> {
    let Some(left) = remaining(r) else {
        return Ok(None);
    };
    if left > REFRESH_SKEW_SECS {
        return Ok(None);
    }
    let reason = if left < 0 {
        format!(
            "expired {} ago",
            crate::util::human_duration(Duration::from_secs((-left) as u64))
        )
    } else {
        format!(
            "expires in {}",
            crate::util::human_duration(Duration::from_secs(left as u64))
        )
    };
    refresh(r, &reason).await.map(Some)
}

/// After a 401: refresh unless someone already replaced the token that was used (single flight).
pub async fn refresh_if_current(
    r: &mut Runner,
    used_authorization: Option<&str>,
    reason: &str,
) -> Result<Option<String>, String> {
    let o = config(r)?;
    let current = var(r, &o.access_token);
    if let (Some(used), Some(cur)) = (used_authorization, current.as_deref())
        && !used.contains(cur)
    {
        return Ok(Some(
            "access token was refreshed meanwhile; replaying".into(),
        ));
    }
    refresh(r, reason).await.map(Some)
}

/// Sends the collection's refresh request and reports what happened.
pub async fn refresh(r: &mut Runner, reason: &str) -> Result<String, String> {
    let o = config(r)?;
    let name = o
        .refresh
        .clone()
        .ok_or("no `oauth2.refresh` request is configured; run `login` again")?;
    if var(r, &o.refresh_token).is_none() {
        return Err(format!(
            "no `{}` is stored (was offline_access granted?); run `login` again",
            o.refresh_token
        ));
    }
    // One refresh at a time across processes too: hold the state lock, and if another postie
    // process refreshed meanwhile, adopt its tokens instead of spending a rotated refresh token.
    let _lock = lock_state(&r.state_path).await?;
    if adopt_newer_tokens(r, &o) && remaining(r).is_some_and(|s| s > REFRESH_SKEW_SECS) {
        return Ok("adopted the access token another postie process refreshed".into());
    }
    let res = send_plain(r, &name).await;
    token_outcome(r, &o, &res)?;
    Ok(format!("refreshed access token ({reason})"))
}

/// An exclusive advisory lock on `state.lock` beside the state file, held while the file lives.
async fn lock_state(state_path: &Path) -> Result<std::fs::File, String> {
    let path = state_path.with_extension("lock");
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            crate::state::ensure_state_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(f)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Takes the tokens from the state file when another process has rotated them since we loaded
/// it. Returns whether it did.
fn adopt_newer_tokens(r: &mut Runner, o: &OAuth2Config) -> bool {
    let Ok(disk) = crate::state::State::load(&r.state_path) else {
        return false;
    };
    let Some(theirs) = disk.envs.get(&r.env_key()) else {
        return false;
    };
    let ours = r.env_state();
    let differs = |name: &str| {
        theirs
            .vars
            .get(name)
            .is_some_and(|t| ours.vars.get(name).is_none_or(|o| o.value != t.value))
    };
    if !differs(&o.refresh_token) {
        return false;
    }
    let adopted: Vec<(String, crate::state::StoredVar)> = [&o.access_token, &o.refresh_token]
        .into_iter()
        .filter_map(|n| theirs.vars.get(n).map(|v| (n.clone(), v.clone())))
        .collect();
    let env = r.env_state_mut();
    for (name, v) in adopted {
        env.vars.insert(name, v);
    }
    true
}

/// Sends a request without the auth hooks (the OAuth2 requests themselves).
async fn send_plain(r: &mut Runner, name: &str) -> StepResult {
    let mut notes = Vec::new();
    // Boxed: prepare may refresh, and refreshing sends through here.
    let prepared = match Box::pin(r.prepare(name, None, &mut notes)).await {
        Ok(p) => p,
        Err(fail) => return fail,
    };
    let sender = r.sender.clone();
    let outcome = sender.send(&prepared.rendered).await;
    r.complete(prepared, outcome, notes)
}

/// Checks a token response: 200 with a new access token, else the server's error.
fn token_outcome(r: &Runner, o: &OAuth2Config, res: &StepResult) -> Result<(), String> {
    if let Some(f) = &res.failure
        && res.exchange.as_ref().is_none_or(|e| e.status < 400)
    {
        return Err(r.redactor().mask(&f.message));
    }
    let Some(ex) = &res.exchange else {
        return Err("no response".into());
    };
    if ex.status != 200 || !res.set.iter().any(|b| b.name == o.access_token) {
        let why = ex
            .json
            .as_ref()
            .map(|j| {
                let e = j.get("error").and_then(Value::as_str).unwrap_or("");
                let d = j
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("{e} {d}").trim().to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ex.body.chars().take(200).collect());
        return Err(format!(
            "token endpoint answered {}: {}",
            ex.status,
            r.redactor().mask(&why)
        ));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.starts_with("127.")
}

/// Logs in with the authorization-code flow (PKCE when configured). `say` prints progress.
pub async fn login(
    r: &mut Runner,
    no_browser: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<String, String> {
    let o = config(r)?;
    let redirect = var(r, &o.redirect_uri).ok_or_else(|| {
        format!(
            "`{}` is not set; define it in the collection or pass --var",
            o.redirect_uri
        )
    })?;
    let redirect_url = url::Url::parse(&redirect)
        .map_err(|e| format!("redirect URI `{redirect}` is not a URL: {e}"))?;
    let host = redirect_url.host_str().unwrap_or("").to_string();
    if !is_loopback(&host) {
        return Err(format!(
            "refusing to listen for the redirect on `{host}`: login only listens on loopback (localhost, 127.0.0.1); register a loopback redirect URI such as http://localhost:8910/callback"
        ));
    }
    let port = redirect_url.port_or_known_default().unwrap_or(80);
    let state_value = crate::template::random_token(32);
    r.set_var("oauth_state", Value::String(state_value.clone()), false);
    if o.pkce {
        let verifier = crate::template::random_token(64);
        r.set_var(
            "code_challenge",
            Value::String(crate::util::pkce_challenge(&verifier)),
            false,
        );
        r.set_var("code_verifier", Value::String(verifier), true);
    }
    let authorize = r
        .render(&o.authorize)
        .map_err(|f| f.failure.map(|f| f.message).unwrap_or_default())?;
    let auth_url = authorize.url.clone();

    // A local authorization server that redirects at once (the mock with auto-approve) needs no
    // browser: follow its redirect ourselves.
    let auth_host = url::Url::parse(&auth_url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    let mut params: Option<Vec<(String, String)>> = None;
    if is_loopback(&auth_host) {
        let res = send_plain(r, &o.authorize).await;
        if let Some(loc) = res.exchange.as_ref().and_then(|e| e.header("location"))
            && loc.starts_with(&redirect)
        {
            params = Some(crate::chain::location_params(&auth_url, loc));
            say("the authorization server approved at once (auto-approve)");
        }
    }
    let params = match params {
        Some(p) => p,
        None => {
            let bind = if host == "localhost" {
                "127.0.0.1".to_string()
            } else {
                host.trim_matches(['[', ']']).to_string()
            };
            let listener = tokio::net::TcpListener::bind((bind.as_str(), port))
                .await
                .map_err(|e| format!("cannot listen on {bind}:{port} for the redirect: {e}"))?;
            say(&format!(
                "open this URL in a browser to log in:\n  {auth_url}"
            ));
            if !no_browser {
                open_browser(&auth_url);
            }
            wait_for_callback(listener, redirect_url.path(), say).await?
        }
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        return Err(format!(
            "authorization refused: {err} {}",
            get("error_description").unwrap_or_default()
        )
        .trim()
        .to_string());
    }
    if get("state").as_deref() != Some(state_value.as_str()) {
        return Err("the redirect's `state` does not match the one sent; not exchanging the code (possible CSRF)".into());
    }
    let code = get("code").ok_or("the redirect carried no `code`")?;
    r.set_var("code", Value::String(code), false);
    r.set_var("state", Value::String(state_value), false);
    let res = send_plain(r, &o.token).await;
    token_outcome(r, &o, &res)?;
    let left = remaining(r)
        .map(|s| {
            format!(
                "; access token valid for {}",
                crate::util::human_duration(Duration::from_secs(s.max(0) as u64))
            )
        })
        .unwrap_or_default();
    let refresh = if var(r, &o.refresh_token).is_some() {
        ", refresh token stored"
    } else {
        ", no refresh token (offline_access not granted)"
    };
    Ok(format!("logged in{left}{refresh}"))
}

/// Waits for the browser's redirect on the loopback listener, with a visible countdown.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    path: &str,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<(String, String)>, String> {
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Err("no redirect within 5 minutes (the code's lifetime); run login again".into()),
            _ = tick.tick() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                say(&format!("waiting for the browser… {} left", crate::util::human_duration(left)));
            }
            accepted = listener.accept() => {
                let Ok((mut sock, _)) = accepted else { continue };
                let mut buf = vec![0u8; 8192];
                let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await.ok().and_then(Result::ok).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (p, q) = target.split_once('?').unwrap_or((&target, ""));
                if p != path {
                    let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    continue;
                }
                let page = "<!doctype html><title>postie</title><p>Logged in. You can close this window and return to postie.</p>";
                let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}", page.len()).as_bytes()).await;
                return Ok(url::form_urlencoded::parse(q.as_bytes()).into_owned().collect());
            }
        }
    }
}

fn open_browser(url: &str) {
    for cmd in ["xdg-open", "open", "wslview"] {
        if std::process::Command::new(cmd)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
}

/// Logs in with the device flow: show the code, poll honouring `slow_down`.
pub async fn login_device(
    r: &mut Runner,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<String, String> {
    let o = config(r)?;
    let start = o
        .device_authorize
        .clone()
        .ok_or("no `oauth2.device_authorize` request is configured")?;
    let poll = o
        .device_token
        .clone()
        .ok_or("no `oauth2.device_token` request is configured")?;
    let res = send_plain(r, &start).await;
    let ex = res
        .exchange
        .as_ref()
        .ok_or_else(|| res.failure.map(|f| f.message).unwrap_or_default())?;
    if ex.status != 200 {
        return Err(format!(
            "device authorization answered {}: {}",
            ex.status, ex.body
        ));
    }
    let body = ex.json.clone().unwrap_or_default();
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut interval = body.get("interval").and_then(Value::as_u64).unwrap_or(5);
    let expires = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(600);
    say(&format!(
        "open {} and enter the code {}  (or {})",
        field("verification_uri"),
        field("user_code"),
        field("verification_uri_complete")
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires);
    loop {
        let res = send_plain(r, &poll).await;
        let Some(ex) = res.exchange.as_ref() else {
            return Err(res.failure.map(|f| f.message).unwrap_or_default());
        };
        if ex.status == 200 {
            token_outcome(r, &o, &res)?;
            return Ok("logged in with the device flow".into());
        }
        let err = ex
            .json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match err.as_str() {
            "authorization_pending" => {}
            "slow_down" => {
                interval += 5;
                say(&format!(
                    "server asked to slow down; polling every {interval}s"
                ));
            }
            "expired_token" => {
                return Err(
                    "the device code expired before it was approved; run login --device again"
                        .into(),
                );
            }
            "access_denied" => return Err("the user denied access".into()),
            other => {
                return Err(format!(
                    "device token poll answered {}: {other} {}",
                    ex.status, ex.body
                ));
            }
        }
        if tokio::time::Instant::now() + Duration::from_secs(interval) > deadline {
            return Err("the device code expired before it was approved".into());
        }
        tokio::time::sleep(Duration::from_secs(interval)).await;
    }
}

/// A one-paragraph token status.
pub fn status(r: &Runner) -> String {
    let Ok(o) = config(r) else {
        return "no oauth2 configuration".into();
    };
    let mut out = String::new();
    match var(r, &o.access_token) {
        None => out.push_str("access token: none (run `login`)\n"),
        Some(t) => match crate::jwt::claims(&t) {
            Ok(c) => {
                let left = c.get("exp").and_then(Value::as_i64).map(|e| e - r.now());
                let scopes = c.get("scp").map(|s| s.to_string()).unwrap_or_default();
                match left {
                    Some(s) if s >= 0 => out.push_str(&format!(
                        "access token: valid for {} (scopes {scopes})\n",
                        crate::util::human_duration(Duration::from_secs(s as u64))
                    )),
                    Some(s) => out.push_str(&format!(
                        "access token: expired {} ago\n",
                        crate::util::human_duration(Duration::from_secs((-s) as u64))
                    )),
                    None => out.push_str("access token: present (no exp claim)\n"),
                }
            }
            Err(_) => out.push_str("access token: present (opaque)\n"),
        },
    }
    out.push_str(if var(r, &o.refresh_token).is_some() {
        "refresh token: stored\n"
    } else {
        "refresh token: none\n"
    });
    out
}

/// `postie auth login|refresh|status COLLECTION`.
pub async fn cli(
    action: &str,
    path: &Path,
    device: bool,
    no_browser: bool,
    opts: &SendOpts,
) -> i32 {
    let (mut r, _mock) = match crate::cli::open_runner(path, opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut say = |s: &str| eprintln!("{s}");
    let outcome = match action {
        "login" if device => login_device(&mut r, &mut say).await,
        "login" => login(&mut r, no_browser, &mut say).await,
        "refresh" => refresh(&mut r, "requested").await,
        _ => Ok(status(&r).trim_end().to_string()),
    };
    let _ = r.save();
    match outcome {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(e) => {
            eprintln!("error: {}", r.redactor().mask(&e));
            crate::cli::EXIT_HTTP
        }
    }
}
