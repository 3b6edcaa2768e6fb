//! The authorization server, Okta-style as Constant Contact's is: authorize with a consent page,
//! the token endpoint (code with Basic or PKCE, refresh with rotation, device code), the device
//! verification page, JWKS, and RS256 access tokens that govern the API.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::{Client, MockConfig, RefreshPolicy};
use super::http::{Req, Resp, html_escape, oauth_error};
use crate::mock::packs::constant_contact::store::{
    AuthCode, DeviceGrant, PendingConsent, RefreshGrant, Sim,
};
use crate::template::random_token;

/// Scopes the server knows.
pub const SCOPES: [&str; 5] = [
    "account_read",
    "account_update",
    "contact_data",
    "campaign_data",
    "offline_access",
];

/// Access-token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Okta token version.
    pub ver: u32,
    /// Token id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (s).
    pub iat: i64,
    /// Expires (s).
    pub exp: i64,
    /// Client id.
    pub cid: String,
    /// Okta user id.
    pub uid: String,
    /// Scopes.
    pub scp: Vec<String>,
    /// Authentication time (s).
    pub auth_time: i64,
    /// The user's login.
    pub sub: String,
    /// Constant Contact's user id.
    pub platform_user_id: String,
}

/// The signing key and its public form.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Key id (`kid`).
    pub kid: String,
    /// The public key as a JWK.
    pub jwk: Value,
}

impl Keys {
    /// Loads an RSA private key (PKCS#8 or PKCS#1 PEM).
    pub fn from_pem(pem: &str, kid: &str) -> Result<Keys, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| format!("signing key is not an RSA private key in PEM: {e}"))?;
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let n = b64(key.n().to_bytes_be());
        let e = b64(key.e().to_bytes_be());
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("signing key: {e}"))?;
        let decoding =
            DecodingKey::from_rsa_components(&n, &e).map_err(|e| format!("signing key: {e}"))?;
        let jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": e});
        Ok(Keys {
            encoding,
            decoding,
            kid: kid.into(),
            jwk,
        })
    }

    /// A new 2048-bit RSA key (a rotation).
    pub fn generate(kid: &str) -> Result<Keys, String> {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .map_err(|e| format!("generating a signing key: {e}"))?;
        let pem = key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| format!("writing the new signing key: {e}"))?;
        Keys::from_pem(&pem, kid)
    }

    /// Signs claims.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies signature, algorithm, key id, issuer and audience (not expiry: that uses the
    /// mock clock and is checked per request).
    pub fn verify(&self, token: &str, cfg: &MockConfig) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return None;
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_audience(&[cfg.file.audience.as_str()]);
        v.set_issuer(&[cfg.file.issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

fn error_page(title: &str, detail: &str) -> Resp {
    Resp::html(
        400,
        page(title, &format!("<p class=err>{}</p>", html_escape(detail))),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t} · Constant Contact (postie mock)</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}.err{{color:#b00}}label{{display:block;margin:.5rem 0}}</style></head>\
<body><h1>{t}</h1>{body}<p><small>postie mock of Constant Contact — any password is accepted.</small></p></body></html>",
        t = html_escape(title)
    )
}

fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn parse_scopes(s: &str) -> Vec<String> {
    s.split([' ', '+'])
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// `GET /oauth2/default/v1/authorize`.
pub fn authorize(cfg: &MockConfig, sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let Some(client) = req.q("client_id").and_then(|id| cfg.client(id)) else {
        return error_page(
            "Unknown application",
            "The client_id is missing or is not a registered application.",
        );
    };
    let Some(redirect) = req
        .q("redirect_uri")
        .filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return error_page(
            "Redirect URI mismatch",
            "The 'redirect_uri' parameter must be an absolute URI that is whitelisted in the client app settings.",
        );
    };
    let state = req.q("state").unwrap_or("");
    let fail = |error: &str, desc: &str| {
        let mut p = vec![("error", error), ("error_description", desc)];
        if !state.is_empty() {
            p.push(("state", state));
        }
        Resp::redirect(with_params(redirect, &p))
    };
    if req.q("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "The response type is not supported by the authorization server. Configured response types: [code].",
        );
    }
    if state.is_empty() {
        return fail("invalid_request", "The 'state' parameter is required.");
    }
    let scopes = parse_scopes(req.q("scope").unwrap_or(""));
    if scopes.is_empty() || scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return fail(
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
        );
    }
    let challenge = req.q("code_challenge").map(String::from);
    if challenge.is_some() && req.q("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "The code_challenge_method is not supported. Supported methods: [S256].",
        );
    }
    if client.public && challenge.is_none() {
        return fail(
            "invalid_request",
            "PKCE code challenge is required when the token endpoint authentication method is 'NONE'.",
        );
    }
    if cfg.auto_approve {
        let code = issue_code(cfg, sim, client, redirect, scopes, challenge, now);
        return Resp::redirect(with_params(redirect, &[("code", &code), ("state", state)]));
    }
    let id = random_token(24);
    sim.consents.insert(
        id.clone(),
        PendingConsent {
            client_id: client.client_id.clone(),
            redirect_uri: redirect.into(),
            scopes: scopes.clone(),
            state: state.into(),
            code_challenge: challenge,
            expires_at: now + 600_000,
        },
    );
    let scope_items: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
        .collect();
    let body = format!(
        "<p><b>{app}</b> wants to access your Constant Contact account.</p><ul>{scope_items}</ul>\
<form method=post action=\"/oauth2/default/v1/authorize/decision\">\
<input type=hidden name=consent value=\"{id}\">\
<label>Email <input name=username value=\"{user}\" autocomplete=username></label>\
<label>Password <input name=password type=password autocomplete=current-password></label>\
<button id=allow name=decision value=allow type=submit>Allow</button>\
<button id=deny name=decision value=deny type=submit>Deny</button></form>",
        app = html_escape(&client.name),
        user = html_escape(&cfg.file.account.login),
    );
    Resp::html(200, page("Sign in and allow access", &body))
}

