//! The OAuth2 client engine: log in once (browser with a loopback callback, or the device flow),
//! then keep the access token fresh — proactively before it expires, reactively on a 401.
//!
//! It drives the collection's own requests (named in `oauth2:`), so what it sends is what the
//! collection documents; the engine adds only what OAuth2 makes its job: the one-time `state`,
//! `code` and PKCE values of a login (never saved), the client authentication of token requests
//! (`client_auth`), and the client a refresh token was issued to.
//!
//! Every token response records a [`Grant`]: the token endpoint and client that issued the
//! tokens and when the access token expires (`expires_in`, cross-checked with a JWT's `exp`), so
//! opaque tokens refresh early too. A refresh holds the state lock and first adopts tokens another
//! postie process rotated; the rotated refresh token is on disk before the new access token is
//! used. A refresh token the server rejects (`invalid_grant`) is marked dead: the request that
//! needed it is not sent, and the message says to log in again.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::collection::{OAuth2Config, TokenRole};
use crate::exchange::{Exchange, Rendered};
use crate::runner::{Failure, FailureKind, Runner, StepResult};
use crate::scope::Scope;
use crate::state::{ClientAuth, Grant, token_sha};

/// The most a refresh is brought forward: tokens are refreshed when at most this many seconds,
/// or a tenth of their lifetime if less (at least [`MIN_REFRESH_MARGIN_SECS`]), remain.
pub const MAX_REFRESH_MARGIN_SECS: i64 = 60;
/// The least a refresh is brought forward.
pub const MIN_REFRESH_MARGIN_SECS: i64 = 2;

/// How long to wait for the browser (the authorization code's own lifetime).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the engine could not do what was asked.
#[derive(Debug, Clone)]
pub struct AuthError {
    /// What happened and what to do.
    pub message: String,
    /// Whether anything was sent (exit 3) or not (exit 2).
    pub sent: bool,
    /// The request that needed a fresh token must not be sent (its token is known to be
    /// expired and cannot be refreshed).
    pub fatal: bool,
}

