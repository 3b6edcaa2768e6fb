//! curl command lines in (as a POSIX shell reads them, several per file) and out (quoted safely
//! for a POSIX shell).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::names::{Namer, env_key, slug};
use super::{Import, InputError, Obj, Report};

/// One shell word, or a break between commands.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Break,
    /// `|`: what follows consumes the output.
    Pipe,
}

/// Splits text into words as `sh` would: `'…'` literal, `"…"` with `\\` escaping `" \\ $ \``
/// and newline, `$'…'` with C escapes, backslash-newline joining lines, and `$VAR`/`${VAR}`
/// (outside single quotes) becoming `<<env.VAR>>`. Unquoted newlines, `;`, `&&`, `||` and `|`
/// end a command.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let mut line = 1;
    let end_word = |word: &mut String, in_word: &mut bool, out: &mut Vec<Token>| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                i += 2;
                line += 1;
            }
            '\\' if chars.get(i + 1) == Some(&'\r') && chars.get(i + 2) == Some(&'\n') => {
                i += 3;
                line += 1;
            }
            '^' if matches!(chars.get(i + 1), Some('\n') | Some('\r')) => {
                return Err(format!(
                    "line {line}: this is Windows cmd syntax (`^` line endings); copy the request as \"cURL (bash)\" instead"
                ));
            }
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    word.push(n);
                    in_word = true;
                }
                i += 2;
            }
            '\'' => {
                let start = line;
                i += 1;
                in_word = true;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("line {start}: a single quote is never closed"));
                        }
                        Some('\'') => break,
                        Some(&ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '$' if chars.get(i + 1) == Some(&'\'') => {
                let start = line;
                i += 2;
                in_word = true;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("line {start}: a $'…' string is never closed")),
                        Some('\'') => break,
                        Some('\\') => {
                            i += 1;
                            let (ch, used) = c_escape(&chars[i..]);
                            word.push_str(&ch);
                            i += used;
                            continue;
                        }
                        Some(&ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                let start = line;
                i += 1;
                in_word = true;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("line {start}: a double quote is never closed"));
                        }
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        Some('\\') if chars.get(i + 1) == Some(&'\n') => {
                            i += 2;
                            line += 1;
                            continue;
                        }
                        Some('$') => {
                            let used = variable(&chars[i..], &mut word);
                            i += used;
                            continue;
                        }
                        Some(&ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                in_word = true;
                i += variable(&chars[i..], &mut word);
            }
            '\n' | ';' => {
                if c == '\n' {
                    line += 1;
                }
                end_word(&mut word, &mut in_word, &mut out);
                out.push(Token::Break);
                i += 1;
            }
            '&' | '|' => {
                end_word(&mut word, &mut in_word, &mut out);
                i += 1;
                if chars.get(i) == Some(&c) {
                    out.push(Token::Break);
                    i += 1;
                } else if c == '|' {
                    out.push(Token::Pipe);
                } else {
                    out.push(Token::Break);
                }
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            c if c.is_whitespace() => {
                end_word(&mut word, &mut in_word, &mut out);
                i += 1;
            }
            c => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut out);
    Ok(out)
}

/// `$NAME` or `${NAME}` at the start of `chars` → `<<env.NAME>>`; a lone `$` stays. Returns how
/// many characters it used.
fn variable(chars: &[char], word: &mut String) -> usize {
    let braced = chars.get(1) == Some(&'{');
    let start = if braced { 2 } else { 1 };
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    let name: String = chars[start..end].iter().collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        word.push('$');
        return 1;
    }
    if braced {
        if chars.get(end) != Some(&'}') {
            word.push('$');
            return 1;
        }
        end += 1;
    }
    word.push_str(&format!("<<env.{name}>>"));
    end
}