/// `POST /oauth2/default/v1/authorize/decision` — the consent form's Allow / Deny.
pub fn decision(cfg: &MockConfig, sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(consent) = get("consent").and_then(|c| sim.consents.remove(c)) else {
        return error_page(
            "Request expired",
            "This sign-in request is unknown or was already answered. Start again from the application.",
        );
    };
    if consent.expires_at < now {
        return error_page(
            "Request expired",
            "This sign-in request expired. Start again from the application.",
        );
    }
    if get("decision") != Some("allow") {
        return Resp::redirect(with_params(
            &consent.redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The resource owner or authorization server denied the request.",
                ),
                ("state", &consent.state),
            ],
        ));
    }
    let Some(client) = cfg.client(&consent.client_id) else {
        return error_page(
            "Unknown application",
            "The application is no longer registered.",
        );
    };
    let code = issue_code(
        cfg,
        sim,
        client,
        &consent.redirect_uri,
        consent.scopes,
        consent.code_challenge,
        now,
    );
    Resp::redirect(with_params(
        &consent.redirect_uri,
        &[("code", &code), ("state", &consent.state)],
    ))
}

fn issue_code(
    cfg: &MockConfig,
    sim: &mut Sim,
    client: &Client,
    redirect: &str,
    scopes: Vec<String>,
    challenge: Option<String>,
    now: i64,
) -> String {
    let code = random_token(43);
    sim.codes.insert(
        code.clone(),
        AuthCode {
            client_id: client.client_id.clone(),
            redirect_uri: redirect.into(),
            scopes,
            code_challenge: challenge,
            expires_at: now + cfg.lifetimes.code_ms,
            used: false,
        },
    );
    code
}

