//! Acknowledged writes survive a crash: the standalone mock (a real process on a real socket)
//! takes writes of every kind, is killed with SIGKILL, and starts again on the same `--state`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Server, start_server};

const CID: &str = "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21";
const SECRET: &str = "mock-secret-Zk8xQ2vN7pLr4tYw";
const GENERAL: &str = "07936f78-662a-11eb-af0a-fa163e56c9b0";

fn mock(state: &std::path::Path, sync: &str) -> Server {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args([
        "mock",
        "--port",
        "0",
        "--auto-approve",
        "--sync",
        sync,
        "--state",
    ])
    .arg(state);
    start_server(cmd)
}

fn kill(server: Server) {
    // SIGKILL: no shutdown, no compaction — only what the journal holds.
    let pid = server.pid().to_string();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    drop(server);
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn login(base: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let loc = http
            .get(format!("{base}/oauth2/default/v1/authorize"))
            .query(&[
                ("client_id", CID),
                ("redirect_uri", "http://localhost:8910/callback"),
                ("response_type", "code"),
                ("scope", "contact_data offline_access"),
                ("state", "s"),
            ])
            .send()
            .await
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        let code = url::Url::parse(&loc)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .to_string();
        let tok: Value = http
            .post(format!("{base}/oauth2/default/v1/token"))
            .basic_auth(CID, Some(SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://localhost:8910/callback"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Client {
            http,
            base: base.to_string(),
            token: tok["access_token"].as_str().unwrap().to_string(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut b = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(j) = body {
            b = b.json(&j);
        }
        let r = b.send().await?;
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_write_of_every_kind_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("mock.json");
    let server = mock(&state, "batch");
    let c = Client::login(&server.url).await;
    use reqwest::Method;
    // A contact created, then updated with PUT; another deleted; a list; a sign_up_form; an import
    // polled to completed.
    let (s, created) = c
        .call(Method::POST, "/v3/contacts", Some(json!({"email_address": {"address": "put@example.com"}, "first_name": "Before", "create_source": "Account"})))
        .await
        .unwrap();
    assert_eq!(s, 201, "{created}");
    let put_id = created["contact_id"].as_str().unwrap().to_string();
    let (s, _) = c
        .call(Method::PUT, &format!("/v3/contacts/{put_id}"), Some(json!({"email_address": {"address": "put@example.com"}, "first_name": "After", "update_source": "Account"})))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let (_, gone) = c
        .call(Method::POST, "/v3/contacts", Some(json!({"email_address": {"address": "gone@example.com"}, "create_source": "Account"})))
        .await
        .unwrap();
    let gone_id = gone["contact_id"].as_str().unwrap().to_string();
    let (s, _) = c
        .call(Method::DELETE, &format!("/v3/contacts/{gone_id}"), None)
        .await
        .unwrap();
    assert_eq!(s, 204);
    let (s, list) = c
        .call(
            Method::POST,
            "/v3/contact_lists",
            Some(json!({"name": "Crash survivors"})),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let list_id = list["list_id"].as_str().unwrap().to_string();
    let (s, _) = c
        .call(
            Method::POST,
            "/v3/contacts/sign_up_form",
            Some(json!({"email_address": "signup@example.com", "list_memberships": [list_id]})),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let (s, act) = c
        .call(Method::POST, "/v3/activities/contacts_json_import", Some(json!({"import_data": [{"email": "imported@example.com", "first_name": "Imp"}], "list_ids": [GENERAL]})))
        .await
        .unwrap();
    assert_eq!(s, 201);
    let act_id = act["activity_id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let (_, a) = c.get(&format!("/v3/activities/{act_id}")).await;
        if a["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(server);

    let server = mock(&state, "batch");
    // The same key signs tokens across restarts: the old token still works.
    let c = Client {
        base: server.url.clone(),
        ..c
    };
    let (_, put) = c.get(&format!("/v3/contacts/{put_id}")).await;
    assert_eq!(put["first_name"], "After", "{put}");
    // Deleted is soft, as at Constant Contact: the contact answers with its `deleted_at`.
    let (_, deleted) = c.get(&format!("/v3/contacts/{gone_id}")).await;
    assert!(deleted["deleted_at"].is_string(), "{deleted}");
    let (s, l) = c.get(&format!("/v3/contact_lists/{list_id}")).await;
    assert_eq!((s, l["name"].as_str()), (200, Some("Crash survivors")));
    let (_, found) = c
        .get("/v3/contacts?email=signup@example.com&include=list_memberships")
        .await;
    assert_eq!(
        found["contacts"][0]["list_memberships"],
        json!([list_id]),
        "{found}"
    );
    let (_, imported) = c.get("/v3/contacts?email=imported@example.com").await;
    assert_eq!(
        imported["contacts"].as_array().map(Vec::len),
        Some(1),
        "{imported}"
    );
    let (_, a) = c.get(&format!("/v3/activities/{act_id}")).await;
    assert_eq!(a["state"], "completed", "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_at_random_points_of_a_write_burst_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("mock.json");
    // Bounded: 6 rounds, each a burst of at most a few seconds.
    let mut seed = std::process::id() as u64;
    for round in 0..6u64 {
        let server = mock(&state, if round % 2 == 0 { "batch" } else { "always" });
        let c = std::sync::Arc::new(Client::login(&server.url).await);
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (c, acked) = (c.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000 {
                    let email = format!("r{round}-w{w}-{i}@burst.io");
                    let body = json!({"email_address": email, "first_name": format!("F{i}"), "last_name": format!("L{i}"), "list_memberships": [GENERAL]});
                    match c
                        .call(reqwest::Method::POST, "/v3/contacts/sign_up_form", Some(body))
                        .await
                    {
                        Ok((201, _)) => acked.lock().unwrap().push(email),
                        Ok((s, v)) => panic!("{s} {v}"),
                        Err(_) => return,
                    }
                }
            }));
        }
        // A pseudo-random moment, 50–550 ms into the burst.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(50 + (seed >> 33) % 500)).await;
        kill(server);
        for t in tasks {
            let _ = t.await;
        }
        let acked = acked.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        // Every acknowledged contact is there, whole.
        let server = mock(&state, "batch");
        let c2 = Client::login(&server.url).await;
        // Nothing, acknowledged or not, is there half-applied: each sign_up_form is one record.
        let whole: Value = c2
            .http
            .get(format!("{}/__postie/state", c2.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let prefix = format!("r{round}-");
        let mut present = 0;
        for contact in whole["contacts"].as_object().unwrap().values() {
            let email = contact["email"]["address"].as_str().unwrap_or("");
            if email.starts_with(&prefix) {
                present += 1;
                assert!(
                    contact["first_name"].is_string()
                        && contact["last_name"].is_string()
                        && contact["list_memberships"] == json!([GENERAL]),
                    "half-applied: {contact}"
                );
            }
        }
        assert!(
            present >= acked.len(),
            "round {round}: {present} present, {} acknowledged",
            acked.len()
        );
        for email in acked.iter().step_by((acked.len() / 200).max(1)) {
            let (_, found) = c2
                .get(&format!(
                    "/v3/contacts?email={email}&include=list_memberships"
                ))
                .await;
            let contact = &found["contacts"][0];
            assert_eq!(
                contact["email_address"]["address"],
                email.as_str(),
                "round {round}: {email} was acknowledged and lost"
            );
            assert!(
                contact["first_name"].is_string() && contact["last_name"].is_string(),
                "half-applied: {contact}"
            );
            assert_eq!(
                contact["list_memberships"],
                json!([GENERAL]),
                "half-applied: {contact}"
            );
        }
        kill(server);
    }
}

/// A list's member count (kept by the mock, so cheap to poll).
async fn members_of(c: &Client, list: &str) -> u64 {
    let (_, l) = c
        .get(&format!(
            "/v3/contact_lists/{list}?include_membership_count=all"
        ))
        .await;
    l["membership_count"].as_u64().unwrap()
}

/// Polls an activity until it reads `completed` (at most 30 s).
async fn completed(c: &Client, path: &str) -> Value {
    for _ in 0..1200 {
        let (_, a) = c.get(path).await;
        if a["state"] == "completed" {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} did not complete in 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_activity_killed_part_way_is_applied_whole_after_restart() {
    use reqwest::Method;
    const N: usize = 20_000;
    // The kill must land while the activity is part-applied; a machine that applies it all
    // between two polls gets another try.
    for attempt in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("mock.json");
        let server = mock(&state, "batch");
        let c = Client::login(&server.url).await;
        let rows: Vec<Value> = (0..N)
            .map(|i| json!({"email": format!("k{i}@bulk.io")}))
            .collect();
        let (s, a) = c
            .call(
                Method::POST,
                "/v3/activities/contacts_json_import",
                Some(json!({"import_data": rows, "list_ids": [GENERAL]})),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{a}");
        let import = format!("/v3/activities/{}", a["activity_id"].as_str().unwrap());
        completed(&c, &import).await;
        let members = members_of(&c, GENERAL).await;
        assert!(members >= N as u64);
        let (_, target) = c
            .call(
                Method::POST,
                "/v3/contact_lists",
                Some(json!({"name": "Moved"})),
            )
            .await
            .unwrap();
        let target = target["list_id"].as_str().unwrap().to_string();
        let (s, a) = c
            .call(
                Method::POST,
                "/v3/activities/add_list_memberships",
                Some(json!({"source": {"list_ids": [GENERAL]}, "list_ids": [target]})),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{a}");
        let moved = format!("/v3/activities/{}", a["activity_id"].as_str().unwrap());
        let mut seen = 0;
        while seen == 0 {
            seen = members_of(&c, &target).await;
        }
        kill(server);
        if seen == members {
            eprintln!("attempt {attempt}: the activity was applied before the kill; again");
            continue;
        }
        // Part of it was journaled (a slice is not acknowledged to anyone, so the last ones may
        // not have reached the journal); after the restart it is applied again from its start.
        let server = mock(&state, "batch");
        let c = Client {
            base: server.url.clone(),
            ..c
        };
        let a = completed(&c, &moved).await;
        assert_eq!(a["status"]["items_completed_count"], members, "{a}");
        assert_eq!(members_of(&c, &target).await, members);
        assert_eq!(members_of(&c, GENERAL).await, members);
        return;
    }
    panic!("no kill landed while the activity was part-applied in 3 attempts");
}