/// A C escape after `\` in `$'…'`: the text and how many characters it used.
fn c_escape(chars: &[char]) -> (String, usize) {
    let Some(&c) = chars.first() else {
        return ("\\".into(), 0);
    };
    let hex = |n: usize| -> Option<(char, usize)> {
        let s: String = chars[1..]
            .iter()
            .take(n)
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        if s.is_empty() {
            return None;
        }
        u32::from_str_radix(&s, 16)
            .ok()
            .and_then(char::from_u32)
            .map(|ch| (ch, 1 + s.len()))
    };
    match c {
        'n' => ("\n".into(), 1),
        't' => ("\t".into(), 1),
        'r' => ("\r".into(), 1),
        'a' => ("\x07".into(), 1),
        'b' => ("\x08".into(), 1),
        'e' | 'E' => ("\x1b".into(), 1),
        'f' => ("\x0c".into(), 1),
        'v' => ("\x0b".into(), 1),
        '\\' | '\'' | '"' | '?' => (c.to_string(), 1),
        'x' => hex(2)
            .map(|(ch, n)| (ch.to_string(), n))
            .unwrap_or(("\\x".into(), 1)),
        'u' => hex(4)
            .map(|(ch, n)| (ch.to_string(), n))
            .unwrap_or(("\\u".into(), 1)),
        'U' => hex(8)
            .map(|(ch, n)| (ch.to_string(), n))
            .unwrap_or(("\\U".into(), 1)),
        '0'..='7' => {
            let s: String = chars
                .iter()
                .take(3)
                .take_while(|c| ('0'..='7').contains(*c))
                .collect();
            let v = u32::from_str_radix(&s, 8).unwrap_or(0);
            (char::from_u32(v).unwrap_or('?').to_string(), s.len())
        }
        other => (format!("\\{other}"), 1),
    }
}

/// Options whose value is the next word and that postie has no use for.
const IGNORED_WITH_VALUE: [&str; 14] = [
    "-o",
    "--output",
    "-w",
    "--write-out",
    "--connect-timeout",
    "--retry",
    "--retry-delay",
    "-c",
    "--cookie-jar",
    "--max-redirs",
    "-D",
    "--dump-header",
    "--trace",
    "--trace-ascii",
];
/// Options without a value that change nothing postie sends.
const IGNORED_FLAGS: [&str; 24] = [
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-v",
    "--verbose",
    "-i",
    "--include",
    "-f",
    "--fail",
    "--fail-with-body",
    "-O",
    "--remote-name",
    "--http1.1",
    "--http2",
    "--http1.0",
    "-N",
    "--no-buffer",
    "--no-progress-meter",
    "-#",
    "--progress-bar",
    "-g",
    "--globoff",
    "-sS",
];

/// One parsed curl command.
#[derive(Debug, Default)]
struct Curl {
    method: Option<String>,
    url: Option<String>,
    headers: Vec<(String, String)>,
    data: Vec<Data>,
    json: Vec<String>,
    form: Vec<(String, String, bool)>,
    user: Option<String>,
    get: bool,
    head: bool,
    follow: bool,
    cookie: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug)]
enum Data {
    /// `-d`, `--data-ascii`, `--data-binary`, `--data-raw`: sent as given (files read).
    Plain(String),
    /// `--data-urlencode`: encoded.
    Encode(String),
}

/// Imports curl command lines (`-` reads stdin).
pub fn import(path: Option<&Path>) -> Result<Import, InputError> {
    let (text, shown) = match path {
        Some(p) if p != Path::new("-") => (
            std::fs::read_to_string(p)
                .map_err(|e| InputError::new(p, format!("cannot read it: {e}")))?,
            p.to_path_buf(),
        ),
        _ => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| InputError::new(Path::new("-"), format!("cannot read stdin: {e}")))?;
            (s, Path::new("stdin").to_path_buf())
        }
    };
    let name = path
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| s != "-")
        .unwrap_or_else(|| "curl".into());
    import_text(&text, &name, &shown)
}