/// How the token request authenticated its client.
enum ClientAuth<'a> {
    Secret(&'a Client),
    Public(&'a Client),
}

/// The client id a Basic `Authorization` header names (not checked: for rate windows).
pub fn basic_client(req: &Req) -> Option<String> {
    let basic = req
        .header("authorization")?
        .strip_prefix("Basic ")
        .or_else(|| req.header("authorization")?.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.0.to_string())
}

fn authenticate<'a>(
    cfg: &'a MockConfig,
    req: &Req,
    params: &[(String, String)],
) -> Result<Option<ClientAuth<'a>>, Resp> {
    let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let invalid = || {
        oauth_error(
            401,
            "invalid_client",
            "The client secret supplied for a confidential client is invalid.",
        )
    };
    if let Some(basic) = req.header("authorization").and_then(|h| {
        h.strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
    }) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .map_err(|_| invalid())?;
        let text = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (id, secret) = text.split_once(':').ok_or_else(invalid)?;
        // RFC 6749 §2.3.1: both are application/x-www-form-urlencoded before they are joined.
        let form_decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (form_decode(id), form_decode(secret));
        let (id, secret) = (id.as_str(), secret.as_str());
        let client = cfg.client(id).ok_or_else(|| oauth_error(401, "invalid_client", "Client authentication failed. Either the client or the client credentials are invalid."))?;
        if client.public || client.client_secret.as_deref() != Some(secret) {
            return Err(invalid());
        }
        return Ok(Some(ClientAuth::Secret(client)));
    }
    if let Some(id) = p("client_id") {
        let client = cfg.client(id).ok_or_else(|| oauth_error(401, "invalid_client", "Client authentication failed. Either the client or the client credentials are invalid."))?;
        if let Some(secret) = p("client_secret") {
            if client.client_secret.as_deref() != Some(secret) {
                return Err(invalid());
            }
            return Ok(Some(ClientAuth::Secret(client)));
        }
        return Ok(Some(ClientAuth::Public(client)));
    }
    Ok(None)
}