impl AuthError {
    fn unsent(message: impl Into<String>) -> AuthError {
        AuthError {
            message: message.into(),
            sent: false,
            fatal: false,
        }
    }
    fn failed(message: impl Into<String>) -> AuthError {
        AuthError {
            message: message.into(),
            sent: true,
            fatal: false,
        }
    }
    /// The exit code for a command that failed this way.
    pub fn exit_code(&self) -> i32 {
        if self.sent { 3 } else { 2 }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn config(r: &Runner) -> Result<OAuth2Config, AuthError> {
    r.collection.oauth2.clone().ok_or_else(|| {
        AuthError::unsent(
            "the collection has no `oauth2:` section naming its authorize, token and refresh requests (see docs/collections.md)",
        )
    })
}

/// A variable's value as text.
fn var(r: &Runner, name: &str) -> Option<String> {
    r.scope().get(name).and_then(|v| match v.as_ref() {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The current access token, if any.
pub fn access_token(r: &Runner) -> Option<String> {
    let o = r.collection.oauth2.as_ref()?;
    var(r, &o.access_token).filter(|t| !t.is_empty())
}

/// The grant that describes the current access token (not one set by hand).
fn current_grant(r: &Runner) -> Option<&Grant> {
    let token = access_token(r)?;
    r.env_state()
        .grant()
        .filter(|g| g.access_token_sha == token_sha(&token))
}

/// Seconds until the access token expires (negative when expired), from the grant's
/// `expires_in` and a JWT's `exp` (the earlier of the two); None when neither is known.
pub fn remaining(r: &Runner) -> Option<i64> {
    let token = access_token(r)?;
    let granted = current_grant(r).and_then(|g| g.expires_at);
    let jwt = crate::jwt::expiry(&token);
    let at = match (granted, jwt) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(at - r.now())
}

/// The access token's whole lifetime in seconds, when known.
fn lifetime(r: &Runner) -> Option<i64> {
    if let Some(g) = current_grant(r)
        && let Some(exp) = g.expires_at
    {
        return Some(exp - g.issued_at);
    }
    let claims = crate::jwt::claims(&access_token(r)?).ok()?;
    Some(claims.get("exp")?.as_i64()? - claims.get("iat")?.as_i64()?)
}

/// How early to refresh: a tenth of the token's lifetime, between 2 and 60 seconds (60 when the
/// lifetime is unknown). A 30-second token is refreshed 3 s before it expires, not on every use.
pub fn refresh_margin(lifetime: Option<i64>) -> i64 {
    match lifetime {
        Some(l) => (l / 10).clamp(MIN_REFRESH_MARGIN_SECS, MAX_REFRESH_MARGIN_SECS),
        None => MAX_REFRESH_MARGIN_SECS,
    }
}

fn login_hint(r: &Runner) -> String {
    format!("log in again: `{}`", r.command_hint("auth login", None))
}

/// Before a request that uses the access token: adopt tokens another process stored, then
/// refresh when the token expires within the margin. A token known to be expired that cannot be
/// refreshed is a fatal error: the request is not sent with it.
pub async fn ensure_fresh(r: &mut Runner) -> Result<Option<String>, AuthError> {
    let o = config(r)?;
    let mut note = None;
    if r.store.changed_on_disk() && adopt(r, &o) {
        note = Some("using the access token another postie process stored".to_string());
    }
    let Some(left) = remaining(r) else {
        return Ok(note);
    };
    if left > refresh_margin(lifetime(r)) {
        return Ok(note);
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
    match refresh(r, &reason).await {
        Ok(n) => Ok(Some(n)),
        Err(mut e) => {
            e.fatal |= left <= 0;
            Err(e)
        }
    }
}

fn adopt(r: &mut Runner, o: &OAuth2Config) -> bool {
    let env = r.env_key();
    let adopted = r
        .store
        .adopt_newer_grant(&env, &[&o.access_token, &o.refresh_token]);
    if adopted {
        r.rebuild_redactor();
    }
    adopted
}

/// After a 401: when the request did not carry the current token, another task already replaced
/// it (replay at once); otherwise refresh.
pub async fn refresh_if_current(
    r: &mut Runner,
    carried_current: bool,
    reason: &str,
) -> Result<String, AuthError> {
    if !carried_current {
        return Ok("access token was refreshed meanwhile; replaying".into());
    }
    refresh(r, reason).await
}

/// Makes a step that needed a refresh fail the way the refresh did (exit 3 after a 401 whose
/// refresh failed: the API refused and nothing could fix it).
pub fn refresh_failed(r: &Runner, result: &mut StepResult, e: AuthError) {
    let message = format!(
        "the API rejected the access token (401) and the refresh failed: {}",
        r.redactor().mask(&e.message)
    );
    if result.failure.is_none() {
        result.failure = Some(Failure {
            kind: FailureKind::Http,
            message,
        });
    } else {
        result.notes.push(message);
    }
}

/// Sends the collection's refresh request and reports what happened. Holds the state lock:
/// one refresh at a time, across processes too.
pub async fn refresh(r: &mut Runner, reason: &str) -> Result<String, AuthError> {
    let o = config(r)?;
    let name = o.refresh.clone().ok_or_else(|| {
        AuthError::unsent(format!(
            "no `oauth2.refresh` request is configured; {}",
            login_hint(r)
        ))
    })?;
    r.store
        .hold()
        .await
        .map_err(|e| AuthError::unsent(e.to_string()))?;
    let out = refresh_locked(r, &o, &name, reason).await;
    r.store.release();
    out
}

async fn refresh_locked(
    r: &mut Runner,
    o: &OAuth2Config,
    name: &str,
    reason: &str,
) -> Result<String, AuthError> {
    // Another process may have refreshed (or logged in) while we waited for the lock.
    if adopt(r, o)
        && remaining(r).is_none_or(|s| s > refresh_margin(lifetime(r)))
        && var(r, &o.refresh_token).is_some()
    {
        return Ok("adopted the access token another postie process refreshed".into());
    }
    if var(r, &o.refresh_token).is_none() {
        return Err(AuthError::unsent(format!(
            "no `{}` is stored (the server gave none, or offline_access was not granted); {}",
            o.refresh_token,
            login_hint(r)
        )));
    }
    if let Some(why) = r.env_state().grant().and_then(|g| g.refresh_dead.clone()) {
        return Err(AuthError {
            message: format!(
                "the refresh token was rejected earlier ({why}); {}",
                login_hint(r)
            ),
            sent: false,
            fatal: true,
        });
    }
    let res = send_plain(r, name).await;
    if let Err(e) = token_outcome(r, o, &res) {
        let dead = res.exchange.as_ref().is_some_and(|ex| {
            ex.json
                .as_ref()
                .and_then(|j| j.get("error"))
                .and_then(Value::as_str)
                == Some("invalid_grant")
        });
        if dead {
            if let Some(g) = r.env_state_mut().grant_mut() {
                g.refresh_dead = Some(e.message.clone());
            }
            let _ = r.save();
            return Err(AuthError {
                message: format!(
                    "the refresh token was rejected ({}); {}",
                    e.message,
                    login_hint(r)
                ),
                sent: true,
                fatal: true,
            });
        }
        return Err(e);
    }
    Ok(format!("refreshed access token ({reason})"))
}

/// Sends a request without the auth hooks (the OAuth2 requests themselves).
async fn send_plain(r: &mut Runner, name: &str) -> StepResult {
    let mut notes = Vec::new();
    // Boxed: prepare may refresh, and refreshing sends through here.
    let prepared = match Box::pin(r.prepare(name, None, &mut notes)).await {
        Ok(p) => p,
        Err(fail) => return fail,
    };
    let outcome = r.send_prepared(&prepared).await;
    r.complete(prepared, outcome, notes)
}

/// Checks a token response: 200 with a new access token, else the server's error.
fn token_outcome(r: &Runner, o: &OAuth2Config, res: &StepResult) -> Result<(), AuthError> {
    let Some(ex) = &res.exchange else {
        let f = res.failure.as_ref();
        let sent = f.is_some_and(|f| f.kind == FailureKind::Http);
        let msg = f.map(|f| f.message.clone()).unwrap_or_default();
        return Err(AuthError {
            message: r.redactor().mask(&msg),
            sent,
            fatal: false,
        });
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
            .unwrap_or_else(|| {
                if ex.status == 200 {
                    format!("no `{}` in the response", o.access_token)
                } else {
                    ex.body.chars().take(200).collect()
                }
            });
        return Err(AuthError::failed(format!(
            "token endpoint answered {}: {}",
            ex.status,
            r.redactor().mask(&why)
        )));
    }
    Ok(())
}

/// The token endpoint URL without its query.
fn endpoint(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

/// Whether two token endpoints are the same server. Loopback ports are not compared: the
/// in-process mock listens on a new ephemeral port each run but keeps its grants.
fn same_endpoint(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            let loopback = a.host_str().is_some_and(is_loopback);
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.path() == b.path()
                && (loopback || a.port_or_known_default() == b.port_or_known_default())
        }
        _ => a == b,
    }
}

/// The client a token request authenticates as, and how.
fn client_of(rendered: &Rendered) -> (String, ClientAuth) {
    if let Some((id, _)) = rendered.basic_credentials(true) {
        return (id, ClientAuth::Basic);
    }
    let id = rendered.form_field("client_id").unwrap_or("").to_string();
    if rendered.form_field("client_secret").is_some() {
        (id, ClientAuth::Post)
    } else {
        (id, ClientAuth::None)
    }
}

/// Adds the engine's part to a token request: the configured `client_auth`, and for a refresh,
/// the client the grant was issued to (a device-flow grant belongs to a public client) — refusing
/// to send a refresh token to another token endpoint or client.
pub fn apply_client_auth(
    r: &Runner,
    scope: &Scope<'_>,
    role: TokenRole,
    rendered: &mut Rendered,
) -> Result<(), String> {
    let Some(o) = &r.collection.oauth2 else {
        return Ok(());
    };
    if let Some(method) = o.client_auth
        && role != TokenRole::Device
    {
        let value = |name: &str| -> Result<String, String> {
            match scope.get(name) {
                Some(v) => Ok(crate::capture::value_text(&v)),
                None => Err(format!(
                    "oauth2.client_auth needs `<<{name}>>`: {}",
                    scope
                        .unresolved(name)
                        .unwrap_or_else(|| "it is not defined".into())
                )),
            }
        };
        let id = value(&o.client_id)?;
        rendered.remove_header("authorization");
        rendered.set_form_field("client_secret", None);
        rendered.set_form_field("client_id", None);
        match method {
            ClientAuth::Basic => rendered.headers.push((
                "Authorization".into(),
                crate::exchange::basic_header(&id, &value(&o.client_secret)?, true),
            )),
            ClientAuth::Post => {
                let secret = value(&o.client_secret)?;
                rendered.set_form_field("client_id", Some(&id));
                rendered.set_form_field("client_secret", Some(&secret));
            }
            ClientAuth::None => rendered.set_form_field("client_id", Some(&id)),
        }
    }
    if role != TokenRole::Refresh {
        return Ok(());
    }
    let Some(g) = r.env_state().grant() else {
        return Ok(());
    };
    let url = endpoint(&rendered.url);
    if !same_endpoint(&g.token_url, &url) {
        return Err(format!(
            "the stored refresh token was issued by {}; the refresh request would send it to {url}. Not sent — {}",
            g.token_url,
            login_hint(r)
        ));
    }
    let (id, how) = client_of(rendered);
    if g.client_auth == ClientAuth::None {
        if how != ClientAuth::None || id != g.client_id {
            rendered.remove_header("authorization");
            rendered.set_form_field("client_secret", None);
            rendered.set_form_field("client_id", Some(&g.client_id));
        }
    } else if !g.client_id.is_empty() && id != g.client_id {
        return Err(format!(
            "the stored refresh token was issued to client `{}`, but the refresh request authenticates as `{id}`. Not sent — {}",
            g.client_id,
            login_hint(r)
        ));
    }
    Ok(())
}

/// Records the grant behind the tokens a token response just bound, and drops the login's
/// one-time values.
pub fn record_grant(
    r: &mut Runner,
    o: &OAuth2Config,
    role: TokenRole,
    rendered: &Rendered,
    ex: &Exchange,
) {
    let Some(token) = access_token(r) else {
        return;
    };
    let now = r.now();
    let body = ex.json.as_ref();
    let expires_in = body
        .and_then(|b| b.get("expires_in"))
        .and_then(|v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
    let jwt_exp = crate::jwt::expiry(&token);
    let expires_at = match (expires_in.map(|s| now + s), jwt_exp) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (client_id, client_auth) = client_of(rendered);
    let grant = Grant {
        id: crate::template::random_token(16),
        token_url: endpoint(&rendered.url),
        client_id,
        client_auth,
        issued_at: now,
        expires_at,
        access_token_sha: token_sha(&token),
        scope: body
            .and_then(|b| b.get("scope"))
            .and_then(Value::as_str)
            .map(String::from),
        refresh_dead: None,
    };
    let env = r.env_state_mut();
    env.set_grant(Some(grant));
    if role == TokenRole::Code {
        // RFC 6749 §10.12, RFC 7636 §7.1: state, code and the PKCE pair are used once.
        for name in [
            o.code.as_str(),
            o.state.as_str(),
            "state",
            "code_verifier",
            "code_challenge",
        ] {
            if env.vars().get(name).is_some_and(|v| v.source.is_some()) {
                env.remove_var(name);
            }
        }
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.starts_with("127.")
}

/// Whether a request's templates refer to a variable.
fn uses(r: &Runner, request: &str, var: &str) -> bool {
    r.request_refs(request).roots.contains(var)
}

/// Logs in with the authorization-code flow (PKCE when configured). `say` prints progress.
pub async fn login(
    r: &mut Runner,
    no_browser: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<String, AuthError> {
    let out = login_inner(r, no_browser, say).await;
    r.inputs.transient.clear();
    out
}

async fn login_inner(
    r: &mut Runner,
    no_browser: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<String, AuthError> {
    let o = config(r)?;
    let redirect = match var(r, &o.redirect_uri) {
        Some(v) => v,
        None => {
            let why = r.scope().unresolved(&o.redirect_uri).unwrap_or_else(|| {
                "it is not defined; define it in the collection or pass --var".into()
            });
            return Err(AuthError::unsent(format!(
                "the redirect URI `<<{}>>` is needed to log in: {why}",
                o.redirect_uri
            )));
        }
    };
    let mut redirect_url = url::Url::parse(&redirect)
        .map_err(|e| AuthError::unsent(format!("redirect URI `{redirect}` is not a URL: {e}")))?;
    let host = redirect_url.host_str().unwrap_or("").to_string();
    if !is_loopback(&host) {
        return Err(AuthError::unsent(format!(
            "refusing to listen for the redirect on `{host}`: login only listens on loopback (localhost, 127.0.0.1); register a loopback redirect URI such as http://localhost:8910/callback"
        )));
    }
    let bind = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host.trim_matches(['[', ']']).to_string()
    };
    // RFC 8252 §7.3: port 0 means "any port"; listen first, then send the real one.
    let mut listener = None;
    if redirect_url.port() == Some(0) {
        let l = tokio::net::TcpListener::bind((bind.as_str(), 0))
            .await
            .map_err(|e| AuthError::unsent(format!("cannot listen on {bind}: {e}")))?;
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = redirect_url.set_port(Some(port));
        r.inputs.transient.insert(
            o.redirect_uri.clone(),
            Value::String(redirect_url.to_string()),
        );
        listener = Some(l);
    }
    let uses_state = uses(r, &o.authorize, &o.state);
    let state_value = crate::template::random_token(32);
    if uses_state {
        r.inputs
            .transient
            .insert(o.state.clone(), Value::String(state_value.clone()));
    }
    if o.pkce {
        let verifier = crate::template::random_token(64);
        r.inputs.transient.insert(
            "code_challenge".into(),
            Value::String(crate::util::pkce_challenge(&verifier)),
        );
        r.inputs
            .transient
            .insert("code_verifier".into(), Value::String(verifier));
    }
    let authorize = r
        .render(&o.authorize)
        .map_err(|f| AuthError::unsent(f.failure.map(|f| f.message).unwrap_or_default()))?;
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
        if res.exchange.is_none() {
            let why = res.failure.map(|f| f.message).unwrap_or_default();
            return Err(AuthError::failed(format!(
                "cannot reach the authorization server: {} (is the mock running? `mock start` in the REPL, or --mock)",
                r.redactor().mask(&why)
            )));
        }
        if let Some(loc) = res.exchange.as_ref().and_then(|e| e.header("location"))
            && same_callback(loc, &redirect_url)
        {
            params = Some(crate::chain::location_params(&auth_url, loc));
            say("the authorization server approved at once (auto-approve)");
        }
    }
    let mut callback = None;
    let params = match params {
        Some(p) => p,
        None => {
            let listener = match listener {
                Some(l) => l,
                None => {
                    let port = redirect_url.port_or_known_default().unwrap_or(80);
                    tokio::net::TcpListener::bind((bind.as_str(), port))
                        .await
                        .map_err(|e| {
                            AuthError::unsent(format!(
                                "cannot listen on {bind}:{port} for the redirect: {e}"
                            ))
                        })?
                }
            };
            say(&format!(
                "open this URL in a browser to log in:\n  {}",
                r.redactor().mask(&auth_url)
            ));
            if !no_browser {
                open_browser(&auth_url);
            }
            let (p, sock) = wait_for_callback(listener, redirect_url.path(), say).await?;
            callback = Some(sock);
            p
        }
    };
    let outcome = exchange_code(r, &o, &params, uses_state.then_some(&state_value)).await;
    if let Some(sock) = callback {
        let page = match &outcome {
            Ok(_) => "<h1>Logged in</h1><p>You can close this window and return to postie.</p>"
                .to_string(),
            Err(e) => format!(
                "<h1>Login failed</h1><p>{}</p><p>Return to postie for details.</p>",
                html_escape(&r.redactor().mask(&e.message))
            ),
        };
        respond(sock, if outcome.is_ok() { 200 } else { 400 }, &page).await;
    }
    outcome
}

fn same_callback(location: &str, redirect: &url::Url) -> bool {
    url::Url::parse(location).is_ok_and(|l| {
        l.scheme() == redirect.scheme()
            && l.host_str() == redirect.host_str()
            && l.port_or_known_default() == redirect.port_or_known_default()
            && l.path() == redirect.path()
    })
}

/// Checks the redirect's parameters and exchanges the code at once.
async fn exchange_code(
    r: &mut Runner,
    o: &OAuth2Config,
    params: &[(String, String)],
    state_sent: Option<&String>,
) -> Result<String, AuthError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        return Err(AuthError::failed(
            format!(
                "authorization refused: {err} {}",
                get("error_description").unwrap_or_default()
            )
            .trim()
            .to_string(),
        ));
    }
    if let Some(sent) = state_sent
        && get("state").as_deref() != Some(sent.as_str())
    {
        return Err(AuthError::failed(
            "the redirect's `state` does not match the one sent; not exchanging the code (possible CSRF)",
        ));
    }
    let code = get("code").ok_or_else(|| AuthError::failed("the redirect carried no `code`"))?;
    r.add_secrets([code.clone()]);
    r.inputs
        .transient
        .insert(o.code.clone(), Value::String(code));
    let res = send_plain(r, &o.token).await;
    token_outcome(r, o, &res)?;
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn respond(mut sock: tokio::net::TcpStream, status: u16, html: &str) {
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let page = format!("<!doctype html><meta charset=utf-8><title>postie</title>{html}");
    let _ = sock
        .write_all(
            format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{page}",
                page.len()
            )
            .as_bytes(),
        )
        .await;
    let _ = sock.shutdown().await;
}

/// Waits for the browser's redirect on the loopback listener, with a visible countdown. Only a
/// `GET` of the callback path carrying `code` or `error` counts: a browser's preconnect, a port
/// probe or a favicon request is answered and ignored.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    path: &str,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<(Vec<(String, String)>, tokio::net::TcpStream), AuthError> {
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Err(AuthError::unsent("no redirect within 5 minutes (the code's lifetime); run login again")),
            _ = tick.tick() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                say(&format!("waiting for the browser… {} left (Ctrl-C cancels)", crate::util::human_duration(left)));
            }
            accepted = listener.accept() => {
                let Ok((mut sock, _)) = accepted else { continue };
                let head = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut sock)).await {
                    Ok(Some(h)) => h,
                    _ => continue,
                };
                let mut words = head.split_whitespace();
                let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
                let (p, q) = target.split_once('?').unwrap_or((target, ""));
                let params: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
                let is_callback = method == "GET" && p == path
                    && params.iter().any(|(k, _)| k == "code" || k == "error");
                if !is_callback {
                    respond(sock, 404, "<p>Not the login callback.</p>").await;
                    continue;
                }
                return Ok((params, sock));
            }
        }
    }
}

