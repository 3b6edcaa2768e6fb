//! The Constant Contact mock over real sockets on 127.0.0.1, with reqwest and jsonwebtoken as
//! independent oracles.

use base64::Engine as _;
use postie::mock::{MockConfig, MockServer};
use serde_json::{Value, json};

const CID: &str = "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21";
const SECRET: &str = "mock-secret-Zk8xQ2vN7pLr4tYw";
const PUBLIC: &str = "9c4e2d1a-7b3f-4e8a-a6c5-2f1d0e9b8a76";
const REDIRECT: &str = "http://localhost:8910/callback";
const GENERAL: &str = "07936f78-662a-11eb-af0a-fa163e56c9b0";
const VIP: &str = "2b7d4e10-662a-11eb-af0a-fa163e56c9b0";

struct Mock {
    server: MockServer,
    http: reqwest::Client,
}

fn config(auto: bool) -> MockConfig {
    let mut c = MockConfig::bundled().unwrap();
    c.auto_approve = auto;
    c
}

fn start(auto: bool) -> Mock {
    start_with(config(auto))
}

fn start_with(cfg: MockConfig) -> Mock {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Mock {
        server: MockServer::start(cfg).unwrap(),
        http,
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn params_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl Mock {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn authorize(
        &self,
        client: &str,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut q = vec![
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st-1"),
        ];
        q.extend_from_slice(extra);
        self.http
            .get(self.url("/oauth2/default/v1/authorize"))
            .query(&q)
            .send()
            .await
            .unwrap()
    }

    async fn code(&self, scope: &str) -> String {
        let r = self.authorize(CID, scope, &[]).await;
        assert_eq!(r.status(), 302);
        let p = params_of(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["state"], "st-1");
        p["code"].clone()
    }

    async fn token(&self, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
        let mut b = self
            .http
            .post(self.url("/oauth2/default/v1/token"))
            .form(form);
        if let Some((id, s)) = auth {
            b = b.header("authorization", basic(id, s));
        }
        let r = b.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, scope: &str) -> Value {
        let code = self.code(scope).await;
        let (status, body) = self
            .token(
                Some((CID, SECRET)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn api(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut b = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(j) = body {
            b = b.json(&j);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.api(token, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.api(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn device_poll(&self, dc: &str) -> (u16, Value) {
        self.token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", PUBLIC),
                ("device_code", dc),
            ],
        )
        .await
    }

    async fn advance(&self, by: &str) {
        let r = self
            .http
            .post(self.url("/__postie/clock"))
            .json(&json!({"advance": by}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

fn as_pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

async fn access(m: &Mock) -> String {
    m.login("contact_data offline_access").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_cc_error(body: &Value, key: &str) {
    let arr = body
        .as_array()
        .unwrap_or_else(|| panic!("not an error array: {body}"));
    assert_eq!(arr[0]["error_key"], key, "{body}");
    assert!(
        arr[0]["error_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_with_basic_issues_rs256_tokens_verifiable_with_the_jwks() {
    let m = start(true);
    let t = m.login("contact_data offline_access").await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 86400);
    assert_eq!(t["scope"], "contact_data offline_access");
    assert!(t["refresh_token"].as_str().unwrap().len() >= 40);
    let token = t["access_token"].as_str().unwrap();
    // An independent verifier: the JWKS and jsonwebtoken.
    let jwks: Value = m
        .http
        .get(m.url("/oauth2/default/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alias: Value = m
        .http
        .get(m.url("/oauth2/aus1lm3ry9mF7x2Ja0h8/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, alias);
    let jwk = &jwks["keys"][0];
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["https://api.cc.email/v3"]);
    v.set_issuer(&["https://identity.constantcontact.com/oauth2/aus1lm3ry9mF7x2Ja0h8"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86400
    );
    assert_eq!(claims["cid"], CID);
    assert_eq!(claims["scp"], json!(["contact_data", "offline_access"]));
    for k in ["sub", "platform_user_id", "jti", "uid"] {
        assert!(claims[k].is_string(), "{k} missing: {claims}");
    }
    // token_info tells the scopes.
    let (s, info) = m
        .post(token, "/v3/token_info", json!({"token": token}))
        .await;
    assert_eq!(
        (s, info),
        (200, json!({"scopes": ["contact_data", "offline_access"]}))
    );
    // No discovery document, as on the real server.
    assert_eq!(
        m.http
            .get(m.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_parameters_in_the_query_string_work_too() {
    let m = start(true);
    let code = m.code("contact_data").await;
    let r = m
        .http
        .post(m.url("/oauth2/default/v1/token"))
        .query(&[
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("grant_type", "authorization_code"),
        ])
        .header("authorization", basic(CID, SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_page_allow_and_deny_and_authorize_errors() {
    let m = start(false);
    let r = m.authorize(CID, "contact_data offline_access", &[]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=allow") && html.contains("id=deny"),
        "{html}"
    );
    let consent = html
        .split("name=consent value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let decide = |d: &'static str, c: String| {
        m.http
            .post(m.url("/oauth2/default/v1/authorize/decision"))
            .form(&[("consent", c.as_str()), ("decision", d)])
            .send()
    };
    let r = decide("allow", consent.clone()).await.unwrap();
    assert_eq!(r.status(), 302);
    let p = params_of(r.headers()["location"].to_str().unwrap());
    assert!(p.contains_key("code") && p["state"] == "st-1");
    // A consent is answered once.
    assert_eq!(decide("allow", consent).await.unwrap().status(), 400);
    let html = m
        .authorize(CID, "contact_data", &[])
        .await
        .text()
        .await
        .unwrap();
    let consent = html
        .split("name=consent value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = decide("deny", consent).await.unwrap();
    let p = params_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st-1");
    // Unknown client and redirect mismatch: an error page, never a redirect.
    let r = m.authorize("nope", "contact_data", &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let r = m
        .http
        .get(m.url("/oauth2/default/v1/authorize"))
        .query(&[
            ("client_id", CID),
            ("redirect_uri", "http://evil.example/cb"),
            ("response_type", "code"),
            ("scope", "contact_data"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Missing state, bad scope, bad response_type: redirected errors.
    let r = m
        .http
        .get(m.url("/oauth2/default/v1/authorize"))
        .query(&[
            ("client_id", CID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "contact_data"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        params_of(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request"
    );
    let r = m.authorize(CID, "contact_data nonsense", &[]).await;
    assert_eq!(
        params_of(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_scope"
    );
    let r = m
        .http
        .get(m.url("/oauth2/default/v1/authorize"))
        .query(&[
            ("client_id", CID),
            ("redirect_uri", REDIRECT),
            ("response_type", "token"),
            ("scope", "contact_data"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        params_of(r.headers()["location"].to_str().unwrap())["error"],
        "unsupported_response_type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_for_public_clients() {
    let m = start(true);
    let verifier = "a-very-long-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = postie::util::pkce_challenge(verifier);
    // Public clients must use PKCE.
    let r = m.authorize(PUBLIC, "contact_data", &[]).await;
    assert_eq!(
        params_of(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request"
    );
    let code_for = |_: ()| async {
        let r = m
            .authorize(
                PUBLIC,
                "contact_data offline_access",
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        params_of(r.headers()["location"].to_str().unwrap())["code"].clone()
    };
    let code = code_for(()).await;
    let (s, b) = m
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", PUBLIC),
                ("code_verifier", "wrong"),
            ],
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_description"].as_str()),
        (
            400,
            Some("invalid_grant"),
            Some("PKCE verification failed.")
        )
    );
    let code = code_for(()).await;
    let (s, b) = m
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", PUBLIC),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Long-lived refresh tokens come back unchanged and stay usable.
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (s, b) = m
            .token(
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", PUBLIC),
                ],
            )
            .await;
        assert_eq!((s, b["refresh_token"].as_str()), (200, Some(rt.as_str())));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_errors_code_reuse_and_expiry_by_the_clock() {
    let m = start(true);
    let code = m.code("contact_data").await;
    let form = |c: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), c.to_string()),
            ("redirect_uri".into(), REDIRECT.into()),
        ]
    };
    let f = form(&code);
    let (s, b) = m.token(Some((CID, "wrong")), &as_pairs(&f)).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, _) = m.token(Some((CID, SECRET)), &as_pairs(&f)).await;
    assert_eq!(s, 200);
    let (s, b) = m.token(Some((CID, SECRET)), &as_pairs(&f)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "a code works once"
    );
    let code = m.code("contact_data").await;
    m.advance("5m1s").await;
    let (s, b) = m.token(Some((CID, SECRET)), &as_pairs(&form(&code))).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (
            400,
            Some("The authorization code is invalid or has expired.")
        )
    );
    let code = m.code("contact_data").await;
    let (s, b) = m
        .token(
            Some((CID, SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:8910/callback"),
            ],
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect_uri must match"
    );
    let (s, b) = m
        .token(Some((CID, SECRET)), &[("grant_type", "password")])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, b) = m
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_refresh_tokens_work_once_and_idle_expire() {
    let m = start(true);
    let t = m.login("contact_data offline_access").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (s, t2) = m
        .token(
            Some((CID, SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        )
        .await;
    assert_eq!(s, 200);
    let rt2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let (s, b) = m
        .token(
            Some((CID, SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        )
        .await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("The refresh token is invalid or expired."))
    );
    // A new login expires every earlier refresh token of the app.
    m.login("contact_data offline_access").await;
    let (s, _) = m
        .token(
            Some((CID, SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
        )
        .await;
    assert_eq!(s, 400);
    let t = m.login("contact_data offline_access").await;
    m.advance("181d").await;
    let (s, _) = m
        .token(
            Some((CID, SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 400, "idle for more than 180 days");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_flow_pending_slow_down_activate_and_expiry() {
    let m = start(false);
    let start_device = || async {
        let r = m
            .http
            .post(m.url("/oauth2/default/v1/device/authorize"))
            .form(&[
                ("client_id", PUBLIC),
                ("scope", "contact_data offline_access"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let d = start_device().await;
    assert!(
        d["verification_uri"]
            .as_str()
            .unwrap()
            .ends_with("/activate")
    );
    assert_eq!(d["interval"], 5);
    let dc = d["device_code"].as_str().unwrap().to_string();
    let poll = || m.device_poll(&dc);
    assert_eq!(poll().await.1["error"], "authorization_pending");
    assert_eq!(poll().await.1["error"], "slow_down");
    let page = m
        .http
        .get(d["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(d["user_code"].as_str().unwrap()));
    let r = m
        .http
        .post(m.url("/activate"))
        .form(&[
            ("user_code", d["user_code"].as_str().unwrap()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    m.advance("6s").await;
    let (s, t) = poll().await;
    assert_eq!(s, 200, "{t}");
    assert!(t["refresh_token"].is_string());
    // Denied, and expired.
    let d = start_device().await;
    m.http
        .post(m.url("/activate"))
        .form(&[
            ("user_code", d["user_code"].as_str().unwrap()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let dc2 = d["device_code"].as_str().unwrap();
    let (_, b) = m
        .token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", PUBLIC),
                ("device_code", dc2),
            ],
        )
        .await;
    assert_eq!(b["error"], "access_denied");
    let d = start_device().await;
    m.advance("11m").await;
    let (_, b) = m
        .token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", PUBLIC),
                ("device_code", d["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(b["error"], "expired_token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_rejects_bad_tokens_exactly_as_constant_contact_does() {
    let m = start(true);
    let good = access(&m).await;
    let expect_401 = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=api.cc.email");
        assert_eq!(
            r.text().await.unwrap(),
            r#"{"error_key":"unauthorized","error_message":"Unauthorized"}"#
        );
    };
    expect_401(m.http.get(m.url("/v3/contacts")).send().await.unwrap()).await;
    // Forged: claims changed, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["scp"] = json!(["contact_data", "account_update"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    expect_401(
        m.http
            .get(m.url("/v3/contacts"))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // alg: none.
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    expect_401(
        m.http
            .get(m.url("/v3/contacts"))
            .bearer_auth(&none)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Signed with the right key but for another audience.
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mocks/dev_signing_key.pem"
    ))
    .unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("postie-mock-rs256-1".into());
    let mut wrong_aud: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    wrong_aud["aud"] = json!("https://api.example.com");
    let wrong = jsonwebtoken::encode(
        &h,
        &wrong_aud,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    expect_401(
        m.http
            .get(m.url("/v3/contacts"))
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(m.get(&good, "/v3/contacts").await.0, 200);
    // Expired by the mock clock (the signature was verified before and is cached: expiry is not).
    m.advance("24h").await;
    expect_401(
        m.http
            .get(m.url("/v3/contacts"))
            .bearer_auth(&good)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Missing scope.
    let t = m.login("account_read").await;
    let (s, b) = m
        .get(t["access_token"].as_str().unwrap(), "/v3/contacts")
        .await;
    assert_eq!((s, b["error_key"].as_str()), (403, Some("access_denied")));
    // Outside /v3.
    assert_eq!(
        m.http
            .get(m.url("/v2/contacts"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_create_conflict_put_delete_revive() {
    let m = start(true);
    let t = access(&m).await;
    let (s, b) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "new@example.com"}, "first_name": "New"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b[0]["error_message"],
        "create_source is missing, create_source does not have a valid value"
    );
    let (s, c) = m
        .post(&t, "/v3/contacts", json!({"email_address": {"address": "new@example.com"}, "first_name": "New", "last_name": "Person", "job_title": "CTO",
            "create_source": "Account", "phone_numbers": [{"phone_number": "555-0101", "kind": "work"}], "list_memberships": [GENERAL]}))
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["contact_id"].as_str().unwrap().to_string();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 1);
    let (s, b) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "NEW@example.com"}, "create_source": "Account"}),
        )
        .await;
    assert_eq!(s, 409);
    assert_cc_error(&b, "contacts.api.conflict");
    assert!(b[0]["error_message"].as_str().unwrap().contains(&id));
    // Sub-resources only with include=.
    let (_, got) = m.get(&t, &format!("/v3/contacts/{id}")).await;
    assert!(
        got.get("phone_numbers").is_none() && got.get("list_memberships").is_none(),
        "{got}"
    );
    let (_, got) = m
        .get(
            &t,
            &format!("/v3/contacts/{id}?include=phone_numbers,list_memberships"),
        )
        .await;
    assert_eq!(got["list_memberships"], json!([GENERAL]));
    assert_eq!(got["phone_numbers"][0]["phone_number"], "555-0101");
    // PUT: update_source required; omitted core fields become null; omitted sub-resources stay.
    let contact_path = format!("/v3/contacts/{id}");
    let put = |body: Value| m.api(&t, reqwest::Method::PUT, &contact_path, Some(body));
    let (s, b) =
        put(json!({"email_address": {"address": "new@example.com"}, "first_name": "New"})).await;
    assert_eq!(s, 400);
    assert_cc_error(&b, "contacts.api.validation.error");
    let (s, b) = put(json!({"email_address": {"address": "new@example.com"}, "first_name": "Renamed", "update_source": "Account"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["first_name"], "Renamed");
    assert!(
        b.get("last_name").is_none() && b.get("job_title").is_none(),
        "core fields nulled: {b}"
    );
    assert_eq!(
        b["phone_numbers"][0]["phone_number"], "555-0101",
        "sub-resources kept: {b}"
    );
    // DELETE is soft: 204, hidden by default, visible with status=all, still reserves the email.
    let (s, _) = m
        .api(
            &t,
            reqwest::Method::DELETE,
            &format!("/v3/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, l) = m.get(&t, "/v3/contacts?email=new@example.com").await;
    assert_eq!(l["contacts"], json!([]));
    let (_, l) = m
        .get(&t, "/v3/contacts?email=new@example.com&status=all")
        .await;
    let deleted_at = l["contacts"][0]["deleted_at"].as_str().unwrap();
    assert_eq!(deleted_at.len(), 10, "a date: {deleted_at}");
    let (s, _) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "new@example.com"}, "create_source": "Account"}),
        )
        .await;
    assert_eq!(s, 409, "a deleted contact still owns its email");
    let (s, b) = put(json!({"email_address": {"address": "new@example.com"}, "first_name": "Back", "update_source": "Account"})).await;
    assert_eq!(s, 200);
    assert!(b.get("deleted_at").is_none(), "PUT revives: {b}");
    // Errors: unknown id, bad id, wrong content type, malformed JSON.
    let (s, b) = m
        .get(&t, &format!("/v3/contacts/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(s, 404);
    assert_cc_error(&b, "contacts.api.not_found");
    assert_eq!(m.get(&t, "/v3/contacts/not-a-uuid").await.0, 404);
    // A path deeper than any route (its segments no longer fit on the stack) is answered as a
    // shallower unknown one is.
    let shallow = m.get(&t, "/v3/contacts/a/b").await;
    for deep in [
        "/v3/contacts/a/b/c/d/e/f/g/h/i/j",
        "/v3/contacts/a/b/c/d/e/f/",
        "/v3/contacts/a/b/c/d/e/f/g/",
    ] {
        assert_eq!(m.get(&t, deep).await, shallow, "{deep}");
    }
    assert_eq!(m.get(&t, "/v3/nope/a/b/c/d/e/f/g/h").await.0, 404);
    let r = m
        .http
        .post(m.url("/v3/contacts"))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.json::<Value>().await.unwrap().is_array());
    let r = m
        .http
        .post(m.url("/v3/contacts"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"email_address\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_cc_error(
        &r.json::<Value>().await.unwrap(),
        "contacts.api.validation.error",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn field_limits_are_enforced() {
    let m = start(true);
    let t = access(&m).await;
    let base =
        || json!({"email_address": {"address": "limits@example.com"}, "create_source": "Account"});
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let phones: Vec<Value> = (0..4)
        .map(|i| json!({"phone_number": format!("555-010{i}"), "kind": "home"}))
        .collect();
    let addrs: Vec<Value> = (0..4)
        .map(|_| json!({"kind": "home", "city": "X"}))
        .collect();
    let fields: Vec<Value> = (0..26)
        .map(|_| json!({"custom_field_id": uuid::Uuid::new_v4().to_string(), "value": "v"}))
        .collect();
    let lists: Vec<Value> = (0..51).map(|_| json!(GENERAL)).collect();
    for body in [
        with("first_name", json!("x".repeat(51))),
        with("phone_numbers", json!(phones)),
        with("street_addresses", json!(addrs)),
        with("custom_fields", json!(fields)),
        with("list_memberships", json!(lists)),
        with("birthday_month", json!(13)),
        with("street_addresses", json!([{"city": "no kind"}])),
        json!({"email_address": {"address": format!("{}@example.com", "a".repeat(80))}, "create_source": "Account"}),
        json!({"email_address": {"address": "not-an-email"}, "create_source": "Account"}),
    ] {
        let (s, b) = m.post(&t, "/v3/contacts", body.clone()).await;
        assert_eq!(s, 400, "{body} → {b}");
        assert_cc_error(&b, "contacts.api.validation.error");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_form_upserts_appends_lists_and_revives() {
    let m = start(true);
    let t = access(&m).await;
    let (s, b) = m.post(&t, "/v3/contacts/sign_up_form", json!({"email_address": "form@example.com", "first_name": "Form", "job_title": "Dev", "list_memberships": [GENERAL]})).await;
    assert_eq!(s, 201);
    assert_eq!(
        b.as_object().unwrap().len(),
        2,
        "exactly contact_id and action: {b}"
    );
    assert_eq!(b["action"], "created");
    let id = b["contact_id"].as_str().unwrap().to_string();
    m.api(
        &t,
        reqwest::Method::DELETE,
        &format!("/v3/contacts/{id}"),
        None,
    )
    .await;
    let (s, b) = m.post(&t, "/v3/contacts/sign_up_form", json!({"email_address": "form@example.com", "last_name": "Later", "list_memberships": [VIP]})).await;
    assert_eq!(
        (s, b["action"].as_str(), b["contact_id"].as_str()),
        (200, Some("updated"), Some(id.as_str()))
    );
    let (_, c) = m
        .get(&t, &format!("/v3/contacts/{id}?include=list_memberships"))
        .await;
    assert!(c.get("deleted_at").is_none(), "revived: {c}");
    assert_eq!(
        (
            c["first_name"].as_str(),
            c["last_name"].as_str(),
            c["job_title"].as_str()
        ),
        (Some("Form"), Some("Later"), Some("Dev")),
        "partial update"
    );
    // Deleting strips lists; the second sign-up appended VIP.
    assert_eq!(c["list_memberships"], json!([VIP]));
    assert_eq!(c["email_address"]["permission_to_send"], "explicit");
    let (s, b) = m
        .post(
            &t,
            "/v3/contacts/sign_up_form",
            json!({"email_address": "x@example.com"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_cc_error(&b, "contacts.api.validation.error");
}

/// Counts kept as contacts change (status, list membership) agree with the counts a walk over
/// every contact gives: a date bound forces the walk.
#[tokio::test(flavor = "multi_thread")]
async fn kept_counts_agree_with_a_walk_over_the_contacts() {
    let m = start(true);
    let t = access(&m).await;
    let count = |q: String| {
        let m = &m;
        let t = &t;
        async move {
            let (s, b) = m
                .get(t, &format!("/v3/contacts?limit=1&include_count=true{q}"))
                .await;
            assert_eq!(s, 200, "{q}: {b}");
            b["contacts_count"].as_u64().unwrap()
        }
    };
    let queries: Vec<String> = vec![
        String::new(),
        "&status=all".into(),
        "&status=deleted".into(),
        "&status=active".into(),
        "&status=explicit".into(),
        "&status=implicit".into(),
        "&status=unsubscribed".into(),
        format!("&lists={GENERAL}"),
        format!("&lists={VIP}"),
        format!("&lists={VIP}&status=active"),
        format!("&lists={GENERAL},{VIP}"),
        "&status=active,deleted".into(),
    ];
    let walk = "&updated_before=2100-01-01T00:00:00Z";
    // A first page's ids and whether it links a next one (a kept count ends the walk early).
    let page = |q: String, limit: usize| {
        let m = &m;
        let t = &t;
        async move {
            let (s, b) = m.get(t, &format!("/v3/contacts?limit={limit}{q}")).await;
            assert_eq!(s, 200, "{q}: {b}");
            let ids: Vec<String> = b["contacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["contact_id"].as_str().unwrap().to_string())
                .collect();
            (ids, b["_links"]["next"].is_object())
        }
    };
    let counts = || async {
        let mut kept = Vec::new();
        for q in &queries {
            let (fast, slow) = (count(q.clone()).await, count(format!("{q}{walk}")).await);
            assert_eq!(fast, slow, "{q}");
            kept.push(fast as i64);
            for limit in [1, fast as usize, 500] {
                let limit = limit.max(1);
                let (fast_page, slow_page) = (
                    page(q.clone(), limit).await,
                    page(format!("{q}{walk}"), limit).await,
                );
                assert_eq!(fast_page, slow_page, "{q} limit={limit}");
            }
        }
        kept
    };
    let active_members = || async {
        let (_, lists) = m
            .get(&t, "/v3/contact_lists?include_membership_count=active")
            .await;
        let of = |id: &str| {
            lists["lists"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["list_id"] == id)
                .and_then(|l| l["membership_count"].as_i64())
                .unwrap()
        };
        (of(GENERAL), of(VIP))
    };
    let (before, members_before) = (counts().await, active_members().await);
    let mut ids = Vec::new();
    for (i, lists) in [
        vec![GENERAL],
        vec![VIP],
        vec![GENERAL, VIP],
        vec![GENERAL],
        vec![VIP],
    ]
    .into_iter()
    .enumerate()
    {
        let (s, b) = m
            .post(
                &t,
                "/v3/contacts/sign_up_form",
                json!({"email_address": format!("k{i}@example.com"), "list_memberships": lists}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        ids.push(b["contact_id"].as_str().unwrap().to_string());
    }
    let (s, b) = m
        .post(&t, "/v3/contacts", json!({"email_address": {"address": "implicit@example.com", "permission_to_send": "implicit"}, "create_source": "Account", "list_memberships": [VIP]}))
        .await;
    assert_eq!(s, 201, "{b}");
    // One deleted, one unsubscribed (a PUT keeps it in VIP), one moved from GENERAL to VIP.
    m.api(
        &t,
        reqwest::Method::DELETE,
        &format!("/v3/contacts/{}", ids[0]),
        None,
    )
    .await;
    let (s, b) = m
        .api(&t, reqwest::Method::PUT, &format!("/v3/contacts/{}", ids[1]),
            Some(json!({"email_address": {"address": "k1@example.com", "permission_to_send": "unsubscribed"}, "update_source": "Contact", "list_memberships": [VIP]})))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = m
        .api(&t, reqwest::Method::PUT, &format!("/v3/contacts/{}", ids[3]),
            Some(json!({"email_address": {"address": "k3@example.com"}, "update_source": "Account", "list_memberships": [VIP]})))
        .await;
    assert_eq!(s, 200, "{b}");
    let after = counts().await;
    let added: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // Six made, one deleted, one unsubscribed; GENERAL gained k2 only (k0 deleted, k3 moved);
    // VIP gained k1 (unsubscribed), k2, k3, k4 and the implicit one.
    assert_eq!(
        added,
        [5, 6, 1, 4, 3, 1, 1, 1, 5, 4, 5, 5],
        "{before:?} -> {after:?}"
    );
    let members = active_members().await;
    assert_eq!(
        (members.0 - members_before.0, members.1 - members_before.1),
        (1, 4)
    );
}

/// `updated_after` and `created_after` walk only the parts of the store with a contact after the
/// time: what they find, page after page, and count, is what a client finds by reading every
/// contact's dates itself. 300 contacts span several of the table's zones; three spread over
/// them change an hour later, and five are new an hour after that.
#[tokio::test(flavor = "multi_thread")]
async fn filters_after_a_time_find_exactly_the_contacts_after_it() {
    let m = start(true);
    let t = access(&m).await;
    let rows: Vec<Value> = (0..300)
        .map(|i| json!({"email": format!("z{i}@example.com"), "first_name": "Z"}))
        .collect();
    import_rows(&m, &t, Value::from(rows), GENERAL).await;
    let sign_up = |email: String| {
        let (m, t) = (&m, &t);
        async move {
            let (s, b) = m
                .post(
                    t,
                    "/v3/contacts/sign_up_form",
                    json!({"email_address": email, "first_name": "Later", "list_memberships": [VIP]}),
                )
                .await;
            assert!(s == 200 || s == 201, "{b}");
        }
    };
    m.advance("1h").await;
    for i in [3, 150, 299] {
        sign_up(format!("z{i}@example.com")).await;
    }
    m.advance("1h").await;
    for i in 0..5 {
        sign_up(format!("new{i}@example.com")).await;
    }
    // Every page of a query: the ids in order, and the count the first page gave.
    let pages = |query: String| {
        let (m, t) = (&m, &t);
        async move {
            let mut url = format!("/v3/contacts?limit=50&include_count=true{query}");
            let (mut ids, mut count) = (Vec::new(), None);
            loop {
                let (s, b) = m.get(t, &url).await;
                assert_eq!(s, 200, "{url}: {b}");
                count = count.or(b["contacts_count"].as_u64());
                for c in b["contacts"].as_array().unwrap() {
                    let seconds = |f: &str| {
                        time::OffsetDateTime::parse(
                            c[f].as_str().unwrap(),
                            &time::format_description::well_known::Rfc3339,
                        )
                        .unwrap()
                        .unix_timestamp()
                    };
                    ids.push((
                        c["contact_id"].as_str().unwrap().to_string(),
                        seconds("created_at"),
                        seconds("updated_at"),
                    ));
                }
                match b["_links"]["next"]["href"].as_str() {
                    Some(next) => url = next.to_string(),
                    None => break,
                }
            }
            (ids, count)
        }
    };
    let (all, total) = pages(String::new()).await;
    // The 305 made here and the contacts the mock is seeded with.
    assert_eq!(Some(all.len() as u64), total);
    assert!(all.len() >= 305, "{}", all.len());
    // Times between the seconds the contacts carry, so none is at the time itself.
    let mut seconds: Vec<i64> = all.iter().flat_map(|(_, c, u)| [*c, *u]).collect();
    seconds.sort();
    seconds.dedup();
    let mut times = vec![seconds[0] - 86_400, seconds[seconds.len() - 1] + 86_400];
    times.extend(
        seconds
            .windows(2)
            .filter(|w| w[1] - w[0] >= 2)
            .map(|w| (w[0] + w[1]) / 2),
    );
    assert!(
        times.len() >= 4,
        "the import, the changes and the new ones: {seconds:?}"
    );
    for time in times {
        let at = time::OffsetDateTime::from_unix_timestamp(time)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        for (filter, field) in [("updated_after", 2), ("created_after", 1)] {
            let expected: Vec<String> = all
                .iter()
                .filter(|(_, c, u)| if field == 1 { *c > time } else { *u > time })
                .map(|(id, _, _)| id.clone())
                .collect();
            let (found, count) = pages(format!("&{filter}={at}")).await;
            let found: Vec<String> = found.into_iter().map(|(id, _, _)| id).collect();
            assert_eq!(found, expected, "{filter}={at}");
            assert_eq!(count, Some(expected.len() as u64), "{filter}={at}");
        }
    }
    // The new subscribers of the last 30 days are every contact, a day on none of them.
    let (_, n) = m
        .get(&t, "/v3/contacts/counts?include=new_subscriber")
        .await;
    assert_eq!(n["new_subscriber"], all.len(), "{n}");
    m.advance("31d").await;
    let t = access(&m).await;
    let (_, n) = m
        .get(&t, "/v3/contacts/counts?include=new_subscriber")
        .await;
    assert_eq!(n["new_subscriber"], 0, "{n}");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_follows_next_links_across_pages() {
    let m = start(true);
    let t = access(&m).await;
    let rows: Vec<Value> = (0..117)
        .map(|i| json!({"email": format!("p{i}@example.com"), "first_name": format!("P{i}")}))
        .collect();
    import_rows(&m, &t, Value::from(rows), VIP).await;
    let mut url = format!("/v3/contacts?lists={VIP}&limit=50&include_count=true");
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let (s, page) = m.get(&t, &url).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        if pages == 1 {
            assert_eq!(page["contacts_count"], 118, "117 imported + 1 seeded VIP");
        }
        for c in page["contacts"].as_array().unwrap() {
            assert!(
                seen.insert(c["contact_id"].as_str().unwrap().to_string()),
                "no duplicates across pages"
            );
        }
        match page["_links"]["next"]["href"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 118));
    for bad in ["limit=0", "limit=501", "status=bogus", "include=everything"] {
        let (s, b) = m.get(&t, &format!("/v3/contacts?{bad}")).await;
        assert_eq!(s, 400, "{bad}");
        assert_cc_error(&b, "contacts.api.validation.error");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn contact_lists_crud_conflict_counts_and_async_delete() {
    let m = start(true);
    let t = access(&m).await;
    let (s, l) = m
        .post(
            &t,
            "/v3/contact_lists",
            json!({"name": "Spring", "description": "d"}),
        )
        .await;
    assert_eq!(s, 201);
    let id = l["list_id"].as_str().unwrap().to_string();
    let (s, b) = m
        .post(&t, "/v3/contact_lists", json!({"name": "Spring"}))
        .await;
    assert_eq!(s, 409);
    assert!(b.is_array(), "{b}");
    assert_eq!(
        m.post(&t, "/v3/contact_lists", json!({"description": "no name"}))
            .await
            .0,
        400
    );
    let (_, all) = m
        .get(
            &t,
            "/v3/contact_lists?include_membership_count=all&include_count=true",
        )
        .await;
    assert_eq!(all["lists_count"], 4);
    let general = all["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list_id"] == GENERAL)
        .unwrap();
    assert_eq!(general["membership_count"], 2);
    let (s, b) = m
        .get(&t, "/v3/contact_lists?include_membership_count=most")
        .await;
    assert_eq!(
        (s, b[0]["error_message"].as_str()),
        (
            400,
            Some("include_membership_count does not have a valid value")
        )
    );
    let (s, u) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/contact_lists/{id}"),
            Some(json!({"name": "Summer", "favorite": true})),
        )
        .await;
    assert_eq!(
        (s, u["name"].as_str(), u["favorite"].as_bool()),
        (200, Some("Summer"), Some(true))
    );
    let r = m
        .http
        .delete(m.url(&format!("/v3/contact_lists/{id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["state"], "initialized");
    assert_eq!(
        loc,
        format!("/v3/activities/{}", a["activity_id"].as_str().unwrap())
    );
    m.advance("1s").await;
    let (_, a) = m.get(&t, &loc).await;
    assert_eq!(a["state"], "completed");
    assert!(m.get(&t, &format!("/v3/contact_lists/{id}")).await.1["deleted_at"].is_string());
    let (_, deleted) = m.get(&t, "/v3/contact_lists?status=deleted").await;
    assert_eq!(deleted["lists"].as_array().unwrap().len(), 1);
    assert_eq!(
        m.get(&t, &format!("/v3/contact_lists/{}", uuid::Uuid::new_v4()))
            .await
            .0,
        404
    );
}

/// Polls an activity until it reads `completed` (at most 30 s); the polls themselves apply
/// nothing of an activity too large for a request, so the background worker must.
async fn until_completed(m: &Mock, t: &str, path: &str) -> Value {
    for _ in 0..600 {
        let (_, a) = m.get(t, path).await;
        if a["state"] == "completed" {
            return a;
        }
        assert_eq!(a["state"], "processing", "{a}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} did not complete in 30 s");
}

/// Imports `rows` (a JSON import) onto `list` and waits until the activity completes; returns it.
async fn import_rows(m: &Mock, t: &str, rows: Value, list: &str) -> Value {
    let (s, a) = m
        .post(
            t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": [list]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    m.advance("10s").await;
    until_completed(m, t, a["_links"]["self"]["href"].as_str().unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn large_activities_are_applied_between_requests_until_complete() {
    let m = start_with(config(true));
    let t = access(&m).await;
    // 3,000 rows: more than a request applies before its own work.
    let rows: Vec<Value> = (0..3_000)
        .map(|i| json!({"email": format!("bulk{i}@example.com"), "first_name": "Bulk"}))
        .collect();
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": [GENERAL]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let import = a["_links"]["self"]["href"].as_str().unwrap().to_string();
    m.advance("1s").await;
    let a = until_completed(&m, &t, &import).await;
    assert_eq!(
        (
            a["status"]["person_count"].as_u64(),
            a["percent_done"].as_u64()
        ),
        (Some(3_000), Some(100)),
        "{a}"
    );
    let count = |m: &'static str| format!("/v3/contacts?email={m}&include=list_memberships");
    let (_, c) = m.get(&t, &count("bulk2999@example.com")).await;
    assert_eq!(
        c["contacts"][0]["list_memberships"],
        json!([GENERAL]),
        "{c}"
    );
    // Then every contact of the list onto another: 3,000 and more contacts changed.
    let (_, general) = m
        .get(
            &t,
            &format!("/v3/contact_lists/{GENERAL}?include_membership_count=all"),
        )
        .await;
    let members = general["membership_count"].as_u64().unwrap();
    assert!(members > 3_000, "{general}");
    let (_, target) = m
        .post(&t, "/v3/contact_lists", json!({"name": "Everyone again"}))
        .await;
    let target = target["list_id"].as_str().unwrap().to_string();
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/add_list_memberships",
            json!({"source": {"list_ids": [GENERAL]}, "list_ids": [target]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let moved = format!("/v3/activities/{}", a["activity_id"].as_str().unwrap());
    m.advance("1s").await;
    let a = until_completed(&m, &t, &moved).await;
    assert_eq!(a["status"]["items_completed_count"], members, "{a}");
    let (_, l) = m
        .get(
            &t,
            &format!("/v3/contact_lists/{target}?include_membership_count=all"),
        )
        .await;
    assert_eq!(l["membership_count"].as_u64(), Some(members), "{l}");
    let (_, c) = m.get(&t, &count("bulk0@example.com")).await;
    assert_eq!(
        c["contacts"][0]["list_memberships"],
        json!([GENERAL, target]),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn activities_progress_with_the_clock_and_apply_rows() {
    let mut cfg = config(true);
    cfg.speed.rows_per_second = 10; // slow, so progress is observable
    let m = start_with(cfg);
    let t = access(&m).await;
    let rows: Vec<Value> = (0..20)
        .map(|i| json!({"email": format!("a{i}@example.com")}))
        .chain([json!({"email": "broken"})])
        .collect();
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": [GENERAL]}),
        )
        .await;
    assert_eq!(
        (s, a["state"].as_str(), a["percent_done"].as_u64()),
        (201, Some("initialized"), Some(0))
    );
    let path = a["_links"]["self"]["href"].as_str().unwrap().to_string();
    m.advance("1100ms").await;
    let (_, a) = m.get(&t, &path).await;
    assert_eq!(a["state"], "processing");
    let pct = a["percent_done"].as_u64().unwrap();
    assert!(pct > 0 && pct < 100, "{a}");
    assert_eq!(
        m.get(&t, "/v3/contacts?email=a0@example.com").await.1["contacts"],
        json!([]),
        "applied only when completed"
    );
    m.advance("2s").await;
    let (_, a) = m.get(&t, &path).await;
    assert_eq!(
        (a["state"].as_str(), a["percent_done"].as_u64()),
        (Some("completed"), Some(100))
    );
    assert_eq!(a["status"]["person_count"], 20);
    assert_eq!(a["status"]["error_count"], 1);
    assert!(
        a["activity_errors"][0]
            .as_str()
            .unwrap()
            .starts_with("Row 21:"),
        "{a}"
    );
    let (_, c) = m
        .get(
            &t,
            "/v3/contacts?email=a0@example.com&include=list_memberships",
        )
        .await;
    assert_eq!(c["contacts"][0]["list_memberships"], json!([GENERAL]));
    assert_eq!(
        c["contacts"][0]["email_address"]["permission_to_send"],
        "implicit"
    );
    // Limits.
    let too_many: Vec<Value> = (0..40_001)
        .map(|i| json!({"email": format!("x{i}@e.io")}))
        .collect();
    assert_eq!(
        m.post(
            &t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": too_many, "list_ids": [GENERAL]})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        m.post(
            &t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": [{"email": "q@e.io"}]})
        )
        .await
        .0,
        400,
        "list_ids required"
    );
    // Memberships and deletes.
    let (_, c) = m.get(&t, "/v3/contacts?email=a1@example.com").await;
    let cid = c["contacts"][0]["contact_id"].as_str().unwrap().to_string();
    let (s, _) = m
        .post(
            &t,
            "/v3/activities/add_list_memberships",
            json!({"source": {"contact_ids": [cid]}, "list_ids": [VIP]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = m
        .post(
            &t,
            "/v3/activities/remove_list_memberships",
            json!({"source": {"contact_ids": [cid]}, "list_ids": [GENERAL]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = m
        .post(
            &t,
            "/v3/activities/contact_delete",
            json!({"contact_ids": [cid]}),
        )
        .await;
    assert_eq!(s, 201);
    m.advance("5s").await;
    let (_, c) = m
        .get(&t, &format!("/v3/contacts/{cid}?include=list_memberships"))
        .await;
    assert!(c["deleted_at"].is_string(), "{c}");
    let (_, all) = m.get(&t, "/v3/activities?state=completed").await;
    assert_eq!(all["activities"].as_array().unwrap().len(), 4);
    assert_eq!(
        m.get(&t, &format!("/v3/activities/{}", uuid::Uuid::new_v4()))
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_file_import_over_multipart() {
    let m = start(true);
    let t = access(&m).await;
    let csv = "email,first_name,last_name\ncsv1@example.com,Ann,One\n\"csv2@example.com\",\"Bo, Jr\",Two\n";
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::text(csv)
                .file_name("contacts.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
        .text("list_ids", VIP);
    let r = m
        .http
        .post(m.url("/v3/activities/contacts_file_import"))
        .bearer_auth(&t)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["source_file_name"], "contacts.csv");
    m.advance("1s").await;
    let (_, c) = m.get(&t, "/v3/contacts?email=csv2@example.com").await;
    assert_eq!(c["contacts"][0]["first_name"], "Bo, Jr");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::text(csv).file_name("contacts.txt"),
        )
        .text("list_ids", VIP);
    let r = m
        .http
        .post(m.url("/v3/activities/contacts_file_import"))
        .bearer_auth(&t)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_per_second_with_vendor_bodies() {
    let mut cfg = config(true);
    cfg.rate_limit = true;
    let m = start_with(cfg);
    let t = access(&m).await;
    m.advance("2s").await;
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for _ in 0..10 {
        let (s, b) = m.get(&t, "/v3/contact_lists").await;
        statuses.push(s);
        last = b;
    }
    // The first four API requests always pass; six more within a few milliseconds span at most
    // two one-second windows, so at most eight pass in all and at least one is throttled.
    assert!(statuses[..4].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 8 && statuses.contains(&429),
        "{statuses:?}"
    );
    let throttled = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(throttled >= 4, "{statuses:?}");
    assert!(
        last == json!({"error_key": "throttled", "error_message": "Too Many Requests"})
            || statuses[9] == 200,
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_quota_resets_at_utc_midnight_of_the_mock_clock() {
    let mut cfg = config(true);
    cfg.rate_limit = true;
    cfg.file.rate_limit.per_day = 3;
    cfg.file.rate_limit.per_second = 100;
    let m = start_with(cfg);
    let t = access(&m).await;
    for _ in 0..3 {
        assert_eq!(m.get(&t, "/v3/contact_lists").await.0, 200);
    }
    let (s, b) = m.get(&t, "/v3/contact_lists").await;
    assert_eq!(
        (s, b),
        (
            429,
            json!({"error_key": "quota_exceeded", "error_message": "Limit Exceeded"})
        )
    );
    // Midnight UTC of the mock clock: set it to 23:59:59.5 and step past it.
    let r = m
        .http
        .post(m.url("/__postie/clock"))
        .json(&json!({"set": "2030-01-01T23:59:59Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t2 = m.login("contact_data").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ok = 0;
    for _ in 0..3 {
        ok += usize::from(m.get(&t2, "/v3/contact_lists").await.0 == 200);
    }
    assert_eq!(ok, 3, "a new day");
    m.advance("2s").await;
    assert_eq!(
        m.get(&t2, "/v3/contact_lists").await.0,
        200,
        "after midnight the quota is fresh again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_clock_journal_bound_and_state_round_trip() {
    let mut cfg = config(true);
    cfg.file.journal_size = 5;
    let m = start_with(cfg);
    let t = access(&m).await;
    let clock: Value = m
        .http
        .get(m.url("/__postie/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let before = clock["unix"].as_i64().unwrap();
    let after: Value = m
        .http
        .post(m.url("/__postie/clock"))
        .json(&json!({"advance": "24h"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(after["unix"].as_i64().unwrap() - before >= 86400);
    assert_eq!(
        m.http
            .post(m.url("/__postie/clock"))
            .json(&json!({"advance": "soon"}))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    for _ in 0..8 {
        m.get(&t, "/v3/contact_lists").await;
    }
    let j: Value = m
        .http
        .get(m.url("/__postie/journal"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(j["entries"].as_array().unwrap().len(), 5, "bounded");
    assert!(j["total"].as_u64().unwrap() >= 11);
    let text = j.to_string();
    assert!(
        !text.contains(&t) && !text.contains(SECRET) && !text.contains("code="),
        "no secrets in the journal"
    );
    // Export, reset, import.
    let t2 = m.login("contact_data").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    m.post(
        &t2,
        "/v3/contacts/sign_up_form",
        json!({"email_address": "keep@example.com", "list_memberships": [GENERAL]}),
    )
    .await;
    let export = m
        .http
        .get(m.url("/__postie/state"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    m.http.post(m.url("/__postie/reset")).send().await.unwrap();
    assert_eq!(
        m.get(&t2, "/v3/contacts?email=keep@example.com").await.1["contacts"],
        json!([])
    );
    let r = m
        .http
        .put(m.url("/__postie/state"))
        .body(export)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        m.get(&t2, "/v3/contacts?email=keep@example.com").await.1["contacts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        m.http
            .put(m.url("/__postie/state"))
            .body("{nope")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mock.json");
    let m = start_with(config(true).with_state_file(file.clone()));
    let t = access(&m).await;
    m.post(
        &t,
        "/v3/contacts/sign_up_form",
        json!({"email_address": "persist@example.com", "list_memberships": [GENERAL]}),
    )
    .await;
    let (s, _) = m
        .post(&t, "/v3/contact_tags", json!({"name": "Kept"}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Kept too", "type": "string"}),
        )
        .await;
    assert_eq!(s, 201);
    drop(m);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let m = start_with(config(true).with_state_file(file));
    // Same key, same simulation: the old token still works and the contact is there.
    let (s, l) = m.get(&t, "/v3/contacts?email=persist@example.com").await;
    assert_eq!((s, l["contacts"].as_array().map(Vec::len)), (200, Some(1)));
    // Tags and custom fields are journaled like the rest.
    let (_, tags) = m.get(&t, "/v3/contact_tags").await;
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "Kept"),
        "{tags}"
    );
    let (_, fields) = m.get(&t, "/v3/contact_custom_fields").await;
    assert!(
        fields["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["label"] == "Kept too"),
        "{fields}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sign_ups_distinct_and_same_email() {
    let m = start(true);
    let t = access(&m).await;
    let (_, before) = m.get(&t, "/v3/contacts?include_count=true&limit=1").await;
    let before = before["contacts_count"].as_u64().unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (http, url, t) = (
            m.http.clone(),
            m.url("/v3/contacts/sign_up_form"),
            t.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http.post(url).bearer_auth(t).json(&json!({"email_address": format!("c{i}@example.com"), "list_memberships": [GENERAL]})).send().await.unwrap().status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    let (_, after) = m.get(&t, "/v3/contacts?include_count=true&limit=1").await;
    assert_eq!(after["contacts_count"].as_u64().unwrap(), before + 64);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (http, url, t) = (
            m.http.clone(),
            m.url("/v3/contacts/sign_up_form"),
            t.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(t).json(&json!({"email_address": "same@example.com", "first_name": format!("N{i}"), "list_memberships": [GENERAL]})).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let b = task.await.unwrap();
        created += usize::from(b["action"] == "created");
        ids.insert(b["contact_id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1));
    let (_, l) = m
        .get(&t, "/v3/contacts?email=same@example.com&status=all")
        .await;
    assert_eq!(l["contacts"].as_array().unwrap().len(), 1);
}

#[test]
fn standalone_mock_prints_its_url_and_stops_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
        .args([
            "mock",
            "--port",
            "0",
            "--client",
            "harness:hsecret:http://127.0.0.1:9/cb",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    let mut rest = String::new();
    for _ in 0..3 {
        out.read_line(&mut rest).unwrap();
    }
    assert!(
        rest.contains("client harness") && !rest.contains("hsecret") && !rest.contains(SECRET),
        "{rest}"
    );
    let url = first.trim().trim_start_matches("listening on ").to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /__postie/clock HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
}

#[test]
fn bundled_collection_runs_green_against_the_in_process_mock() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("collections/constant_contact.yaml"),
        dir.path().join("cc.yaml"),
    )
    .unwrap();
    for flow in [
        "documented",
        "sign_up_form",
        "lookup_then_write",
        "bulk_import",
        // Custom fields, tags, an export downloaded as CSV, a scheduled campaign; twice, as a
        // sync runs again.
        "crm_sync",
        "crm_sync",
    ] {
        let run = crate::common::run_postie(
            dir.path(),
            &["run", "cc.yaml", "--mock", "--flow", flow],
            &[],
            None,
        );
        assert_eq!(run.code, 0, "{flow}: {}", run.all());
    }
    // The same simulated account carries over between invocations.
    let run = crate::common::run_postie(
        dir.path(),
        &["send", "cc.yaml", "find_contact", "--mock"],
        &[],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("ada.byron@example.com"),
        "{}",
        run.stdout
    );
    let run = crate::common::run_postie(
        dir.path(),
        &["send", "cc.yaml", "update_contact_careless", "--mock"],
        &[],
        None,
    );
    assert_eq!(
        run.code,
        1,
        "the PUT guard refuses without --yes when no one can answer: {}",
        run.all()
    );
    assert!(
        run.stderr.contains("PUT guard") && run.stderr.contains("- first_name: \"Ada\""),
        "{}",
        run.stderr
    );
}

/// A standard OAuth2 client library (the `oauth2` crate, unchanged, with its default Basic client
/// authentication) against the mock: authorization code + PKCE, refresh, and the device flow.
#[tokio::test(flavor = "multi_thread")]
async fn the_oauth2_crate_runs_against_the_mock_unchanged() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
        PkceCodeChallenge, RedirectUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
        TokenUrl,
    };
    let mut cfg = config(true);
    cfg.lifetimes.device_interval_s = 1;
    let m = start_with(cfg);
    let http = m.http.clone();
    // The library's HTTP hook: plain reqwest, no redirects.
    let client_fn = move |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let (parts, body) = req.into_parts();
            let mut b = http.request(parts.method, parts.uri.to_string()).body(body);
            for (k, v) in &parts.headers {
                b = b.header(k, v);
            }
            let r = b.send().await?;
            let mut out = oauth2::http::Response::builder().status(r.status());
            for (k, v) in r.headers() {
                out = out.header(k, v);
            }
            Ok::<_, reqwest::Error>(out.body(r.bytes().await?.to_vec()).expect("valid response"))
        }
    };
    let client = BasicClient::new(ClientId::new(CID.into()))
        .set_client_secret(ClientSecret::new(SECRET.into()))
        .set_auth_uri(AuthUrl::new(m.url("/oauth2/default/v1/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(m.url("/oauth2/default/v1/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("contact_data".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let r = m.http.get(url.as_str()).send().await.unwrap();
    let p = params_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(&p["state"], csrf.secret());
    let token = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&client_fn)
        .await
        .unwrap();
    assert_eq!(
        token.expires_in(),
        Some(std::time::Duration::from_secs(86400))
    );
    let access = token.access_token().secret().clone();
    assert_eq!(m.get(&access, "/v3/contact_lists").await.0, 200);
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&client_fn)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret(),
        "rotating"
    );
    // The old refresh token is rejected with the error the library understands.
    let err = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&client_fn)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid_grant") || format!("{err:?}").contains("InvalidGrant"),
        "{err:?}"
    );
    // Device flow (auto-approved): the library polls until it gets tokens.
    let device = BasicClient::new(ClientId::new(PUBLIC.into()))
        .set_token_uri(TokenUrl::new(m.url("/oauth2/default/v1/token")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(m.url("/oauth2/default/v1/device/authorize")).unwrap(),
        );
    let details: StandardDeviceAuthorizationResponse = device
        .exchange_device_code()
        .add_scope(Scope::new("contact_data".into()))
        .request_async(&client_fn)
        .await
        .unwrap();
    let token = device
        .exchange_device_access_token(&details)
        .request_async(&client_fn, tokio::time::sleep, None)
        .await
        .unwrap();
    assert_eq!(
        m.get(token.access_token().secret(), "/v3/contact_lists")
            .await
            .0,
        200
    );
}

/// Malformed and mistyped input never makes the mock panic or answer 5xx; errors are JSON.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_gets_vendor_errors_never_a_5xx() {
    let m = start(true);
    let t = access(&m).await;
    let weird = [
        json!(null),
        json!(5),
        json!("text"),
        json!([]),
        json!({"email_address": 5, "create_source": ["Account"], "update_source": {}}),
        json!({"email_address": {"address": ["x"]}, "first_name": 7, "birthday_month": "twelve", "birthday_day": -1, "anniversary": 20200101}),
        json!({"list_memberships": "not-a-list", "phone_numbers": [null, 1], "street_addresses": ["x"], "custom_fields": [1], "notes": [7], "taggings": [1, null], "sms_channel": "sms"}),
        json!({"import_data": "rows", "list_ids": [1, 2]}),
        json!({"import_data": [1, "x"], "list_ids": [GENERAL]}),
        json!({"source": [], "list_ids": "x", "exclude": 5}),
        json!({"source": {"contact_ids": "x", "list_ids": [null], "all_active_contacts": "yes"}, "list_ids": [VIP]}),
        json!({"contact_ids": [1], "list_ids": [GENERAL]}),
        json!({"name": ["x"], "favorite": "yes", "description": 3}),
        json!({"email_address": "a@b.io", "list_memberships": [GENERAL], "street_address": "home", "phone_number": 5}),
    ];
    let id = uuid::Uuid::new_v4();
    let routes = [
        ("POST", "/v3/contacts".to_string()),
        ("PUT", format!("/v3/contacts/{id}")),
        ("POST", "/v3/contacts/sign_up_form".to_string()),
        ("POST", "/v3/contact_lists".to_string()),
        ("PUT", format!("/v3/contact_lists/{GENERAL}")),
        ("POST", "/v3/activities/contacts_json_import".to_string()),
        ("POST", "/v3/activities/add_list_memberships".to_string()),
        ("POST", "/v3/activities/remove_list_memberships".to_string()),
        ("POST", "/v3/activities/contact_delete".to_string()),
        ("POST", "/v3/activities/contacts_file_import".to_string()),
        ("POST", "/v3/token_info".to_string()),
    ];
    for (method, path) in &routes {
        for body in &weird {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = m
                .http
                .request(method.clone(), m.url(path))
                .bearer_auth(&t)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(status < 500, "{method} {path} {body} → {status} {text}");
            if status >= 400 {
                assert!(
                    serde_json::from_str::<Value>(&text).is_ok(),
                    "{method} {path} {body} → non-JSON error {text}"
                );
            }
        }
    }
    // Raw garbage, odd content types, bad query values.
    for (ct, body) in [
        ("application/json", "{\"a\":"),
        ("application/json", "\u{0}\u{1}"),
        ("text/csv", "a,b"),
        ("multipart/form-data; boundary=x", "--x\r\nnonsense"),
    ] {
        for path in [
            "/v3/contacts",
            "/v3/activities/contacts_file_import",
            "/oauth2/default/v1/token",
            "/oauth2/default/v1/device/authorize",
        ] {
            let r = m
                .http
                .post(m.url(path))
                .bearer_auth(&t)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{path} {ct} → {}", r.status());
        }
    }
    for q in [
        "cursor=%%%",
        "cursor=bm9wZQ",
        "limit=-1",
        "lists=a,b",
        "updated_after=yesterday",
        "include_count=maybe",
        "email=",
    ] {
        let (s, _) = m.get(&t, &format!("/v3/contacts?{q}")).await;
        assert!(s < 500, "{q} → {s}");
    }
}

#[test]
fn config_files_load_with_relative_paths_and_errors_are_located() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = MockConfig::load(&root.join("mocks/constant_contact.yaml")).unwrap();
    assert_eq!(cfg.seed_lists.len(), 3);
    assert!(cfg.key_pem.contains("PRIVATE KEY"));
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("mocks/constant_contact.yaml"))
        .unwrap()
        .replace("journal_size: 1000", "journal_sise: 1000");
    std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
    let err = MockConfig::load(&dir.path().join("bad.yaml")).unwrap_err();
    assert!(
        err.contains("bad.yaml:") && err.contains("unknown field `journal_sise`"),
        "{err}"
    );
    let run = crate::common::run_postie(
        dir.path(),
        &["mock", "--config", "bad.yaml", "--port", "0"],
        &[],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let run = crate::common::run_postie(
        dir.path(),
        &["mock", "--client", "no-secret", "--port", "0"],
        &[],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("expected ID:SECRET:REDIRECT_URI"),
        "{}",
        run.stderr
    );
}

/// `--spec` beside the pack: the pack answers what it implements, the document the rest, both
/// behind the same authorization server; with `--oauth` and no pack, a document's operations
/// take only tokens that server issued.
#[tokio::test(flavor = "multi_thread")]
async fn a_served_document_fills_in_behind_the_same_authorization_server() {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/constant-contact-v3-swagger.yaml");
    let served = || {
        std::sync::Arc::new(postie::mock::engine::spec::SpecServer::load(&spec, 1, true).unwrap())
    };
    for pack in [true, false] {
        let mut cfg = config(true);
        cfg.pack = pack;
        cfg.oauth = !pack;
        cfg.spec = Some(served());
        let m = start_with(cfg);
        // Campaign routes need `campaign_data`, as the vendor's.
        let token = m.login("contact_data campaign_data").await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // Campaign emails are not in the pack; the document answers them.
        let (status, body) = m.get(&token, "/v3/emails").await;
        assert_eq!(status, 200, "pack={pack}: {body}");
        assert!(body["campaigns"].is_array(), "{body}");
        let (status, _) = m.get("not-a-token-it-issued", "/v3/emails").await;
        assert_eq!(status, 401, "pack={pack}");
        // Contacts: the pack's own (seeded account) or the document's made-up list.
        let (status, body) = m.get(&token, "/v3/contacts").await;
        assert_eq!(status, 200, "pack={pack}: {body}");
        assert!(body["contacts"].is_array(), "{body}");
    }
}

// ---- Faults: each kind seen by a real client ----

async fn add_fault(m: &Mock, fault: Value) -> Value {
    let r = m
        .http
        .post(m.url("/__postie/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn journal(m: &Mock) -> Vec<Value> {
    let j: Value = m
        .http
        .get(m.url("/__postie/journal"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    j["entries"].as_array().unwrap().clone()
}

/// The io::ErrorKind somewhere in an error's chain.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_rate_limit_faults_answer_with_the_apis_own_bodies() {
    let m = start(true);
    let token = access(&m).await;
    // Compact text, the second call only (every=2), twice at most.
    add_fault(&m, json!("GET /v3/contacts status=503 every=2 times=2")).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(m.get(&token, "/v3/contacts").await.0);
        }
        v
    };
    assert_eq!(statuses, [200, 503, 200, 503, 200, 200]);
    let (_, body) = {
        m.http
            .delete(m.url("/__postie/faults"))
            .send()
            .await
            .unwrap();
        add_fault(
            &m,
            json!({"route": "/v3/contact_lists/{id}", "status": 500}),
        )
        .await;
        m.get(&token, &format!("/v3/contact_lists/{GENERAL}")).await
    };
    // Constant Contact's error array, not a generic body.
    assert_eq!(body[0]["error_key"], "server_error", "{body}");
    // 429 with Retry-After and the throttled body.
    m.http
        .delete(m.url("/__postie/faults"))
        .send()
        .await
        .unwrap();
    add_fault(&m, json!({"route": "POST *", "rate_limit": 7})).await;
    let r = m
        .http
        .post(m.url("/v3/contacts"))
        .bearer_auth(&token)
        .json(&json!({"email_address": {"address": "a@example.com"}, "create_source": "Account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_key"], "throttled");
    // Nothing was created: the fault answered instead of the handler.
    let (_, list) = m.get(&token, "/v3/contacts?email=a@example.com").await;
    assert_eq!(list["contacts"].as_array().unwrap().len(), 0, "{list}");
    // The journal marks what was injected, and the listing counts it.
    let marked: Vec<Value> = journal(&m)
        .await
        .into_iter()
        .filter(|e| e.get("fault").is_some())
        .collect();
    assert_eq!(marked.len(), 4, "{marked:?}");
    assert!(
        marked[3]["fault"]
            .as_str()
            .unwrap()
            .contains("rate_limit 7s")
    );
    let listed: Value = m
        .http
        .get(m.url("/__postie/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"][0]["applied"], 1);
    // A bad fault is refused whole, saying why.
    let r = m
        .http
        .post(m.url("/__postie/faults"))
        .json(&json!([{"route": "*", "status": 503}, {"route": "*", "stauts": 503}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("stauts"));
    let listed: Value = m
        .http
        .get(m.url("/__postie/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn delay_reset_truncate_and_timeout_reach_the_client() {
    let m = start(true);
    let token = access(&m).await;
    // Delay: the answer comes, later.
    add_fault(&m, json!("GET /v3/contact_lists delay=300ms")).await;
    let t = std::time::Instant::now();
    let (status, _) = m.get(&token, "/v3/contact_lists").await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    m.http
        .delete(m.url("/__postie/faults"))
        .send()
        .await
        .unwrap();

    // Reset: a TCP RST, which the client reports as a reset connection.
    add_fault(&m, json!("GET /v3/contact_lists reset times=1")).await;
    let e = m
        .http
        .get(m.url("/v3/contact_lists"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        io_kind(&e),
        Some(std::io::ErrorKind::ConnectionReset),
        "{e:?}"
    );
    // The next call (times=1) goes through on a new connection.
    assert_eq!(m.get(&token, "/v3/contact_lists").await.0, 200);

    // Truncate: the headers promise more than arrives.
    add_fault(&m, json!("GET /v3/contact_lists truncate times=1")).await;
    let r = m
        .http
        .get(m.url("/v3/contact_lists"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let promised: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(promised > 10);
    let e = r.bytes().await.unwrap_err();
    assert!(e.is_body() || e.is_decode(), "{e:?}");

    // Timeout: no answer at all; the client gives up.
    add_fault(&m, json!("GET /v3/contact_lists timeout=1m")).await;
    let e = m
        .http
        .get(m.url("/v3/contact_lists"))
        .bearer_auth(&token)
        .timeout(std::time::Duration::from_millis(400))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let marked: Vec<String> = journal(&m)
        .await
        .iter()
        .filter_map(|e| e.get("fault").and_then(Value::as_str).map(String::from))
        .collect();
    assert_eq!(marked.len(), 3, "{marked:?}");
    assert!(
        marked[0].contains("delay")
            && marked[1].contains("reset")
            && marked[2].contains("truncate")
    );
    // Stopping the server does not wait for the minute the timeout holds (the test would).
    let t = std::time::Instant::now();
    drop(m);
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_faults_expire_revoke_and_rotate() {
    let m = start(true);
    let set = m.login("contact_data offline_access").await;
    let token = set["access_token"].as_str().unwrap().to_string();
    let refresh = set["refresh_token"].as_str().unwrap().to_string();
    let tokens = |body: Value| {
        let http = m.http.clone();
        let url = m.url("/__postie/tokens");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Expire every token now: the old one fails, a new one works at once.
    let (s, _) = tokens(json!({"expire_access_tokens": true})).await;
    assert_eq!(s, 200);
    assert_eq!(m.get(&token, "/v3/contact_lists").await.0, 401);
    let fresh = access(&m).await;
    assert_eq!(m.get(&fresh, "/v3/contact_lists").await.0, 200);
    // Revoke: the refresh token is refused.
    let (s, body) = tokens(json!({"revoke_refresh_tokens": "all"})).await;
    assert_eq!(s, 200);
    assert!(body["refresh_tokens_revoked"].as_u64().unwrap() >= 1);
    let (s, body) = m
        .token(
            Some((CID, SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // Rotate: the JWKS shows only the new key; old tokens fail, new ones verify against it.
    let jwks = |m: &Mock| {
        let http = m.http.clone();
        let url = m.url("/oauth2/default/v1/keys");
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = jwks(&m).await;
    let (s, body) = tokens(json!({"rotate_signing_key": true})).await;
    assert_eq!(s, 200, "{body}");
    let after = jwks(&m).await;
    assert_ne!(before["keys"][0]["kid"], after["keys"][0]["kid"]);
    assert_eq!(after["keys"][0]["kid"], body["signing_key"]);
    assert_eq!(m.get(&fresh, "/v3/contact_lists").await.0, 401);
    let newest = access(&m).await;
    assert_eq!(m.get(&newest, "/v3/contact_lists").await.0, 200);
    let header = jsonwebtoken::decode_header(&newest).unwrap();
    assert_eq!(
        header.kid.as_ref(),
        after["keys"][0]["kid"].as_str().map(String::from).as_ref()
    );
    let routes: Vec<String> = journal(&m)
        .await
        .iter()
        .map(|e| e["route"].as_str().unwrap().to_string())
        .collect();
    assert!(
        routes.iter().any(|r| r == "fault.tokens_expired"),
        "{routes:?}"
    );
    assert!(
        routes.iter().any(|r| r == "fault.key_rotated"),
        "{routes:?}"
    );
    // Unknown fields are refused.
    let (s, body) = tokens(json!({"expire": true})).await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_a_served_document_use_its_error_shape_and_config_faults_load() {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/oai-petstore-expanded.swagger.json");
    let mut cfg = config(true);
    cfg.pack = false;
    cfg.spec = Some(std::sync::Arc::new(
        postie::mock::engine::spec::SpecServer::load(&spec, 1, true).unwrap(),
    ));
    cfg.faults.push(
        postie::mock::engine::faults::parse_compact("GET /api/pets/{id} status=500").unwrap(),
    );
    let m = start_with(cfg);
    let r = m.http.get(m.url("/api/pets/3")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    // Petstore's `default` response: {code, message}.
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 500, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("fault"),
        "{body}"
    );

    // `faults:` in a configuration file is checked when it loads, naming the file and entry.
    let dir = tempfile::tempdir().unwrap();
    let bundled = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mocks/constant_contact.yaml"),
    )
    .unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mocks/dev_signing_key.pem"),
        dir.path().join("dev_signing_key.pem"),
    )
    .unwrap();
    let without_seed: String = bundled
        .lines()
        .filter(|l| !l.contains(".json") && *l != "seed:" && !l.starts_with("  # The custom field"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("cc.yaml");
    std::fs::write(
        &path,
        format!("{without_seed}\nfaults:\n  - route: GET /v3/contacts\n    status: 503\n  - route: \"*\"\n    delay: soon\n"),
    )
    .unwrap();
    let e = MockConfig::load(&path).unwrap_err();
    assert!(e.contains("cc.yaml: faults[1]: delay"), "{e}");
}

#[tokio::test]
async fn every_vendor_operation_answers_behind_the_pack() {
    // What the pack does not simulate, the vendor's own Swagger answers: validated, behind the
    // same authorization server, with the vendor's error shapes.
    let m = start(true);
    m.http
        .post(m.url("/__postie/clock"))
        .json(&json!({"set": "2030-05-06T07:08:09Z"}))
        .send()
        .await
        .unwrap();
    let t = m.login("contact_data account_read campaign_data").await;
    let token = t["access_token"].as_str().unwrap();
    let (status, summary) = m.get(token, "/v3/account/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert!(summary["organization_name"].is_string(), "{summary}");
    // No token: the vendor's 401, as for the simulated routes.
    let r = m
        .http
        .get(m.url("/v3/account/summary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error_key": "unauthorized", "error_message": "Unauthorized"})
    );
    // Named sub-resources are not taken for a contact id.
    let (status, counts) = m.get(token, "/v3/contacts/counts").await;
    assert_eq!(status, 200, "{counts}");
    assert!(counts["total"].is_u64(), "{counts}");
    // Operations the pack does not simulate answer by the contract: a cross-reference lookup...
    let (status, xrefs) = m
        .get(token, "/v3/contact_lists/list_id_xrefs?sequence_ids=1,2")
        .await;
    assert_eq!(status, 200, "{xrefs}");
    assert!(xrefs["xrefs"].is_array(), "{xrefs}");
    // ...and a request the contract refuses gets the vendor's error array.
    let (status, err) = m.get(token, "/v3/contact_lists/list_id_xrefs").await;
    assert_eq!(status, 400, "{err}");
    assert!(err[0]["error_key"].is_string(), "{err}");
    // Paths the contract does not have: the pack's 404.
    let (status, err) = m.get(token, "/v3/no_such_thing").await;
    assert_eq!(status, 404);
    assert_eq!(err[0]["error_key"], "not_found", "{err}");
}

#[tokio::test]
async fn schemathesis_finds_nothing_in_the_pack_and_the_vendor_contract() {
    // All 128 operations of the vendor's Swagger against the default mock (the pack where it
    // simulates, the contract elsewhere), with a real token: no 5xx, no response its schema
    // rejects.
    let st = crate::common::tool(
        ".venv/bin/st",
        "schemathesis (PyPI, in ./.venv)",
        "python3 -m venv .venv && .venv/bin/pip install -r tests/servers/requirements.txt",
    );
    let m = start(true);
    let t = m
        .login("contact_data account_read account_update campaign_data offline_access")
        .await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/constant-contact-v3-swagger.yaml");
    let url = m.url("/v3");
    let out = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new(&st)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .args(["run", spec.to_str().unwrap(), "--url", &url])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", "2", "--seed", "1", "--no-color"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Tested: 128"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_fields_and_tags_live_on_contacts() {
    let m = start(true);
    let t = access(&m).await;
    // Custom fields: created with a derived name, 409 on a label in use, typed values on contacts.
    let (s, size) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Shoe size", "type": "number"}),
        )
        .await;
    assert_eq!(s, 201, "{size}");
    assert_eq!(size["name"], "Shoe_size");
    assert_eq!(size["version"], 1);
    let size_id = size["custom_field_id"].as_str().unwrap().to_string();
    let (s, dup) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "shoe size", "type": "string"}),
        )
        .await;
    assert_eq!(s, 409, "{dup}");
    assert_cc_error(&dup, "contact_custom_fields.api.conflict");
    let (s, bad) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "x".repeat(51), "type": "colour"}),
        )
        .await;
    assert_eq!(s, 400, "{bad}");
    let text = bad[0]["error_message"].as_str().unwrap();
    assert!(
        text.contains("label exceeds") && text.contains("type does not"),
        "{bad}"
    );
    // Tags: created, 409 on a name in use.
    let (s, vip) = m.post(&t, "/v3/contact_tags", json!({"name": "VIP"})).await;
    assert_eq!(s, 201, "{vip}");
    let vip_id = vip["tag_id"].as_str().unwrap().to_string();
    let (s, dup) = m.post(&t, "/v3/contact_tags", json!({"name": "vip"})).await;
    assert_eq!(s, 409, "{dup}");
    assert_cc_error(&dup, "contact_tags.api.conflict");
    // A contact with a value for the field and the tag; unknown ones and wrong types are refused.
    let contact = |email: &str, value: &str, field: &str, tag: &str| {
        json!({"email_address": {"address": email, "permission_to_send": "explicit"},
               "create_source": "Account",
               "custom_fields": [{"custom_field_id": field, "value": value}],
               "taggings": [tag]})
    };
    let (s, c) = m
        .post(
            &t,
            "/v3/contacts",
            contact("cf@example.com", "42", &size_id, &vip_id),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["contact_id"].as_str().unwrap().to_string();
    let unknown = uuid::Uuid::new_v4().to_string();
    for (body, says) in [
        (
            contact("u1@example.com", "42", &unknown, &vip_id),
            "custom_field_id",
        ),
        (
            contact("u2@example.com", "42", &size_id, &unknown),
            "taggings",
        ),
        (
            contact("u3@example.com", "forty", &size_id, &vip_id),
            "not a valid number",
        ),
    ] {
        let (s, e) = m.post(&t, "/v3/contacts", body).await;
        assert_eq!(s, 400, "{e}");
        assert_cc_error(&e, "contacts.api.validation.error");
        assert!(e.to_string().contains(says), "{says}: {e}");
    }
    let (_, got) = m
        .get(
            &t,
            &format!("/v3/contacts/{cid}?include=custom_fields,taggings"),
        )
        .await;
    assert_eq!(
        got["custom_fields"],
        json!([{"custom_field_id": size_id, "value": "42"}])
    );
    assert_eq!(got["taggings"], json!([vip_id]));
    // The tag counts its contacts; the contacts filter finds them by tag.
    let (_, tag) = m
        .get(&t, &format!("/v3/contact_tags/{vip_id}?include_count=true"))
        .await;
    assert_eq!(tag["contacts_count"], 1, "{tag}");
    let (_, listed) = m.get(&t, "/v3/contact_tags?include_count=true").await;
    let listed_vip = listed["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["tag_id"] == vip_id.as_str())
        .map(|g| g["contacts_count"].clone());
    assert_eq!(
        listed_vip,
        Some(json!(1)),
        "the listing counts too: {listed}"
    );
    let (_, found) = m.get(&t, &format!("/v3/contacts?tags={vip_id}")).await;
    let ids: Vec<&str> = found["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [cid.as_str()]);
    // Filters the mock does not simulate are refused by name, never ignored.
    let (s, e) = m.get(&t, "/v3/contacts?segment_id=7").await;
    assert_eq!(s, 400);
    assert!(e.to_string().contains("segment_id"), "{e}");
    // Counts by consent state.
    let (s, counts) = m
        .get(&t, "/v3/contacts/counts?include=new_subscriber")
        .await;
    assert_eq!(s, 200, "{counts}");
    assert!(counts["total"].as_u64().unwrap() >= 1, "{counts}");
    assert!(counts["explicit"].as_u64().unwrap() >= 1, "{counts}");
    assert!(counts["new_subscriber"].as_u64().unwrap() >= 1, "{counts}");
    // Deleting the field takes its value off the contact.
    let r = m
        .http
        .delete(m.url(&format!("/v3/contact_custom_fields/{size_id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, got) = m
        .get(&t, &format!("/v3/contacts/{cid}?include=custom_fields"))
        .await;
    assert_eq!(got["custom_fields"], json!([]), "{got}");
    // Deleting the tag is an activity; when it completes, the contact is untagged.
    let r = m
        .http
        .delete(m.url(&format!("/v3/contact_tags/{vip_id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let activity: Value = r.json().await.unwrap();
    assert_eq!(activity["state"], "initialized", "{activity}");
    let aid = activity["activity_id"].as_str().unwrap().to_string();
    m.http
        .post(m.url("/__postie/clock"))
        .json(&json!({"advance": "1m"}))
        .send()
        .await
        .unwrap();
    let (_, done) = m.get(&t, &format!("/v3/activities/{aid}")).await;
    assert_eq!(done["state"], "completed", "{done}");
    let (_, got) = m
        .get(&t, &format!("/v3/contacts/{cid}?include=taggings"))
        .await;
    assert_eq!(got["taggings"], json!([]), "{got}");
    let (s, _) = m.get(&t, &format!("/v3/contact_tags/{vip_id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_field_a_tagged_contact_an_export_and_its_csv() {
    // The SDK-style sequence: create a custom field, a contact with a value for it and a tag,
    // export, wait for the activity, download, read the CSV.
    let m = start(true);
    let t = access(&m).await;
    let (_, field) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Favourite colour", "type": "string"}),
        )
        .await;
    let field_id = field["custom_field_id"].as_str().unwrap().to_string();
    let (_, tag) = m
        .post(&t, "/v3/contact_tags", json!({"name": "Export me"}))
        .await;
    let tag_id = tag["tag_id"].as_str().unwrap().to_string();
    let (s, c) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "csv@example.com", "permission_to_send": "explicit"},
                   "first_name": "Ada, \"the first\"", "create_source": "Account",
                   "list_memberships": [GENERAL],
                   "custom_fields": [{"custom_field_id": field_id, "value": "teal"}],
                   "taggings": [tag_id]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    // Field names are checked; the export filters by tag.
    let (s, e) = m
        .post(
            &t,
            "/v3/activities/contact_exports",
            json!({"fields": ["email_address", "shoe_size"]}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("shoe_size"), "{e}");
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contact_exports",
            json!({"tag_ids": [tag_id], "fields": ["email_address", "first_name", "list_memberships", "tags", "cf:Favourite_colour"]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["state"], "initialized");
    let aid = a["activity_id"].as_str().unwrap().to_string();
    // Not ready yet: the results are not there.
    let (s, _) = m.get(&t, &format!("/v3/contact_exports/{aid}")).await;
    assert_eq!(s, 404);
    m.http
        .post(m.url("/__postie/clock"))
        .json(&json!({"advance": "1m"}))
        .send()
        .await
        .unwrap();
    let (_, done) = m.get(&t, &format!("/v3/activities/{aid}")).await;
    assert_eq!(done["state"], "completed", "{done}");
    let results = done["_links"]["results"]["href"].as_str().unwrap();
    assert_eq!(results, format!("/v3/contact_exports/{aid}"));
    let r = m
        .http
        .get(m.url(results))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv");
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv,
        "email_address,first_name,list_memberships,tags,cf:Favourite_colour\r\n\
         csv@example.com,\"Ada, \"\"the first\"\"\",General Interest,Export me,teal\r\n"
    );
    // An export's total, read from the kept counts for a status or one list alone, is what a
    // walk over the contacts counts (a date bound forces the walk).
    for (body, query) in [
        (json!({}), String::new()),
        (json!({"status": "active"}), "&status=active".to_string()),
        (json!({"status": "deleted"}), "&status=deleted".to_string()),
        (json!({"list_ids": [GENERAL]}), format!("&lists={GENERAL}")),
        (
            json!({"list_ids": [GENERAL], "status": "active"}),
            format!("&lists={GENERAL}&status=active"),
        ),
    ] {
        let (s, a) = m
            .post(&t, "/v3/activities/contact_exports", body.clone())
            .await;
        assert_eq!(s, 201, "{a}");
        let (_, walked) = m
            .get(
                &t,
                &format!(
                    "/v3/contacts?limit=1&include_count=true&updated_before=2100-01-01T00:00:00Z{query}"
                ),
            )
            .await;
        let walked = walked["contacts_count"].as_u64().unwrap().max(1);
        assert_eq!(a["status"]["items_total_count"], walked, "{body}: {a}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_tagging_and_bulk_deletes_are_activities() {
    let m = start(true);
    let t = access(&m).await;
    let advance = || async {
        m.http
            .post(m.url("/__postie/clock"))
            .json(&json!({"advance": "1m"}))
            .send()
            .await
            .unwrap();
    };
    let (_, list) = m
        .post(&t, "/v3/contact_lists", json!({"name": "Bulk tagging"}))
        .await;
    let list_id = list["list_id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for e in ["b1@example.com", "b2@example.com"] {
        let (s, c) = m
            .post(
                &t,
                "/v3/contacts",
                json!({"email_address": {"address": e}, "create_source": "Account", "list_memberships": [list_id]}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        ids.push(c["contact_id"].as_str().unwrap().to_string());
    }
    let (_, tag) = m
        .post(&t, "/v3/contact_tags", json!({"name": "Bulk"}))
        .await;
    let tag_id = tag["tag_id"].as_str().unwrap().to_string();
    let taggings = |id: &str| {
        let id = id.to_string();
        let m = &m;
        let t = t.clone();
        async move {
            m.get(&t, &format!("/v3/contacts/{id}?include=taggings"))
                .await
                .1["taggings"]
                .clone()
        }
    };
    // Unknown tags are refused, naming the field.
    let (s, e) = m
        .post(
            &t,
            "/v3/activities/contacts_taggings_add",
            json!({"source": {"list_ids": [list_id]}, "tag_ids": [uuid::Uuid::new_v4().to_string()]}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("tag_ids"), "{e}");
    // Tag everyone on the list; then untag one of them by id.
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contacts_taggings_add",
            json!({"source": {"list_ids": [list_id]}, "tag_ids": [tag_id]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    advance().await;
    assert_eq!(taggings(&ids[0]).await, json!([tag_id]));
    assert_eq!(taggings(&ids[1]).await, json!([tag_id]));
    let (s, _) = m
        .post(
            &t,
            "/v3/activities/contacts_taggings_remove",
            json!({"source": {"contact_ids": [ids[0]]}, "tag_ids": [tag_id]}),
        )
        .await;
    assert_eq!(s, 201);
    advance().await;
    assert_eq!(taggings(&ids[0]).await, json!([]));
    assert_eq!(taggings(&ids[1]).await, json!([tag_id]));
    // Bulk deletes: tags (untagging everyone), custom fields, lists.
    let (s, _) = m
        .post(
            &t,
            "/v3/activities/contacts_tags_delete",
            json!({"tag_ids": [tag_id]}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, field) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Gone soon", "type": "string"}),
        )
        .await;
    let field_id = field["custom_field_id"].as_str().unwrap().to_string();
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/custom_fields_delete",
            json!({"custom_field_ids": [field_id]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/list_delete",
            json!({"list_ids": [list_id]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    advance().await;
    assert_eq!(taggings(&ids[1]).await, json!([]));
    assert_eq!(
        m.get(&t, &format!("/v3/contact_tags/{tag_id}")).await.0,
        404
    );
    assert_eq!(
        m.get(&t, &format!("/v3/contact_custom_fields/{field_id}"))
            .await
            .0,
        404
    );
    let (_, l) = m.get(&t, &format!("/v3/contact_lists/{list_id}")).await;
    assert!(l["deleted_at"].is_string(), "{l}");
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_count_and_refuse_as_the_vendor_does() {
    let m = start(true);
    let t = access(&m).await;
    let (_, field) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Member level", "type": "string"}),
        )
        .await;
    let field_id = field["custom_field_id"].as_str().unwrap().to_string();
    // A contact who unsubscribes themselves.
    let (_, c) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "gone@example.com", "permission_to_send": "explicit"}, "create_source": "Contact"}),
        )
        .await;
    let gone = c["contact_id"].as_str().unwrap().to_string();
    let (s, c) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/contacts/{gone}"),
            Some(json!({"email_address": {"address": "gone@example.com", "permission_to_send": "unsubscribed"}, "update_source": "Contact"})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let e = &c["email_address"];
    assert_eq!(e["permission_to_send"], "unsubscribed");
    assert_eq!(e["opt_out_source"], "Contact", "{c}");
    assert!(e["opt_out_date"].is_string(), "{c}");
    // The account cannot opt them back in.
    let (_, c) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/contacts/{gone}"),
            Some(json!({"email_address": {"address": "gone@example.com", "permission_to_send": "explicit"}, "update_source": "Account"})),
        )
        .await;
    assert_eq!(
        c["email_address"]["permission_to_send"], "unsubscribed",
        "{c}"
    );
    // A partial address with a null part is an address.
    let (s, c) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "partial@example.com"}, "create_source": "Account",
                   "street_addresses": [{"kind": "home", "street": "1 Main St", "city": null}]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    // The import: a partial address, a cf: column, an unknown column, an invalid email, and the
    // contact who unsubscribed themselves (updated, not added to the list).
    let rows = json!([
        {"email": "addr@example.com", "street": "2 High St", "city": "Bath"},
        {"email": "cf@example.com", "cf:Member_level": "gold"},
        {"email": "x@example.com", "custom_fields": [{"custom_field_id": field_id}]},
        {"email": "not-an-email"},
        {"email": "gone@example.com", "first_name": "Gone"},
    ]);
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": [VIP]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    m.advance("10s").await;
    let (_, a) = m
        .get(
            &t,
            &format!("/v3/activities/{}", a["activity_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(a["state"], "completed", "{a}");
    let st = &a["status"];
    assert_eq!(st["person_count"], 3, "{a}");
    assert_eq!(st["correctable_count"], 1, "{a}");
    assert_eq!(st["cannot_add_to_list_count"], 1, "{a}");
    let errors = a["activity_errors"].to_string();
    assert!(
        errors.contains("Row 3: `custom_fields` is not an import field"),
        "{a}"
    );
    assert!(
        errors.contains("Row 4: email `not-an-email` is not valid"),
        "{a}"
    );
    let find = |email: &'static str| {
        let m = &m;
        let t = t.clone();
        async move {
            m.get(
                &t,
                &format!("/v3/contacts?email={email}&status=all&include=street_addresses,custom_fields,list_memberships"),
            )
            .await
            .1["contacts"][0]
                .clone()
        }
    };
    let addr = find("addr@example.com").await;
    assert_eq!(addr["street_addresses"][0]["city"], "Bath", "{addr}");
    let cf = find("cf@example.com").await;
    assert_eq!(
        cf["custom_fields"],
        json!([{"custom_field_id": field_id, "value": "gold"}])
    );
    let gone_now = find("gone@example.com").await;
    assert_eq!(gone_now["first_name"], "Gone");
    assert_eq!(gone_now["list_memberships"], json!([]), "{gone_now}");
    // Resubscribe: a confirmation email once (409 after), lists added, still unsubscribed until
    // the contact confirms.
    let path = format!("/v3/contacts/resubscribe/{gone}");
    let (s, b) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &path,
            Some(json!({"list_ids": [VIP]})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &path,
            Some(json!({"list_ids": [VIP]})),
        )
        .await;
    assert_eq!(s, 409);
    let waiting = find("gone@example.com").await;
    assert_eq!(
        waiting["email_address"]["permission_to_send"],
        "unsubscribed"
    );
    assert_eq!(waiting["list_memberships"], json!([VIP]), "{waiting}");
    let r = m
        .http
        .post(m.url(&format!("/__postie/contacts/{gone}/confirm_resubscribe")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let back = find("gone@example.com").await;
    assert_eq!(
        back["email_address"]["permission_to_send"], "explicit",
        "{back}"
    );
    assert_eq!(back["email_address"]["opt_in_source"], "Contact", "{back}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activities_page_and_the_token_endpoint_has_its_own_limit() {
    let mut cfg = config(true);
    cfg.rate_limit = true;
    cfg.file.rate_limit.per_second = 1000;
    let m = start_with(cfg);
    let t = access(&m).await;
    // 60 activities: the default page is 50, and `_links.next` leads to the rest.
    for i in 0..60 {
        let (s, _) = m
            .post(
                &t,
                "/v3/activities/contacts_json_import",
                json!({"import_data": [{"email": format!("a{i}@example.com")}], "list_ids": [VIP]}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, first) = m.get(&t, "/v3/activities").await;
    assert_eq!(first["activities"].as_array().unwrap().len(), 50);
    let next = first["_links"]["next"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, rest) = m.get(&t, &next).await;
    assert_eq!(rest["activities"].as_array().unwrap().len(), 10, "{rest}");
    assert!(rest.get("_links").is_none(), "{rest}");
    // Token requests for one application: three within a few milliseconds span at most two
    // one-second windows, so with one allowed a second at least one is throttled.
    m.advance("2s").await;
    let form = [("grant_type", "client_credentials")];
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(m.token(Some((CID, SECRET)), &form).await);
    }
    assert_ne!(answers[0].0, 429, "{answers:?}");
    let throttled = answers
        .iter()
        .find(|(s, _)| *s == 429)
        .unwrap_or_else(|| panic!("{answers:?}"));
    assert_eq!(
        throttled.1,
        json!({"error_key": "throttled", "error_message": "Too Many Requests"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_never_reflect_request_data_unescaped() {
    let m = start(false);
    let evil = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let pages = vec![
        // The device page echoes the code it is given.
        m.http
            .get(m.url("/activate"))
            .query(&[("user_code", evil)])
            .send()
            .await
            .unwrap(),
        // The consent page lists the scopes asked for.
        m.authorize(CID, &format!("contact_data {evil}"), &[]).await,
        // Error pages: an unknown client, a bad redirect.
        m.authorize(evil, "contact_data", &[]).await,
        m.http
            .get(m.url("/oauth2/default/v1/authorize"))
            .query(&[
                ("client_id", CID),
                ("redirect_uri", evil),
                ("response_type", "code"),
                ("scope", "contact_data"),
                ("state", evil),
            ])
            .send()
            .await
            .unwrap(),
        m.http
            .post(m.url("/activate"))
            .form(&[("user_code", evil), ("decision", "allow")])
            .send()
            .await
            .unwrap(),
        m.http
            .post(m.url("/oauth2/default/v1/authorize/decision"))
            .form(&[("consent", evil), ("decision", "allow")])
            .send()
            .await
            .unwrap(),
    ];
    let mut html_pages = 0;
    for r in pages {
        let status = r.status();
        let is_html = r
            .headers()
            .get("content-type")
            .is_some_and(|c| c.to_str().unwrap().starts_with("text/html"));
        let body = r.text().await.unwrap();
        if is_html {
            html_pages += 1;
            assert!(
                !body.contains("<script>alert")
                    && !body.contains("<img src=x")
                    && !body.contains("onerror=alert(2)>"),
                "{status}: {body}"
            );
        }
    }
    assert!(html_pages >= 4, "the vectors reached the HTML pages");
}

#[tokio::test]
async fn the_admin_area_can_require_a_token() {
    let mut cfg = config(true);
    cfg.admin_token = Some("adm-9f8e7d6c5b4a".into());
    let m = start_with(cfg);
    let r = m.http.get(m.url("/__postie/clock")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = m
        .http
        .post(m.url("/__postie/reset"))
        .bearer_auth("wrong-token-0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = m
        .http
        .get(m.url("/__postie/clock"))
        .bearer_auth("adm-9f8e7d6c5b4a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The API itself does not need it.
    let t = access(&m).await;
    assert_eq!(m.get(&t, "/v3/contact_lists").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_select_contacts_by_list_tag_and_custom_field() {
    let m = start(true);
    let t = access(&m).await;
    let (_, tag) = m.post(&t, "/v3/contact_tags", json!({"name": "Seg"})).await;
    let tag_id = tag["tag_id"].as_str().unwrap().to_string();
    let (_, field) = m
        .post(
            &t,
            "/v3/contact_custom_fields",
            json!({"label": "Tier", "type": "string"}),
        )
        .await;
    let field_id = field["custom_field_id"].as_str().unwrap().to_string();
    let mut ids = std::collections::HashMap::new();
    for (email, tagged, tier, list) in [
        ("s1@example.com", true, "gold", GENERAL),
        ("s2@example.com", true, "silver", GENERAL),
        ("s3@example.com", false, "gold", GENERAL),
        ("s4@example.com", true, "gold", VIP),
    ] {
        let taggings: Vec<&str> = if tagged { vec![&tag_id] } else { vec![] };
        let (s, c) = m
            .post(
                &t,
                "/v3/contacts",
                json!({"email_address": {"address": email}, "create_source": "Account",
                       "list_memberships": [list], "taggings": taggings,
                       "custom_fields": [{"custom_field_id": field_id, "value": tier}]}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        ids.insert(c["contact_id"].as_str().unwrap().to_string(), email);
    }
    // On GENERAL, tagged, and gold: s1 only.
    let criteria = json!({"version": "1.0.0", "criteria": {"type": "and", "group": [
        {"type": "or", "group": [{"source": "list_membership", "field": "list_membership", "op": "contains-any", "const_value": GENERAL}]},
        {"type": "or", "group": [{"source": "tags", "field": "tags", "op": "contains-any", "const_value": tag_id}]},
        {"type": "and", "group": [{"source": "contact", "field": "custom_field", "param": field_id, "op": "is", "const_value": "Gold"}]}
    ]}})
    .to_string();
    let (s, seg) = m
        .post(
            &t,
            "/v3/segments",
            json!({"name": "Gold taggers", "segment_criteria": criteria}),
        )
        .await;
    assert_eq!(s, 201, "{seg}");
    let sid = seg["segment_id"].as_u64().unwrap();
    let (s, dup) = m
        .post(
            &t,
            "/v3/segments",
            json!({"name": "gold taggers", "segment_criteria": criteria}),
        )
        .await;
    assert_eq!(s, 409, "{dup}");
    let (s, bad) = m
        .post(
            &t,
            "/v3/segments",
            json!({"name": "Broken", "segment_criteria": "{\"criteria\": {\"type\": \"or\", \"group\": []}}"}),
        )
        .await;
    assert_eq!(s, 400, "{bad}");
    let (s, found) = m.get(&t, &format!("/v3/contacts?segment_id={sid}")).await;
    assert_eq!(s, 200, "{found}");
    let emails: Vec<&str> = found["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ids[c["contact_id"].as_str().unwrap()])
        .collect();
    assert_eq!(emails, ["s1@example.com"]);
    // Combined with another filter: refused, as the vendor's.
    let (s, _) = m
        .get(&t, &format!("/v3/contacts?segment_id={sid}&status=all"))
        .await;
    assert_eq!(s, 400);
    // Rename; the list shows it; a tracking criterion is stored but not evaluated.
    let (s, renamed) = m
        .api(
            &t,
            reqwest::Method::PATCH,
            &format!("/v3/segments/{sid}/name"),
            Some(json!({"name": "Gold tagged"})),
        )
        .await;
    assert_eq!((s, &renamed["name"]), (200, &json!("Gold tagged")));
    let (_, all) = m.get(&t, "/v3/segments?sort_by=name").await;
    assert_eq!(all["segments"][0]["name"], "Gold tagged", "{all}");
    let tracking = r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"not_opened","op":"contains-any","const_value":"last-n-campaigns","param":"5"}]}}"#;
    let (s, tr) = m
        .post(
            &t,
            "/v3/segments",
            json!({"name": "Not opened", "segment_criteria": tracking}),
        )
        .await;
    assert_eq!(s, 201, "{tr}");
    let (s, e) = m
        .get(&t, &format!("/v3/contacts?segment_id={}", tr["segment_id"]))
        .await;
    assert_eq!(s, 400);
    assert!(e.to_string().contains("tracking"), "{e}");
    // Bulk tagging from the segment, and an export of it.
    let (_, other) = m
        .post(&t, "/v3/contact_tags", json!({"name": "From segment"}))
        .await;
    let other_id = other["tag_id"].as_str().unwrap().to_string();
    let (s, a) = m
        .post(
            &t,
            "/v3/activities/contacts_taggings_add",
            json!({"source": {"segment_id": sid}, "tag_ids": [other_id]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, x) = m
        .post(
            &t,
            "/v3/activities/contact_exports",
            json!({"segment_id": sid, "fields": ["email_address"]}),
        )
        .await;
    assert_eq!(s, 201, "{x}");
    m.advance("1m").await;
    let (_, tagged) = m.get(&t, &format!("/v3/contacts?tags={other_id}")).await;
    assert_eq!(tagged["contacts"].as_array().unwrap().len(), 1, "{tagged}");
    let r = m
        .http
        .get(m.url(&format!(
            "/v3/contact_exports/{}",
            x["activity_id"].as_str().unwrap()
        )))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "email_address\r\ns1@example.com\r\n"
    );
    // Delete.
    let r = m
        .http
        .delete(m.url(&format!("/v3/segments/{sid}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(m.get(&t, &format!("/v3/segments/{sid}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_summary_address_emails_and_privileges() {
    let m = start(true);
    let narrow = access(&m).await; // contact_data offline_access
    let wide = m.login("contact_data account_read account_update").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Scopes as the vendor's: account routes need account_read / account_update.
    assert_eq!(m.get(&narrow, "/v3/account/summary").await.0, 403);
    let (s, summary) = m
        .get(&wide, "/v3/account/summary?extra_fields=physical_address")
        .await;
    assert_eq!(s, 200, "{summary}");
    assert_eq!(summary["physical_address"]["country_code"], "US");
    let (s, put) = m
        .api(
            &wide,
            reqwest::Method::PUT,
            "/v3/account/summary",
            Some(json!({"organization_name": "Lovelace Ltd", "contact_phone": "555-0100"})),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    let (_, again) = m.get(&wide, "/v3/account/summary").await;
    assert_eq!(again["organization_name"], "Lovelace Ltd");
    assert_eq!(again["contact_phone"], "555-0100");
    let (s, e) = m
        .api(
            &wide,
            reqwest::Method::PUT,
            "/v3/account/summary",
            Some(json!({"contact_phone": "5".repeat(26)})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    // The physical address: created once (409 after), replaced by PUT, state code required in US.
    let address = json!({"address_line1": "2 Elm St", "city": "Boston", "state_code": "MA", "postal_code": "02110", "country_code": "US"});
    let (s, a) = m
        .post(
            &wide,
            "/v3/account/summary/physical_address",
            address.clone(),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, _) = m
        .post(&wide, "/v3/account/summary/physical_address", address)
        .await;
    assert_eq!(s, 409);
    let (s, e) = m
        .api(
            &wide,
            reqwest::Method::PUT,
            "/v3/account/summary/physical_address",
            Some(json!({"address_line1": "3 Oak", "city": "Austin", "country_code": "US"})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("state_code"), "{e}");
    // Emails: the login is confirmed; a new one is unconfirmed until confirmed.
    let (s, added) = m
        .post(
            &wide,
            "/v3/account/emails",
            json!({"email_address": "news@example.com"}),
        )
        .await;
    assert_eq!(s, 201, "{added}");
    assert_eq!(added["confirm_status"], "UNCONFIRMED");
    let (s, _) = m
        .post(
            &wide,
            "/v3/account/emails",
            json!({"email_address": "NEWS@example.com"}),
        )
        .await;
    assert_eq!(s, 409);
    let (_, pending) = m
        .get(&wide, "/v3/account/emails?confirm_status=UNCONFIRMED")
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    let r = m
        .http
        .post(m.url(&format!(
            "/__postie/account/emails/{}/confirm",
            added["email_id"]
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, confirmed) = m.get(&wide, "/v3/account/emails?confirm_status=C").await;
    assert_eq!(confirmed.as_array().unwrap().len(), 2, "{confirmed}");
    // Privileges follow the token's scopes.
    let (s, p) = m.get(&narrow, "/v3/account/user/privileges").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["privilege_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"contacts:write"), "{names:?}");
    assert!(!names.contains(&"account:read"), "{names:?}");
    let (_, p) = m.get(&wide, "/v3/account/user/privileges").await;
    assert!(p.to_string().contains("account:update"), "{p}");
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_phones_and_sms_channel_keep_the_vendor_shape() {
    let m = start(true);
    let t = access(&m).await;
    let (s, c) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "shape@example.com"}, "create_source": "Contact",
                   "phone_numbers": [{"phone_number": "555-0101", "kind": "mobile"}],
                   "notes": [{"content": "first"}],
                   "sms_channel": {"sms_address": "5550102030", "dial_code": "1", "country_code": "US",
                                   "sms_channel_consents": [{"sms_consent_permission": "explicit", "consent_type": "promotional_sms"}]}}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["contact_id"].as_str().unwrap().to_string();
    let phone = &c["phone_numbers"][0];
    assert_eq!(phone["create_source"], "Contact", "{c}");
    assert_eq!(phone["update_source"], "Contact", "{c}");
    let sms = &c["sms_channel"];
    assert!(sms["sms_channel_id"].is_string(), "{c}");
    assert_eq!(sms["create_source"], "Contact");
    assert!(
        sms["sms_channel_consents"][0]["created_at"].is_string(),
        "{c}"
    );
    let first_note = c["notes"][0].clone();
    // A later PUT sends everything back with a new note: ids, times and sources are kept, the
    // new note comes first.
    m.advance("1h").await;
    let mut notes = c["notes"].as_array().unwrap().clone();
    notes.push(json!({"content": "second"}));
    let (s, put) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/contacts/{id}"),
            Some(json!({"email_address": {"address": "shape@example.com"}, "update_source": "Account",
                        "phone_numbers": c["phone_numbers"], "notes": notes})),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(put["notes"][0]["content"], "second", "{put}");
    assert_eq!(put["notes"][1], first_note, "{put}");
    let phone2 = &put["phone_numbers"][0];
    assert_eq!(phone2["phone_number_id"], phone["phone_number_id"]);
    assert_eq!(phone2["created_at"], phone["created_at"]);
    assert_eq!(phone2["create_source"], "Contact");
    assert_eq!(phone2["update_source"], "Account");
    // An sms_channel field the vendor does not have is refused by name.
    let (s, e) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"email_address": {"address": "sms2@example.com"}, "create_source": "Account",
                   "sms_channel": {"sms_address": "5550102031", "carrier": "x"}}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("sms_channel.carrier"), "{e}");
    // An SMS-only contact (no email), found by channel and SMS consent.
    let (s, only) = m
        .post(
            &t,
            "/v3/contacts",
            json!({"first_name": "Texter", "create_source": "Account",
                   "sms_channel": {"full_sms_address": "15550109999",
                                   "sms_channel_consents": [{"sms_consent_permission": "explicit", "consent_type": "promotional_sms"}]}}),
        )
        .await;
    assert_eq!(s, 201, "{only}");
    let texter = only["contact_id"].as_str().unwrap().to_string();
    let ids = |v: &Value| -> Vec<String> {
        v["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contact_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, sms) = m.get(&t, "/v3/contacts?channel_type=sms").await;
    assert!(ids(&sms).contains(&texter), "{sms}");
    let (_, email) = m.get(&t, "/v3/contacts?channel_type=email").await;
    assert!(!ids(&email).contains(&texter), "{email}");
    let (_, explicit) = m.get(&t, "/v3/contacts?sms_status=explicit").await;
    assert!(ids(&explicit).contains(&texter), "{explicit}");
    let (_, unsub) = m.get(&t, "/v3/contacts?sms_status=unsubscribed").await;
    assert!(!ids(&unsub).contains(&texter), "{unsub}");
    assert_eq!(m.get(&t, "/v3/contacts?channel_type=fax").await.0, 400);
    // Its SMS engagement history: one record per consent, stable across reads.
    let path = format!("/v3/contacts/sms_engagement_history/{texter}");
    let (s, h) = m.get(&t, &path).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h[0]["history_details"]["state"], "E", "{h}");
    assert_eq!(h[0]["history_details"]["consent_action_type"], "opt_in");
    assert_eq!(m.get(&t, &path).await.1, h);
    let (_, none) = m.get(&t, "/v3/contacts?email=shape@example.com").await;
    let shape = none["contacts"][0]["contact_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = m
        .get(&t, &format!("/v3/contacts/sms_engagement_history/{shape}"))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_test_really_calls_the_subscribed_uri() {
    let m = start(true);
    let t = access(&m).await;
    let receiver = httpmock::MockServer::start_async().await;
    let hook = receiver
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST)
                .path("/hooks/billing")
                .json_body_includes(r#"{"topic_id": 1, "test": true}"#);
            then.status(204);
        })
        .await;
    let call = |method: reqwest::Method, path: &str, body: Option<Value>, key: bool| {
        let mut b = m.http.request(method, m.url(path)).bearer_auth(&t);
        if key {
            b = b.header("x-api-key", CID);
        }
        if let Some(j) = body {
            b = b.json(&j);
        }
        async move {
            let r = b.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let base = "/v3/partner/webhooks/subscriptions";
    // Without the partner's API key: 401.
    assert_eq!(call(reqwest::Method::GET, base, None, false).await.0, 401);
    let (s, sub) = call(
        reqwest::Method::PUT,
        &format!("{base}/1"),
        Some(json!({"hook_uri": receiver.url("/hooks/billing")})),
        true,
    )
    .await;
    assert_eq!(s, 200, "{sub}");
    let (s, list) = call(reqwest::Method::GET, base, None, true).await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["topic_name"], "Billing Tier Upgrade", "{list}");
    let (s, sent) = call(
        reqwest::Method::POST,
        &format!("{base}/1/tests"),
        None,
        true,
    )
    .await;
    assert_eq!(s, 201, "{sent}");
    // The notification arrives after the answer.
    for _ in 0..100 {
        if hook.calls_async().await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(hook.calls_async().await, 1);
    // A subscription to a receiver that is not there: the failure is journaled.
    let dead = format!("http://127.0.0.1:{}/gone", crate::common::closed_port());
    call(
        reqwest::Method::PUT,
        &format!("{base}/3"),
        Some(json!({"hook_uri": dead})),
        true,
    )
    .await;
    assert_eq!(
        call(
            reqwest::Method::POST,
            &format!("{base}/3/tests"),
            None,
            true
        )
        .await
        .0,
        201
    );
    let mut notes = Vec::new();
    for _ in 0..100 {
        let j: Value = m
            .http
            .get(m.url("/__postie/journal?limit=50"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        notes = j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["route"] == "webhook.callback")
            .map(|e| {
                (
                    e["status"].as_u64().unwrap(),
                    e["note"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if notes.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|(s, n)| *s == 204 && n.contains("topic 1")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|(s, n)| *s == 0 && n.contains("failed")),
        "{notes:?}"
    );
    // Unsubscribe.
    assert_eq!(
        call(reqwest::Method::DELETE, &format!("{base}/1"), None, true)
            .await
            .0,
        204
    );
    assert_eq!(
        call(reqwest::Method::GET, &format!("{base}/1"), None, true)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_is_drafted_scheduled_sent_on_the_clock_and_counted() {
    let m = start(true);
    let t = m.login("contact_data campaign_data").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = m
        .post(&t, "/v3/contact_lists", json!({"name": "Campaign list"}))
        .await;
    let list_id = list["list_id"].as_str().unwrap().to_string();
    for (e, p) in [
        ("c1@example.com", "explicit"),
        ("c2@example.com", "implicit"),
        ("c3@example.com", "unsubscribed"),
    ] {
        let (s, b) = m
            .post(
                &t,
                "/v3/contacts",
                json!({"email_address": {"address": e, "permission_to_send": p}, "create_source": "Account", "list_memberships": [list_id]}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let content = json!({"format_type": 5, "from_name": "A", "from_email": "a@example.com",
        "reply_to_email": "a@example.com", "subject": "Hi", "html_content": "<p>[[trackingImage]]</p>"});
    let (s, c) = m
        .post(
            &t,
            "/v3/emails",
            json!({"name": "Spring", "email_campaign_activities": [content.clone()]}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["current_status"], "Draft");
    let cid = c["campaign_id"].as_str().unwrap().to_string();
    let aid = c["campaign_activities"][0]["campaign_activity_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = m
        .post(
            &t,
            "/v3/emails",
            json!({"name": "spring", "email_campaign_activities": [content.clone()]}),
        )
        .await;
    assert_eq!(s, 409, "names are unique");
    let schedules = format!("/v3/emails/activities/{aid}/schedules");
    // No recipients yet: refused.
    let (s, e) = m.post(&t, &schedules, json!({"scheduled_date": "0"})).await;
    assert_eq!(s, 400, "{e}");
    let mut with_list = content.clone();
    with_list["contact_list_ids"] = json!([list_id]);
    let (s, a) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/emails/activities/{aid}"),
            Some(with_list.clone()),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    // Scheduled an hour ahead; unscheduled; scheduled again.
    let clock: Value = m
        .http
        .get(m.url("/__postie/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = time::OffsetDateTime::parse(
        clock["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_an_hour = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, sch) = m
        .post(&t, &schedules, json!({"scheduled_date": in_an_hour}))
        .await;
    assert_eq!(s, 201, "{sch}");
    assert_eq!(
        m.get(&t, &format!("/v3/emails/{cid}")).await.1["current_status"],
        "Scheduled"
    );
    let r = m
        .http
        .delete(m.url(&schedules))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        m.get(&t, &format!("/v3/emails/{cid}")).await.1["current_status"],
        "Draft"
    );
    let (s, _) = m
        .post(&t, &schedules, json!({"scheduled_date": in_an_hour}))
        .await;
    assert_eq!(s, 201);
    m.advance("2h").await;
    // Sent when its time came: to the two sendable contacts of the list.
    assert_eq!(
        m.get(&t, &format!("/v3/emails/{cid}")).await.1["current_status"],
        "Done"
    );
    let (_, history) = m
        .get(&t, &format!("/v3/emails/activities/{aid}/send_history"))
        .await;
    assert_eq!(history[0]["count"], 2, "{history}");
    let (_, stats) = m
        .get(
            &t,
            &format!("/v3/reports/stats/email_campaign_activities/{aid}"),
        )
        .await;
    let st = &stats["results"][0]["stats"];
    assert_eq!(
        (st["em_sends"].as_u64(), st["em_not_opened"].as_u64()),
        (Some(2), Some(2)),
        "{stats}"
    );
    // A sent campaign cannot be changed; test sends take 1 to 5 addresses.
    let (s, _) = m
        .api(
            &t,
            reqwest::Method::PUT,
            &format!("/v3/emails/activities/{aid}"),
            Some(with_list),
        )
        .await;
    assert_eq!(s, 400);
    let tests = format!("/v3/emails/activities/{aid}/tests");
    let r = m
        .http
        .post(m.url(&tests))
        .bearer_auth(&t)
        .json(&json!({"email_addresses": ["me@example.com"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let six: Vec<String> = (0..6).map(|i| format!("t{i}@example.com")).collect();
    let (s, _) = m.post(&t, &tests, json!({"email_addresses": six})).await;
    assert_eq!(s, 400);
    // Deleted: removed from the list of campaigns.
    let r = m
        .http
        .delete(m.url(&format!("/v3/emails/{cid}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, all) = m.get(&t, "/v3/emails").await;
    assert_eq!(all["campaigns"], json!([]), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_checks_the_scopes_it_documents() {
    // Behind the pack and with `--spec --oauth`: a good token without the operation's scopes
    // gets 403, one with them gets the answer.
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/constant-contact-v3-swagger.yaml");
    for pack in [true, false] {
        let mut cfg = config(true);
        cfg.pack = pack;
        cfg.oauth = !pack;
        if !pack {
            cfg.spec = Some(std::sync::Arc::new(
                postie::mock::engine::spec::SpecServer::load(&spec, 1, true).unwrap(),
            ));
        }
        let m = start_with(cfg);
        let narrow = access(&m).await; // contact_data offline_access
        let wide = m.login("contact_data campaign_data").await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // Events are guarded by campaign_data in the contract.
        let (s, b) = m.get(&narrow, "/v3/events").await;
        assert_eq!(s, 403, "pack={pack}: {b}");
        let (s, b) = m.get(&wide, "/v3/events").await;
        assert_eq!(s, 200, "pack={pack}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_ids_cross_reference_contacts_lists_and_campaigns() {
    let m = start(true);
    let t = m.login("contact_data campaign_data").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut contacts = Vec::new();
    for i in 0..3 {
        let (s, c) = m
            .post(
                &t,
                "/v3/contacts",
                json!({"email_address": {"address": format!("x{i}@example.com")}, "create_source": "Account"}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        contacts.push(c["contact_id"].as_str().unwrap().to_string());
    }
    // Every contact's V2 id is its place in creation order: find ours among the first ones.
    let all: Vec<String> = (1..=60).map(|n| n.to_string()).collect();
    let (s, x) = m
        .get(
            &t,
            &format!(
                "/v3/contacts/contact_id_xrefs?sequence_ids={}",
                all.join(",")
            ),
        )
        .await;
    assert_eq!(s, 200, "{x}");
    let xrefs = x["xrefs"].as_array().unwrap();
    let mine: Vec<&Value> = xrefs
        .iter()
        .filter(|p| contacts.contains(&p["contact_id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(mine.len(), 3, "{x}");
    let seqs: Vec<u64> = mine
        .iter()
        .map(|p| p["sequence_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(mine[0]["sequence_id"].as_str().unwrap().len(), 10);
    // Asked in any order, answered ascending, unknown ids left out, repeats once.
    let (a, b) = (seqs[0], seqs[2]);
    let (s, x) = m
        .get(
            &t,
            &format!("/v3/contacts/contact_id_xrefs?sequence_ids={b},{a},99999999,{a}"),
        )
        .await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(
        x["xrefs"],
        json!([
            {"sequence_id": format!("{a:010}"), "contact_id": contacts[0]},
            {"sequence_id": format!("{b:010}"), "contact_id": contacts[2]},
        ])
    );
    // The vendor's error shape for a missing, malformed or oversized list.
    for (q, says) in [
        ("", "sequence_ids is required"),
        ("?sequence_ids=12,abc", "`abc` is not a V2 id"),
        (
            &*format!(
                "?sequence_ids={}",
                (1..=501)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "at most 500",
        ),
    ] {
        let (s, e) = m
            .get(&t, &format!("/v3/contacts/contact_id_xrefs{q}"))
            .await;
        assert_eq!(s, 400, "{q}: {e}");
        assert_cc_error(&e, "contacts.api.validation.error");
        assert!(e.to_string().contains(says), "{q}: {e}");
    }
    // Lists and campaigns the same way; a campaign also names its primary email activity.
    let (s, l) = m
        .post(&t, "/v3/contact_lists", json!({"name": "xref list"}))
        .await;
    assert_eq!(s, 201, "{l}");
    let (s, x) = m
        .get(
            &t,
            &format!(
                "/v3/contact_lists/list_id_xrefs?sequence_ids={}",
                all.join(",")
            ),
        )
        .await;
    assert_eq!(s, 200, "{x}");
    assert!(
        x["xrefs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["list_id"] == l["list_id"]),
        "{x}"
    );
    let (s, c) = m
        .post(
            &t,
            "/v3/emails",
            json!({"name": "xref campaign", "email_campaign_activities": [{"format_type": 5, "from_name": "a", "from_email": "a@example.com", "reply_to_email": "a@example.com", "subject": "s", "html_content": "<html><body>[[trackingImage]]x</body></html>"}]}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let (s, x) = m
        .get(
            &t,
            "/v3/emails/campaign_id_xrefs?v2_email_campaign_ids=1,2,3",
        )
        .await;
    assert_eq!(s, 200, "{x}");
    let first = &x["xrefs"][0];
    assert_eq!(first["v2_email_campaign_id"], "0000000001", "{x}");
    assert_eq!(first["campaign_id"], c["campaign_id"], "{x}");
    let primary = c["campaign_activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "primary_email")
        .unwrap();
    assert_eq!(
        first["campaign_activity_id"], primary["campaign_activity_id"],
        "{x}"
    );
    let (s, e) = m
        .get(
            &t,
            &format!(
                "/v3/emails/campaign_id_xrefs?v2_email_campaign_ids={}",
                (1..=51)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .await;
    assert_eq!(s, 400, "{e}");
}
