//! `cargo bench`: prints postie's performance figures (targets in parentheses).
//!
//! 1. load + validate a generated 3,000-request collection (< 100 ms);
//! 2. runner overhead per step beyond the server's own time: render, send to a local server,
//!    bind variables (< 200 µs);
//! 3. `postie --version` cold start (< 10 ms);
//! 4. the mock: a 40,000-contact JSON import to `completed`, `sign_up_form` in-process throughput,
//!    and resident memory with 1,000,000 contacts (< 1 GiB);
//! 5. imports: the 128-operation Constant Contact Swagger (< 50 ms), Postman collections of 10,
//!    1,000 and 10,000 requests (1,000 in < 100 ms), curl files of as many commands —
//!    `openapi2postmanv2` beside it when it is on the PATH;
//! 6. scripts: a step whose post-response script runs 20 `pm.test`s against the same step
//!    without one (< 1 ms more), and flows of such steps beside Newman running the exported
//!    collection (node_modules/.bin/newman, installed by scripts/test);
//! 7. `mock --spec`: loading the Constant Contact Swagger (< 100 ms) and generated documents of
//!    10, 1,000 and 10,000 operations, and the in-process cost of answering a GET on each.
//! 8. growth: the longest single insert into the contact table and the email index while they
//!    fill to 10,000, 1,000,000 and 4,000,000 entries, beside `IndexMap` and hashbrown.
//! 9. bulk: a list-membership activity over every contact of a store of 10,000, 100,000 and
//!    1,000,000, applied in the background worker's slices with each slice journaled: the
//!    longest slice (what a request waits behind, < 1 ms at every size), then the clean stop that
//!    merges that journal, which changed every contact, into the snapshot (linear).
//!
//! The mock's HTTP throughput under 64 connections is measured with wrk: `benches/mock_load.sh`,
//! and for a served document beside Prism: `benches/spec_load.sh`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The allocator `postie` itself runs on (src/main.rs), so in-process figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn collection_text(n: usize) -> String {
    let mut s =
        String::from("name: big\nvariables:\n  base: http://127.0.0.1:1\n  token: t\nrequests:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  r{i}:\n    note: request number {i}\n    method: POST\n    url: <<base>>/items/{i}\n    query: {{page: \"<<page | default(1)>>\", limit: 50}}\n    headers: {{X-Trace: \"<<uuid()>>\"}}\n    auth: {{bearer: \"<<token>>\"}}\n    json: {{id: {i}, name: \"item <<base>>\", tags: [a, b]}}\n    capture:\n      id{i}: $.items[0].id\n    assert:\n      - status: 200\n      - jsonpath: $.ok\n        equals: true\n"
        ));
    }
    s.push_str("flows:\n  all:\n    steps:\n");
    for i in 0..n {
        if i % 2 == 0 {
            s.push_str(&format!("      - r{i}\n"));
        } else {
            s.push_str(&format!(
                "      - request: r{i}\n        when: r{} is defined\n",
                i - 1
            ));
        }
    }
    s
}

fn bench_load() {
    let text = collection_text(3000);
    let t = postie::template::Templates::new();
    let mut times = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        let c = postie::collection::Collection::parse(Path::new("big.yaml"), text.clone())
            .expect("valid");
        let errors = postie::validate::validate(&c, &t);
        assert!(errors.is_empty(), "{:?}", errors.first());
        times.push(start.elapsed());
    }
    println!(
        "load+validate 3,000-request collection ({} KiB): median {:.1} ms   (target < 100 ms)",
        text.len() / 1024,
        median(times).as_secs_f64() * 1000.0
    );
}

/// A minimal keep-alive HTTP server answering a fixed JSON body, so the server's own time is tiny
/// and identical for the baseline and the runner.
fn tiny_server() -> u16 {
    serve_tiny(false)
}

/// [`tiny_server`], whose every answer also carries a new `next_page_token` (a secret by its
/// name, as paging tokens are): each step of a flow binds a secret never seen before.
fn tiny_server_new_secret_each_time() -> u16 {
    serve_tiny(true)
}

fn serve_tiny(new_secret: bool) -> u16 {
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let served = served.clone();
            std::thread::spawn(move || {
                let mut s = stream;
                let _ = s.set_nodelay(true);
                let fixed =
                    br#"{"access_token":"abc","items":[{"id":7}],"ok":true,"contact_id":"c-1"}"#;
                let mut buf = vec![0u8; 65536];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Answer each complete request (headers plus Content-Length body).
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if pending.len() < end + 4 + len {
                            break;
                        }
                        pending.drain(..end + 4 + len);
                        let n = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let made;
                        let body: &[u8] = if new_secret {
                            made = format!(
                                r#"{{"items":[{{"id":7}}],"next_page_token":"pg-{n:016x}-{:016x}"}}"#,
                                n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                            );
                            made.as_bytes()
                        } else {
                            fixed
                        };
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if s.write_all(resp.as_bytes())
                            .and_then(|_| s.write_all(body))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn bench_runner() {
    let port = tiny_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let text = format!(
        "name: b\nvariables:\n  base: http://127.0.0.1:{port}\n  email: a@b.io\nrequests:\n  step:\n    method: POST\n    url: <<base>>/contacts\n    query: {{email: \"<<email>>\"}}\n    headers: {{X-Id: \"<<contact_id | default('none')>>\"}}\n    json: {{email: \"<<email>>\", list: [\"<<contact_id | default('x')>>\"]}}\n    assert:\n      - status: 200\n"
    );
    std::fs::write(&path, &text).unwrap();
    let c = postie::collection::Collection::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/contacts?email=a%40b.io");
    let n = 2000;
    let (baseline, runner) = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut runner = postie::runner::Runner::new(
            c,
            postie::runner::RunOptions {
                fresh: true,
                state_dir: Some(dir.path().join("state")),
                ..Default::default()
            },
        )
        .unwrap();
        // Interleaved, so drift in the machine's speed affects both alike. The baseline is the
        // same request with a bare client: the server's time plus the transport.
        let (mut base, mut times) = (Vec::new(), Vec::new());
        for i in 0..n + 200 {
            let start = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"email":"a@b.io","list":["x"]}"#)
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await.unwrap();
            let bare = start.elapsed();
            let start = Instant::now();
            let r = runner.send("step").await;
            let step = start.elapsed();
            assert!(r.ok(), "{:?}", r.failure);
            if i >= 200 {
                base.push(bare);
                times.push(step);
            }
        }
        (median(base), median(times))
    });
    let overhead = runner.saturating_sub(baseline);
    println!(
        "runner step (render + send + bind + assert): median {:.0} µs; bare client {:.0} µs; overhead {:.0} µs   (target < 200 µs)",
        runner.as_secs_f64() * 1e6,
        baseline.as_secs_f64() * 1e6,
        overhead.as_secs_f64() * 1e6
    );
}

