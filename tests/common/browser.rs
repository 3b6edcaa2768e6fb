//! Headless Chromium through chromedriver (W3C WebDriver), for tests that need a real browser:
//! the OAuth2 login and the HTML report. `scripts/test` installs both (Debian's `chromium` and
//! `chromium-driver`); a test fails, never skips, when they are missing.

use std::time::Duration;

use serde_json::{Value, json};

/// A browser session; the driver is stopped when dropped.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: std::process::Child,
}

fn driver_path() -> &'static str {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: run scripts/test, which installs it (by hand: apt-get install chromium chromium-driver)"
            )
        })
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start() -> Browser {
        let port = super::closed_port();
        let driver = std::process::Command::new(driver_path())
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900",
            format!("--user-data-dir={}", std::env::temp_dir().join(format!("postie-chrome-{port}")).display())]}}}});
        let mut b = Browser {
            http,
            session: String::new(),
            driver,
        };
        for _ in 0..200 {
            match b
                .http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
            {
                Ok(r) => {
                    let v: Value = r.json().await.expect("a WebDriver answer");
                    b.session = v["value"]["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no session: {v}"))
                        .to_string();
                    b.session = format!("{base}/session/{}", b.session);
                    return b;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("chromedriver did not start");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("WebDriver request")
            .json()
            .await
            .expect("WebDriver JSON");
        v["value"].clone()
    }

    /// Navigates to a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The element a CSS selector finds first, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .filter(|m| !m.contains_key("error"))
            .and_then(|m| m.values().next())
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// Clicks an element.
    pub async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// An element's rendered (visible) text.
    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// The page's source.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .expect("a base64 PNG")
    }
}

impl Browser {
    /// Ends the session (Chromium quits), then the driver.
    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session ends with the driver.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
