//! The HTML report: one self-contained file (no scripts, fonts or images fetched) with the
//! summary, the failures first, a timeline of the steps, and each step's assertions, request and
//! response — bodies pretty-printed in collapsible sections, every secret masked.

use std::fmt::Write as _;

use crate::redact::Redactor;
use crate::runner::{FlowResult, StepResult};

use super::Counts;

/// How much of one body the report keeps.
const BODY_CAP: usize = 256 * 1024;

/// What the report shows of one step's exchange, taken when the step completes (the runner
/// drops bodies afterwards so long runs stay flat in memory).
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// The request as sent: method, URL, headers, body.
    pub request: Option<String>,
    /// The response: status, headers, body.
    pub response: Option<String>,
}

fn body_text(text: &str, json: Option<&serde_json::Value>, red: &Redactor) -> String {
    let shown = match json {
        Some(v) => serde_json::to_string_pretty(&red.mask_json(v)).unwrap_or_default(),
        None => red.mask(text),
    };
    cap(shown)
}

fn cap(mut s: String) -> String {
    if s.len() > BODY_CAP {
        let mut cut = BODY_CAP;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = s.len();
        s.truncate(cut);
        let _ = write!(
            s,
            "\n… ({total} bytes; the report keeps the first {BODY_CAP})"
        );
    }
    s
}

impl Detail {
    /// The request and response of a step, masked.
    pub fn of(r: &StepResult, red: &Redactor) -> Detail {
        let request = r.rendered.as_ref().map(|q| {
            let mut s = format!("{} {}\n", q.method, red.mask(&q.url));
            for (k, v) in q.effective_headers() {
                let _ = writeln!(s, "{k}: {}", red.mask_header(&k, &v));
            }
            if let Some(b) = q.body_text() {
                s.push('\n');
                let json = match &q.body {
                    crate::exchange::Body::Json(v) => Some(v),
                    _ => None,
                };
                s.push_str(&body_text(&b, json, red));
            }
            s
        });
        let response = r.exchange.as_ref().map(|e| {
            let mut s = format!("HTTP {}\n", e.status);
            for (k, v) in &e.headers {
                let _ = writeln!(s, "{k}: {}", red.mask_header(k, v));
            }
            s.push('\n');
            if e.binary {
                let _ = write!(s, "({} bytes of binary content)", e.raw.len());
            } else {
                s.push_str(&body_text(&e.body, e.json.as_ref(), red));
            }
            s
        });
        Detail { request, response }
    }
}

// HTML text and attribute values escape as XML's do (control characters dropped).
use super::xml_escape as esc;