/// `POST /oauth2/default/v1/token` — parameters in the query string or a form body.
pub fn token(cfg: &MockConfig, keys: &Keys, sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let params = req.params();
    let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let auth = match authenticate(cfg, req, &params) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let no_client = || {
        oauth_error(
            401,
            "invalid_client",
            "Client authentication failed. Either the client or the client credentials are invalid.",
        )
    };
    match p("grant_type") {
        None => oauth_error(
            400,
            "invalid_request",
            "The 'grant_type' parameter is required.",
        ),
        Some("authorization_code") => {
            let Some(auth) = auth else { return no_client() };
            let bad = || {
                oauth_error(
                    400,
                    "invalid_grant",
                    "The authorization code is invalid or has expired.",
                )
            };
            let Some(code) = p("code").and_then(|c| sim.codes.get_mut(c)) else {
                return bad();
            };
            if code.used || code.expires_at <= now {
                return bad();
            }
            code.used = true;
            let code = code.clone();
            let client = match auth {
                ClientAuth::Secret(c) | ClientAuth::Public(c) => c,
            };
            if client.client_id != code.client_id {
                return bad();
            }
            if p("redirect_uri") != Some(code.redirect_uri.as_str()) {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
                );
            }
            match (&code.code_challenge, p("code_verifier")) {
                (Some(ch), Some(v)) if crate::util::pkce_challenge(v) == *ch => {}
                (Some(_), _) => {
                    return oauth_error(400, "invalid_grant", "PKCE verification failed.");
                }
                (None, Some(_)) => {
                    return oauth_error(
                        400,
                        "invalid_request",
                        "The code_verifier was sent without a code_challenge in the authorization request.",
                    );
                }
                (None, None) => {
                    if matches!(auth, ClientAuth::Public(_)) {
                        return oauth_error(
                            401,
                            "invalid_client",
                            "Client authentication failed. Either the client or the client credentials are invalid.",
                        );
                    }
                }
            }
            issue_tokens(cfg, keys, sim, client, &code.scopes, now, None)
        }
        Some("refresh_token") => {
            let Some(auth) = auth else { return no_client() };
            let client = match auth {
                ClientAuth::Secret(c) => c,
                ClientAuth::Public(c) if c.public => c,
                ClientAuth::Public(_) => return no_client(),
            };
            let bad = || {
                oauth_error(
                    400,
                    "invalid_grant",
                    "The refresh token is invalid or expired.",
                )
            };
            let Some(rt) = p("refresh_token") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "The 'refresh_token' parameter is required.",
                );
            };
            let Some(grant) = sim.refresh_tokens.get(rt).cloned() else {
                return bad();
            };
            if grant.revoked
                || grant.client_id != client.client_id
                || now - grant.last_used > cfg.lifetimes.refresh_idle_ms
            {
                return bad();
            }
            let keep = match client.refresh_tokens {
                RefreshPolicy::Rotating => None,
                RefreshPolicy::LongLived => Some(rt.to_string()),
            };
            issue_tokens(cfg, keys, sim, client, &grant.scopes, now, keep)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let client = match auth {
                Some(ClientAuth::Secret(c) | ClientAuth::Public(c)) => c,
                None => return no_client(),
            };
            let Some(dc) = p("device_code") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "The 'device_code' parameter is required.",
                );
            };
            let Some(grant) = sim.device_codes.get_mut(dc) else {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "The device code is invalid or has expired.",
                );
            };
            if grant.client_id != client.client_id {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "The device code is invalid or has expired.",
                );
            }
            if grant.expires_at <= now {
                return oauth_error(400, "expired_token", "The device code has expired.");
            }
            let polled_too_soon = grant
                .last_poll
                .is_some_and(|t| now - t < grant.interval as i64 * 1000);
            grant.last_poll = Some(now);
            match grant.status.as_str() {
                "approved" => {
                    grant.status = "consumed".into();
                    let scopes = grant.scopes.clone();
                    issue_tokens(cfg, keys, sim, client, &scopes, now, None)
                }
                "denied" => oauth_error(
                    400,
                    "access_denied",
                    "The resource owner or authorization server denied the request.",
                ),
                "consumed" => oauth_error(
                    400,
                    "invalid_grant",
                    "The device code is invalid or has expired.",
                ),
                _ if polled_too_soon => oauth_error(
                    400,
                    "slow_down",
                    "The client is polling too frequently; increase the interval by 5 seconds.",
                ),
                _ => oauth_error(
                    400,
                    "authorization_pending",
                    "The device authorization is pending. Please try again later.",
                ),
            }
        }
        Some(_) => oauth_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server. Configured grant types: [authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:device_code].",
        ),
    }
}

/// Mints an access token (and a refresh token with `offline_access`).
fn issue_tokens(
    cfg: &MockConfig,
    keys: &Keys,
    sim: &mut Sim,
    client: &Client,
    scopes: &[String],
    now: i64,
    keep_refresh: Option<String>,
) -> Resp {
    let iat = now.div_euclid(1000);
    let claims = Claims {
        ver: 1,
        jti: format!("AT.{}", random_token(43)),
        iss: cfg.file.issuer.clone(),
        aud: cfg.file.audience.clone(),
        iat,
        exp: iat + cfg.lifetimes.access_s,
        cid: client.client_id.clone(),
        uid: cfg.file.account.uid.clone(),
        scp: scopes.to_vec(),
        auth_time: iat,
        sub: cfg.file.account.login.clone(),
        platform_user_id: cfg.file.account.platform_user_id.clone(),
    };
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": cfg.lifetimes.access_s,
        "access_token": keys.sign(&claims),
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "offline_access") {
        let rt = match keep_refresh {
            Some(rt) => {
                if let Some(g) = sim.refresh_tokens.get_mut(&rt) {
                    g.last_used = now;
                }
                rt
            }
            None => {
                // Rotating: a new token set expires every earlier refresh token of the client.
                if client.refresh_tokens == RefreshPolicy::Rotating {
                    for mut g in sim
                        .refresh_tokens
                        .values_mut()
                        .filter(|g| g.client_id == client.client_id && !g.revoked)
                    {
                        g.revoked = true;
                    }
                }
                let rt = random_token(43);
                sim.refresh_tokens.insert(
                    rt.clone(),
                    RefreshGrant {
                        client_id: client.client_id.clone(),
                        scopes: scopes.to_vec(),
                        last_used: now,
                        revoked: false,
                    },
                );
                rt
            }
        };
        body["refresh_token"] = json!(rt);
    }
    Resp::json(200, &body)
        .with("cache-control", "no-store")
        .with("pragma", "no-cache")
}

