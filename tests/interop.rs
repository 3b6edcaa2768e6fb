//! Importers and exporters against files others wrote (fixtures/interop/, licences beside them),
//! and the differential test: the same Postman collection run by Newman and by postie against one
//! local echo server sends the same requests in the same order and passes the same assertions.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Server, run_postie, start_server, tool};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop")
        .join(rel)
}

fn echo_server() -> Server {
    let mut cmd = Command::new("node");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/echo.js"));
    start_server(cmd)
}

/// A copy of a Postman collection whose postman-echo.com URLs (text and parts) point at `base`.
fn localised(src: &Path, base: &str, dir: &Path) -> PathBuf {
    let u = url::Url::parse(base).unwrap();
    let port = u.port().unwrap().to_string();
    fn walk(v: &mut Value, base: &str, port: &str) {
        match v {
            Value::String(s) if s.contains("https://postman-echo.com") => {
                *s = s.replace("https://postman-echo.com", base);
            }
            Value::Object(m) => {
                let echo_host = m.get("host").is_some_and(|h| {
                    *h == json!(["postman-echo", "com"]) || *h == json!("postman-echo.com")
                });
                if echo_host {
                    m.insert("host".into(), json!(["127", "0", "0", "1"]));
                    m.insert("port".into(), json!(port));
                    m.insert("protocol".into(), json!("http"));
                }
                m.values_mut().for_each(|x| walk(x, base, port));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, base, port)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    walk(&mut v, base, &port);
    let out = dir.join(src.file_name().unwrap());
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    out
}

/// What reached the echo server since the last call (and clears its log).
fn arrived(base: &str) -> Vec<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log: Vec<Value> = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let log = client
            .get(format!("{base}/__log"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        client.delete(format!("{base}/__log")).send().await.unwrap();
        log
    });
    log.into_iter()
        .map(|r| {
            let query: Vec<(String, String)> = url::form_urlencoded::parse(
                r["query"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('?')
                    .as_bytes(),
            )
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
            let body = r["body"].as_str().unwrap_or("");
            let body = serde_json::from_str::<Value>(body).unwrap_or_else(|_| json!(body));
            json!({"method": r["method"], "path": r["path"], "query": query, "body": body,
                "authorization": r["headers"]["authorization"], "cookie": r["headers"]["cookie"]})
        })
        .collect()
}

/// (test name, passed) per request, from Newman's JSON report.
fn newman_assertions(report: &Path) -> Vec<Vec<(String, bool)>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    v["run"]["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["assertions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        a["assertion"].as_str().unwrap().to_string(),
                        a.get("error").is_none(),
                    )
                })
                .collect()
        })
        .collect()
}

