//! Terminal rendering of step results and responses: one line per step, pretty bodies, colour on
//! a TTY unless `NO_COLOR` is set. Everything passes through the [`Redactor`] first.

use std::io::IsTerminal;

use serde_json::Value;

use crate::chain::display_value;
use crate::exchange::{Exchange, Rendered};
use crate::redact::Redactor;
use crate::runner::StepResult;

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Emit ANSI colours.
    pub color: bool,
}

/// `--color`: when output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always (also into pipes and files, and whatever `NO_COLOR` says).
    Always,
    /// Never.
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Sets the process's colour choice (the CLI does, once, from `--color`).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// Whether output to a stream that is (or is not) a terminal is coloured.
pub fn color_for(terminal: bool) -> bool {
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

impl Style {
    /// Colour per `--color` (default: when stdout is a terminal and `NO_COLOR` is unset or
    /// empty).
    pub fn detect() -> Style {
        Style {
            color: color_for(std::io::stdout().is_terminal()),
        }
    }
    /// No colour.
    pub fn plain() -> Style {
        Style { color: false }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    /// Green.
    pub fn ok(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Red.
    pub fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Dim.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Bold.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Yellow.
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }
}

/// Most of a body shown in the terminal; the rest is summarised with how to get it.
pub const SHOW_BODY_BYTES: usize = 64 * 1024;

/// Text from a server made safe for a terminal: control characters (ESC, BEL, CR, C1 codes) and
/// bidirectional overrides are shown escaped (`\x1b`), never interpreted. Newlines and tabs stay.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bad(c) {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A URL for a step line: a long query is shortened (`?…` with its parameter count) unless
/// `verbose`.
pub fn short_url(url: &str, verbose: bool) -> String {
    if verbose || url.len() <= 100 {
        return url.to_string();
    }
    let (base, rest) = match url.split_once('?') {
        Some((base, q)) => {
            let n = q.split('&').filter(|p| !p.is_empty()).count();
            (base, format!("?…({n} parameters; -v shows them)"))
        }
        None => (url, String::new()),
    };
    // A very long path (a template that wrote kilobytes into it) keeps its two ends.
    let chars = base.chars().count();
    if chars <= 160 {
        return format!("{base}{rest}");
    }
    let head: String = base.chars().take(100).collect();
    let tail: String = base.chars().skip(chars - 40).collect();
    format!(
        "{head}…({} characters; -v shows them)…{tail}{rest}",
        chars - 140
    )
}

/// Wraps prose to `width` columns, indenting every line by `indent` spaces.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let room = width.saturating_sub(indent).max(20);
    let mut out = String::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
                out.push_str(&pad);
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&pad);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The terminal's width (`COLUMNS`, else 100).
pub fn term_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w >= 40)
        .unwrap_or(100)
}

