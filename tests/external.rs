//! The OAuth2 client against authorization servers nobody here wrote, started by the tests:
//! the npm `oauth2-mock-server` (JWT access tokens, `scope: dummy` in every token response) and a
//! small Authlib server (opaque tokens living three seconds, PKCE required, rotating refresh
//! tokens, the device grant, client_secret_basic and client_secret_post with an awkward secret).
//! `scripts/test` installs both (./node_modules, ./.venv).

use std::process::Command;
use std::time::Duration;

use crate::common::{Server, run_postie, start_server, tool};

/// The secret of Authlib's confidential clients: `%`, `:`, `+`, a space and non-ASCII.
const AWKWARD: &str = "p%:+é w/x";

fn oauth2_mock_server() -> Server {
    let script = tool(
        "node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs",
        "oauth2-mock-server (npm)",
        "npm ci",
    );
    let mut cmd = Command::new("node");
    cmd.arg(script).args(["-a", "127.0.0.1", "-p", "0"]);
    start_server(cmd)
}

fn authlib_server(ttl_seconds: u32) -> Server {
    let python = tool(
        ".venv/bin/python",
        "Authlib (PyPI, in ./.venv)",
        "python3 -m venv .venv && .venv/bin/pip install -r tests/servers/requirements.txt",
    );
    let mut cmd = Command::new(python);
    cmd.arg(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/authlib_server.py"),
    )
    .args(["--ttl", &ttl_seconds.to_string()]);
    start_server(cmd)
}

/// A collection for an authorization server at `<<env.AS_URL>>`, logging in with PKCE on an
/// ephemeral loopback port. `client` is the `variables:` lines for the client; `oauth2` is added
/// to the `oauth2:` block; `token_auth` is the token requests' own `auth:` line (or nothing).
fn collection(client: &str, oauth2: &str, token_auth: &str, me: &str) -> String {
    format!(
        r#"name: external
variables:
  base: <<env.AS_URL>>
{client}
  redirect_uri: http://127.0.0.1:0/callback
  scope: openid read
  login_hint: ada
oauth2:
  authorize: authorize
  token: token
  refresh: refresh
  device_authorize: device
  device_token: device_token
  pkce: true
{oauth2}
requests:
  authorize:
    url: <<base>>/authorize
    query: {{client_id: "<<client_id>>", redirect_uri: "<<redirect_uri>>", response_type: code, scope: "<<scope>>",
            state: "<<oauth_state>>", code_challenge: "<<code_challenge>>", code_challenge_method: S256, login_hint: "<<login_hint>>"}}
  token:
    method: POST
    url: <<base>>/token
{token_auth}
    form: {{grant_type: authorization_code, code: "<<code>>", redirect_uri: "<<redirect_uri>>", code_verifier: "<<code_verifier>>"}}
  refresh:
    method: POST
    url: <<base>>/token
{token_auth}
    form: {{grant_type: refresh_token, refresh_token: "<<refresh_token>>"}}
  device:
    method: POST
    url: <<base>>/device
    form: {{client_id: public-app, scope: read}}
  device_token:
    method: POST
    url: <<base>>/token
    form: {{grant_type: "urn:ietf:params:oauth:grant-type:device_code", client_id: public-app, device_code: "<<device_code>>"}}
  me:
    url: <<base>>{me}
    auth: {{bearer: "<<access_token>>"}}
"#
    )
}

const BASIC: &str = "    auth: {basic: {user: \"<<client_id>>\", password: \"<<client_secret>>\"}}";

fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), text).unwrap();
    dir
}

#[test]
fn oauth2_mock_server_code_pkce_refresh_and_inputs_stay_inputs() {
    let server = oauth2_mock_server();
    let dir = project(&collection(
        "  client_id: any-app\n  client_secret: {value: \"<<env.APP_SECRET>>\", secret: true}",
        "",
        BASIC,
        "/userinfo",
    ));
    let env = [("AS_URL", server.url.as_str()), ("APP_SECRET", AWKWARD)];
    let login = run_postie(dir.path(), &["auth", "login", "c.yaml"], &env, None);
    assert_eq!(login.code, 0, "{}", login.all());
    assert!(
        login.stderr.contains("approved at once") && login.stdout.contains("logged in"),
        "{}",
        login.all()
    );
    let me = run_postie(dir.path(), &["send", "c.yaml", "me"], &env, None);
    assert_eq!(me.code, 0, "{}", me.all());
    assert!(me.stdout.contains("HTTP 200"), "{}", me.all());
    // Its token responses say `scope: dummy`: the collection's own `scope` input is kept, and
    // the next login asks for what the collection says.
    let vars = run_postie(dir.path(), &["vars", "c.yaml"], &env, None);
    assert!(
        vars.stdout.contains("scope = openid read  (collection)"),
        "{}",
        vars.all()
    );
    let status = run_postie(dir.path(), &["auth", "status", "c.yaml"], &env, None);
    assert!(
        status.stdout.contains("access token (JWT): valid for")
            && status.stdout.contains("scopes dummy"),
        "{}",
        status.all()
    );
    let refresh = run_postie(dir.path(), &["auth", "refresh", "c.yaml"], &env, None);
    assert_eq!(refresh.code, 0, "{}", refresh.all());
    let again = run_postie(dir.path(), &["auth", "login", "c.yaml"], &env, None);
    assert_eq!(again.code, 0, "a second login works too: {}", again.all());
    for out in [&login, &me, &vars, &status, &refresh] {
        assert!(!out.all().contains(AWKWARD), "{}", out.all());
    }
}