/// Per-step cost as the collection defines more variables (10, 1,000, 10,000), with a secret
/// from the process environment sent in every request (the secret-host check runs each step):
/// it must stay flat, since a step uses only a few of them.
fn bench_variables() {
    let port = tiny_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The secret comes from `.env` beside each collection, as a user's would.
    let mut per_step = Vec::new();
    for n in [10usize, 1000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let mut text = format!(
            "name: v\nenvironments:\n  prod:\n    base: http://127.0.0.1:{port}\n    api_key: {{value: \"<<env.BENCH_API_KEY>>\", secret: true}}\n"
        );
        for i in 0..n {
            text.push_str(&format!("    v{i}: value-{i}\n"));
        }
        text.push_str("requests:\n  step:\n    method: POST\n    url: <<base>>/contacts\n    headers: {X-Api-Key: \"<<api_key>>\"}\n");
        std::fs::write(&path, &text).unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "BENCH_API_KEY=k-live-0123456789abcdef\n",
        )
        .unwrap();
        let c = postie::collection::Collection::load(&path).unwrap();
        let took = rt.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut runner = postie::runner::Runner::new(
                c,
                postie::runner::RunOptions {
                    env: Some("prod".into()),
                    fresh: true,
                    state_dir: Some(dir.path().join("state")),
                    ..Default::default()
                },
            )
            .unwrap();
            let mut times = Vec::new();
            for i in 0..700 {
                let start = Instant::now();
                let r = runner.send("step").await;
                assert!(r.ok(), "{:?}", r.failure);
                if i >= 200 {
                    times.push(start.elapsed());
                }
            }
            median(times)
        });
        per_step.push(took);
        println!(
            "step with {n:>6} collection variables (a bound secret sent each step): median {:.0} µs",
            took.as_secs_f64() * 1e6
        );
    }
    println!(
        "10,000 variables cost {:.2}x what 10 cost per step   (target: flat, <= 1.5x)",
        per_step[2].as_secs_f64() / per_step[0].as_secs_f64()
    );
}

/// A collection of `n` distinct GET requests, each capturing one value, and a flow `all` of them
/// (and `first_k` of the first `k`).
fn scaling_collection(port: u16, n: usize, k: usize) -> String {
    let mut s = format!("name: scale\nvariables:\n  base: http://127.0.0.1:{port}\nrequests:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  r{i}:\n    url: <<base>>/items/{i}\n    capture:\n      v{i}: $.items[0].id\n"
        ));
    }
    s.push_str("flows:\n  all:\n    steps:\n");
    for i in 0..n {
        s.push_str(&format!("      - r{i}\n"));
    }
    if k > 0 {
        s.push_str("  first_k:\n    steps:\n");
        for i in 0..k.min(n) {
            s.push_str(&format!("      - r{i}\n"));
        }
    }
    s
}

/// The equivalent Hurl file: the same GETs, each with a capture.
fn scaling_hurl(port: u16, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "GET http://127.0.0.1:{port}/items/{i}\nHTTP 200\n[Captures]\nv{i}: jsonpath \"$.items[0].id\"\n\n"
            )
        })
        .collect()
}

/// A maker of `postie run c.yaml --flow FLOW [--fresh]` in `dir`, for [`time_commands`].
fn postie_run(
    dir: &std::path::Path,
    flow: &'static str,
    fresh: bool,
) -> impl FnMut() -> std::process::Command + use<> {
    let dir = dir.to_path_buf();
    move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
        c.current_dir(&dir).args(["run", "c.yaml", "--flow", flow]);
        if fresh {
            c.arg("--fresh");
        }
        c
    }
}

/// Whole-process wall time of a command (median of `runs`).
fn time_command(runs: usize, make: impl FnMut() -> std::process::Command) -> Duration {
    let mut make = make;
    time_commands(runs, &mut [&mut make])[0]
}