/// One line per step (plus failure details and notes); `verbose` shows whole URLs.
pub fn step_line(r: &StepResult, red: &Redactor, style: Style, verbose: bool) -> String {
    let mut out = String::new();
    for n in &r.notes {
        out.push_str(&format!("  {}\n", style.warn(&printable(&red.mask(n)))));
    }
    if let Some(why) = &r.skipped {
        out.push_str(&format!(
            "{} {} {}\n",
            style.dim("-"),
            r.request,
            style.dim(&format!("skipped ({})", red.mask(why)))
        ));
        return out;
    }
    let mark = if r.ok() {
        style.ok("✓")
    } else {
        style.bad("✗")
    };
    out.push_str(&format!("{mark} {}", style.bold(&r.request)));
    if let Some(req) = &r.rendered {
        out.push_str(&format!(
            "  {} {}",
            req.method,
            short_url(&red.mask(&req.url), verbose)
        ));
    }
    if let Some(ex) = &r.exchange {
        let status = ex.status.to_string();
        let status = if ex.status < 400 {
            style.ok(&status)
        } else {
            style.bad(&status)
        };
        out.push_str(&format!(
            "  {status}  {:.0}ms",
            ex.elapsed.as_secs_f64() * 1000.0
        ));
    }
    if r.attempts > 1 {
        out.push_str(&format!("  ({} attempts)", r.attempts));
    }
    if !r.set.is_empty() {
        let mut vars = String::new();
        for b in &r.set {
            if !vars.is_empty() {
                vars.push(' ');
            }
            vars.push_str(&b.name);
            vars.push('=');
            vars.push_str(&red.mask(&display_value(b)));
        }
        out.push_str(&format!("  {} {}", style.dim("set"), printable(&vars)));
    }
    out.push('\n');
    for c in &r.console {
        let masked = red.mask(&c.text);
        for line in printable(&masked).lines() {
            out.push_str(&format!("    {} {}\n", style.dim("│"), line));
        }
    }
    for a in r.asserts.iter().filter(|a| a.script) {
        let masked = red.mask(&a.description);
        let name = printable(&masked);
        if a.skipped {
            out.push_str(&format!(
                "    {} {}\n",
                style.dim("-"),
                style.dim(&format!("{name} (skipped)"))
            ));
        } else if a.passed {
            out.push_str(&format!("    {} {name}\n", style.ok("✓")));
        } else {
            out.push_str(&format!("    {} {name}\n", style.bad("✗")));
        }
    }
    if let Some(f) = &r.failure {
        for line in printable(&red.mask(&f.message)).lines() {
            out.push_str(&format!("    {}\n", style.bad(line)));
        }
        if let Some(ex) = &r.exchange
            && f.kind == crate::runner::FailureKind::Assertion
        {
            let body = body_text(ex, red, Style::plain());
            for line in body.lines().take(20) {
                out.push_str(&format!("    {}\n", style.dim(line)));
            }
        }
    }
    out
}

/// The request as it will be sent (for `show`).
pub fn request_text(r: &Rendered, red: &Redactor) -> String {
    let mut out = format!("{} {}\n", r.method, printable(&red.mask(&r.url)));
    for (k, v) in &r.effective_headers() {
        out.push_str(&format!("{k}: {}\n", printable(&red.mask_header(k, v))));
    }
    match &r.body {
        crate::exchange::Body::Json(v) => {
            out.push('\n');
            out.push_str(&serde_json::to_string_pretty(&red.mask_json(v)).unwrap_or_default());
            out.push('\n');
        }
        _ => {
            if let Some(b) = r.body_text() {
                out.push('\n');
                out.push_str(&red.mask(&b));
                out.push('\n');
            }
        }
    }
    out
}