/// Imports curl command lines from text.
pub fn import_text(text: &str, name: &str, file: &Path) -> Result<Import, InputError> {
    let tokens = tokenize(text).map_err(|m| InputError::new(file, m))?;
    // Commands, each marked when it only consumes another's output (`… | jq`).
    let mut commands: Vec<(Vec<String>, bool)> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut piped = false;
    for t in tokens {
        match t {
            Token::Word(w) => cur.push(w),
            Token::Break | Token::Pipe => {
                if !cur.is_empty() {
                    commands.push((std::mem::take(&mut cur), piped));
                }
                piped = t == Token::Pipe;
            }
        }
    }
    if !cur.is_empty() {
        commands.push((cur, piped));
    }
    let mut report = Report::default();
    let mut parsed = Vec::new();
    for (n, (words, piped)) in commands.into_iter().enumerate() {
        if piped {
            report.notes.push(format!(
                "command {}: `{}` reads another command's output; ignored",
                n + 1,
                words.first().map(String::as_str).unwrap_or("")
            ));
            continue;
        }
        // A pasted prompt (`$ curl …`) or `sudo`/`time` before it.
        let start = words.iter().position(|w| w == "curl");
        let Some(start) = start else {
            report.left_out.push(format!(
                "command {}: `{}` is not a curl command",
                n + 1,
                words.first().map(String::as_str).unwrap_or("")
            ));
            continue;
        };
        match parse(&words[start + 1..], n + 1, &mut report) {
            Some(c) => parsed.push((n + 1, c)),
            None => continue,
        }
    }
    if parsed.is_empty() {
        return Err(InputError::new(
            file,
            "no curl command found (each command starts with `curl`)",
        ));
    }
    Ok(build(parsed, name, report))
}

