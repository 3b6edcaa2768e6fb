//! CI reports: JUnit XML, JSON and HTML, rendered from flow results with secrets masked.

pub mod html;

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
    /// One self-contained HTML page.
    Html(std::path::PathBuf),
}

impl ReportSpec {
    /// Where the report goes.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ReportSpec::Junit(p) | ReportSpec::Json(p) | ReportSpec::Html(p) => p,
        }
    }
}

/// Checks a report path before anything runs: creates its parent directories and refuses a
/// directory, so a long run never ends without its report.
pub fn prepare_path(path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "report path {} is a directory; name a file in it",
            path.display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the report directory {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Step counts over flow results.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Steps that ran and passed.
    pub passed: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Steps skipped by `when:`.
    pub skipped: usize,
    /// Steps never reached (an earlier step failed, or the run was interrupted).
    pub not_run: usize,
}

impl Counts {
    /// Counts the steps of these results.
    pub fn of(results: &[FlowResult]) -> Counts {
        let mut c = Counts::default();
        for s in results.iter().flat_map(|r| &r.steps) {
            if s.skipped.is_some() {
                c.skipped += 1;
            } else if s.ok() {
                c.passed += 1;
            } else {
                c.failed += 1;
            }
        }
        c.not_run = results.iter().map(|r| r.not_run.len()).sum();
        c
    }
}

impl std::str::FromStr for ReportSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some(("junit", p)) if !p.is_empty() => Ok(ReportSpec::Junit(p.into())),
            Some(("json", p)) if !p.is_empty() => Ok(ReportSpec::Json(p.into())),
            Some(("html", p)) if !p.is_empty() => Ok(ReportSpec::Html(p.into())),
            _ => Err(format!(
                "`{s}`: expected junit=PATH, json=PATH or html=PATH"
            )),
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
                        "assertions": s.asserts.iter().map(|a| {
                            let mut v = json!({
                                "description": red.mask(&a.description),
                                "passed": a.passed,
                                "actual": a.actual.as_ref().map(|x| red.mask(x)),
                            });
                            if a.script {
                                v["script"] = json!(true);
                            }
                            if a.skipped {
                                v["skipped"] = json!(true);
                            }
                            v
                        }).collect::<Vec<_>>(),
                        "console": s.console.iter().map(|c| json!({"level": c.level, "text": red.mask(&c.text)})).collect::<Vec<_>>(),
                        "failure": s.failure.as_ref().map(|x| json!({"kind": x.kind, "message": red.mask(&x.message)})),
                        "notes": s.notes.iter().map(|n| red.mask(n)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"flow": f.flow, "iteration": f.iteration.map(|(i, _)| i), "exit_code": f.exit_code(), "interrupted": f.interrupted, "steps": steps, "not_run": f.not_run})
        })
        .collect();
    let exit = results
        .iter()
        .map(FlowResult::exit_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    let c = Counts::of(results);
    json!({"collection": collection, "environment": env, "exit_code": exit,
        "summary": {"passed": c.passed, "failed": c.failed, "skipped": c.skipped, "not_run": c.not_run},
        "flows": flows})
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
        let script_tests: usize = f
            .steps
            .iter()
            .map(|s| s.asserts.iter().filter(|a| a.script).count())
            .sum();
        let script_failures: usize = f
            .steps
            .iter()
            .map(|s| s.asserts.iter().filter(|a| a.script && !a.passed).count())
            .sum();
        let script_skipped: usize = f
            .steps
            .iter()
            .map(|s| s.asserts.iter().filter(|a| a.script && a.skipped).count())
            .sum();
        let tests = f.steps.len() + f.not_run.len() + script_tests;
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
            .count()
            + script_failures;
        let skipped = f.steps.iter().filter(|s| s.skipped.is_some()).count()
            + f.not_run.len()
            + script_skipped;
        let time: f64 = f
            .steps
            .iter()
            .filter_map(|s| s.exchange.as_ref())
            .map(|e| e.elapsed.as_secs_f64())
            .sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
            xml_escape(&format!("{collection}/{}", f.label()))
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
            // Each `pm.test` is a test case of its own, as Newman's JUnit reporter writes them.
            for a in s.asserts.iter().filter(|a| a.script) {
                out.push_str(&format!(
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\"",
                    xml_escape(&red.mask(&a.description)),
                    xml_escape(&format!("{collection}.{}.{}", f.flow, s.request))
                ));
                if a.skipped {
                    out.push_str(">\n      <skipped message=\"pm.test.skip\"/>\n    </testcase>\n");
                } else if !a.passed {
                    let msg = red.mask(a.actual.as_deref().unwrap_or("failed"));
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"AssertionError\">{}</failure>\n    </testcase>\n",
                        xml_escape(msg.lines().next().unwrap_or("")),
                        xml_escape(&msg)
                    ));
                } else {
                    out.push_str("/>\n");
                }
            }
        }
        let why = if f.interrupted {
            "not run: the run was interrupted"
        } else {
            "not run: an earlier step failed"
        };
        for name in &f.not_run {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\">\n      <skipped message=\"{why}\"/>\n    </testcase>\n",
                xml_escape(name),
                xml_escape(&format!("{collection}.{}", f.flow))
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes the requested reports; an error names the file.
pub fn write_reports(
    specs: &[ReportSpec],
    collection: &str,
    env: &str,
    results: &[FlowResult],
    details: &[Vec<html::Detail>],
    red: &Redactor,
) -> Result<(), String> {
    for spec in specs {
        let text = match spec {
            ReportSpec::Html(_) => html::report(collection, env, results, details, red),
            ReportSpec::Junit(_) => junit_report(collection, results, red),
            ReportSpec::Json(_) => {
                serde_json::to_string_pretty(&json_report(collection, env, results, red))
                    .unwrap_or_default()
            }
        };
        prepare_path(spec.path())?;
        std::fs::write(spec.path(), text)
            .map_err(|e| format!("cannot write the report {}: {e}", spec.path().display()))?;
    }
    Ok(())
}
