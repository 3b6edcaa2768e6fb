//! The HTTP front: sockets and connections (with the control an injected reset needs), reading
//! a request, the faults that apply to it, routing it ([`crate::mock::route`]), waiting until
//! what it changed is durable, and writing the answer (whole, or cut short).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::mock::http::{self, Req, Resp};
use crate::mock::packs::constant_contact::cors;
use crate::mock::{JournalEntry, LAST_RECORD, MAX_BODY, Shared, engine, route};

/// What the front knows about one connection: set `reset` and it ends with a TCP RST.
#[derive(Debug, Default)]
struct ConnCtl {
    reset: std::sync::atomic::AtomicBool,
}

/// The socket under one connection. When its connection was told to reset, it writes nothing
/// more and closes with a zero linger, so the peer sees a reset rather than an orderly close.
struct Conn {
    io: tokio::net::TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Conn {
    fn resetting(&self) -> bool {
        let r = self.ctl.reset.load(Ordering::Acquire);
        if r {
            let _ = self.io.set_zero_linger();
        }
        r
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.resetting();
    }
}

fn reset_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "reset by an injected fault",
    )
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.resetting() {
            return std::task::Poll::Ready(Err(reset_error()));
        }
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.resetting() {
            return std::task::Poll::Ready(Err(reset_error()));
        }
        std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.resetting() {
            return std::task::Poll::Ready(Err(reset_error()));
        }
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A response body: whole, or (a `truncate` fault) the first part and then an error, so the
/// connection closes short of the length the headers promised.
pub enum MockBody {
    /// The body, taken when sent.
    Whole(Option<Bytes>),
    /// The part that is sent before the connection is cut, and a pause that lets it reach the
    /// socket first (hyper drops what is still buffered when a body fails).
    Cut(
        Option<Bytes>,
        Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    ),
}