fn parse(words: &[String], n: usize, report: &mut Report) -> Option<Curl> {
    let mut c = Curl::default();
    let mut i = 0;
    let at = |o: &str| format!("command {n}: {o}");
    while i < words.len() {
        let w = &words[i];
        let mut value = |i: &mut usize| -> Option<String> {
            *i += 1;
            let v = words.get(*i).cloned();
            if v.is_none() {
                report.left_out.push(at(&format!("`{w}` needs a value")));
            }
            v
        };
        // Short options with the value attached (`-XPOST`, `-H'X: y'`) or combined flags (`-sSL`).
        if w.starts_with('-') && !w.starts_with("--") && w.len() > 2 {
            let (opt, rest) = w.split_at(2);
            if matches!(
                opt,
                "-X" | "-H" | "-d" | "-u" | "-F" | "-b" | "-A" | "-e" | "-m" | "-o" | "-w"
            ) {
                let mut expanded: Vec<String> = words[..i].to_vec();
                expanded.push(opt.to_string());
                expanded.push(rest.to_string());
                expanded.extend_from_slice(&words[i + 1..]);
                return parse(&expanded, n, report);
            }
            if rest.chars().all(|ch| "sSvLkiIfGgN#".contains(ch)) {
                let mut expanded: Vec<String> = words[..i].to_vec();
                expanded.extend(w[1..].chars().map(|ch| format!("-{ch}")));
                expanded.extend_from_slice(&words[i + 1..]);
                return parse(&expanded, n, report);
            }
        }
        match w.as_str() {
            "-X" | "--request" => c.method = value(&mut i).map(|m| m.to_ascii_uppercase()),
            "-H" | "--header" => {
                if let Some(h) = value(&mut i) {
                    let pair = match h.split_once(':') {
                        Some((k, v)) => Some((k.trim().to_string(), v.trim().to_string())),
                        None => h
                            .strip_suffix(';')
                            .map(|k| (k.trim().to_string(), String::new())),
                    };
                    match pair {
                        Some((k, v))
                            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok() =>
                        {
                            c.headers.push((k, v))
                        }
                        Some((k, _)) => report.left_out.push(at(&format!(
                            "header `{h}`: `{k}` is not a header name; the header is left out"
                        ))),
                        None => report
                            .left_out
                            .push(at(&format!("header `{h}` is not `Name: value`"))),
                    }
                }
            }
            "-d" | "--data" | "--data-ascii" | "--data-binary" => {
                if let Some(d) = value(&mut i) {
                    match d.strip_prefix('@') {
                        Some(file) => match std::fs::read_to_string(file) {
                            Ok(t) => {
                                let t = if w == "--data-binary" {
                                    t
                                } else {
                                    t.replace(['\r', '\n'], "")
                                };
                                c.data.push(Data::Plain(t));
                            }
                            Err(e) => report
                                .left_out
                                .push(at(&format!("cannot read the data file {file}: {e}"))),
                        },
                        None => c.data.push(Data::Plain(d)),
                    }
                }
            }
            "--data-raw" => {
                if let Some(d) = value(&mut i) {
                    c.data.push(Data::Plain(d));
                }
            }
            "--data-urlencode" => {
                if let Some(d) = value(&mut i) {
                    c.data.push(Data::Encode(d));
                }
            }
            "--json" => {
                if let Some(d) = value(&mut i) {
                    c.json.push(d);
                }
            }
            "-F" | "--form" | "--form-string" => {
                if let Some(f) = value(&mut i) {
                    match f.split_once('=') {
                        Some((k, v)) => {
                            c.form
                                .push((k.to_string(), v.to_string(), w == "--form-string"))
                        }
                        None => report
                            .left_out
                            .push(at(&format!("form part `{f}` is not `name=value`"))),
                    }
                }
            }
            "-u" | "--user" => c.user = value(&mut i),
            "-G" | "--get" => c.get = true,
            "-I" | "--head" => c.head = true,
            "-L" | "--location" => c.follow = true,
            "--url" => c.url = value(&mut i),
            "-b" | "--cookie" => c.cookie = value(&mut i),
            "-A" | "--user-agent" => {
                if let Some(v) = value(&mut i) {
                    c.headers.push(("User-Agent".into(), v));
                }
            }
            "-e" | "--referer" => {
                if let Some(v) = value(&mut i) {
                    c.headers.push(("Referer".into(), v));
                }
            }
            "--oauth2-bearer" => {
                if let Some(v) = value(&mut i) {
                    c.headers
                        .push(("Authorization".into(), format!("Bearer {v}")));
                }
            }
            "--compressed" => c
                .headers
                .push(("Accept-Encoding".into(), "gzip, deflate".into())),
            "-m" | "--max-time" => c.timeout = value(&mut i).map(|s| format!("{s}s")),
            "-k" | "--insecure" => report.left_out.push(at(
                "-k (do not verify TLS certificates) is not carried over; postie verifies them",
            )),
            o if IGNORED_WITH_VALUE.contains(&o) => {
                value(&mut i);
            }
            o if IGNORED_FLAGS.contains(&o) => {}
            o if o.starts_with('-') && o.len() > 1 => {
                report
                    .left_out
                    .push(at(&format!("option `{o}` is not supported; left out")));
            }
            _ => {
                if c.url.is_none() {
                    c.url = Some(w.clone());
                } else {
                    report.left_out.push(at(&format!(
                        "a second URL `{w}` is left out (postie makes one request per command)"
                    )));
                }
            }
        }
        i += 1;
    }
    if c.url.is_none() {
        report.left_out.push(at("no URL"));
        return None;
    }
    if let Some(m) = &c.method
        && (m.is_empty() || m.parse::<reqwest::Method>().is_err())
    {
        report.left_out.push(at(&format!(
            "`-X {m}` is not an HTTP method; the command is left out"
        )));
        return None;
    }
    Some(c)
}