/// Whole-process wall times of several commands, run in turn `runs` times (so the machine's
/// drift falls on all of them alike), the median of each.
fn time_commands(
    runs: usize,
    makes: &mut [&mut dyn FnMut() -> std::process::Command],
) -> Vec<Duration> {
    let mut times = vec![Vec::new(); makes.len()];
    for _ in 0..runs {
        for (make, times) in makes.iter_mut().zip(&mut times) {
            let mut cmd = make();
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            let start = Instant::now();
            let out = cmd.output().unwrap();
            times.push(start.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    times.into_iter().map(median).collect()
}

/// Runner cost as the work grows: flows of 10, 1,000 and 2,000 distinct steps, each capturing a
/// value, as whole `postie run` processes — fresh, and again over the state the first run left;
/// then 1,000 and 4,000 steps each binding a new secret, and 1,000 steps over a state holding 10,000
/// exchanges. Hurl runs the same requests beside it when it is on the PATH (`cargo install hurl`).
fn bench_scaling() {
    let port = tiny_server();
    let hurl = std::process::Command::new("hurl")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        });
    let mut dirs = Vec::new();
    for n in [10usize, 1000, 2000] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.yaml"), scaling_collection(port, n, 0)).unwrap();
        // The first non-fresh run leaves n exchanges in state; the timed ones run over them.
        time_command(1, postie_run(dir.path(), "all", false));
        let d = dir.path().to_path_buf();
        let hurl_run = hurl.is_some().then(|| {
            std::fs::write(d.join("c.hurl"), scaling_hurl(port, n)).unwrap();
            move || {
                let mut c = std::process::Command::new("hurl");
                c.current_dir(&d).args(["--no-output", "c.hurl"]);
                c
            }
        });
        // postie fresh, postie over state and Hurl in turn.
        let mut fresh_run = postie_run(dir.path(), "all", true);
        let mut state_run = postie_run(dir.path(), "all", false);
        let times = match hurl_run {
            Some(mut h) => time_commands(7, &mut [&mut fresh_run, &mut state_run, &mut h]),
            None => time_commands(7, &mut [&mut fresh_run, &mut state_run]),
        };
        let (fresh, stateful) = (times[0], times[1]);
        let mut line = format!(
            "run of {n:>5} distinct steps (capture each): fresh {:>8.1} ms ({:.0} µs/step), over saved state {:>8.1} ms ({:.0} µs/step)",
            fresh.as_secs_f64() * 1e3,
            fresh.as_secs_f64() * 1e6 / n as f64,
            stateful.as_secs_f64() * 1e3,
            stateful.as_secs_f64() * 1e6 / n as f64,
        );
        if let Some(&h) = times.get(2) {
            line.push_str(&format!(
                "; hurl {:>8.1} ms ({:.0} µs/step)",
                h.as_secs_f64() * 1e3,
                h.as_secs_f64() * 1e6 / n as f64
            ));
        }
        println!("{line}");
        dirs.push(dir);
    }
    // The two sizes in turn, fresh, for their ratio.
    let mut f1000 = postie_run(dirs[1].path(), "all", true);
    let mut f2000 = postie_run(dirs[2].path(), "all", true);
    let t = time_commands(9, &mut [&mut f1000, &mut f2000]);
    println!(
        "2,000 steps take {:.2}x the time of 1,000 ({:.1} and {:.1} ms, in turn)   (target <= 2.2x: linear)",
        t[1].as_secs_f64() / t[0].as_secs_f64(),
        t[0].as_secs_f64() * 1e3,
        t[1].as_secs_f64() * 1e3
    );
    match &hurl {
        Some(v) => println!("(beside {v})"),
        None => {
            println!("(hurl is not on the PATH: `cargo install hurl` to measure it beside postie)")
        }
    }
    // A new secret every step (a paging token): the redactor takes in one value a step.
    let port_new = tiny_server_new_secret_each_time();
    let mut each_new = Vec::new();
    for n in [1000usize, 4000] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            scaling_collection(port_new, n, 0),
        )
        .unwrap();
        let t = time_command(3, postie_run(dir.path(), "all", true));
        println!(
            "run of {n:>5} steps, each binding a secret never seen before: {:>8.1} ms ({:.0} µs/step)",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e6 / n as f64
        );
        each_new.push(t);
    }
    println!(
        "4,000 such steps take {:.2}x the time of 1,000   (target <= 4.4x: linear; one automaton rebuilt per new secret made it 15x)",
        each_new[1].as_secs_f64() / each_new[0].as_secs_f64()
    );
    // 1,000 steps over a state that holds 10,000 exchanges.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        scaling_collection(port, 10_000, 1000),
    )
    .unwrap();
    let fill = time_command(1, postie_run(dir.path(), "all", false));
    // Over that state and fresh, in turn.
    let t = time_commands(
        5,
        &mut [
            &mut postie_run(dir.path(), "first_k", false),
            &mut postie_run(dir.path(), "first_k", true),
        ],
    );
    let (over, clean) = (t[0], t[1]);
    println!(
        "10,000 steps filling state: {:.1} s ({:.0} µs/step); then 1,000 steps over it {:.1} ms ({:.0} µs/step) vs fresh {:.1} ms ({:.0} µs/step)",
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1e6 / 10_000.0,
        over.as_secs_f64() * 1e3,
        over.as_secs_f64() * 1e3,
        clean.as_secs_f64() * 1e3,
        clean.as_secs_f64() * 1e3,
    );
}

