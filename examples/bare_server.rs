//! The ceiling for `benches/mock_load.sh`: a bare hyper server set up as the mock is (one
//! runtime worker per core it may use, HTTP/1.1 keep-alive, no-delay, flattened writes)
//! answering every request with a fixed contact-sized JSON body, and nothing else — no routing,
//! tokens, lock or journal.
//!   cargo run --release --example bare_server      # prints `listening on http://127.0.0.1:PORT`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(postie::mock::workers())
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        let body = Bytes::from_static(
            br#"{"contact_id":"3f2b8f9e-5a1c-11f1-8b25-fa163e5c9b01","email_address":{"address":"load@example.com","permission_to_send":"explicit","created_at":"2026-11-28T18:00:00Z","updated_at":"2026-11-28T18:00:00Z","opt_in_source":"Contact","opt_in_date":"2026-11-28T18:00:00Z","confirm_status":"off"},"first_name":"Load","create_source":"Contact","update_source":"Contact","created_at":"2026-11-28T18:00:00Z","updated_at":"2026-11-28T18:00:00Z"}"#,
        );
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .expect("a fixed response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .writev(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