#[test]
fn authlib_basic_with_an_awkward_secret_opaque_expiry_rotation_and_isolation() {
    let server = authlib_server(3);
    let text = collection(
        "  client_id: basic-app\n  client_secret: {value: \"<<env.APP_SECRET>>\", secret: true}",
        "",
        BASIC,
        "/api/me",
    );
    let dir = project(&text);
    std::fs::write(dir.path().join("other.yaml"), &text).unwrap();
    let env = [("AS_URL", server.url.as_str()), ("APP_SECRET", AWKWARD)];
    let login = run_postie(dir.path(), &["auth", "login", "c.yaml"], &env, None);
    assert_eq!(login.code, 0, "{}", login.all());
    assert!(
        login.stdout.contains("logged in; access token valid for"),
        "expires_in is read for an opaque token: {}",
        login.all()
    );
    let before: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".postie/c.yaml.state.json")).unwrap(),
    )
    .unwrap();
    let first_refresh = before["envs"]["default"]["vars"]["refresh_token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    // Three-second tokens are refreshed within their last two seconds, before they expire.
    std::thread::sleep(Duration::from_millis(1500));
    let me = run_postie(dir.path(), &["send", "c.yaml", "me"], &env, None);
    assert_eq!(me.code, 0, "{}", me.all());
    assert!(
        me.stderr.contains("refreshed access token (expires in"),
        "{}",
        me.all()
    );
    assert!(me.stdout.contains("\"name\": \"Ada\""), "{}", me.all());
    // Rotation: the server revoked the first refresh token; postie holds the new one.
    let after: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".postie/c.yaml.state.json")).unwrap(),
    )
    .unwrap();
    assert_ne!(
        after["envs"]["default"]["vars"]["refresh_token"]["value"],
        first_refresh.as_str()
    );
    // Another collection in the same folder has no token.
    let other = run_postie(dir.path(), &["auth", "status", "other.yaml"], &env, None);
    assert!(
        other.stdout.contains("access token: none"),
        "{}",
        other.all()
    );
    // A refresh token the server revoked (the first one, spent by the rotation above) once the
    // access token has expired: the request is not sent with the expired token.
    std::thread::sleep(Duration::from_millis(3100));
    let state_path = dir.path().join(".postie/c.yaml.state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["envs"]["default"]["vars"]["refresh_token"]["value"] = first_refresh.into();
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();
    let dead = run_postie(dir.path(), &["send", "c.yaml", "me"], &env, None);
    assert_eq!(dead.code, 3, "{}", dead.all());
    assert!(
        dead.stderr.contains("invalid_grant") && dead.stderr.contains("log in again"),
        "{}",
        dead.all()
    );
    for out in [&login, &me, &dead] {
        assert!(!out.all().contains(AWKWARD), "{}", out.all());
    }
}

#[test]
fn authlib_client_secret_post_device_flow_and_denial() {
    let server = authlib_server(30);
    let env = [("AS_URL", server.url.as_str()), ("APP_SECRET", AWKWARD)];
    let post = project(&collection(
        "  client_id: post-app\n  client_secret: {value: \"<<env.APP_SECRET>>\", secret: true}",
        "  client_auth: post",
        "",
        "/api/me",
    ));
    let login = run_postie(post.path(), &["auth", "login", "c.yaml"], &env, None);
    assert_eq!(login.code, 0, "{}", login.all());
    let refresh = run_postie(post.path(), &["auth", "refresh", "c.yaml"], &env, None);
    assert_eq!(refresh.code, 0, "{}", refresh.all());
    // The same client with Basic is refused by this server: it only accepts client_secret_post.
    let wrong = project(&collection(
        "  client_id: post-app\n  client_secret: {value: \"<<env.APP_SECRET>>\", secret: true}",
        "  client_auth: basic",
        "",
        "/api/me",
    ));
    let refused = run_postie(wrong.path(), &["auth", "login", "c.yaml"], &env, None);
    assert_eq!(refused.code, 3, "{}", refused.all());
    assert!(
        refused.stderr.contains("invalid_client"),
        "{}",
        refused.all()
    );
    // The device flow logs in as the public client, and refreshes as it too.
    let device = project(&collection(
        "  client_id: basic-app\n  client_secret: {value: \"<<env.APP_SECRET>>\", secret: true}",
        "",
        BASIC,
        "/api/me",
    ));
    let login = run_postie(
        device.path(),
        &["auth", "login", "c.yaml", "--device"],
        &env,
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());
    assert!(
        login.stderr.contains("/activate and enter the code")
            && login.stderr.contains("(or open http://127.0.0.1:"),
        "{}",
        login.all()
    );
    let refresh = run_postie(device.path(), &["auth", "refresh", "c.yaml"], &env, None);
    assert_eq!(refresh.code, 0, "{}", refresh.all());
    // Denial: an honest error, exit 3.
    let denied = run_postie(
        device.path(),
        &["auth", "login", "c.yaml", "--var", "login_hint=deny"],
        &env,
        None,
    );
    assert_eq!(denied.code, 3, "{}", denied.all());
    assert!(
        denied
            .stderr
            .contains("authorization refused: access_denied"),
        "{}",
        denied.all()
    );
}