fn bench_cold_start() {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/postie");
    if !exe.exists() {
        println!("postie --version cold start: skipped (build with `cargo build --release` first)");
        return;
    }
    let mut times = Vec::new();
    for _ in 0..31 {
        let start = Instant::now();
        let out = std::process::Command::new(&exe)
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        times.push(start.elapsed());
    }
    println!(
        "postie --version cold start: median {:.2} ms over 31 runs   (target < 10 ms)",
        median(times).as_secs_f64() * 1000.0
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The mock as its own process (the release binary), so its memory is measured alone.
fn bench_mock() {
    use serde_json::{Value, json};
    use std::io::BufRead;
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/postie");
    if !exe.exists() {
        println!("mock benchmarks: skipped (build with `cargo build --release` first)");
        return;
    }
    let mut child = std::process::Command::new(&exe)
        .args(["mock", "--port", "0", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    lines.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let base = first.trim().trim_start_matches("listening on ").to_string();
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let loc = http
            .get(format!("{base}/oauth2/default/v1/authorize"))
            .query(&[("client_id", "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21"), ("redirect_uri", "http://localhost:8910/callback"), ("response_type", "code"), ("scope", "contact_data"), ("state", "s")])
            .send()
            .await
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        let code = url::Url::parse(&loc).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
        let tok: Value = http
            .post(format!("{base}/oauth2/default/v1/token"))
            .basic_auth("3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21", Some("mock-secret-Zk8xQ2vN7pLr4tYw"))
            .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "http://localhost:8910/callback")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = tok["access_token"].as_str().unwrap().to_string();
        let list = "07936f78-662a-11eb-af0a-fa163e56c9b0";
        let n = 5000;
        let start = Instant::now();
        for i in 0..n {
            let r = http.post(format!("{base}/v3/contacts/sign_up_form")).bearer_auth(&t).json(&json!({"email_address": format!("s{i}@bench.io"), "list_memberships": [list]})).send().await.unwrap();
            assert_eq!(r.status(), 201);
        }
        println!("sign_up_form, one connection, sequential: {:.0} requests/s (64 connections: benches/mock_load.sh)", n as f64 / start.elapsed().as_secs_f64());
        // 40,000-contact imports to completed, 25 of them: the last leaves 1,000,000 contacts.
        let mut import_times = Vec::new();
        for batch in 0..25 {
            let rows: Vec<Value> = (0..40_000).map(|i| json!({"email": format!("m{batch}-{i}@bench.io"), "first_name": "Bench", "last_name": format!("N{i}")})).collect();
            let body = serde_json::to_vec(&json!({"import_data": rows, "list_ids": [list]})).unwrap();
            let start = Instant::now();
            let a: Value = http.post(format!("{base}/v3/activities/contacts_json_import")).bearer_auth(&t).header("content-type", "application/json").body(body).send().await.unwrap().json().await.unwrap();
            let id = a["activity_id"].as_str().unwrap().to_string();
            loop {
                let a: Value = http.get(format!("{base}/v3/activities/{id}")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
                if a["state"] == "completed" {
                    assert_eq!(a["status"]["person_count"], 40_000);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            import_times.push(start.elapsed());
        }
        println!("40,000-contact JSON import to completed: median {:.2} s over 25 imports (upload, 100 ms initialized, 1 s processing at 40,000 rows/s)", median(import_times).as_secs_f64());
        let c: Value = http.get(format!("{base}/v3/contacts?limit=1&include_count=true")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
        println!("mock resident memory with {} contacts: {} MiB   (target < 1024 MiB)", c["contacts_count"], rss_kib(pid) / 1024);
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// A Postman collection of `n` requests in folders of 10, every one with headers, a JSON body
/// and a test script (half of them translatable to assertions, half kept as JavaScript).
fn postman_collection(n: usize) -> String {
    let mut folders = Vec::new();
    for f in 0..n.div_ceil(10) {
        let mut items = Vec::new();
        for i in f * 10..(f * 10 + 10).min(n) {
            let test = if i % 2 == 0 {
                vec![
                    "pm.test(\"Status code is 200\", function () {".to_string(),
                    "    pm.response.to.have.status(200);".into(),
                    "});".into(),
                    "var d = pm.response.json();".into(),
                    format!("pm.environment.set(\"id{i}\", d.items[0].id);"),
                ]
            } else {
                vec![
                    "const d = pm.response.json();".to_string(),
                    "pm.test(\"has items\", () => pm.expect(d.items.length).to.be.above(0));"
                        .into(),
                    format!("console.log('request {i}', d.ok);"),
                ]
            };
            items.push(serde_json::json!({
                "name": format!("Request {i}"),
                "event": [{"listen": "test", "script": {"type": "text/javascript", "exec": test}}],
                "request": {
                    "method": "POST",
                    "header": [{"key": "Content-Type", "value": "application/json"}, {"key": "X-Trace", "value": "{{$guid}}"}],
                    "body": {"mode": "raw", "raw": format!("{{\"id\": {i}, \"name\": \"{{{{name}}}}\", \"tags\": [\"a\", \"b\"]}}"), "options": {"raw": {"language": "json"}}},
                    "url": {"raw": format!("{{{{base_url}}}}/items/{i}?page=1"), "host": ["{{base_url}}"], "path": ["items", i.to_string()], "query": [{"key": "page", "value": "1"}]}
                },
                "response": []
            }));
        }
        folders.push(serde_json::json!({"name": format!("Folder {f}"), "item": items}));
    }
    serde_json::to_string(&serde_json::json!({
        "info": {"name": "bench", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": "base_url", "value": "http://127.0.0.1:1"}, {"key": "name", "value": "ada"}],
        "item": folders,
    }))
    .unwrap()
}

/// What `postie import` does with an import before writing it: the YAML, loaded back.
fn import_and_check(imp: postie::interop::Import) -> usize {
    let yaml = imp.yaml("bench");
    let c = postie::collection::Collection::parse(Path::new("imported.yaml"), yaml).expect("loads");
    c.requests.len()
}

fn bench_import() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("fixtures/interop/openapi/constant-contact-v3-swagger.yaml");
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..11 {
        let start = Instant::now();
        count = import_and_check(postie::interop::openapi::import(&spec).expect("imports"));
        times.push(start.elapsed());
    }
    let ours = median(times);
    let mut line = format!(
        "import openapi: Constant Contact Swagger (673 KiB, 128 operations → {count} requests): median {:.1} ms   (target <= 50 ms)",
        ours.as_secs_f64() * 1e3
    );
    // The peer converts the same file to a Postman collection (whole processes on both sides).
    if std::process::Command::new("openapi2postmanv2")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let dir = tempfile::tempdir().unwrap();
        let exe = env!("CARGO_BIN_EXE_postie");
        let (s, d) = (spec.clone(), dir.path().to_path_buf());
        let postie_cli = time_command(5, move || {
            let mut c = std::process::Command::new(exe);
            c.args(["import", "openapi"])
                .arg(&s)
                .arg("-o")
                .arg(d.join("cc.yaml"));
            c
        });
        let (s, d) = (spec.clone(), dir.path().to_path_buf());
        let peer = time_command(5, move || {
            let mut c = std::process::Command::new("openapi2postmanv2");
            c.arg("-s").arg(&s).arg("-o").arg(d.join("cc.json"));
            c
        });
        line.push_str(&format!(
            "; as processes: postie {:.1} ms, openapi2postmanv2 {:.1} ms",
            postie_cli.as_secs_f64() * 1e3,
            peer.as_secs_f64() * 1e3
        ));
    } else {
        line.push_str("; (openapi2postmanv2 is not on the PATH: `npm i -g openapi-to-postmanv2` to measure it beside postie)");
    }
    println!("{line}");
    let dir = tempfile::tempdir().unwrap();
    let mut per = Vec::new();
    for n in [10usize, 1000, 10_000] {
        let path = dir.path().join(format!("p{n}.json"));
        std::fs::write(&path, postman_collection(n)).unwrap();
        let runs = if n >= 10_000 { 3 } else { 7 };
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let got =
                import_and_check(postie::interop::postman::import(&path, &[]).expect("imports"));
            assert_eq!(got, n);
            times.push(start.elapsed());
        }
        let t = median(times);
        println!(
            "import postman: {n:>6} requests in {} folders, every one scripted: {:>8.1} ms ({:.0} µs/request){}",
            n.div_ceil(10),
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e6 / n as f64,
            if n == 1000 {
                "   (target <= 100 ms)"
            } else {
                ""
            }
        );
        per.push(t);
    }
    println!(
        "import postman: 10,000 requests take {:.1}x the time of 1,000   (linear: <= 11x)",
        per[2].as_secs_f64() / per[1].as_secs_f64()
    );
    for n in [10usize, 1000, 10_000] {
        let text: String = (0..n)
            .map(|i| format!("curl -X POST 'https://api.example.com/v3/items/{i}?page=1' \\\n  -H 'Authorization: Bearer {{access_token}}' -H 'Content-Type: application/json' \\\n  --data-raw '{{\"id\": {i}, \"tags\": [\"a\"]}}'\n"))
            .collect();
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let imp = postie::interop::curl::import_text(&text, "bench", Path::new("bench.sh"))
                .expect("imports");
            assert_eq!(import_and_check(imp), n);
            times.push(start.elapsed());
        }
        let t = median(times);
        println!(
            "import curl: {n:>6} commands: {:>8.1} ms ({:.0} µs/command)",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e6 / n as f64
        );
    }
}

/// The script a scripted step runs after its response: 20 `pm.test`s with Chai.
const TWENTY_TESTS: &str = "const d = pm.response.json();\nfor (let i = 0; i < 20; i++) {\n  pm.test('check ' + i, function () { pm.expect(d.items[0].id).to.equal(7); });\n}\n";

fn bench_scripts() {
    let port = tiny_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let script = TWENTY_TESTS.replace('\n', "\n        ");
    let text = format!(
        "name: s\nvariables:\n  base: http://127.0.0.1:{port}\nrequests:\n  plain:\n    url: <<base>>/items\n  scripted:\n    url: <<base>>/items\n    script:\n      post: |\n        {script}\n"
    );
    std::fs::write(&path, &text).unwrap();
    let c = postie::collection::Collection::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (plain, scripted, engine_after_plain) = rt.block_on(async {
        let mut runner = postie::runner::Runner::new(
            c,
            postie::runner::RunOptions {
                fresh: true,
                state_dir: Some(dir.path().join("state")),
                ..Default::default()
            },
        )
        .unwrap();
        // Steps without scripts never start the engine.
        for _ in 0..50 {
            assert!(runner.send("plain").await.ok());
        }
        let engine_after_plain = postie::script::engine_ready();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..1100 {
            let start = Instant::now();
            let r = runner.send("plain").await;
            let t_plain = start.elapsed();
            let start = Instant::now();
            let s = runner.send("scripted").await;
            let t_scripted = start.elapsed();
            assert!(r.ok() && s.ok(), "{:?}", s.failure);
            assert_eq!(s.asserts.len(), 20);
            if i >= 100 {
                a.push(t_plain);
                b.push(t_scripted);
            }
        }
        (median(a), median(b), engine_after_plain)
    });
    println!(
        "step with a post script of 20 pm.tests: median {:.0} µs; the same step without a script {:.0} µs; extra {:.0} µs   (target <= 1 ms); engine started by script-less steps: {}",
        scripted.as_secs_f64() * 1e6,
        plain.as_secs_f64() * 1e6,
        scripted.saturating_sub(plain).as_secs_f64() * 1e6,
        if engine_after_plain { "yes" } else { "no" }
    );
    // Flows of scripted steps as whole processes, beside Newman running the exported collection.
    let exe = env!("CARGO_BIN_EXE_postie");
    let newman = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/newman");
    for n in [10usize, 1000] {
        let d = tempfile::tempdir().unwrap();
        let mut s = format!("name: flow\nvariables:\n  base: http://127.0.0.1:{port}\nrequests:\n");
        for i in 0..n {
            s.push_str(&format!("  r{i}:\n    url: <<base>>/items/{i}\n    script:\n      post: |\n        {script}\n"));
        }
        std::fs::write(d.path().join("c.yaml"), s).unwrap();
        let runs = if n >= 1000 { 3 } else { 5 };
        let p = d.path().to_path_buf();
        let ours = time_command(runs, move || {
            let mut c = std::process::Command::new(exe);
            c.current_dir(&p).args(["run", "c.yaml", "--fresh"]);
            c
        });
        let mut line = format!(
            "run of {n:>5} scripted steps (20 pm.tests each): postie {:>9.1} ms ({:.0} µs/step)",
            ours.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e6 / n as f64
        );
        if newman.exists() {
            let out = std::process::Command::new(exe)
                .current_dir(d.path())
                .args(["export", "postman", "c.yaml", "-o", "c.postman.json"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (p, nm) = (d.path().to_path_buf(), newman.clone());
            let theirs = time_command(runs, move || {
                let mut c = std::process::Command::new(&nm);
                c.current_dir(&p).args([
                    "run",
                    "c.postman.json",
                    "--reporters",
                    "json",
                    "--reporter-json-export",
                    "out.json",
                ]);
                c
            });
            line.push_str(&format!(
                "; newman {:>9.1} ms ({:.0} µs/step)",
                theirs.as_secs_f64() * 1e3,
                theirs.as_secs_f64() * 1e6 / n as f64
            ));
        }
        println!("{line}");
    }
}

/// An OpenAPI 3.0 document of `n` GET operations on `/r{i}/{id}`, each answering an object.
fn spec_text(n: usize) -> String {
    let mut paths = serde_json::Map::new();
    for i in 0..n {
        paths.insert(
            format!("/r{i}/{{id}}"),
            serde_json::json!({"get": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}},
                               {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
                              "404": {"description": "missing"}}}}),
        );
    }
    serde_json::to_string(&serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": "generated", "version": "1"},
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {"schemas": {"Item": {"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string", "format": "email"},
            "created_at": {"type": "string", "format": "date-time"}, "tags": {"type": "array", "items": {"type": "string"}}}}}}
    }))
    .unwrap()
}

