//! What users already have, in and out: Postman collections and environments, OpenAPI and
//! Swagger documents, curl command lines and HAR files come in as postie YAML; collections go
//! back out as Postman collections and curl lines. One file per format.
//!
//! Every import builds the collection as an ordered JSON value (written as YAML, then loaded
//! back through [`crate::collection::Collection::parse`] so nothing invalid is ever written)
//! and a [`Report`] of what came in, what was translated and what could not be, each with its
//! path in the source. Secret values never go into the YAML: they go to a `.env` beside it.

pub mod cli;
pub mod curl;
pub mod har;
pub mod names;
pub mod openapi;
pub mod postman;
pub mod postman_out;
pub mod template;
pub mod translate;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What an import (or export) did, printed on stderr at the end.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// `exported` instead of `imported` on the summary lines.
    pub export: bool,
    /// One-line summaries of what came in (`19 requests in 3 folders`).
    pub imported: Vec<String>,
    /// What was translated into postie's own terms (`test script of "Login" → 2 assertions`).
    pub translated: Vec<String>,
    /// What came in with a caveat the user should know (a renamed variable).
    pub notes: Vec<String>,
    /// What could not come in, each with its path in the source.
    pub left_out: Vec<String>,
}

impl Report {
    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let verb = if self.export { "exported" } else { "imported" };
        for line in &self.imported {
            out.push_str(&format!("{verb}: {line}\n"));
        }
        if !self.translated.is_empty() {
            out.push_str(&format!("translated ({}):\n", self.translated.len()));
            for t in &self.translated {
                out.push_str(&format!("  {t}\n"));
            }
        }
        if !self.notes.is_empty() {
            out.push_str(&format!("notes ({}):\n", self.notes.len()));
            for n in &self.notes {
                out.push_str(&format!("  {n}\n"));
            }
        }
        if self.left_out.is_empty() {
            out.push_str("left out: nothing\n");
        } else {
            out.push_str(&format!("left out ({}):\n", self.left_out.len()));
            for l in &self.left_out {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

/// A source that is not a valid file of its kind (exit 2).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", file.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// Line and column, when the parser gives them.
    pub at: Option<(usize, usize)>,
    /// What is wrong and what to do.
    pub message: String,
}

impl InputError {
    /// An error for a file, without a position.
    pub fn new(file: &Path, message: impl Into<String>) -> InputError {
        InputError {
            file: file.to_path_buf(),
            at: None,
            message: message.into(),
        }
    }

    /// An error from a JSON parser, located.
    pub fn json(file: &Path, e: &serde_json::Error) -> InputError {
        let message = if e.to_string().starts_with("recursion limit exceeded") {
            "nested too deeply: more than 128 levels of arrays and objects (about 60 folders within folders); flatten it before importing".to_string()
        } else {
            format!("not valid JSON: {e}")
        };
        InputError {
            file: file.to_path_buf(),
            at: Some((e.line(), e.column())),
            message,
        }
    }

    /// An error from a YAML parser, located.
    pub fn yaml(file: &Path, e: &serde_yaml::Error) -> InputError {
        InputError {
            file: file.to_path_buf(),
            at: e.location().map(|l| (l.line(), l.column())),
            message: format!("not valid YAML: {e}"),
        }
    }
}

/// An imported collection, ready to write.
#[derive(Debug, Clone)]
pub struct Import {
    /// The collection as an ordered value (name, description, compat, variables, ...).
    pub doc: Value,
    /// Secret values that go to the `.env` beside the YAML: (variable, value).
    pub secrets: Vec<(String, String)>,
    /// What happened.
    pub report: Report,
}

impl Import {
    /// The import with what postie cannot send taken out and reported: a request whose method is
    /// not an HTTP method, a header whose name is not a header name. (What a source file holds
    /// is anyone's; the collection written must load.)
    pub fn checked(mut self) -> Import {
        let Some(requests) = self.doc.get_mut("requests").and_then(Value::as_object_mut) else {
            return self;
        };
        let mut dropped = Vec::new();
        requests.retain(|name, r| {
            let method = r.get("method").and_then(Value::as_str).unwrap_or("GET");
            if method.is_empty() || method.parse::<reqwest::Method>().is_err() {
                dropped.push(format!(
                    "request `{name}`: `{method}` is not an HTTP method; the request is left out"
                ));
                return false;
            }
            if let Some(h) = r.get_mut("headers").and_then(Value::as_object_mut) {
                h.retain(|k, _| {
                    let ok = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok();
                    if !ok {
                        dropped.push(format!(
                            "request `{name}`: `{k}` is not a header name; the header is left out"
                        ));
                    }
                    ok
                });
            }
            true
        });
        // Flows may name a request that is gone.
        let gone: Vec<String> = dropped
            .iter()
            .filter(|d| d.ends_with("the request is left out"))
            .filter_map(|d| d.split('`').nth(1).map(String::from))
            .collect();
        if !gone.is_empty()
            && let Some(flows) = self.doc.get_mut("flows").and_then(Value::as_object_mut)
        {
            for f in flows.values_mut() {
                if let Some(steps) = f.get_mut("steps").and_then(Value::as_array_mut) {
                    steps.retain(|s| {
                        let name = s
                            .as_str()
                            .or_else(|| s.get("request").and_then(Value::as_str))
                            .unwrap_or("");
                        !gone.iter().any(|g| g == name)
                    });
                }
            }
        }
        self.report.left_out.extend(dropped);
        self
    }

    /// The collection as YAML, with a header comment saying where it came from.
    pub fn yaml(&self, source: &str) -> String {
        let body = serde_yaml::to_string(&self.doc).unwrap_or_default();
        let mut out = format!(
            "# Imported by postie {} from {source}.\n",
            env!("CARGO_PKG_VERSION")
        );
        if !self.secrets.is_empty() {
            out.push_str("# Secret values are not in this file: they are in the .env beside it (git-ignored).\n");
        }
        out.push_str(&body);
        out
    }
}

/// Writes an import: the YAML to `out` (or stdout), secrets to `.env` beside it, then the report
/// on stderr. Returns the exit code: 0 when everything came in, 1 when something was left out,
/// 2 when the result would not load (a bug worth reporting).
pub fn write_import(import: &Import, source: &str, out: Option<&Path>) -> i32 {
    let import = &import.clone().checked();
    let yaml = import.yaml(source);
    let check_path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("imported.yaml"));
    if let Err(e) = crate::collection::Collection::parse(&check_path, yaml.clone()) {
        eprintln!(
            "error: the imported collection does not load, so nothing was written — please report this with the source file:\n{e}"
        );
        return crate::exit::COLLECTION;
    }
    let mut report = import.report.clone();
    match out {
        Some(path) => {
            if let Err(e) = write_file(path, &yaml) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return crate::exit::COLLECTION;
            }
            if !import.secrets.is_empty() {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                match write_secrets(&dir, &import.secrets) {
                    Ok(note) => report.notes.push(note),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return crate::exit::COLLECTION;
                    }
                }
            }
        }
        None => {
            print!("{yaml}");
            if !import.secrets.is_empty() {
                let names: Vec<&str> = import.secrets.iter().map(|(k, _)| k.as_str()).collect();
                report.notes.push(format!(
                    "secret values are not printed; pass -o FILE to write them to a .env beside it, or set {} in the environment",
                    names.join(", ")
                ));
            }
        }
    }
    eprint!("{}", report.render());
    if report.left_out.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::ASSERT
    }
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, text)
}

