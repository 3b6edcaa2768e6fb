//! `postie diff`: what a change to a collection means, for review. Requests added, removed and
//! renamed (same content under a new name); per request, what changed in its method, URL (origin,
//! path, query), query, headers, body fields (JSON paths), form, auth, captures, assertions,
//! notes and scripts; flows' steps added, removed and reordered; variables and environments.
//! Secret values are never shown.
//!
//! It reads both files as YAML documents (not through the loader), so an old revision that a
//! newer postie would refuse still diffs.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_yaml::Value;

use crate::redact::is_secret_name;
use crate::template::is_template;

/// A parsed collection document.
pub struct Doc {
    root: IndexMap<String, Value>,
}

impl Doc {
    /// Parses collection text (empty text is an empty collection: a file git adds or deletes);
    /// an error starts `NAME:LINE:COL:` where the YAML is wrong.
    pub fn parse(name: &str, text: &str) -> Result<Doc, String> {
        if text.trim().is_empty() {
            return Ok(Doc {
                root: IndexMap::new(),
            });
        }
        if let Err((line, col, msg)) = crate::util::yaml_nesting(text) {
            return Err(format!("{name}:{line}:{col}: {msg}"));
        }
        let v: Value = serde_yaml::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{name}:{}:{}: {e}", l.line(), l.column()),
            None => format!("{name}: {e}"),
        })?;
        let Value::Mapping(m) = v else {
            return Err(format!(
                "{name}: not a collection (the top level is not a mapping)"
            ));
        };
        let root = m
            .into_iter()
            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
            .collect();
        Ok(Doc { root })
    }

    /// Whether it is a collection (it has `requests:`) rather than empty or other YAML.
    pub fn is_collection(&self) -> bool {
        self.root.contains_key("requests")
    }

    fn section(&self, key: &str) -> IndexMap<String, Value> {
        match self.root.get(key) {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((scalar_key(k)?, v.clone())))
                .collect(),
            _ => IndexMap::new(),
        }
    }
}