fn bench_spec() {
    use postie::mock::engine::spec::{AnyBearer, SpecServer};
    let cc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/constant-contact-v3-swagger.yaml");
    let times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let s = SpecServer::load(&cc, 1, true).unwrap();
            assert_eq!(s.operations(), 128);
            t.elapsed()
        })
        .collect();
    println!(
        "mock --spec: Constant Contact Swagger (128 operations) loaded in {:.1} ms   (target <= 100 ms)",
        median(times).as_secs_f64() * 1e3
    );
    let dir = tempfile::tempdir().unwrap();
    for n in [10, 1_000, 10_000] {
        let path = dir.path().join(format!("spec{n}.json"));
        std::fs::write(&path, spec_text(n)).unwrap();
        let t = Instant::now();
        let s = SpecServer::load(&path, 1, false).unwrap();
        let load = t.elapsed();
        // The last operation: a router that scans would be slowest here.
        let req = postie::mock::http::Req {
            method: "GET".into(),
            path: format!("/api/r{}/42", n - 1),
            query: vec![("limit".into(), "20".into())],
            headers: Default::default(),
            body: Default::default(),
        };
        let first = s.handle(&req, &AnyBearer).unwrap();
        assert_eq!(
            first.status,
            200,
            "{}",
            String::from_utf8_lossy(&first.body)
        );
        let rounds = 20_000;
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(s.handle(&req, &AnyBearer));
        }
        let per = t.elapsed() / rounds;
        println!(
            "mock --spec: {n:>6} operations: loaded in {:>8.1} ms; a GET answered in {:>6.2} µs in-process ({:.0}k/s on one core)",
            load.as_secs_f64() * 1e3,
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64() / 1e3
        );
    }
}