/// Adds secrets to `dir/.env` (existing keys are kept as they are) with mode 0600, and makes
/// sure git ignores it. Returns a note for the report.
pub fn write_secrets(dir: &Path, secrets: &[(String, String)]) -> Result<String, String> {
    let env_path = dir.join(".env");
    let existing = std::fs::read_to_string(&env_path).unwrap_or_default();
    let have = crate::scope::read_dotenv(&env_path);
    let mut text = existing.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut added = Vec::new();
    let mut kept = Vec::new();
    for (k, v) in secrets {
        if have.contains_key(k) {
            kept.push(k.as_str());
            continue;
        }
        text.push_str(&format!("{k}={}\n", dotenv_quote(v)));
        added.push(k.as_str());
    }
    if text != existing {
        crate::util::write_private_atomic(&env_path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", env_path.display()))?;
    }
    let ignore = dir.join(".gitignore");
    let ignored = std::fs::read_to_string(&ignore).unwrap_or_default();
    if !ignored
        .lines()
        .any(|l| matches!(l.trim(), ".env" | "/.env" | "*.env"))
    {
        let mut t = ignored.clone();
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t.push_str(".env\n");
        std::fs::write(&ignore, t)
            .map_err(|e| format!("cannot write {}: {e}", ignore.display()))?;
    }
    let mut note = format!(
        "secrets written to {} (mode 0600, git-ignored): {}",
        env_path.display(),
        if added.is_empty() {
            "none new".to_string()
        } else {
            added.join(", ")
        }
    );
    if !kept.is_empty() {
        note.push_str(&format!("; already there, kept: {}", kept.join(", ")));
    }
    Ok(note)
}

fn dotenv_quote(v: &str) -> String {
    if v.is_empty()
        || v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+=,".contains(c))
    {
        v.to_string()
    } else if !v.contains('\'') {
        format!("'{v}'")
    } else {
        format!("\"{}\"", v.replace('"', "'"))
    }
}

/// An ordered JSON object builder that skips empty values (readable YAML without `{}`s).
#[derive(Debug, Default, Clone)]
pub struct Obj(pub Map<String, Value>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(Map::new())
    }
    /// Sets a key unless the value is null, an empty string, array or object.
    pub fn put(&mut self, k: &str, v: impl Into<Value>) -> &mut Obj {
        let v = v.into();
        let empty = match &v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(k.to_string(), v);
        }
        self
    }
    /// Sets a key whatever its value.
    pub fn set(&mut self, k: &str, v: impl Into<Value>) -> &mut Obj {
        self.0.insert(k.to_string(), v.into());
        self
    }
    /// The value.
    pub fn value(self) -> Value {
        Value::Object(self.0)
    }
}

