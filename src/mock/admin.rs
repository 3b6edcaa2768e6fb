//! `/__postie/`: the mock's admin area — clock, journal, reset, and whole-state export/import.

use serde_json::{Value, json};

use super::Shared;
use super::http::{Req, Resp};
use super::store::ts;

fn bad(msg: &str) -> Resp {
    Resp::json(400, &json!({"error": msg}))
}

fn clock_json(shared: &Shared) -> Value {
    let now = shared.now_ms();
    json!({"now": ts(now), "unix": now.div_euclid(1000), "offset_seconds": shared.lock().clock_offset_ms / 1000})
}

/// Dispatches an admin request.
pub fn handle(shared: &Shared, req: &Req, rest: &[&str]) -> Resp {
    let m = req.method.as_str();
    let r = match (m, rest) {
        ("GET", []) => Resp::json(
            200,
            &json!({
                "clock": "GET|POST /__postie/clock  {\"advance\": \"24h\"} or {\"set\": \"2026-01-01T00:00:00Z\"}",
                "journal": "GET /__postie/journal?limit=N",
                "reset": "POST /__postie/reset",
                "state": "GET /__postie/state (export) · PUT|POST /__postie/state (import)",
                "clients": "GET /__postie/clients",
            }),
        ),
        ("GET", ["clock"]) => Resp::json(200, &clock_json(shared)),
        ("POST", ["clock"]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return bad(
                    "expected JSON: {\"advance\": \"24h\"} or {\"set\": \"RFC 3339 time\"}",
                )
                .route("admin.clock");
            };
            if let Some(a) = body.get("advance").and_then(Value::as_str) {
                match crate::util::parse_duration(a) {
                    Ok(d) => {
                        if let Err(e) = shared.try_advance(d) {
                            return bad(&e).route("admin.clock");
                        }
                    }
                    Err(e) => return bad(&e).route("admin.clock"),
                }
            } else if let Some(s) = body.get("set").and_then(Value::as_str) {
                match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                {
                    Ok(t) => shared.set_clock((t.unix_timestamp_nanos() / 1_000_000) as i64),
                    Err(e) => {
                        return bad(&format!("`{s}` is not an RFC 3339 time: {e}"))
                            .route("admin.clock");
                    }
                }
            } else {
                return bad("give `advance` (e.g. \"24h\") or `set` (RFC 3339)")
                    .route("admin.clock");
            }
            Resp::json(200, &clock_json(shared))
        }
        ("GET", ["journal"]) => {
            let limit = req.q("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let (total, entries) = shared.journal(limit);
            Resp::json(200, &json!({"total": total, "entries": entries}))
        }
        ("POST", ["reset"]) => {
            shared.reset();
            Resp::json(200, &json!({"reset": true}))
        }
        ("GET", ["state"]) => Resp::json(
            200,
            &serde_json::to_value(&*shared.lock()).unwrap_or_default(),
        ),
        ("PUT" | "POST", ["state"]) => match serde_json::from_slice(&req.body) {
            Ok(sim) => {
                shared.import(sim);
                Resp::json(200, &json!({"imported": true}))
            }
            Err(e) => bad(&format!("not a mock state export: {e}")),
        },
        ("GET", ["clients"]) => {
            let clients: Vec<Value> = shared
                .cfg
                .clients
                .iter()
                .map(|c| json!({"client_id": c.client_id, "public": c.public, "redirect_uris": c.redirect_uris, "refresh_tokens": format!("{:?}", c.refresh_tokens)}))
                .collect();
            Resp::json(200, &json!({"clients": clients}))
        }
        _ => Resp::json(
            404,
            &json!({"error": "unknown admin endpoint; GET /__postie/ lists them"}),
        ),
    };
    r.route("admin")
}