/// `POST /oauth2/default/v1/device/authorize`.
pub fn device_authorize(cfg: &MockConfig, sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let params = req.params();
    let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(client) = p("client_id").and_then(|id| cfg.client(id)) else {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed. Either the client or the client credentials are invalid.",
        );
    };
    let scopes = parse_scopes(p("scope").unwrap_or(""));
    if scopes.is_empty() || scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return oauth_error(
            400,
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
        );
    }
    let device_code = random_token(40);
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let raw = uuid::Uuid::new_v4();
    let user_code: String = raw.as_bytes()[..8]
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let c = LETTERS[*b as usize % LETTERS.len()] as char;
            if i == 4 { vec!['-', c] } else { vec![c] }
        })
        .collect();
    let expires_s = cfg.lifetimes.device_ms / 1000;
    sim.device_codes.insert(
        device_code.clone(),
        DeviceGrant {
            client_id: client.client_id.clone(),
            scopes,
            user_code: user_code.clone(),
            expires_at: now + cfg.lifetimes.device_ms,
            interval: cfg.lifetimes.device_interval_s,
            last_poll: None,
            status: if cfg.auto_approve {
                "approved".into()
            } else {
                "pending".into()
            },
        },
    );
    let verification = format!("{}/activate", req.base_url());
    Resp::json(
        200,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification,
            "verification_uri_complete": format!("{verification}?user_code={user_code}"),
            "expires_in": expires_s,
            "interval": cfg.lifetimes.device_interval_s,
        }),
    )
}

/// `GET|POST /activate` — where the user enters the device code and allows or denies.
pub fn activate(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    if req.method == "GET" {
        let code = html_escape(req.q("user_code").unwrap_or(""));
        let body = format!(
            "<form method=post action=\"/activate\"><label>Code <input name=user_code value=\"{code}\" autofocus></label>\
<button id=allow name=decision value=allow type=submit>Allow</button><button id=deny name=decision value=deny type=submit>Deny</button></form>"
        );
        return Resp::html(200, page("Activate your device", &body));
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let wanted = norm(get("user_code"));
    let Some(mut grant) = sim
        .device_codes
        .values_mut()
        .find(|g| norm(&g.user_code) == wanted && g.status == "pending")
    else {
        return error_page(
            "Unknown code",
            "That code is not valid or was already used. Check the code on your device.",
        );
    };
    if grant.expires_at <= now {
        return error_page(
            "Code expired",
            "That code has expired. Start again on your device.",
        );
    }
    let allow = get("decision") == "allow";
    grant.status = if allow {
        "approved".into()
    } else {
        "denied".into()
    };
    Resp::html(
        200,
        page(
            if allow {
                "Device activated"
            } else {
                "Access denied"
            },
            "<p>You can return to your device.</p>",
        ),
    )
}

/// `GET .../v1/keys`.
pub fn jwks(keys: &Keys) -> Resp {
    Resp::json(200, &json!({"keys": [keys.jwk]})).with("cache-control", "max-age=3600")
}