/// An authorization code grant as the importers find it (Postman's auth helper, an OpenAPI
/// security scheme): endpoints are template text.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The refresh endpoint (the token endpoint when absent).
    pub refresh_url: Option<String>,
    /// PKCE (S256).
    pub pkce: bool,
    /// The client authenticates with Basic (else with `client_id`/`client_secret` in the form).
    pub basic: bool,
    /// The client has a secret (`client_secret` is defined).
    pub has_secret: bool,
}

/// The `oauth2:` block and its three requests (authorize, token, refresh) for a code grant, over
/// the variables `client_id`, `client_secret`, `redirect_uri`, `scopes` and `oauth_state`, which
/// the caller defines. Request names come from `namer`.
pub fn code_grant_requests(
    g: &CodeGrant,
    namer: &mut names::Namer,
) -> (Value, Vec<(String, Value)>) {
    use serde_json::json;
    let mut q = json!({
        "client_id": "<<client_id>>",
        "redirect_uri": "<<redirect_uri>>",
        "response_type": "code",
        "scope": "<<scopes>>",
        "state": "<<oauth_state>>",
    });
    if g.pkce {
        q["code_challenge"] = json!("<<code_challenge>>");
        q["code_challenge_method"] = json!("S256");
    }
    let mut form = json!({"grant_type": "authorization_code", "code": "<<code>>", "redirect_uri": "<<redirect_uri>>"});
    if g.pkce {
        form["code_verifier"] = json!("<<code_verifier>>");
    }
    let mut refresh_form =
        json!({"grant_type": "refresh_token", "refresh_token": "<<refresh_token>>"});
    if !g.basic || !g.has_secret {
        for f in [&mut form, &mut refresh_form] {
            f["client_id"] = json!("<<client_id>>");
            if g.has_secret {
                f["client_secret"] = json!("<<client_secret>>");
            }
        }
    }
    let names: Vec<String> = ["authorize", "token", "refresh"]
        .iter()
        .map(|n| namer.unique(&[n.to_string(), format!("oauth_{n}")]))
        .collect();
    let authorize = json!({
        "note": "OAuth2 authorize: `postie auth login` opens it in the browser and captures the code",
        "method": "GET",
        "url": g.authorize_url,
        "query": q,
    });
    let mut token = json!({"note": "OAuth2: exchange the authorization code for tokens", "method": "POST", "url": g.token_url, "headers": {"Accept": "application/json"}, "form": form, "assert": [{"status": 200}]});
    let mut refresh = json!({"note": "OAuth2: refresh the access token", "method": "POST", "url": g.refresh_url.clone().unwrap_or_else(|| g.token_url.clone()), "headers": {"Accept": "application/json"}, "form": refresh_form, "assert": [{"status": 200}]});
    if g.basic && g.has_secret {
        let a = json!({"basic": {"user": "<<client_id>>", "password": "<<client_secret>>"}});
        token["auth"] = a.clone();
        refresh["auth"] = a;
    }
    let mut block = json!({"authorize": names[0], "token": names[1], "refresh": names[2]});
    if g.pkce {
        block["pkce"] = json!(true);
    }
    (
        block,
        vec![
            (names[0].clone(), authorize),
            (names[1].clone(), token),
            (names[2].clone(), refresh),
        ],
    )
}