/// (assertion, passed) per step, from postie's JSON report.
fn postie_assertions(report: &Path) -> Vec<Vec<(String, bool)>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["steps"].as_array().unwrap().clone())
        .map(|s| {
            s["assertions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["description"].as_str().unwrap().to_string(),
                        a["passed"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn newman_and_postie_send_the_same_requests_and_pass_the_same_tests() {
    let newman = tool("node_modules/.bin/newman", "newman (npm)", "npm ci");
    let echo = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Option<(&str, &str)>); 6] = [
        (
            "postman/newman-inherited-entities.postman_collection.json",
            Some((
                "postman/newman-inherited-entities.postman_environment.json",
                "newman_inherited_entities",
            )),
        ),
        (
            "postman/newman-set-next-request.postman_collection.json",
            None,
        ),
        ("postman/newman-sample-collection.json", None),
        (
            "postman/newman-request-chaining-test.postman_collection.json",
            None,
        ),
        (
            "postman/newman-multi-level-folders-v2.postman_collection.json",
            None,
        ),
        ("postman/newman-cookie-jar.postman_collection.json", None),
    ];
    for (file, env) in cases {
        let coll = localised(&fixture(file), &echo.url, dir.path());
        arrived(&echo.url);
        // Newman.
        let n_report = dir.path().join("newman.json");
        let mut cmd = Command::new(&newman);
        cmd.arg("run")
            .arg(&coll)
            .args(["--reporters", "json", "--reporter-json-export"])
            .arg(&n_report);
        if let Some((e, _)) = env {
            cmd.arg("-e").arg(fixture(e));
        }
        let out = cmd.output().unwrap();
        assert!(
            n_report.exists(),
            "newman did not run {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let newman_sent = arrived(&echo.url);
        // postie.
        let yaml = dir.path().join("imported.yaml");
        let mut args = vec![
            "import".to_string(),
            "postman".into(),
            coll.display().to_string(),
        ];
        if let Some((e, _)) = env {
            args.extend(["--env".to_string(), fixture(e).display().to_string()]);
        }
        args.extend(["-o".to_string(), yaml.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let imported = run_postie(dir.path(), &args, &[], None);
        assert!(imported.code <= 1, "{file}: {}", imported.all());
        let p_report = dir.path().join("postie.json");
        let mut args = vec![
            "run",
            "imported.yaml",
            "--fresh",
            "--report",
            "json=postie.json",
        ];
        if let Some((_, name)) = env {
            args.extend(["--env", name]);
        }
        let run = run_postie(dir.path(), &args, &[], None);
        let postie_sent = arrived(&echo.url);
        assert_eq!(
            newman_sent,
            postie_sent,
            "{file}: the requests differ\npostie said:\n{}",
            run.all()
        );
        assert_eq!(
            newman_assertions(&n_report),
            postie_assertions(&p_report),
            "{file}: the assertions differ\npostie said:\n{}",
            run.all()
        );
        // Both agree on failure too.
        assert_eq!(
            out.status.code().unwrap_or(-1) != 0,
            run.code != 0,
            "{file}: newman exited {:?}, postie {}\n{}",
            out.status.code(),
            run.code,
            run.all()
        );
    }
}

/// Runs `postie import …` in `dir`, writing `out`; returns the run and the YAML.
fn import(dir: &Path, args: &[&str], out: &str) -> (crate::common::Run, String) {
    let mut all: Vec<&str> = vec!["import"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out]);
    let r = run_postie(dir, &all, &[], None);
    let yaml = std::fs::read_to_string(dir.join(out)).unwrap_or_default();
    (r, yaml)
}

fn validates(dir: &Path, file: &str) {
    let v = run_postie(dir, &["validate", file], &[], None);
    assert_eq!(v.code, 0, "{file} does not validate:\n{}", v.all());
}

#[test]
fn conduit_postman_collection_imports_with_its_scripts_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let coll = fixture("postman/conduit.postman_collection.json");
    let env = fixture("postman/conduit-integration.postman_environment.json");
    let (r, yaml) = import(
        dir.path(),
        &[
            "postman",
            coll.to_str().unwrap(),
            "--env",
            env.to_str().unwrap(),
        ],
        "conduit.yaml",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("imported: 32 requests in 5 folders"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`APIURL` is used"), "{}", r.stderr);
    assert!(yaml.contains("compat: newman"));
    assert!(yaml.contains("folder: Auth"));
    assert!(
        yaml.contains("tests['User has \"token\" property']"),
        "scripts are kept"
    );
    assert!(
        yaml.contains("conduit_integration_test:"),
        "the environment came in"
    );
    validates(dir.path(), "conduit.yaml");
}

#[test]
fn curl_lines_import_with_secrets_in_dotenv_and_export_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("curl/browser-copy-as-curl.sh");
    let (r, yaml) = import(dir.path(), &["curl", src.to_str().unwrap()], "out/api.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    // The token and the cookie are in .env (0600, git-ignored), never in the YAML.
    assert!(!yaml.contains("eyJraWQ"), "{yaml}");
    assert!(!yaml.contains("_session=9f8e"), "{yaml}");
    let env = std::fs::read_to_string(dir.path().join("out/.env")).unwrap();
    assert!(
        env.contains("CURL_BEARER_TOKEN=eyJraWQiOiJ0ZXN0IiwiYWxnIjoiUlMyNTYifQ.e30.c2ln"),
        "{env}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("out/.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        std::fs::read_to_string(dir.path().join("out/.gitignore"))
            .unwrap()
            .contains(".env")
    );
    // `$'…'` with \r\n and an escaped quote came through as JSON.
    assert!(yaml.contains("name: Spring '26 launch"), "{yaml}");
    validates(dir.path(), "out/api.yaml");
    // Out again: masked by default, revealed on request, and what comes out reads back in.
    let out = run_postie(dir.path(), &["export", "curl", "out/api.yaml"], &[], None);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("eyJraWQ"), "{}", out.stdout);
    assert!(
        out.stdout.contains("'authorization: Bearer (redacted)'"),
        "{}",
        out.stdout
    );
    let revealed = run_postie(
        dir.path(),
        &[
            "export",
            "curl",
            "out/api.yaml",
            "post_contact_lists",
            "--reveal",
        ],
        &[],
        None,
    );
    assert_eq!(revealed.code, 0, "{}", revealed.all());
    assert!(revealed.stdout.contains("eyJraWQ"), "{}", revealed.stdout);
    std::fs::write(dir.path().join("again.sh"), &revealed.stdout).unwrap();
    let (again, yaml2) = import(dir.path(), &["curl", "again.sh"], "again.yaml");
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(yaml2.contains("name: Spring '26 launch"), "{yaml2}");
    assert!(
        yaml2.contains("description: |-\n        line one\n        line two"),
        "{yaml2}"
    );
}

#[test]
fn vendor_curl_lines_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("curl/constant-contact.sh");
    let (r, yaml) = import(dir.path(), &["curl", src.to_str().unwrap()], "cc.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("`jq` reads another command's output"),
        "{}",
        r.stderr
    );
    assert!(
        yaml.contains("Authorization: Bearer <<access_token>>"),
        "{yaml}"
    );
    assert!(yaml.contains("grant_type: authorization_code"), "{yaml}");
    assert!(
        yaml.contains("email: dlang@example.com"),
        "-G --data-urlencode became the query:\n{yaml}"
    );
    validates(dir.path(), "cc.yaml");
}

#[test]
fn constant_contact_swagger_imports_and_runs_against_the_bundled_mock() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture("openapi/constant-contact-v3-swagger.yaml");
    let (r, yaml) = import(dir.path(), &["openapi", spec.to_str().unwrap()], "cc.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("128 operations"), "{}", r.stderr);
    let v = run_postie(dir.path(), &["validate", "cc.yaml"], &[], None);
    assert!(
        v.stdout.contains("131 requests"),
        "128 operations and the 3 OAuth2 requests:\n{}",
        v.all()
    );
    assert!(yaml.contains("  get_contacts:\n"), "{yaml}");
    let login = run_postie(
        dir.path(),
        &["auth", "login", "cc.yaml", "--mock", "--no-browser"],
        &[],
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());
    let get = run_postie(
        dir.path(),
        &["send", "cc.yaml", "get_contacts", "--mock"],
        &[],
        None,
    );
    assert_eq!(get.code, 0, "{}", get.all());
    assert!(get.stdout.contains("HTTP 200"), "{}", get.stdout);
    let create = run_postie(
        dir.path(),
        &["send", "cc.yaml", "create_contact", "--mock"],
        &[],
        None,
    );
    assert_eq!(create.code, 0, "{}", create.all());
    assert!(create.stdout.contains("HTTP 201"), "{}", create.stdout);
}

#[test]
fn openapi_31_and_swagger_20_documents_import() {
    let dir = tempfile::tempdir().unwrap();
    for (file, requests) in [
        ("openapi/realworld-conduit.openapi-3.1.yaml", 19),
        ("openapi/oai-petstore-expanded.swagger.json", 4),
        ("openapi/oai-uber.swagger.json", 5),
    ] {
        let spec = fixture(file);
        let (r, yaml) = import(dir.path(), &["openapi", spec.to_str().unwrap()], "out.yaml");
        assert_eq!(r.code, 0, "{file}: {}", r.all());
        let v = run_postie(dir.path(), &["validate", "out.yaml"], &[], None);
        assert!(
            v.stdout.contains(&format!("{requests} requests")),
            "{file}: {}",
            v.all()
        );
        assert!(
            yaml.contains("mock:\n    base_url: <<mock_url>>"),
            "{file}: {yaml}"
        );
    }
    // External references cannot be followed: said, and the exit code says so.
    let spec = fixture("openapi/oai-petstore-separate.swagger.json");
    let (r, _) = import(dir.path(), &["openapi", spec.to_str().unwrap()], "sep.yaml");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("external $ref `NewPet.json` is not followed"),
        "{}",
        r.stderr
    );
    validates(dir.path(), "sep.yaml");
}

#[test]
fn har_files_import_without_assets_or_clear_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let har = fixture("har/devtools-api-session.har");
    let (r, yaml) = import(dir.path(), &["har", har.to_str().unwrap()], "s.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("4 of 7 entries"), "{}", r.stderr);
    for secret in [
        "s3ss10n-c00k1e",
        "rt-7b1c2d3e",
        "rt-8c2d3e4f",
        "k-123456",
        "eyJhbGciOiJub25lIn0",
    ] {
        assert!(!yaml.contains(secret), "{secret} in\n{yaml}");
    }
    assert!(!yaml.contains(":authority"), "{yaml}");
    assert!(yaml.contains("note: has <<'<<'>> angle"), "{yaml}");
    validates(dir.path(), "s.yaml");
    let (all, yaml) = import(
        dir.path(),
        &["har", har.to_str().unwrap(), "--all"],
        "all.yaml",
    );
    assert_eq!(all.code, 0, "{}", all.all());
    assert!(yaml.contains("/static/app.css"), "{yaml}");
    for f in [
        "har/sitespeedio-http2-firefox.har",
        "har/sitespeedio-mousel.lu-chrome.har",
    ] {
        let (r, _) = import(dir.path(), &["har", fixture(f).to_str().unwrap()], "b.yaml");
        assert_eq!(r.code, 0, "{f}: {}", r.all());
        validates(dir.path(), "b.yaml");
    }
}

#[test]
fn invalid_inputs_exit_2_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        "{\n  \"info\": {},\n  \"item\": [,]\n}",
    )
    .unwrap();
    let r = run_postie(dir.path(), &["import", "postman", "bad.json"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("bad.json:3:12"), "{}", r.stderr);
    std::fs::write(dir.path().join("notpostman.json"), "{\"hello\": 1}").unwrap();
    let r = run_postie(
        dir.path(),
        &["import", "postman", "notpostman.json"],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("not a Postman collection"),
        "{}",
        r.stderr
    );
    std::fs::write(
        dir.path().join("bad.yaml"),
        "openapi: 3.0.0\npaths:\n  /a: [\n",
    )
    .unwrap();
    let r = run_postie(dir.path(), &["import", "openapi", "bad.yaml"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("bad.yaml:"), "{}", r.stderr);
    std::fs::write(dir.path().join("x.har"), "{\"log\": {}}").unwrap();
    let r = run_postie(dir.path(), &["import", "har", "x.har"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    std::fs::write(dir.path().join("x.sh"), "curl 'unterminated\n").unwrap();
    let r = run_postie(dir.path(), &["import", "curl", "x.sh"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("line 1: a single quote is never closed"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_exported_bundled_collection_passes_under_newman_against_the_mock() {
    let newman = tool("node_modules/.bin/newman", "newman (npm)", "npm ci");
    let dir = crate::common::project();
    let mock = crate::common::mock_for(&dir);
    let out = run_postie(
        dir.path(),
        &[
            "export",
            "postman",
            "cc.yaml",
            "--env",
            "mock",
            "-o",
            "export/cc.postman_collection.json",
        ],
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let env_file = dir.path().join("export/mock.postman_environment.json");
    let env: Value = serde_json::from_str(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    // The mock's client secret is a secret: exported empty, typed secret.
    let secret = env["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "client_secret")
        .unwrap();
    assert_eq!(secret["type"], "secret");
    assert_eq!(secret["value"], "");
    let exported =
        std::fs::read_to_string(dir.path().join("export/cc.postman_collection.json")).unwrap();
    assert!(
        !exported.contains("mock-secret-Zk8xQ2vN7pLr4tYw"),
        "a secret leaked into the export"
    );
    let report = dir.path().join("newman.json");
    let run = Command::new(&newman)
        .arg("run")
        .arg(dir.path().join("export/cc.postman_collection.json"))
        .arg("-e")
        .arg(&env_file)
        .args(["--env-var", &format!("mock_url={}", mock.url())])
        .args(["--env-var", "client_secret=mock-secret-Zk8xQ2vN7pLr4tYw"])
        .args(["--ignore-redirects", "--folder", "documented"])
        .args(["--reporters", "cli,json", "--reporter-json-export"])
        .arg(&report)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "newman failed:\n{text}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let stats = &r["run"]["stats"];
    assert_eq!(stats["assertions"]["failed"], 0, "{text}");
    assert_eq!(stats["testScripts"]["failed"], 0, "{text}");
    assert_eq!(stats["prerequestScripts"]["failed"], 0, "{text}");
    // authorize, token, find_list, sign_up, find_contact, the contact write, import, polls, members, refresh.
    let names: Vec<&str> = r["run"]["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"authorize"), "{names:?}");
    assert!(
        names.contains(&"token") && names.contains(&"poll_import") && names.contains(&"refresh"),
        "{names:?}"
    );
    assert!(
        names.contains(&"create_contact") != names.contains(&"update_contact"),
        "exactly one of the `when:` branches runs: {names:?}"
    );
}

#[test]
fn postman_collections_survive_import_export_import() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "postman/conduit.postman_collection.json",
        "postman/newman-inherited-entities.postman_collection.json",
        "postman/newman-set-next-request.postman_collection.json",
        "postman/newman-echo-v2.postman_collection.json",
        "postman/newman-multi-level-folders-v2.postman_collection.json",
    ] {
        let src = fixture(file);
        let (a, first) = import(dir.path(), &["postman", src.to_str().unwrap()], "a.yaml");
        assert!(a.code <= 1, "{file}: {}", a.all());
        let out = run_postie(
            dir.path(),
            &["export", "postman", "a.yaml", "-o", "b.json"],
            &[],
            None,
        );
        assert!(out.code <= 1, "{file}: {}", out.all());
        let (c, second) = import(dir.path(), &["postman", "b.json"], "c.yaml");
        assert!(c.code <= 1, "{file}: {}", c.all());
        let body = |y: &str| -> String {
            y.lines()
                .filter(|l| !l.starts_with("# "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            body(&first),
            body(&second),
            "{file}: the collection changed on the way round"
        );
    }
}

/// A Postman collection around `items`.
fn postman(items: Value) -> String {
    serde_json::to_string(&json!({
        "info": {"name": "hostile", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": items,
    }))
    .unwrap()
}

#[test]
fn hostile_collections_are_refused_or_contained() {
    let dir = tempfile::tempdir().unwrap();
    // 50 MB: a request whose body is 50 MB of JSON text comes in whole.
    let big = "x".repeat(50 << 20);
    let text = postman(
        json!([{"name": "big", "request": {"method": "POST", "url": "http://127.0.0.1:9/big",
        "body": {"mode": "raw", "raw": big, "options": {"raw": {"language": "text"}}}}}]),
    );
    std::fs::write(dir.path().join("big.json"), text).unwrap();
    let start = std::time::Instant::now();
    let (r, yaml) = import(dir.path(), &["postman", "big.json"], "big.yaml");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(yaml.len() > 50 << 20);
    eprintln!("50 MB collection imported in {:?}", start.elapsed());
    // Folders 40 deep come in as a folder path; 10,000 deep is refused, located, not a crash.
    let mut deep = json!([{"name": "leaf", "request": "http://127.0.0.1:9/leaf"}]);
    for i in 0..40 {
        deep = json!([{"name": format!("f{i}"), "item": deep}]);
    }
    std::fs::write(dir.path().join("deep.json"), postman(deep)).unwrap();
    let (r, yaml) = import(dir.path(), &["postman", "deep.json"], "deep.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        yaml.contains("folder: f39/f38/"),
        "{}",
        &yaml[..yaml.len().min(500)]
    );
    let mut text = String::new();
    for _ in 0..10_000 {
        text.push_str("{\"name\": \"f\", \"item\": [");
    }
    std::fs::write(
        dir.path().join("deeper.json"),
        format!("{{\"info\": {{}}, \"item\": [{text}"),
    )
    .unwrap();
    let r = run_postie(dir.path(), &["import", "postman", "deeper.json"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("deeper.json:1:"), "{}", r.stderr);
    assert!(r.stderr.contains("nested too deeply"), "{}", r.stderr);
    // Scripts that never end or eat memory are stopped with a clear message, and the run goes on.
    let scripts = postman(json!([
        {"name": "spin", "request": "http://127.0.0.1:9/x",
         "event": [{"listen": "prerequest", "script": {"exec": ["while (true) {}"]}}]},
        {"name": "hog", "request": "http://127.0.0.1:9/x",
         "event": [{"listen": "prerequest", "script": {"exec": ["var a = []; for (;;) a.push(new Array(1e5).fill(7));"]}}]},
    ]));
    std::fs::write(dir.path().join("scripts.json"), scripts).unwrap();
    let (r, _) = import(dir.path(), &["postman", "scripts.json"], "scripts.yaml");
    assert_eq!(r.code, 0, "{}", r.all());
    let start = std::time::Instant::now();
    let run = run_postie(dir.path(), &["run", "scripts.yaml", "--fresh"], &[], None);
    assert_eq!(
        run.code,
        3,
        "the requests cannot connect, after the scripts were stopped:\n{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("request `spin` script.pre: stopped: it ran longer than 1s"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("request `hog` script.pre: stopped: it used more than 64 MiB"),
        "{}",
        run.stdout
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}