/// Reads an HTTP request head (up to the blank line, at most 16 KiB); None for an empty or
/// aborted connection.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
            return Some(String::from_utf8_lossy(&buf).into_owned());
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
) -> Result<String, AuthError> {
    let o = config(r)?;
    let start = o
        .device_authorize
        .clone()
        .ok_or_else(|| AuthError::unsent("no `oauth2.device_authorize` request is configured"))?;
    let poll = o
        .device_token
        .clone()
        .ok_or_else(|| AuthError::unsent("no `oauth2.device_token` request is configured"))?;
    let res = send_plain(r, &start).await;
    let Some(ex) = res.exchange.as_ref() else {
        let f = res.failure.unwrap_or(Failure {
            kind: FailureKind::Http,
            message: String::new(),
        });
        return Err(AuthError {
            message: f.message,
            sent: f.kind == FailureKind::Http,
            fatal: false,
        });
    };
    if ex.status != 200 {
        return Err(AuthError::failed(format!(
            "device authorization answered {}: {}",
            ex.status,
            r.redactor().mask(&ex.body)
        )));
    }
    let body = ex.json.clone().unwrap_or_default();
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let mut interval = body.get("interval").and_then(Value::as_u64).unwrap_or(5);
    let expires = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(600);
    let mut line = format!(
        "open {} and enter the code {}",
        field("verification_uri")
            .or_else(|| field("verification_url"))
            .unwrap_or_else(|| "the verification page".into()),
        field("user_code").unwrap_or_default()
    );
    if let Some(complete) = field("verification_uri_complete") {
        line.push_str(&format!("  (or open {complete})"));
    }
    say(&line);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires);
    loop {
        let res = send_plain(r, &poll).await;
        let Some(ex) = res.exchange.as_ref() else {
            return Err(AuthError::failed(
                res.failure.map(|f| f.message).unwrap_or_default(),
            ));
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
                return Err(AuthError::failed(
                    "the device code expired before it was approved; run login --device again",
                ));
            }
            "access_denied" => return Err(AuthError::failed("the user denied access")),
            other => {
                return Err(AuthError::failed(format!(
                    "device token poll answered {}: {other} {}",
                    ex.status,
                    r.redactor().mask(&ex.body)
                )));
            }
        }
        if tokio::time::Instant::now() + Duration::from_secs(interval) > deadline {
            return Err(AuthError::failed(
                "the device code expired before it was approved",
            ));
        }
        tokio::time::sleep(Duration::from_secs(interval)).await;
    }
}