/// Stub files of 10, 1,000 and 10,000 stubs: the cost of the answer for the last stub (a
/// matcher that tries every stub would grow with the file), and of a miss with its report (which
/// looks at every stub by design).
fn bench_stubs() {
    use postie::mock::engine::stubs::Stubs;
    let dir = tempfile::tempdir().unwrap();
    for n in [10, 1_000, 10_000] {
        let mut text = String::from("stubs:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  - name: r{i}\n    request: {{method: GET, path: \"/r{i}/{{id}}\", query: {{v: \"1\"}}}}\n    response: {{json: {{id: \"<<path.id>>\", n: {i}}}}}\n"
            ));
        }
        let path = dir.path().join(format!("stubs{n}.yaml"));
        std::fs::write(&path, text).unwrap();
        let t = Instant::now();
        let stubs = Stubs::load(std::slice::from_ref(&path)).unwrap();
        let load = t.elapsed();
        let req = |p: String| postie::mock::http::Req {
            method: "GET".into(),
            path: p,
            query: vec![("v".into(), "1".into())],
            headers: Default::default(),
            body: Default::default(),
        };
        let hit = req(format!("/r{}/42", n - 1));
        assert_eq!(stubs.handle(&hit, 0).unwrap().status, 200);
        let rounds = 20_000;
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(stubs.handle(&hit, 0).is_ok());
        }
        let per_hit = t.elapsed() / rounds;
        let miss = req("/nowhere/1".into());
        let rounds = (2_000_000 / n as u32).clamp(20, 20_000);
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(stubs.handle(&miss, 0).is_err());
        }
        let per_miss = t.elapsed() / rounds;
        println!(
            "mock --stubs: {n:>6} stubs: loaded in {:>8.1} ms; the last stub answered in {:>6.2} µs; a miss with its report {:>9.2} µs",
            load.as_secs_f64() * 1e3,
            per_hit.as_secs_f64() * 1e6,
            per_miss.as_secs_f64() * 1e6
        );
    }
}

