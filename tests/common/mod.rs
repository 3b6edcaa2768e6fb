//! Helpers: run the real binary in a temporary directory with a clean environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary project directory holding one collection.
pub struct Project {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

/// What a run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Project {
    pub fn new(collection: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.yaml"), collection).unwrap();
        Project { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn postie(&self, args: &[&str]) -> Run {
        self.postie_env(args, &[])
    }

    pub fn postie_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_postie(self.dir.path(), args, env, None)
    }
}

pub fn run_postie(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("CC_") || k.starts_with("POSTIE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn postie");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        s.write_all(input.as_bytes()).unwrap();
    }
    let out: Output = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

pub mod browser;

/// Runs git in `dir` (with an identity for commits) and returns its stdout; fails the test when
/// git does.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// A temporary directory holding a copy of the bundled collection as `cc.yaml`.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("collections/constant_contact.yaml"),
        dir.path().join("cc.yaml"),
    )
    .unwrap();
    dir
}

/// The bundled mock, auto-approving, with its data in the project's state directory.
pub fn mock_for(dir: &tempfile::TempDir) -> postie::mock::MockServer {
    let mut cfg = postie::mock::MockConfig::bundled()
        .unwrap()
        .with_state_file(dir.path().join(".postie/mock.json"));
    cfg.auto_approve = true;
    postie::mock::MockServer::start(cfg).unwrap()
}

/// A runner on the project's copy of the bundled collection, in the `mock` environment.
pub fn runner_for(
    dir: &tempfile::TempDir,
    mock: &postie::mock::MockServer,
    fresh: bool,
) -> postie::runner::Runner {
    let collection = postie::collection::Collection::load(&dir.path().join("cc.yaml")).unwrap();
    let opts = postie::runner::RunOptions {
        env: Some("mock".into()),
        vars: vec![],
        mock_url: Some(mock.url().to_string()),
        fresh,
        state_dir: None,
        ..Default::default()
    };
    postie::runner::Runner::new(collection, opts).unwrap()
}

/// A tool the README's test command (`scripts/test`) installs, by its path in the project. A
/// test that needs it fails with the same message the script prints, never skips.
pub fn tool(relative: &str, what: &str, by_hand: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    assert!(
        p.exists(),
        "{what} is not installed: run scripts/test, which installs it (by hand: {by_hand})"
    );
    p
}

/// A server process a test started; killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server and waits for the line that says where it listens (`... listening on URL`).
// The child moves into `Server`, whose Drop kills and waits for it; clippy cannot see that.
#[allow(clippy::zombie_processes)]
pub fn start_server(mut cmd: Command) -> Server {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server exited before it said where it listens");
        }
        if let Some(i) = line.find("listening on http://") {
            let url = line[i + "listening on ".len()..].trim().to_string();
            // Keep draining its output so it never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while out.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return Server { child, url };
        }
    }
}