/// Scopes a token carries: the standard `scope` claim (space-separated) or Okta's `scp` list.
fn scopes_of(claims: &Value) -> Option<String> {
    match claims.get("scope").or_else(|| claims.get("scp"))? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// A one-paragraph token status.
pub fn status(r: &Runner) -> String {
    let Some(o) = r.collection.oauth2.as_ref() else {
        return "no oauth2 configuration".into();
    };
    let mut out = String::new();
    let Some(token) = access_token(r) else {
        out.push_str(&format!(
            "access token: none — `{}`\n",
            r.command_hint("auth login", None)
        ));
        return out;
    };
    let grant = current_grant(r);
    let claims = crate::jwt::claims(&token).ok();
    let kind = if claims.is_some() { "JWT" } else { "opaque" };
    let scopes = claims
        .as_ref()
        .and_then(scopes_of)
        .or_else(|| grant.and_then(|g| g.scope.clone()));
    let scopes = scopes.map(|s| format!(", scopes {s}")).unwrap_or_default();
    match remaining(r) {
        Some(s) if s >= 0 => out.push_str(&format!(
            "access token ({kind}): valid for {}{scopes}\n",
            crate::util::human_duration(Duration::from_secs(s as u64))
        )),
        Some(s) => out.push_str(&format!(
            "access token ({kind}): expired {} ago{scopes}\n",
            crate::util::human_duration(Duration::from_secs((-s) as u64))
        )),
        None => out.push_str(&format!(
            "access token ({kind}): present, expiry unknown{scopes}\n"
        )),
    }
    let dead = r.env_state().grant().and_then(|g| g.refresh_dead.clone());
    match (var(r, &o.refresh_token), dead) {
        (Some(_), Some(why)) => out.push_str(&format!(
            "refresh token: rejected by the server ({why}) — `{}`\n",
            r.command_hint("auth login", None)
        )),
        (Some(_), None) => out.push_str("refresh token: stored\n"),
        (None, _) => out.push_str("refresh token: none\n"),
    }
    if let Some(g) = r.env_state().grant() {
        out.push_str(&format!(
            "issued by {} to client {} ({} authentication)\n",
            g.token_url,
            if g.client_id.is_empty() {
                "(unknown)"
            } else {
                &g.client_id
            },
            g.client_auth
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_scale_with_the_lifetime() {
        assert_eq!(refresh_margin(Some(86_400)), 60);
        assert_eq!(refresh_margin(Some(300)), 30);
        assert_eq!(refresh_margin(Some(30)), 3);
        assert_eq!(refresh_margin(Some(5)), 2);
        assert_eq!(refresh_margin(None), 60);
    }

    #[test]
    fn endpoints_compare_without_loopback_ports() {
        assert!(same_endpoint(
            "http://127.0.0.1:4000/oauth2/default/v1/token",
            "http://127.0.0.1:5000/oauth2/default/v1/token"
        ));
        assert!(!same_endpoint(
            "https://a.example/token",
            "https://b.example/token"
        ));
        assert!(!same_endpoint(
            "https://a.example:8443/token",
            "https://a.example/token"
        ));
    }

    #[test]
    fn scopes_from_scope_or_scp() {
        assert_eq!(
            scopes_of(&serde_json::json!({"scope": "a b"})).as_deref(),
            Some("a b")
        );
        assert_eq!(
            scopes_of(&serde_json::json!({"scp": ["a", "b"]})).as_deref(),
            Some("a b")
        );
    }
}