/// The response: status line, headers when `verbose`, then the pretty body.
pub fn response_text(ex: &Exchange, verbose: bool, red: &Redactor, style: Style) -> String {
    let reason = reqwest::StatusCode::from_u16(ex.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let status = format!("HTTP {} {reason}", ex.status);
    let status = if ex.status < 400 {
        style.ok(&status)
    } else {
        style.bad(&status)
    };
    let mut out = format!(
        "{status}  {}\n",
        style.dim(&format!("{:.1}ms", ex.elapsed.as_secs_f64() * 1000.0))
    );
    if verbose {
        for (k, v) in &ex.headers {
            out.push_str(&format!(
                "{}: {}\n",
                style.dim(k),
                printable(&red.mask_header(k, v))
            ));
        }
    } else if let Some(location) = ex.header("location") {
        // A redirect's target is the point of it (an OAuth code arrives there).
        out.push_str(&format!(
            "{}: {}\n",
            style.dim("location"),
            printable(&red.mask(location))
        ));
    }
    let body = body_text(ex, red, style);
    if !body.is_empty() {
        out.push('\n');
        out.push_str(&body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The body, pretty-printed, masked and safe for a terminal: a binary body is summarised, and
/// only the first [`SHOW_BODY_BYTES`] of a large one are shown.
pub fn body_text(ex: &Exchange, red: &Redactor, style: Style) -> String {
    let save = "save it with `last --save FILE` in the REPL or `postie send ... --output FILE`";
    if ex.binary {
        let ct = ex.header("content-type").unwrap_or("no content type");
        return format!(
            "<binary, {}, {} — {save}>",
            human_bytes(ex.raw.len()),
            printable(ct)
        );
    }
    let text = match &ex.json {
        // serde_json escapes control characters inside strings; the result is safe as it is.
        Some(v) => pretty_json(&red.mask_json(v), style),
        None => printable(&red.mask(&ex.body)).into_owned(),
    };
    if text.len() <= SHOW_BODY_BYTES {
        return text;
    }
    let mut cut = SHOW_BODY_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = text[..cut].to_string();
    if style.color {
        out.push_str("\x1b[0m");
    }
    out.push_str(&format!(
        "\n… {} more not shown (the body is {}); {save}\n",
        human_bytes(text.len() - cut),
        human_bytes(ex.raw.len())
    ));
    out
}

/// `48 KB`, `20.0 MB`.
pub fn human_bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{} KB", n / 1024)
    } else {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    }
}

/// Pretty JSON, coloured when asked.
pub fn pretty_json(v: &Value, style: Style) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    if !style.color {
        return text;
    }
    colorize_json(&text)
}

fn colorize_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            let s: String = chars[start..=i.min(chars.len() - 1)].iter().collect();
            let mut j = i + 1;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let is_key = chars.get(j) == Some(&':');
            out.push_str(&format!(
                "\x1b[{}m{s}\x1b[0m",
                if is_key { "34" } else { "32" }
            ));
            i += 1;
        } else if c.is_ascii_digit() || c == '-' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+'))
            {
                i += 1;
            }
            out.push_str(&format!(
                "\x1b[33m{}\x1b[0m",
                chars[start..i].iter().collect::<String>()
            ));
        } else if ["true", "false", "null"]
            .iter()
            .any(|w| starts_with(&chars[i..], w))
        {
            let word_len = if chars[i] == 'f' { 5 } else { 4 };
            out.push_str(&format!(
                "\x1b[35m{}\x1b[0m",
                chars[i..i + word_len].iter().collect::<String>()
            ));
            i += word_len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn starts_with(chars: &[char], word: &str) -> bool {
    word.chars()
        .enumerate()
        .all(|(k, w)| chars.get(k) == Some(&w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_urls_keep_their_ends_when_long() {
        let short = "http://h/a?b=1";
        assert_eq!(short_url(short, false), short);
        let long_path = format!("http://h/{}end", "x".repeat(10_000));
        let s = short_url(&long_path, false);
        assert!(s.len() < 250, "{s}");
        assert!(s.starts_with("http://h/xxx") && s.ends_with("xend"), "{s}");
        assert!(s.contains("(9872 characters; -v shows them)"), "{s}");
        assert_eq!(short_url(&long_path, true), long_path);
        let long_query = format!("http://h/p?{}", "a=1&".repeat(50));
        assert_eq!(
            short_url(&long_query, false),
            "http://h/p?…(50 parameters; -v shows them)"
        );
    }

    #[test]
    fn colours_json_only_when_asked() {
        let v = serde_json::json!({"name": "Ada", "n": -1.5, "ok": true, "none": null});
        let plain = pretty_json(&v, Style::plain());
        assert!(!plain.contains('\x1b'));
        let coloured = pretty_json(&v, Style { color: true });
        assert!(coloured.contains("\x1b[34m\"name\"\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32m\"Ada\"\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[33m-1.5\x1b[0m"), "{coloured}");
        assert!(
            coloured.contains("\x1b[35mtrue\x1b[0m") && coloured.contains("\x1b[35mnull\x1b[0m"),
            "{coloured}"
        );
        let stripped = regex::Regex::new("\x1b\\[[0-9]+m")
            .unwrap()
            .replace_all(&coloured, "");
        assert_eq!(stripped, plain);
    }
}