fn build(commands: Vec<(usize, Curl)>, name: &str, mut report: Report) -> Import {
    let mut requests = Map::new();
    let mut variables = Map::new();
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut namer = Namer::default();
    let mut bases: Vec<String> = Vec::new();
    for (n, c) in &commands {
        let at = format!("command {n}");
        let mut url = c.url.clone().unwrap_or_default();
        if !url.contains("://") {
            url = format!("http://{url}");
        }
        // The origin becomes a variable, shared by every command against it.
        let (origin, rest) = split_origin(&url);
        let var = match bases.iter().position(|b| *b == origin) {
            Some(0) => "base_url".to_string(),
            Some(i) => format!("base_url_{}", i + 1),
            None => {
                bases.push(origin.clone());
                let v = if bases.len() == 1 {
                    "base_url".to_string()
                } else {
                    format!("base_url_{}", bases.len())
                };
                variables.insert(v.clone(), Value::String(escape(&origin)));
                v
            }
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (rest.clone(), None),
        };
        let mut req = Obj::new();
        let mut headers = Map::new();
        let mut content_type = String::new();
        for (k, v) in &c.headers {
            if k.eq_ignore_ascii_case("content-type") {
                content_type = v.to_ascii_lowercase();
            }
            let v = placeholders(v);
            let v = if k.eq_ignore_ascii_case("authorization") && !v.contains("<<") && !v.is_empty()
            {
                // The credential, not the scheme, is the secret: `Bearer <<bearer_token>>`.
                match v.split_once(' ') {
                    Some((scheme, cred)) if !cred.trim().is_empty() => format!(
                        "{scheme} {}",
                        secret(
                            &mut variables,
                            &mut secrets,
                            &format!("{}_token", slug(scheme)),
                            cred.trim()
                        )
                    ),
                    _ => secret(&mut variables, &mut secrets, "authorization", &v),
                }
            } else if k.eq_ignore_ascii_case("cookie") && !v.contains("<<") && !v.is_empty() {
                secret(&mut variables, &mut secrets, "cookie", &v)
            } else if crate::redact::is_secret_name(&k.replace('-', "_"))
                && !v.contains("<<")
                && !v.is_empty()
            {
                // `X-API-Key: …`, `X-Auth-Token: …`: a credential in a header of its own.
                secret(
                    &mut variables,
                    &mut secrets,
                    &super::names::ident(&k.to_ascii_lowercase()),
                    &v,
                )
            } else {
                escape_keeping(&v)
            };
            match headers.get_mut(k) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                }
                _ => {
                    headers.insert(k.clone(), Value::String(v));
                }
            }
        }
        if let Some(cookie) = &c.cookie {
            if cookie.contains('=') {
                let v = secret(&mut variables, &mut secrets, "cookie", cookie);
                headers.insert("Cookie".into(), Value::String(v));
            } else {
                report.left_out.push(format!(
                    "{at}: -b {cookie} names a cookie file; postie does not read cookie files"
                ));
            }
        }
        let has_body = !c.data.is_empty() || !c.json.is_empty() || !c.form.is_empty();
        let method = c.method.clone().unwrap_or_else(|| {
            if c.head {
                "HEAD".into()
            } else if c.get {
                "GET".into()
            } else if has_body {
                "POST".into()
            } else {
                "GET".into()
            }
        });
        let mut query_pairs: Vec<(String, String)> = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let data_text = || -> String {
            c.data
                .iter()
                .map(|d| match d {
                    Data::Plain(s) => s.clone(),
                    Data::Encode(s) => urlencode_arg(s),
                })
                .collect::<Vec<_>>()
                .join("&")
        };
        if !c.json.is_empty() {
            let text = c.json.join("");
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => {
                    req.set("json", escape_json(&v));
                }
                Err(_) => {
                    headers
                        .entry("Content-Type")
                        .or_insert(json!("application/json"));
                    req.set("text", escape(&text));
                }
            }
            headers.entry("Accept").or_insert(json!("application/json"));
        } else if !c.form.is_empty() {
            let mut parts = Map::new();
            for (k, v, literal) in &c.form {
                let part = match v.strip_prefix('@') {
                    Some(file) if !literal => {
                        let mut segs = file.split(';');
                        let path = segs.next().unwrap_or("");
                        let mut o = Obj::new();
                        o.set("file", escape(path));
                        for s in segs {
                            if let Some(t) = s.strip_prefix("type=") {
                                o.set("content_type", t);
                            } else if let Some(f) = s.strip_prefix("filename=") {
                                o.set("filename", f.trim_matches('"'));
                            }
                        }
                        o.value()
                    }
                    _ => match v.strip_prefix('<') {
                        Some(file) if !literal => match std::fs::read_to_string(file) {
                            Ok(t) => Value::String(escape(&t)),
                            Err(e) => {
                                report
                                    .left_out
                                    .push(format!("{at}: cannot read {file} for part `{k}`: {e}"));
                                continue;
                            }
                        },
                        _ => Value::String(escape(v)),
                    },
                };
                parts.insert(k.clone(), part);
            }
            req.set("multipart", Value::Object(parts));
        } else if !c.data.is_empty() {
            let text = data_text();
            if c.get {
                query_pairs.extend(
                    url::form_urlencoded::parse(text.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned())),
                );
            } else if content_type.contains("json") && serde_json::from_str::<Value>(&text).is_ok()
            {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                req.set("json", escape_json(&v));
            } else if (content_type.is_empty() || content_type.contains("x-www-form-urlencoded"))
                && form_like(&text)
            {
                let mut form = Map::new();
                let mut dup = false;
                for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
                    dup |= form
                        .insert(k.clone().into_owned(), Value::String(escape(&v)))
                        .is_some();
                }
                if dup {
                    req.set("text", escape(&text));
                    headers
                        .entry("Content-Type")
                        .or_insert(json!("application/x-www-form-urlencoded"));
                } else {
                    req.set("form", Value::Object(form));
                }
            } else {
                if content_type.is_empty() {
                    headers.insert(
                        "Content-Type".into(),
                        json!("application/x-www-form-urlencoded"),
                    );
                }
                req.set("text", escape(&text));
            }
        }
        let auth = c.user.as_ref().map(|u| match u.split_once(':') {
            Some((user, pw)) => {
                let p = secret(&mut variables, &mut secrets, "password", pw);
                json!({"basic": {"user": escape(user), "password": p}})
            }
            None => {
                report.notes.push(format!(
                    "{at}: -u {u} has no password (curl would ask for it); set `password`"
                ));
                json!({"basic": {"user": escape(u), "password": "<<password>>"}})
            }
        });
        let path = placeholders(&path);
        let last = path
            .trim_end_matches('/')
            .rsplit('/')
            .find(|seg| !seg.contains("<<"))
            .unwrap_or("");
        let key = namer.unique(&[slug(&format!(
            "{} {}",
            method.to_lowercase(),
            if last.is_empty() { "root" } else { last }
        ))]);
        req.set("method", method.clone());
        req.set("url", format!("<<{var}>>{}", escape_keeping(&path)));
        let mut q = Map::new();
        let mut plain_query = true;
        for (k, v) in &query_pairs {
            plain_query &= q.insert(k.clone(), Value::String(escape(v))).is_none();
        }
        if plain_query {
            req.put("query", Value::Object(q));
        } else {
            let qs = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query_pairs)
                .finish();
            let u = req.0["url"].as_str().unwrap_or("").to_string();
            req.set("url", format!("{u}?{}", escape(&qs)));
        }
        req.put("headers", Value::Object(headers));
        // Move the body after the headers, as a reader expects.
        for k in ["json", "form", "text", "multipart"] {
            if let Some(v) = req.0.shift_remove(k) {
                req.0.insert(k.to_string(), v);
            }
        }
        if let Some(a) = auth {
            req.set("auth", a);
        }
        if c.follow {
            req.set("follow_redirects", true);
        }
        req.put("timeout", c.timeout.clone().unwrap_or_default());
        report
            .imported
            .push(format!("command {n} → request `{key}` ({method} {url})"));
        requests.insert(key, req.value());
    }
    for v in variables.keys() {
        namer.reserve(v);
    }
    let mut doc = Obj::new();
    doc.set("name", slug(name));
    doc.put("variables", Value::Object(variables));
    doc.set("requests", Value::Object(requests));
    Import {
        doc: doc.value(),
        secrets,
        report,
    }
}

