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
                "authorization": r["headers"]["authorization"]})
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
    let cases: [(&str, Option<(&str, &str)>); 5] = [
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