/// `postie record`: writing the stub file for sessions of 10, 1,000 and 10,000 exchanges (a
/// bearer token and a JSON body each; every 100th a token response). The proxy rewrites the file
/// at most every 200 ms, so this is the cost of one write at that size.
fn bench_record() {
    use postie::mock::engine::record::{Exchange, stub_file};
    for n in [10usize, 1_000, 10_000] {
        let list: Vec<Exchange> = (0..n)
            .map(|i| {
                let token = i % 100 == 0;
                Exchange {
                    method: if token { "POST" } else { "GET" }.into(),
                    path: if token {
                        "/oauth/token".into()
                    } else {
                        format!("/things/{i}")
                    },
                    query: vec![],
                    req_headers: vec![(
                        "authorization".into(),
                        format!("Bearer tok-{:08}-abcdefgh", i / 100),
                    )],
                    req_body: Default::default(),
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: if token {
                        format!(
                            r#"{{"access_token": "tok-{:08}-abcdefgh", "expires_in": 3600}}"#,
                            i / 100
                        )
                    } else {
                        format!(r#"{{"id": {i}, "name": "thing {i}", "tags": ["a", "b"]}}"#)
                    }
                    .into(),
                }
            })
            .collect();
        let rounds = if n >= 10_000 { 3 } else { 20 };
        let times: Vec<Duration> = (0..rounds)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(stub_file(&list, "http://target"));
                t.elapsed()
            })
            .collect();
        let m = median(times);
        println!(
            "record: {n:>6} exchanges: stub file written in {:>8.2} ms ({:.1} µs per exchange)",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() * 1e6 / n as f64
        );
    }
}

/// The longest single insert and the total while a table fills from empty to `n` keys: the
/// longest is the growth stall a request would wait behind.
fn fill(n: u64, mut insert: impl FnMut(u64)) -> (Duration, Duration) {
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        insert(i);
        worst = worst.max(t.elapsed());
    }
    (worst, start.elapsed())
}

/// Growth (8.): the contact table and the email index filled from empty, beside the `IndexMap` and
/// hashbrown table they replaced, whose growth moved every entry in one insert.
fn bench_growth() {
    use postie::mock::packs::constant_contact::ordered::{OrderedMap, Sharded};
    type Fast = foldhash::fast::RandomState;
    let key = |i: u64| uuid::Uuid::from_u64_pair(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i);
    println!(
        "growth: longest single insert / total, filling from empty (a request waits behind the longest)"
    );
    println!(
        "  (at 4,000,000 an outlier of several ms can be mimalloc returning the earlier fills' memory to the kernel; MIMALLOC_PURGE_DELAY=-1 shows the structures alone)"
    );
    for n in [10_000u64, 1_000_000, 4_000_000] {
        let mut ordered: OrderedMap<uuid::Uuid, Box<u64>, Fast> = OrderedMap::default();
        let (o_worst, o_all) = fill(n, |i| {
            ordered.insert(key(i), Box::new(i));
        });
        drop(ordered);
        let mut index: indexmap::IndexMap<uuid::Uuid, Box<u64>, Fast> = Default::default();
        let (i_worst, i_all) = fill(n, |i| {
            index.insert(key(i), Box::new(i));
        });
        drop(index);
        // An address's hash is random; a sequence's bits would fill every shard in step.
        let seed = foldhash::fast::FixedState::with_seed(7);
        let hash = |i: u64| std::hash::BuildHasher::hash_one(&seed, i);
        let mut sharded: Sharded<(u64, uuid::Uuid)> = Sharded::default();
        let (s_worst, s_all) = fill(n, |i| {
            let h = hash(i);
            sharded.find_or_insert(h, |e| e.0 == h, || (h, key(i)), |&(h, _)| h as u32);
        });
        drop(sharded);
        let mut table: hashbrown::HashTable<(u64, uuid::Uuid)> = hashbrown::HashTable::new();
        let (t_worst, t_all) = fill(n, |i| {
            let h = hash(i);
            table
                .entry(h, |e| e.0 == h, |&(h, _)| h)
                .or_insert_with(|| (h, key(i)));
        });
        drop(table);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {n:>9} contacts: OrderedMap {:.2} ms / {:.0} ms (IndexMap {:.2} ms / {:.0} ms); email index Sharded {:.2} ms / {:.0} ms (HashTable {:.2} ms / {:.0} ms)",
            ms(o_worst),
            ms(o_all),
            ms(i_worst),
            ms(i_all),
            ms(s_worst),
            ms(s_all),
            ms(t_worst),
            ms(t_all)
        );
    }
}