/// A literal credential as a secret variable whose value goes to `.env`.
fn secret(
    variables: &mut Map<String, Value>,
    secrets: &mut Vec<(String, String)>,
    name: &str,
    value: &str,
) -> String {
    // The same value (a token pasted into several commands) shares one variable.
    if let Some((key, _)) = secrets.iter().find(|(_, v)| v == value) {
        let wanted = format!("<<env.{key}>>");
        if let Some((var, _)) = variables
            .iter()
            .find(|(_, v)| v.get("value").and_then(Value::as_str) == Some(wanted.as_str()))
        {
            return format!("<<{var}>>");
        }
    }
    let mut var = name.to_string();
    let mut n = 2;
    while variables.contains_key(&var) {
        var = format!("{name}_{n}");
        n += 1;
    }
    let key = env_key(&["curl", &var]);
    secrets.push((key.clone(), value.to_string()));
    variables.insert(
        var.clone(),
        json!({"value": format!("<<env.{key}>>"), "secret": true}),
    );
    format!("<<{var}>>")
}

/// Documentation placeholders as variables: `{contact_id}`, `<YOUR-TOKEN>`, `{{token}}` →
/// `<<contact_id>>`, `<<YOUR_TOKEN>>`, `<<token>>`.
fn placeholders(s: &str) -> String {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\{\{([A-Za-z_][\w-]*)\}\}|\{([A-Za-z_][\w-]*)\}|<([A-Za-z_][\w-]*)>")
            .expect("valid regex")
    });
    RE.replace_all(s, |c: &regex::Captures<'_>| {
        let name = c
            .get(1)
            .or(c.get(2))
            .or(c.get(3))
            .map(|m| m.as_str())
            .unwrap_or("");
        format!("<<{}>>", super::names::ident(name))
    })
    .into_owned()
}