const STYLE: &str = r#"
:root{--ok:#1a7f37;--bad:#cf222e;--skip:#9a6700;--mute:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328}
main{max-width:1100px;margin:0 auto;padding:24px}
header{padding:16px 20px;border-radius:8px;border:1px solid var(--line);margin-bottom:20px}
header.pass{border-left:8px solid var(--ok)}header.fail{border-left:8px solid var(--bad)}
h1{margin:0 0 6px;font-size:22px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
.counts span{margin-right:14px;font-weight:600}.passed{color:var(--ok)}.failed{color:var(--bad)}.skipped,.notrun{color:var(--skip)}
.meta{color:var(--mute)}
#failures li{margin:4px 0}#failures a{color:var(--bad);font-weight:600}
.tl{display:grid;grid-template-columns:minmax(120px,220px) 1fr 80px;gap:2px 10px;align-items:center}
.tl .bar{height:12px;background:var(--bg);position:relative;border-radius:2px}
.tl .bar i{position:absolute;top:0;bottom:0;border-radius:2px;background:var(--ok);min-width:2px}
.tl .bar i.f{background:var(--bad)}.tl .bar i.s{background:var(--skip)}.tl .ms{text-align:right;color:var(--mute);font-variant-numeric:tabular-nums}
details.step{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 12px}
details.step>summary{cursor:pointer;padding:8px 0;font-weight:600}
details.step.fail{border-color:var(--bad)}
.mark{display:inline-block;width:1.2em}.ok .mark{color:var(--ok)}.fail .mark{color:var(--bad)}.skip .mark{color:var(--skip)}
.url{font-weight:400;font-family:ui-monospace,monospace;font-size:13px;color:var(--mute);word-break:break-all}
ul.asserts{list-style:none;padding-left:0}ul.asserts li.ok::before{content:"✓ ";color:var(--ok)}ul.asserts li.no::before{content:"✗ ";color:var(--bad)}
.failure{white-space:pre-wrap;color:var(--bad);background:#ffebe9;padding:8px;border-radius:4px}
pre{background:var(--bg);padding:10px;border-radius:4px;overflow:auto;max-height:480px;font-size:12.5px;white-space:pre-wrap;word-break:break-word}
details.part summary{cursor:pointer;color:var(--mute);margin:4px 0}
"#;

fn ms(r: &StepResult) -> f64 {
    r.exchange
        .as_ref()
        .map(|e| e.elapsed.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// The report. `details` holds, per flow result, one entry per step (in order).
pub fn report(
    collection: &str,
    env: &str,
    results: &[FlowResult],
    details: &[Vec<Detail>],
    red: &Redactor,
) -> String {
    let c = Counts::of(results);
    let exit = results
        .iter()
        .map(FlowResult::exit_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    let total: f64 = results.iter().flat_map(|f| &f.steps).map(ms).sum();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>postie — {}</title><style>{STYLE}</style></head><body><main>\n",
        esc(collection)
    );
    let state = if c.failed > 0 || exit != 0 {
        "fail"
    } else {
        "pass"
    };
    let _ = write!(
        out,
        "<header id=\"summary\" class=\"{state}\"><h1>{}</h1><p class=\"counts\">\
<span class=\"passed\">{} passed</span><span class=\"failed\">{} failed</span>\
<span class=\"skipped\">{} skipped</span><span class=\"notrun\">{} not run</span></p>\
<p class=\"meta\">environment <b>{}</b> · {} flow run{} · {:.0} ms in requests · exit code {exit}</p></header>",
        esc(collection),
        c.passed,
        c.failed,
        c.skipped,
        c.not_run,
        esc(env),
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        total
    );
    out.push('\n');
    // Failures first.
    let failures: Vec<(usize, usize, &StepResult)> = results
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| f.steps.iter().enumerate().map(move |(si, s)| (fi, si, s)))
        .filter(|(_, _, s)| s.failure.is_some())
        .collect();
    if !failures.is_empty() {
        out.push_str("<section id=\"failures\"><h2>Failures</h2><ol>\n");
        for (fi, si, s) in &failures {
            let msg = s
                .failure
                .as_ref()
                .map(|f| red.mask(&f.message))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<li><a href=\"#s-{fi}-{si}\">{} / {}</a>: {}</li>",
                esc(&results[*fi].label()),
                esc(&s.request),
                esc(msg.lines().next().unwrap_or(""))
            );
        }
        out.push_str("</ol></section>\n");
    }
    // Timeline: each step's span on the run's time axis.
    out.push_str("<section id=\"timeline\"><h2>Timeline</h2><div class=\"tl\">\n");
    let scale = if total > 0.0 { total } else { 1.0 };
    let mut at = 0.0;
    for (fi, f) in results.iter().enumerate() {
        for (si, s) in f.steps.iter().enumerate() {
            let d = ms(s);
            let class = if s.failure.is_some() {
                " class=\"f\""
            } else if s.skipped.is_some() {
                " class=\"s\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<a href=\"#s-{fi}-{si}\">{}</a><div class=\"bar\"><i{class} style=\"left:{:.2}%;width:{:.2}%\"></i></div><span class=\"ms\">{d:.0} ms</span>",
                esc(&s.request),
                at / scale * 100.0,
                d / scale * 100.0
            );
            at += d;
        }
    }
    out.push_str("</div></section>\n");
    // Every step.
    for (fi, f) in results.iter().enumerate() {
        let _ = writeln!(
            out,
            "<section class=\"flow\"><h2>flow {}</h2>",
            esc(&f.label())
        );
        for (si, s) in f.steps.iter().enumerate() {
            let (class, mark) = if s.failure.is_some() {
                ("fail", "✗")
            } else if s.skipped.is_some() {
                ("skip", "–")
            } else {
                ("ok", "✓")
            };
            let line = s
                .rendered
                .as_ref()
                .map(|q| format!("{} {}", q.method, red.mask(&q.url)))
                .unwrap_or_default();
            let status = s
                .exchange
                .as_ref()
                .map(|e| format!(" → {} · {:.0} ms", e.status, ms(s)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<details class=\"step {class}\" id=\"s-{fi}-{si}\"{}><summary><span class=\"mark\">{mark}</span>{} <span class=\"url\">{}{}</span></summary>",
                if s.failure.is_some() { " open" } else { "" },
                esc(&s.request),
                esc(&line),
                esc(&status)
            );
            out.push('\n');
            if let Some(f) = &s.failure {
                let _ = writeln!(
                    out,
                    "<div class=\"failure\">{}</div>",
                    esc(&red.mask(&f.message))
                );
            }
            if let Some(why) = &s.skipped {
                let _ = writeln!(
                    out,
                    "<p class=\"meta\">skipped: {}</p>",
                    esc(&red.mask(why))
                );
            }
            if !s.asserts.is_empty() {
                out.push_str("<ul class=\"asserts\">");
                for a in &s.asserts {
                    let _ = write!(
                        out,
                        "<li class=\"{}\">{}{}</li>",
                        if a.passed { "ok" } else { "no" },
                        esc(&red.mask(&a.description)),
                        a.actual
                            .as_ref()
                            .map(|x| format!(" — got {}", esc(&red.mask(x))))
                            .unwrap_or_default()
                    );
                }
                out.push_str("</ul>\n");
            }
            if !s.set.is_empty() {
                let set: Vec<String> = s
                    .set
                    .iter()
                    .map(|b| {
                        esc(&format!(
                            "{} = {}",
                            b.name,
                            red.mask(&crate::chain::display_value(b))
                        ))
                    })
                    .collect();
                let _ = writeln!(out, "<p class=\"meta\">set: {}</p>", set.join(", "));
            }
            for n in &s.notes {
                let _ = writeln!(out, "<p class=\"meta\">{}</p>", esc(&red.mask(n)));
            }
            for line in &s.console {
                let _ = writeln!(
                    out,
                    "<p class=\"meta\">console.{}: {}</p>",
                    esc(&line.level),
                    esc(&red.mask(&line.text))
                );
            }
            let d = details.get(fi).and_then(|d| d.get(si));
            for (title, text) in [
                ("Request", d.and_then(|d| d.request.as_deref())),
                ("Response", d.and_then(|d| d.response.as_deref())),
            ] {
                if let Some(t) = text {
                    let _ = writeln!(
                        out,
                        "<details class=\"part\"><summary>{title}</summary><pre>{}</pre></details>",
                        esc(&red.mask(t))
                    );
                }
            }
            out.push_str("</details>\n");
        }
        if !f.not_run.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"meta\">not run{}: {}</p>",
                if f.interrupted {
                    " (interrupted)"
                } else {
                    " (an earlier step failed)"
                },
                esc(&f.not_run.join(", "))
            );
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main></body></html>\n");
    out
}