impl hyper::body::Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        match self.get_mut() {
            MockBody::Whole(b) => Poll::Ready(b.take().map(|b| Ok(hyper::body::Frame::data(b)))),
            MockBody::Cut(part, pause) => {
                if let Some(b) = part.take() {
                    *pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                    return Poll::Ready(Some(Ok(hyper::body::Frame::data(b))));
                }
                if let Some(p) = pause
                    && p.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(std::io::Error::other(
                    "body cut short by an injected fault",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Whole(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            MockBody::Whole(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            MockBody::Cut(..) => hyper::body::SizeHint::default(),
        }
    }
}

/// Waits `ms`, or less when the server stops; whether the whole wait passed.
async fn wait(ms: u64, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// The answer an injected status fault gives: the served API's own error body for it.
fn fault_response(shared: &Shared, req: &Req, status: u16, body: Option<&Value>) -> Resp {
    if let Some(b) = body {
        return Resp::json(status, b);
    }
    let cfg = &shared.cfg;
    let detail = "injected by a postie mock fault";
    let path = req.path.as_str();
    if (cfg.pack || cfg.oauth) && path.starts_with("/oauth2/") {
        let error = match status {
            401 => "invalid_client",
            400..=499 => "invalid_request",
            503 => "temporarily_unavailable",
            _ => "server_error",
        };
        return http::oauth_error(status, error, detail);
    }
    if cfg.pack && (path == "/v3" || path.starts_with("/v3/")) {
        return cors(http::cc_status_error(status));
    }
    if let Some(r) = shared
        .document()
        .and_then(|s| s.error_for(req, status, detail))
    {
        return r;
    }
    let title = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    engine::spec::problem(status, title, detail, &[])
}

async fn serve(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
    ctl: Arc<ConnCtl>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<hyper::Response<MockBody>, std::io::Error> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let hyper::http::request::Parts {
        method,
        uri,
        headers,
        ..
    } = parts;
    let path = uri.path().to_string();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // The request's method and path go into the journal once it is answered.
    let journal = |(method, path): (String, String),
                   status: u16,
                   route: &'static str,
                   fault: Option<String>,
                   note: Option<String>| {
        shared.record(JournalEntry {
            at: shared.now_ms(),
            method,
            path,
            status,
            route,
            micros: start.elapsed().as_micros() as u64,
            fault,
            note,
        });
    };
    let mut cut = false;
    let mut fault = None;
    // A body that has already ended (a GET's) is not collected: that costs as much as reading
    // a small one.
    let body = if hyper::body::Body::is_end_stream(&body) {
        Ok(Bytes::new())
    } else {
        Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map(|c| c.to_bytes())
    };
    // The request's header map, emptied, carries the response's headers: no second map is made.
    let (resp, method_path, mut headers) = match body {
        Ok(body) => {
            let req = Req {
                method: method.as_str().to_string(),
                path,
                query,
                headers,
                body,
            };
            // Faults never touch the admin area, which is how they are managed.
            let decision = if req.path.starts_with("/__postie") {
                engine::faults::Decision::default()
            } else {
                shared.faults.decide(&req.method, &req.path)
            };
            if !decision.labels.is_empty() {
                fault = Some(decision.labels.join(", "));
            }
            if decision.delay_ms > 0 {
                wait(decision.delay_ms, &mut stop).await;
            }
            use engine::faults::Action;
            let resp = match decision.action {
                Some(Action::Timeout(ms)) => {
                    wait(ms, &mut stop).await;
                    journal((req.method, req.path), 0, "fault.timeout", fault, None);
                    return Err(std::io::Error::other("no answer: an injected timeout"));
                }
                Some(Action::Reset) => {
                    ctl.reset.store(true, Ordering::Release);
                    journal((req.method, req.path), 0, "fault.reset", fault, None);
                    return Err(reset_error());
                }
                Some(Action::Status(status, body)) => {
                    fault_response(&shared, &req, status, body.as_ref()).route("fault")
                }
                Some(Action::RateLimit(secs)) => fault_response(&shared, &req, 429, None)
                    .with("retry-after", secs.to_string())
                    .route("fault"),
                other => {
                    cut = other == Some(Action::Truncate);
                    answer(&shared, &req).await
                }
            };
            (resp, (req.method, req.path), req.headers)
        }
        Err(_) => (
            front_error(
                &shared,
                &path,
                413,
                "payload_too_large",
                "Request body too large",
            )
            .route("too_large"),
            (method.to_string(), path),
            headers,
        ),
    };
    if resp.delay_ms > 0 {
        wait(u64::from(resp.delay_ms), &mut stop).await;
    }
    journal(
        method_path,
        resp.status,
        resp.route,
        fault,
        resp.note.as_deref().map(String::from),
    );
    // Built in place rather than through `Response::builder`, which moves the whole response
    // head on every header and parses each name.
    let Ok(status) = hyper::StatusCode::from_u16(resp.status) else {
        return Ok(hyper::Response::new(MockBody::Whole(None)));
    };
    let length = resp.body.len();
    let body = if cut && length > 1 {
        MockBody::Cut(Some(resp.body.slice(..length / 2)), None)
    } else {
        MockBody::Whole((!resp.body.is_empty()).then_some(resp.body))
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = status;
    headers.clear();
    headers.reserve(resp.headers.len() + resp.extra.len() + 1);
    for (k, v) in resp.headers {
        if let (Some(k), Some(v)) = (static_name(k), header_value(v)) {
            headers.append(k, v);
        }
    }
    for (k, v) in resp.extra {
        if let (Ok(k), Some(v)) = (
            hyper::header::HeaderName::try_from(k),
            header_value(v.into()),
        ) {
            headers.append(k, v);
        }
    }
    if cut && length > 1 {
        headers.insert(hyper::header::CONTENT_LENGTH, length.into());
    }
    *out.headers_mut() = headers;
    Ok(out)
}

/// The header name of a handler's fixed header: the common ones without parsing, any other
/// parsed (None for a name no header may have).
fn static_name(name: &'static str) -> Option<hyper::header::HeaderName> {
    use hyper::header;
    match name {
        "content-type" => Some(header::CONTENT_TYPE),
        "access-control-allow-origin" => Some(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "location" => Some(header::LOCATION),
        "cache-control" => Some(header::CACHE_CONTROL),
        _ => header::HeaderName::from_bytes(name.as_bytes()).ok(),
    }
}

/// A header's value, taken without copying: a fixed one is borrowed, a made one moved. None for
/// a value no header may carry (a line break, say), which is left out.
fn header_value(v: std::borrow::Cow<'static, str>) -> Option<hyper::header::HeaderValue> {
    let bytes = match v {
        std::borrow::Cow::Borrowed(s) => bytes::Bytes::from_static(s.as_bytes()),
        std::borrow::Cow::Owned(s) => bytes::Bytes::from(s),
    };
    hyper::header::HeaderValue::from_maybe_shared(bytes).ok()
}

/// Routes a request and waits until what it changed is durable.
async fn answer(shared: &Arc<Shared>, req: &Req) -> Resp {
    LAST_RECORD.with(|l| l.set(0));
    // A handler bug must answer, not take the server down.
    let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(shared, req)))
        .unwrap_or_else(|_| {
            front_error(
                shared,
                &req.path,
                500,
                "internal_error",
                "The mock hit an internal error; see its output",
            )
            .route("panic")
        });
    // Callbacks the request asked for go out after it is answered, each journaled.
    for cb in shared.take_callbacks() {
        let s = shared.clone();
        tokio::spawn(async move { send_callback(&s, cb).await });
    }
    // Acknowledge a change only once its journal record is durable.
    let record = LAST_RECORD.with(|l| l.replace(0));
    if record > 0 && !shared.written(record).await {
        front_error(
            shared,
            &req.path,
            503,
            "service_unavailable",
            "The mock could not store the change; see its output",
        )
        .route("unavailable")
    } else {
        resp
    }
}

pub(crate) async fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // The pack's bulk activities are applied a slice at a time between requests.
    let worker = shared
        .cfg
        .pack
        .then(|| tokio::spawn(apply_in_background(shared.clone())));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let s = shared.clone();
                let ctl = Arc::new(ConnCtl::default());
                let io = Conn { io: stream, ctl: ctl.clone() };
                let stopping = stop.clone();
                let svc = hyper::service::service_fn(move |req| serve(s.clone(), req, ctl.clone(), stopping.clone()));
                // One buffer per response rather than a vectored write of head and body: for
                // the small bodies the API mostly sends, copying is cheaper than the iovecs
                // (paired GET at 1M contacts, six pairs: 131,000 -> 136,900 req/s on average).
                let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).writev(false).serve_connection(hyper_util::rt::TokioIo::new(io), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    // Stopped between two slices (a slice never awaits), before the journal closes.
    if let Some(w) = worker {
        w.abort();
        let _ = w.await;
    }
    shared.close();
}

/// Applies due bulk activities one slice at a time, yielding to requests between slices, and
/// looks again every 20 ms while nothing is due.
async fn apply_in_background(shared: Arc<Shared>) {
    loop {
        if crate::mock::packs::constant_contact::apply_slice(&shared) {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An error of the front itself (too large, a handler bug, storage down): in the Constant
/// Contact pack's shape under its paths, else problem+json.
fn front_error(shared: &Shared, path: &str, status: u16, key: &str, message: &str) -> Resp {
    let cfg = &shared.cfg;
    if cfg.pack && (path == "/v3" || path.starts_with("/v3/")) {
        return http::cc_error(status, key, message);
    }
    let title = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    engine::spec::problem(status, title, message, &[])
}

/// Sends one callback and journals what came of it (route `webhook.callback`; status 0 when the
/// receiver could not be reached).
async fn send_callback(shared: &Arc<Shared>, cb: crate::mock::Callback) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let start = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let outcome = match client {
        Ok(c) => c.post(&cb.url).json(&cb.body).send().await,
        Err(e) => Err(e),
    };
    let (status, note) = match outcome {
        Ok(r) => (
            r.status().as_u16(),
            format!("{} → {} answered {}", cb.what, cb.url, r.status().as_u16()),
        ),
        Err(e) => (0, format!("{} → {} failed: {e}", cb.what, cb.url)),
    };
    let path = url::Url::parse(&cb.url)
        .map(|u| {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            )
        })
        .unwrap_or_else(|_| cb.url.clone());
    shared.record(JournalEntry {
        at: shared.now_ms(),
        method: "POST".into(),
        path,
        status,
        route: "webhook.callback",
        micros: start.elapsed().as_micros() as u64,
        fault: None,
        note: Some(note),
    });
}

#[cfg(test)]
mod tests {
    use super::{header_value, static_name};

    #[test]
    fn fixed_header_names_are_the_names_parsing_gives() {
        for name in [
            "content-type",
            "access-control-allow-origin",
            "location",
            "cache-control",
            "retry-after",
            "x-amzn-errortype",
        ] {
            assert_eq!(
                static_name(name),
                hyper::header::HeaderName::from_bytes(name.as_bytes()).ok(),
                "{name}"
            );
        }
        assert_eq!(static_name("bad name"), None);
    }

    #[test]
    fn header_values_are_borrowed_or_moved_and_bad_ones_left_out() {
        assert_eq!(
            header_value("application/json".into()).unwrap(),
            "application/json"
        );
        assert_eq!(header_value("a\tb".into()).unwrap(), "a\tb");
        assert_eq!(
            header_value(String::from("max-age=60").into()).unwrap(),
            "max-age=60"
        );
        assert!(header_value("a\r\nset-cookie: x".into()).is_none());
        assert!(header_value(String::from("a\nb").into()).is_none());
        // Bytes past ASCII are obs-text, which HTTP allows (and the builder took before).
        assert!(header_value("caf\u{e9}".into()).is_some());
    }
}