/// Bulk (9.): a bulk activity over every contact, a slice at a time with each slice journaled as
/// a request's would be, then the merge of that journal at a clean stop.
fn bench_bulk() {
    use postie::mock::packs::constant_contact::{activities, applying, contacts, store};
    use postie::mock::wal;
    println!(
        "bulk: add_list_memberships over every contact, in background slices (each journaled), then the merge at a clean stop"
    );
    let speed = activities::Speed {
        rows_per_second: 1_000_000_000,
        start_delay_ms: 0,
    };
    for n in [10_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let files = wal::Files::new(&dir.path().join("state.json"));
        let mut sim = store::Sim::default();
        let list = |name: &str| store::ContactList::new(uuid::Uuid::new_v4(), name, 0);
        let (from, to) = (list("from"), list("to"));
        let (from_id, to_id) = (from.id, to.id);
        sim.lists.insert(from.id, from);
        sim.lists.insert(to.id, to);
        for i in 0..n {
            let mut row = serde_json::Map::new();
            row.insert("email".into(), format!("c{i}@bulk.io").into());
            row.insert("first_name".into(), "Bulk".into());
            contacts::import_row(&mut sim, &row, &[from_id], 0).unwrap();
        }
        let work = activities::Work::Membership {
            add: true,
            contact_ids: vec![],
            source_lists: vec![from_id],
            all_active: false,
            targets: vec![to_id],
            exclude: vec![],
        };
        wal::write_snapshot(&files.snapshot, &sim, 0).unwrap();
        sim.forget_changes();
        let journal =
            wal::Wal::start(files.clone(), wal::SyncMode::None, &Default::default()).unwrap();
        // The request that makes the activity is the journal's first record.
        let a = activities::Activity::new("add_list_memberships", 0, n as u64, work);
        sim.activities.insert(a.id, a);
        journal.append(&mut sim);
        let (mut slices, mut worst) = (0, Duration::ZERO);
        let start = Instant::now();
        loop {
            let t = Instant::now();
            let more = applying::slice(&mut sim, 1_000_000, &speed);
            journal.append(&mut sim);
            worst = worst.max(t.elapsed());
            slices += 1;
            if !more {
                break;
            }
        }
        let applied = start.elapsed();
        assert!(sim.activities.values().all(|a| a.applied));
        let t = Instant::now();
        journal.shutdown();
        let merged = t.elapsed();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {n:>9} contacts: {slices} slices, longest {:.2} ms, all {:.0} ms ({:.2} µs per contact); merge at stop {:.0} ms ({:.2} µs per contact)",
            ms(worst),
            ms(applied),
            applied.as_secs_f64() * 1e6 / n as f64,
            ms(merged),
            merged.as_secs_f64() * 1e6 / n as f64
        );
    }
}

/// The pack's contact handlers in process (no sockets, no lock): one contact, pages of 50 and
/// 500, a list's active members with their count, and the ten contacts updated after a time with
/// their count, over stores of 10 to 100,000 contacts. Each should cost the same at every size.
fn bench_pages() {
    use postie::mock::http::Req;
    use postie::mock::packs::constant_contact::{contacts, store};
    println!("pages: the contact handlers in process, median of repeated calls");
    for n in [10usize, 1_000, 10_000, 100_000] {
        let mut sim = store::Sim::default();
        let list = uuid::Uuid::new_v4();
        sim.lists
            .insert(list, store::ContactList::new(list, "all", 0));
        let mut last = String::new();
        for i in 0..n {
            let mut row = serde_json::Map::new();
            row.insert("email".into(), format!("c{i}@pages.io").into());
            row.insert("first_name".into(), "Page".into());
            row.insert("last_name".into(), format!("N{i}").into());
            contacts::import_row(&mut sim, &row, &[list], 1_795_895_151_000).unwrap();
        }
        if let Some((id, _)) = sim.contacts.get_index(n - 1) {
            last = id.to_string();
        }
        // Ten contacts, spread over the store, changed a minute later.
        let spread: Vec<uuid::Uuid> = (0..n)
            .step_by((n / 10).max(1))
            .filter_map(|i| sim.contacts.get_index(i).map(|(id, _)| *id))
            .collect();
        for id in spread {
            if let Some(c) = sim.contacts.get_mut(&id) {
                c.updated_at += 60_000;
            }
        }
        sim.forget_changes();
        let req = |q: &[(&str, &str)]| Req {
            method: "GET".into(),
            path: "/v3/contacts".into(),
            query: q
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: Default::default(),
            body: Default::default(),
        };
        let time = |f: &dyn Fn() -> usize| {
            let first = f();
            assert!(first > 0);
            let rounds = (200_000 / first.max(1)).clamp(5, 20_000);
            let mut times: Vec<Duration> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..rounds {
                        std::hint::black_box(f());
                    }
                    t.elapsed() / rounds as u32
                })
                .collect();
            times.sort();
            times[3].as_secs_f64() * 1e6
        };
        let one = req(&[]);
        let get = time(&|| contacts::get(&sim, &one, &last).body.len());
        let p50 = req(&[("limit", "50")]);
        let page50 = time(&|| contacts::list(&sim, &p50).body.len());
        let p500 = req(&[("limit", "500"), ("include", "list_memberships")]);
        let page500 = time(&|| contacts::list(&sim, &p500).body.len());
        let lid = list.to_string();
        let counted = req(&[
            ("limit", "50"),
            ("lists", &lid),
            ("status", "active"),
            ("include_count", "true"),
        ]);
        let kept = time(&|| contacts::list(&sim, &counted).body.len());
        let dated = req(&[
            ("limit", "50"),
            ("updated_after", "2026-11-28T19:45:52Z"),
            ("include_count", "true"),
        ]);
        let dated = time(&|| contacts::list(&sim, &dated).body.len());
        println!(
            "pages: {n:>7} contacts: one contact {get:>6.2} µs; 50 {page50:>7.1} µs; 500 with lists {page500:>7.1} µs; 50 of a list, active, counted (kept) {kept:>6.1} µs; updated_after (10 changed), counted {dated:>8.1} µs"
        );
    }
}

fn main() {
    // `cargo bench -- runner mock` runs only the named parts.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    println!(
        "postie benchmarks (release build, {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if want("load") {
        bench_load();
    }
    if want("runner") {
        bench_runner();
    }
    if want("scaling") {
        bench_scaling();
    }
    if want("variables") {
        bench_variables();
    }
    if want("import") {
        bench_import();
    }
    if want("scripts") {
        bench_scripts();
    }
    if want("cold_start") {
        bench_cold_start();
    }
    if want("mock") {
        bench_mock();
    }
    if want("record") {
        bench_record();
    }
    if want("stubs") {
        bench_stubs();
    }
    if want("spec") {
        bench_spec();
    }
    if want("growth") {
        bench_growth();
    }
    if want("bulk") {
        bench_bulk();
    }
    if want("pages") {
        bench_pages();
    }
}