fn scalar_key(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One scalar as text (YAML-ish, compact).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.is_empty() || s.contains('\n') || s.trim() != s {
                serde_json::to_string(s).unwrap_or_else(|_| s.clone())
            } else {
                s.clone()
            }
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A leaf shown unless it is secret: a secret-named key with a literal value is masked.
fn shown(key: &str, v: &Value, secret: bool) -> String {
    let literal = !matches!(v, Value::String(s) if is_template(s));
    if (secret || is_secret_name(key)) && literal && !v.is_null() {
        "•••".into()
    } else {
        short(&text(v))
    }
}

fn short(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let more = s.lines().count() > 1;
    if first.chars().count() > 80 {
        format!("{}…", first.chars().take(79).collect::<String>())
    } else if more {
        format!("{first}…")
    } else {
        first.to_string()
    }
}

/// Flattens a value into (path, leaf) pairs: `a.b`, `a[0]`; JSON bodies as `$.a.b`.
fn flatten(prefix: &str, v: &Value, out: &mut IndexMap<String, Value>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, x) in m {
                let Some(k) = scalar_key(k) else { continue };
                let p = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Sequence(s) if !s.is_empty() => {
            for (i, x) in s.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::Tagged(t) => flatten(prefix, &t.value, out),
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// What changed between two flattened maps, as `+ path: v`, `- path: v`, `~ path: a → b`.
fn leaf_changes(
    old: &IndexMap<String, Value>,
    new: &IndexMap<String, Value>,
    secret: bool,
    label: &dyn Fn(&str) -> String,
) -> Vec<String> {
    leaf_changes_masked(old, new, &|_| secret, label)
}

/// [`leaf_changes`] where `secret` says, per path, whether its value is a secret.
fn leaf_changes_masked(
    old: &IndexMap<String, Value>,
    new: &IndexMap<String, Value>,
    secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, a) in old {
        let secret = secret(k);
        let key = k.rsplit(['.', '[']).next().unwrap_or(k);
        match new.get(k) {
            None => out.push(format!("- {}: {}", label(k), shown(key, a, secret))),
            Some(b) if a != b => out.push(format!(
                "~ {}: {} → {}",
                label(k),
                shown(key, a, secret),
                shown(key, b, secret)
            )),
            _ => {}
        }
    }
    for (k, b) in new {
        if !old.contains_key(k) {
            let key = k.rsplit(['.', '[']).next().unwrap_or(k);
            out.push(format!("+ {}: {}", label(k), shown(key, b, secret(k))));
        }
    }
    out
}

/// A URL template split into origin, path and query pairs (templates kept as written).
fn url_parts(url: &str) -> (String, String, Vec<(String, String)>) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let (origin, path) = match base.find("://") {
        Some(i) => match base[i + 3..].find('/') {
            Some(j) => (base[..i + 3 + j].to_string(), base[i + 3 + j..].to_string()),
            None => (base.to_string(), String::new()),
        },
        // `<<api_url>>/v3/contacts`: the leading template is the origin.
        None if base.starts_with("<<") => match base.find(">>") {
            Some(j) => (base[..j + 2].to_string(), base[j + 2..].to_string()),
            None => (base.to_string(), String::new()),
        },
        None => (String::new(), base.to_string()),
    };
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    (origin, path, pairs)
}

/// The changes inside one request.
fn request_changes(old: &Value, new: &Value) -> Vec<String> {
    let get = |v: &Value, k: &str| -> Value {
        match v {
            Value::Mapping(m) => m.get(k).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    let mut out = Vec::new();
    let method = |v: &Value| match get(v, "method") {
        Value::String(s) => s.to_ascii_uppercase(),
        _ => "GET".into(),
    };
    if method(old) != method(new) {
        out.push(format!("~ method: {} → {}", method(old), method(new)));
    }
    let url = |v: &Value| get(v, "url").as_str().unwrap_or("").to_string();
    let (ou, nu) = (url(old), url(new));
    if ou != nu {
        let (oo, op, oq) = url_parts(&ou);
        let (no, np, nq) = url_parts(&nu);
        if oo != no {
            out.push(format!("~ url origin: {oo} → {no}"));
        }
        if op != np {
            out.push(format!("~ url path: {op} → {np}"));
        }
        let to_map = |q: &[(String, String)]| -> IndexMap<String, Value> {
            q.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };
        out.extend(leaf_changes(&to_map(&oq), &to_map(&nq), false, &|k| {
            format!("url query {k}")
        }));
    }
    // Assertions compare as a set of entries: reordering them changes nothing.
    let asserts = |v: &Value| -> Vec<String> {
        match get(v, "assert") {
            Value::Sequence(s) => s
                .iter()
                .map(|a| serde_json::to_string(a).unwrap_or_default())
                .collect(),
            _ => vec![],
        }
    };
    let (oa, na) = (asserts(old), asserts(new));
    for a in &oa {
        if !na.contains(a) {
            out.push(format!("- assert {a}"));
        }
    }
    for a in &na {
        if !oa.contains(a) {
            out.push(format!("+ assert {a}"));
        }
    }
    // Prose and scripts: say that they changed, and by how much.
    for key in ["title", "note"] {
        let (a, b) = (get(old, key), get(new, key));
        if a != b {
            out.push(match (&a, &b) {
                (Value::Null, _) => format!("+ {key}: {}", short(&text(&b))),
                (_, Value::Null) => format!("- {key}"),
                _ => format!("~ {key}: {}", short(&text(&b))),
            });
        }
    }
    let scripts = |v: &Value, phase: &str| -> String {
        get(&get(v, "script"), phase)
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for phase in ["pre", "post"] {
        let (a, b) = (scripts(old, phase), scripts(new, phase));
        if a != b {
            let d = similar::TextDiff::from_lines(&a, &b);
            let (mut plus, mut minus) = (0, 0);
            for c in d.iter_all_changes() {
                match c.tag() {
                    similar::ChangeTag::Insert => plus += 1,
                    similar::ChangeTag::Delete => minus += 1,
                    similar::ChangeTag::Equal => {}
                }
            }
            out.push(format!("~ script.{phase}: +{plus} −{minus} lines"));
        }
    }
    // Everything else, leaf by leaf: query, headers, json ($ paths), form, auth, capture, ...
    let skip = ["method", "url", "assert", "title", "note", "script"];
    let rest = |v: &Value| -> IndexMap<String, Value> {
        let mut m = IndexMap::new();
        if let Value::Mapping(map) = v {
            for (k, x) in map {
                let Some(k) = scalar_key(k) else { continue };
                if skip.contains(&k.as_str()) {
                    continue;
                }
                if k == "json" {
                    flatten_json("$", x, &mut m);
                } else {
                    flatten(&k, x, &mut m);
                }
            }
        }
        m
    };
    out.extend(leaf_changes(&rest(old), &rest(new), false, &|k| {
        if let Some(p) = k.strip_prefix('$') {
            format!("json ${p}")
        } else {
            match k.split_once('.') {
                Some(("headers", h)) => format!("header {h}"),
                Some(("query", q)) => format!("query {q}"),
                Some(("form", f)) => format!("form {f}"),
                _ => k.to_string(),
            }
        }
    }));
    out
}

/// A JSON body flattened with JSONPath-style paths (`$.a.b[0]`).
fn flatten_json(prefix: &str, v: &Value, out: &mut IndexMap<String, Value>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, x) in m {
                let Some(k) = scalar_key(k) else { continue };
                flatten_json(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Sequence(s) if !s.is_empty() => {
            for (i, x) in s.iter().enumerate() {
                flatten_json(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// A flow's steps as (request name, the step's own settings).
fn steps(flow: &Value) -> Vec<(String, Value)> {
    let list = match flow {
        Value::Mapping(m) => m.get("steps").cloned().unwrap_or(Value::Null),
        Value::Sequence(_) => flow.clone(),
        _ => Value::Null,
    };
    let Value::Sequence(s) = list else {
        return vec![];
    };
    s.iter()
        .filter_map(|step| match step {
            Value::String(n) => Some((n.clone(), Value::Null)),
            Value::Mapping(m) => m
                .get("request")
                .and_then(Value::as_str)
                .map(|n| (n.to_string(), step.clone())),
            _ => None,
        })
        .collect()
}

/// The semantic diff of two collection documents, as sections of lines (empty: no change).
pub fn diff(old: &Doc, new: &Doc) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();

    // Requests: added, removed, renamed (same content), changed.
    let (or, nr) = (old.section("requests"), new.section("requests"));
    let mut lines = Vec::new();
    let removed: Vec<&String> = or.keys().filter(|k| !nr.contains_key(*k)).collect();
    let added: Vec<&String> = nr.keys().filter(|k| !or.contains_key(*k)).collect();
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut taken = BTreeSet::new();
    for r in &removed {
        if let Some(a) = added
            .iter()
            .find(|a| !taken.contains(**a) && nr[a.as_str()] == or[r.as_str()])
        {
            taken.insert((*a).clone());
            renamed.push(((*r).clone(), (*a).clone()));
        }
    }
    let summary = |v: &Value| {
        let m = match v {
            Value::Mapping(m) => m
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_ascii_uppercase(),
            _ => "GET".into(),
        };
        let u = match v {
            Value::Mapping(m) => m.get("url").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        format!("{m} {u}")
    };
    for r in &removed {
        if !renamed.iter().any(|(o, _)| o == *r) {
            lines.push(format!("- {r} ({})", summary(&or[r.as_str()])));
        }
    }
    for a in &added {
        if !taken.contains(*a) {
            lines.push(format!("+ {a} ({})", summary(&nr[a.as_str()])));
        }
    }
    for (o, n) in &renamed {
        lines.push(format!("~ renamed {o} → {n} (same content)"));
    }
    for (name, a) in &or {
        if let Some(b) = nr.get(name)
            && a != b
        {
            lines.push(format!("~ {name}"));
            lines.extend(
                request_changes(a, b)
                    .into_iter()
                    .map(|l| format!("    {l}")),
            );
        }
    }
    sections.push(("requests".into(), lines));

    // Flows: steps added, removed, reordered; a renamed request's steps follow it.
    let (of, nf) = (old.section("flows"), new.section("flows"));
    let mut lines = Vec::new();
    for k in of.keys().filter(|k| !nf.contains_key(*k)) {
        lines.push(format!("- {k}"));
    }
    for k in nf.keys().filter(|k| !of.contains_key(*k)) {
        let names: Vec<String> = steps(&nf[k.as_str()]).into_iter().map(|s| s.0).collect();
        lines.push(format!("+ {k}: {}", names.join(", ")));
    }
    let rename = |n: &str| -> String {
        renamed
            .iter()
            .find(|(o, _)| o == n)
            .map(|(_, new)| new.clone())
            .unwrap_or_else(|| n.to_string())
    };
    for (k, a) in &of {
        let Some(b) = nf.get(k) else { continue };
        if a == b {
            continue;
        }
        let mut flow_lines = Vec::new();
        let os: Vec<(String, Value)> = steps(a).into_iter().map(|(n, v)| (rename(&n), v)).collect();
        let ns = steps(b);
        let on: Vec<&str> = os.iter().map(|s| s.0.as_str()).collect();
        let nn: Vec<&str> = ns.iter().map(|s| s.0.as_str()).collect();
        for (o, n) in &renamed {
            if steps(a).iter().any(|s| &s.0 == o) {
                flow_lines.push(format!("~ step {o} → {n} (the request was renamed)"));
            }
        }
        for (i, n) in nn.iter().enumerate() {
            if !on.contains(n) {
                let after = if i == 0 {
                    "first".to_string()
                } else {
                    format!("after {}", nn[i - 1])
                };
                flow_lines.push(format!("+ step {n} ({after})"));
            }
        }
        for n in &on {
            if !nn.contains(n) {
                flow_lines.push(format!("- step {n}"));
            }
        }
        let common_old: Vec<&str> = on.iter().copied().filter(|n| nn.contains(n)).collect();
        let common_new: Vec<&str> = nn.iter().copied().filter(|n| on.contains(n)).collect();
        if common_old != common_new {
            flow_lines.push(format!(
                "~ order: {} → {}",
                common_old.join(", "),
                common_new.join(", ")
            ));
        }
        // A step's own settings (`when`, `until`, ...), for steps present in both.
        for (n, sv) in &ns {
            if let Some((_, ov)) = os.iter().find(|(o, _)| o == n)
                && ov != sv
            {
                let (mut fo, mut fn_) = (IndexMap::new(), IndexMap::new());
                flatten("", ov, &mut fo);
                flatten("", sv, &mut fn_);
                fo.shift_remove("request");
                fn_.shift_remove("request");
                for l in leaf_changes(&fo, &fn_, false, &|p| format!("step {n} {p}")) {
                    flow_lines.push(l);
                }
            }
        }
        // Anything else on the flow (its description, ...).
        let others = |v: &Value| {
            let mut m = IndexMap::new();
            if let Value::Mapping(map) = v {
                for (key, x) in map {
                    if key.as_str() != Some("steps")
                        && let Some(key) = scalar_key(key)
                    {
                        flatten(&key, x, &mut m);
                    }
                }
            }
            m
        };
        flow_lines.extend(leaf_changes(&others(a), &others(b), false, &|p| {
            p.to_string()
        }));
        if !flow_lines.is_empty() {
            lines.push(format!("~ {k}"));
            lines.extend(flow_lines.into_iter().map(|l| format!("    {l}")));
        }
    }
    sections.push(("flows".into(), lines));

    // Variables, then each environment's.
    sections.push((
        "variables".into(),
        variable_changes(&old.section("variables"), &new.section("variables")),
    ));
    let (oe, ne) = (old.section("environments"), new.section("environments"));
    let mut lines = Vec::new();
    for k in oe.keys().filter(|k| !ne.contains_key(*k)) {
        lines.push(format!("- {k}"));
    }
    let as_map = |v: &Value| -> IndexMap<String, Value> {
        match v {
            Value::Mapping(m) => m
                .iter()
                .filter_map(|(k, v)| Some((scalar_key(k)?, v.clone())))
                .collect(),
            _ => IndexMap::new(),
        }
    };
    // A new environment shows what it defines (secrets masked), as a new variable does.
    for (k, b) in ne.iter().filter(|(k, _)| !oe.contains_key(*k)) {
        lines.push(format!("+ {k}"));
        let defs = variable_changes(&IndexMap::new(), &as_map(b));
        lines.extend(defs.into_iter().map(|l| format!("    {l}")));
    }
    for (k, a) in &oe {
        let Some(b) = ne.get(k) else { continue };
        let changes = variable_changes(&as_map(a), &as_map(b));
        if !changes.is_empty() {
            lines.push(format!("~ {k}"));
            lines.extend(changes.into_iter().map(|l| format!("    {l}")));
        }
    }
    sections.push(("environments".into(), lines));

    // Everything else at the top: name, description, oauth2, folders, scripts, tls, ...
    let known = ["requests", "flows", "variables", "environments"];
    let others = |d: &Doc| {
        let mut m = IndexMap::new();
        for (k, v) in &d.root {
            if !known.contains(&k.as_str()) {
                flatten(k, v, &mut m);
            }
        }
        m
    };
    sections.push((
        "settings".into(),
        leaf_changes(&others(old), &others(new), false, &|p| p.to_string()),
    ));
    sections.retain(|(_, l)| !l.is_empty());
    sections
}

/// Whether a variable definition is declared `secret: true`.
fn declared_secret(v: &Value) -> bool {
    matches!(v, Value::Mapping(m) if m.get("secret").and_then(Value::as_bool) == Some(true))
}

fn variable_changes(old: &IndexMap<String, Value>, new: &IndexMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    // The value (plain, or under `value:`) of a secret — declared, or by its name — is masked;
    // its other keys (`hosts:`, `description:`) are not.
    let masks = |k: &str, secret: bool| {
        let k = k.to_string();
        move |p: &str| {
            (secret || is_secret_name(&k))
                && (p == k
                    || p.starts_with(&format!("{k}.value"))
                    || p.starts_with(&format!("{k}[")))
        }
    };
    for (k, a) in old {
        let secret = declared_secret(a) || new.get(k).is_some_and(declared_secret);
        let (mut fa, mut fb) = (IndexMap::new(), IndexMap::new());
        flatten(k, a, &mut fa);
        match new.get(k) {
            None => out.push(format!("- {k}")),
            Some(b) if a != b => {
                flatten(k, b, &mut fb);
                out.extend(leaf_changes_masked(&fa, &fb, &masks(k, secret), &|p| {
                    p.to_string()
                }));
            }
            _ => {}
        }
    }
    for (k, b) in new {
        if !old.contains_key(k) {
            let mut fb = IndexMap::new();
            flatten(k, b, &mut fb);
            out.extend(leaf_changes_masked(
                &IndexMap::new(),
                &fb,
                &masks(k, declared_secret(b)),
                &|p| p.to_string(),
            ));
        }
    }
    out
}

/// The diff as text, under a `--- OLD` / `+++ NEW` header (nothing when they are the same).
pub fn render(old_name: &str, new_name: &str, sections: &[(String, Vec<String>)]) -> String {
    if sections.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for (title, lines) in sections {
        out.push_str(&format!("{title}:\n"));
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

fn git(dir: &std::path::Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let o = crate::util::git(dir, args).map_err(|e| format!("cannot run git: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(o.stdout)
}

/// A file's text at a revision (empty when the file did not exist then).
pub fn at_revision(rev: &str, path: &std::path::Path) -> Result<String, String> {
    let dir = crate::util::dir_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The revision must exist; the file may not have yet.
    git(
        &dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| format!("`{rev}` is not a revision of this repository"))?;
    match git(&dir, &["show", &format!("{rev}:./{name}")]) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 at {rev}", path.display()))
        }
        Err(_) => Ok(String::new()),
    }
}

/// The YAML files with a top-level `requests:` that changed since `rev` (relative paths).
pub fn changed_collections(rev: &str) -> Result<Vec<std::path::PathBuf>, String> {
    let out = git(
        std::path::Path::new("."),
        &[
            "diff",
            "--name-only",
            "--relative",
            "-z",
            rev,
            "--",
            "*.yaml",
            "*.yml",
        ],
    )?;
    let mut paths = Vec::new();
    for name in out.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let p = std::path::PathBuf::from(String::from_utf8_lossy(name).into_owned());
        let now = std::fs::read_to_string(&p).unwrap_or_default();
        let then = at_revision(rev, &p).unwrap_or_default();
        if now
            .lines()
            .chain(then.lines())
            .any(|l| l.starts_with("requests:"))
        {
            paths.push(p);
        }
    }
    Ok(paths)
}

/// A line diff, for files that are not collections (git's driver must still say something).
pub fn plain(old_name: &str, new_name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(old: &str, new: &str) -> String {
        let s = diff(
            &Doc::parse("a", old).unwrap(),
            &Doc::parse("b", new).unwrap(),
        );
        render("a", "b", &s)
    }

    #[test]
    fn url_parts_split_templates_and_queries() {
        assert_eq!(
            url_parts("<<api_url>>/v3/contacts?limit=5&x"),
            (
                "<<api_url>>".into(),
                "/v3/contacts".into(),
                vec![("limit".into(), "5".into()), ("x".into(), "".into())]
            )
        );
        assert_eq!(
            url_parts("https://h.test/a/b").0,
            "https://h.test".to_string()
        );
    }

    #[test]
    fn secrets_are_masked_and_renames_found() {
        let old = "variables:\n  api_key: {value: abc123secret, secret: true}\nrequests:\n  a: {url: 'http://h/x', headers: {X-Api-Key: k-1234567}}\n";
        let new = "variables:\n  api_key: {value: zzz999secret, secret: true}\nrequests:\n  b: {url: 'http://h/x', headers: {X-Api-Key: k-1234567}}\n";
        let out = d(old, new);
        assert!(out.contains("~ renamed a → b (same content)"), "{out}");
        assert!(out.contains("~ api_key.value: ••• → •••"), "{out}");
        assert!(!out.contains("abc123") && !out.contains("zzz999"), "{out}");
        assert_eq!(d(old, old), "");
    }
}