/// [`escape`], keeping every `<<name>>` (placeholders already turned into variables).
fn escape_keeping(s: &str) -> String {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"<<[A-Za-z_][\w.]*>>").expect("valid regex")
    });
    let mut out = String::new();
    let mut last = 0;
    for m in RE.find_iter(s) {
        out.push_str(&super::template::escape_literal(&s[last..m.start()]));
        out.push_str(m.as_str());
        last = m.end();
    }
    out.push_str(&super::template::escape_literal(&s[last..]));
    out
}

/// Escapes literal template delimiters, keeping `<<env.X>>` the tokenizer wrote for `$X`.
fn escape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<<env.") {
        let Some(end) = rest[i..].find(">>") else {
            break;
        };
        out.push_str(&super::template::escape_literal(&rest[..i]));
        out.push_str(&rest[i..i + end + 2]);
        rest = &rest[i + end + 2..];
    }
    out.push_str(&super::template::escape_literal(rest));
    out
}

fn escape_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape(s)),
        Value::Array(a) => Value::Array(a.iter().map(escape_json).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (escape(k), escape_json(x))).collect())
        }
        other => other.clone(),
    }
}

/// `a=1&b=2` (every part has a name).
fn form_like(s: &str) -> bool {
    !s.is_empty()
        && s.split('&').all(|p| {
            p.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains([' ', '{', '"', '<']))
        })
}

/// `--data-urlencode` forms: `content`, `=content`, `name=content`, `@file`, `name@file`.
fn urlencode_arg(s: &str) -> String {
    let enc = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    if let Some(rest) = s.strip_prefix('=') {
        return enc(rest);
    }
    if let Some(f) = s.strip_prefix('@') {
        return enc(&read(f));
    }
    match (s.find('='), s.find('@')) {
        (Some(e), at) if at.is_none_or(|a| e < a) => format!("{}={}", &s[..e], enc(&s[e + 1..])),
        (_, Some(a)) => format!("{}={}", &s[..a], enc(&read(&s[a + 1..]))),
        _ => enc(s),
    }
}

/// `scheme://host[:port]` and the rest.
fn split_origin(url: &str) -> (String, String) {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find(['/', '?', '#']) {
        Some(j) => (url[..after + j].to_string(), url[after + j..].to_string()),
        None => (url.to_string(), String::new()),
    }
}

