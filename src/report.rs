//! CI reports: JUnit XML and JSON, rendered from flow results with secrets masked.

use serde_json::{Value, json};

use crate::chain::display_value;
use crate::redact::Redactor;
use crate::runner::FlowResult;

/// A report request from `--report KIND=PATH`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportSpec {
    /// JUnit XML.
    Junit(std::path::PathBuf),
    /// JSON.
    Json(std::path::PathBuf),
}

impl std::str::FromStr for ReportSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some(("junit", p)) if !p.is_empty() => Ok(ReportSpec::Junit(p.into())),
            Some(("json", p)) if !p.is_empty() => Ok(ReportSpec::Json(p.into())),
            _ => Err(format!("`{s}`: expected junit=PATH or json=PATH")),
        }
    }
}

/// The JSON report.
pub fn json_report(collection: &str, env: &str, results: &[FlowResult], red: &Redactor) -> Value {
    let flows: Vec<Value> = results
        .iter()
        .map(|f| {
            let steps: Vec<Value> = f
                .steps
                .iter()
                .map(|s| {
                    let set: serde_json::Map<String, Value> =
                        s.set.iter().map(|b| (b.name.clone(), Value::String(red.mask(&display_value(b))))).collect();
                    json!({
                        "request": s.request,
                        "method": s.rendered.as_ref().map(|r| r.method.clone()),
                        "url": s.rendered.as_ref().map(|r| red.mask(&r.url)),
                        "status": s.exchange.as_ref().map(|e| e.status),
                        "elapsed_ms": s.exchange.as_ref().map(|e| e.elapsed.as_secs_f64() * 1000.0),
                        "attempts": s.attempts,
                        "skipped": s.skipped.as_ref().map(|w| red.mask(w)),
                        "set": set,
                        "assertions": s.asserts.iter().map(|a| json!({
                            "description": red.mask(&a.description),
                            "passed": a.passed,
                            "actual": a.actual.as_ref().map(|x| red.mask(x)),
                        })).collect::<Vec<_>>(),
                        "failure": s.failure.as_ref().map(|x| json!({"kind": x.kind, "message": red.mask(&x.message)})),
                        "notes": s.notes.iter().map(|n| red.mask(n)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"flow": f.flow, "exit_code": f.exit_code(), "steps": steps})
        })
        .collect();
    let exit = results
        .iter()
        .map(FlowResult::exit_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    json!({"collection": collection, "environment": env, "exit_code": exit, "flows": flows})
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report: one testsuite per flow, one testcase per step.
pub fn junit_report(collection: &str, results: &[FlowResult], red: &Redactor) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for f in results {
        let tests = f.steps.len();
        let failures = f
            .steps
            .iter()
            .filter(|s| {
                s.failure
                    .as_ref()
                    .is_some_and(|x| x.kind == crate::runner::FailureKind::Assertion)
            })
            .count();
        let errors = f
            .steps
            .iter()
            .filter(|s| {
                s.failure
                    .as_ref()
                    .is_some_and(|x| x.kind != crate::runner::FailureKind::Assertion)
            })
            .count();
        let skipped = f.steps.iter().filter(|s| s.skipped.is_some()).count();
        let time: f64 = f
            .steps
            .iter()
            .filter_map(|s| s.exchange.as_ref())
            .map(|e| e.elapsed.as_secs_f64())
            .sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
            xml_escape(&format!("{collection}/{}", f.flow))
        ));
        for s in &f.steps {
            let t = s
                .exchange
                .as_ref()
                .map(|e| e.elapsed.as_secs_f64())
                .unwrap_or(0.0);
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{t:.3}\"",
                xml_escape(&s.request),
                xml_escape(&format!("{collection}.{}", f.flow))
            ));
            if let Some(why) = &s.skipped {
                out.push_str(&format!(
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(&red.mask(why))
                ));
            } else if let Some(fail) = &s.failure {
                let tag = if fail.kind == crate::runner::FailureKind::Assertion {
                    "failure"
                } else {
                    "error"
                };
                let msg = red.mask(&fail.message);
                let first = msg.lines().next().unwrap_or("");
                out.push_str(&format!(
                    ">\n      <{tag} message=\"{}\" type=\"{:?}\">{}</{tag}>\n    </testcase>\n",
                    xml_escape(first),
                    fail.kind,
                    xml_escape(&msg)
                ));
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes the requested reports.
pub fn write_reports(
    specs: &[ReportSpec],
    collection: &str,
    env: &str,
    results: &[FlowResult],
    red: &Redactor,
) -> std::io::Result<()> {
    for spec in specs {
        match spec {
            ReportSpec::Junit(p) => std::fs::write(p, junit_report(collection, results, red))?,
            ReportSpec::Json(p) => std::fs::write(
                p,
                serde_json::to_string_pretty(&json_report(collection, env, results, red))
                    .unwrap_or_default(),
            )?,
        }
    }
    Ok(())
}