/// Quotes a word for a POSIX shell: `'…'` with `'\''` for a quote; `$'…'` when it holds control
/// characters.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && !s.starts_with(['@', '-', '~', '=', '<'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A rendered request as one curl command line, as 7.2 of the interop notes lays out: `-X` only
/// when the body does not imply the method, `--data-raw` for text, `--data-urlencode` per form
/// field, `--form-string`/`-F` for multipart parts, `-L` when following redirects.
pub fn to_curl(r: &crate::exchange::Rendered) -> String {
    use crate::exchange::{Body, PartValue};
    let mut parts = vec!["curl".to_string()];
    let implied = match (&r.body, r.method.as_str()) {
        (Body::None, "GET") => true,
        (Body::None, _) => false,
        (_, "POST") => true,
        _ => false,
    };
    if !implied {
        parts.push(format!("-X {}", r.method));
    }
    parts.push(format!("--url {}", shell_quote(&r.url)));
    let multipart = matches!(r.body, Body::Multipart { .. });
    for (k, v) in r.effective_headers() {
        if multipart && k.eq_ignore_ascii_case("content-type") && v.starts_with("multipart/") {
            continue;
        }
        if matches!(r.body, Body::Form(_))
            && k.eq_ignore_ascii_case("content-type")
            && v == "application/x-www-form-urlencoded"
        {
            continue;
        }
        if v.is_empty() {
            parts.push(format!("-H {}", shell_quote(&format!("{k};"))));
        } else {
            parts.push(format!("-H {}", shell_quote(&format!("{k}: {v}"))));
        }
    }
    match &r.body {
        Body::None => {}
        Body::Json(v) => parts.push(format!(
            "--data-raw {}",
            shell_quote(&serde_json::to_string(v).unwrap_or_default())
        )),
        Body::Text(t) => parts.push(format!("--data-raw {}", shell_quote(t))),
        Body::Form(f) => {
            for (k, v) in f {
                parts.push(format!(
                    "--data-urlencode {}",
                    shell_quote(&format!("{k}={v}"))
                ));
            }
        }
        Body::Multipart { parts: ps, .. } => {
            for (k, p) in ps {
                match p {
                    PartValue::Text(v) => parts.push(format!(
                        "--form-string {}",
                        shell_quote(&format!("{k}={v}"))
                    )),
                    PartValue::File {
                        path,
                        content_type,
                        filename,
                    } => parts.push(format!(
                        "-F {}",
                        shell_quote(&format!(
                            "{k}=@{};type={content_type};filename={filename}",
                            path.display()
                        ))
                    )),
                }
            }
        }
    }
    if r.follow_redirects {
        parts.push("-L".into());
    }
    if r.header("accept-encoding")
        .is_some_and(|v| v.contains("gzip") || v.contains("br"))
    {
        parts.push("--compressed".into());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_as_a_shell_does() {
        let t = tokenize(
            "curl -H 'A: b c' \\\n  -d \"x=\\\"$HOME\\\"\" $'a\\nb' ${TOKEN}x # comment\ncurl y",
        )
        .unwrap();
        let words: Vec<String> = t
            .iter()
            .map(|t| match t {
                Token::Word(w) => w.clone(),
                Token::Break => ";".into(),
                Token::Pipe => "|".into(),
            })
            .collect();
        assert_eq!(
            words,
            vec![
                "curl",
                "-H",
                "A: b c",
                "-d",
                "x=\"<<env.HOME>>\"",
                "a\nb",
                "<<env.TOKEN>>x",
                ";",
                "curl",
                "y"
            ]
        );
        assert!(tokenize("curl 'open").unwrap_err().contains("never closed"));
        assert!(
            tokenize("curl ^\n -X POST")
                .unwrap_err()
                .contains("Windows")
        );
    }

    #[test]
    fn quotes_for_a_shell() {
        assert_eq!(shell_quote("plain-1.2"), "plain-1.2");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a\nb"), "$'a\\nb'");
        assert_eq!(shell_quote("@file"), "'@file'");
    }
}
