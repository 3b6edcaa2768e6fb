//! `import curl` in the REPL (a pasted curl command becomes a request of the session) and `save`
//! (the session's new requests written into the collection file, its comments and order kept:
//! the YAML text is edited, never re-serialised).

use std::path::Path;

use serde_json::Value;

use super::Session;
use crate::collection::{Collection, Request, VarDef};

/// What the session added, waiting for `save`.
#[derive(Debug, Default)]
pub struct Added {
    /// New variables, in the order added.
    pub variables: Vec<(String, Value)>,
    /// New requests, in the order added.
    pub requests: Vec<(String, Value)>,
    /// Secret values for `.env`.
    pub secrets: Vec<(String, String)>,
}

impl Added {
    fn is_empty(&self) -> bool {
        self.variables.is_empty() && self.requests.is_empty()
    }
}

impl Session {
    /// `import curl [COMMAND]`: the command on the line, or the lines pasted after it.
    pub(super) fn import_cmd(&mut self, rest: &str) -> Result<String, String> {
        let (kind, text) = super::command_and_rest(rest);
        if kind != "curl" {
            return Err(format!(
                "`import {kind}`: the REPL imports curl commands (`import curl`); use `postie import {kind} …` for files"
            ));
        }
        if text.trim().is_empty() {
            self.pasting = Some(Vec::new());
            return Ok(
                "paste the curl command (several lines are fine), then an empty line".into(),
            );
        }
        self.import_curl(text)
    }

    /// Whether the session is collecting pasted lines.
    pub fn is_pasting(&self) -> bool {
        self.pasting.is_some()
    }

    /// Takes one pasted line; an empty line ends the paste and imports it.
    pub(super) fn paste_line(&mut self, line: &str) -> Result<String, String> {
        let Some(lines) = self.pasting.as_mut() else {
            return Ok(String::new());
        };
        if !line.trim().is_empty() {
            lines.push(line.to_string());
            return Ok(String::new());
        }
        let text = self.pasting.take().unwrap_or_default().join("\n");
        if text.trim().is_empty() {
            return Err("nothing was pasted".into());
        }
        self.import_curl(&text)
    }

    fn import_curl(&mut self, text: &str) -> Result<String, String> {
        let imp = crate::interop::curl::import_text(text, "paste", Path::new("the pasted text"))
            .map_err(|e| e.message)?
            .checked();
        let c = &self.runner.collection;
        // Variables: an existing variable with the same value is used instead; a clash of names
        // gets a new one.
        let mut renames: Vec<(String, String)> = Vec::new();
        let mut new_vars: Vec<(String, Value)> = Vec::new();
        for (k, v) in imp.doc["variables"].as_object().into_iter().flatten() {
            let same = c
                .variables
                .iter()
                .find(|(_, d)| {
                    d.value() == v || d.value() == v.get("value").unwrap_or(&Value::Null)
                })
                .map(|(n, _)| n.clone())
                .or_else(|| {
                    self.added
                        .variables
                        .iter()
                        .find(|(_, x)| x == v)
                        .map(|(n, _)| n.clone())
                });
            let name = match same {
                Some(n) => n,
                None => {
                    let mut n = k.clone();
                    let mut i = 2;
                    while c.variables.contains_key(&n)
                        || c.requests.contains_key(&n)
                        || self.added.variables.iter().any(|(x, _)| *x == n)
                    {
                        n = format!("{k}_{i}");
                        i += 1;
                    }
                    new_vars.push((n.clone(), v.clone()));
                    n
                }
            };
            if name != *k {
                renames.push((k.clone(), name));
            }
        }
        let mut lines = Vec::new();
        let mut new_requests: Vec<(String, Value, Request)> = Vec::new();
        for (k, r) in imp.doc["requests"].as_object().into_iter().flatten() {
            let mut text = serde_json::to_string(r).map_err(|e| e.to_string())?;
            for (from, to) in &renames {
                text = text.replace(&format!("<<{from}>>"), &format!("<<{to}>>"));
            }
            let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let req: Request = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
            let mut name = k.clone();
            let mut i = 2;
            while c.requests.contains_key(&name)
                || c.variables.contains_key(&name)
                || new_requests.iter().any(|(n, _, _)| *n == name)
            {
                name = format!("{k}_{i}");
                i += 1;
            }
            lines.push(format!(
                "added request `{name}`: {} {}",
                req.method, req.url
            ));
            new_requests.push((name, json, req));
        }
        // Secrets live in the process environment for this session, in `.env` once saved.
        for (k, v) in &imp.secrets {
            self.runner.inputs.process_env.insert(k.clone(), v.clone());
            self.runner.add_secrets([v.clone()]);
        }
        self.added.secrets.extend(imp.secrets);
        let c = &mut self.runner.collection;
        for (n, v) in &new_vars {
            let def: VarDef = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
            c.variables.insert(n.clone(), def);
            lines.push(format!("added variable `{n}`"));
        }
        self.added.variables.extend(new_vars);
        for (n, json, req) in new_requests {
            c.requests.insert(n.clone(), req);
            self.added.requests.push((n, json));
        }
        for r in &imp.report.left_out {
            lines.push(format!("left out: {r}"));
        }
        lines.push("`save` writes the new requests into the collection file".into());
        Ok(lines.join("\n"))
    }

    /// `save`: the new requests and variables into the file, secrets into `.env` beside it.
    pub(super) fn save_cmd(&mut self) -> Result<String, String> {
        if self.added.is_empty() {
            return Ok("nothing new to save".into());
        }
        let path = self.path.clone();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut text = text;
        if !self.added.variables.is_empty() {
            let entries: Vec<String> = self
                .added
                .variables
                .iter()
                .map(|(k, v)| yaml_entry(k, v))
                .collect::<Result<_, _>>()?;
            text = insert_entries(&text, "variables", &entries, Some("requests"))?;
        }
        if !self.added.requests.is_empty() {
            let entries: Vec<String> = self
                .added
                .requests
                .iter()
                .map(|(k, v)| yaml_entry(k, v))
                .collect::<Result<_, _>>()?;
            text = insert_entries(&text, "requests", &entries, None)?;
        }
        // Nothing is written unless the result loads.
        Collection::parse(&path, text.clone()).map_err(|e| {
            format!(
                "not saved: the edited collection would not load ({e}); add the requests by hand"
            )
        })?;
        let tmp = path.with_extension("yaml.postie-tmp");
        std::fs::write(&tmp, &text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        if let Ok(meta) = std::fs::metadata(&path) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &path)
            .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        let mut out = vec![format!(
            "saved {} request(s) and {} variable(s) to {}",
            self.added.requests.len(),
            self.added.variables.len(),
            path.display()
        )];
        if !self.added.secrets.is_empty() {
            out.push(crate::interop::write_secrets(
                &self.runner.collection.dir(),
                &self.added.secrets,
            )?);
        }
        self.runner.collection.source = text;
        self.added = Added::default();
        Ok(out.join("\n"))
    }
}

/// `name:` and its value as YAML lines (not indented).
fn yaml_entry(name: &str, v: &Value) -> Result<String, String> {
    let mut m = serde_json::Map::new();
    m.insert(name.to_string(), v.clone());
    serde_yaml::to_string(&Value::Object(m)).map_err(|e| e.to_string())
}

/// Adds `entries` (each `name:` and its lines, not indented) at the end of the top-level
/// mapping `key`, indented as its entries are; creates the section (before `before`, or at the
/// end) when there is none. Comments, blank lines and the order of everything else stay.
pub fn insert_entries(
    text: &str,
    key: &str,
    entries: &[String],
    before: Option<&str>,
) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let is_top = |l: &str, k: &str| {
        l.strip_prefix(k).is_some_and(|r| {
            r.starts_with(':') && (r.len() == 1 || r[1..].starts_with([' ', '\t']))
        })
    };
    let top_level =
        |l: &str| !l.is_empty() && !l.starts_with([' ', '\t', '#']) && !l.starts_with("---");
    let indent_block = |indent: usize, e: &str| -> Vec<String> {
        e.lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{}{l}", " ".repeat(indent))
                }
            })
            .collect()
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match lines.iter().position(|l| is_top(l, key)) {
        Some(at) => {
            if lines[at].contains("{}") {
                out[at] = format!("{key}:");
            } else if lines[at].trim_end() != format!("{key}:")
                && !lines[at]
                    .trim_start_matches(&format!("{key}:"))
                    .trim()
                    .starts_with('#')
            {
                return Err(format!(
                    "`{key}:` is written in flow style; add the entries by hand"
                ));
            }
            let end = lines[at + 1..]
                .iter()
                .position(|l| top_level(l))
                .map(|p| at + 1 + p)
                .unwrap_or(lines.len());
            // After the section's last indented line (comments and blank lines before the next
            // section stay with it).
            let last = (at + 1..end)
                .rev()
                .find(|&i| lines[i].starts_with([' ', '\t']) && !lines[i].trim().is_empty())
                .unwrap_or(at);
            let indent = lines[at + 1..end]
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|l| l.len() - l.trim_start().len())
                .unwrap_or(2);
            // Entries separated by blank lines get one before each new entry too.
            let spaced = last > at && lines[at + 1..=last].iter().any(|l| l.trim().is_empty());
            let mut block = Vec::new();
            for e in entries {
                if spaced {
                    block.push(String::new());
                }
                block.extend(indent_block(indent, e));
            }
            out.splice(last + 1..last + 1, block);
        }
        None => {
            let mut block = vec![format!("{key}:")];
            for e in entries {
                block.extend(indent_block(2, e));
            }
            let at = before.and_then(|b| lines.iter().position(|l| is_top(l, b)));
            match at {
                Some(i) => {
                    block.push(String::new());
                    out.splice(i..i, block);
                }
                None => {
                    if out.last().is_some_and(|l| !l.trim().is_empty()) {
                        out.push(String::new());
                    }
                    out.extend(block);
                }
            }
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::insert_entries;

    #[test]
    fn entries_go_at_the_end_of_their_section_and_comments_stay() {
        let text = "# top\nname: x\nvariables:\n  base: http://a # the API\n\nrequests:\n  one:\n    url: <<base>>/1\n\n  two:\n    url: <<base>>/2\n\n# the flows\nflows:\n  all:\n    steps: [one]\n";
        let out = insert_entries(
            text,
            "requests",
            &["three:\n  url: <<base>>/3\n".into()],
            None,
        )
        .unwrap();
        assert!(
            out.contains("  two:\n    url: <<base>>/2\n\n  three:\n    url: <<base>>/3\n\n# the flows\nflows:"),
            "{out}"
        );
        assert!(out.starts_with("# top\nname: x\nvariables:\n  base: http://a # the API\n"));
        let out = insert_entries(
            "name: x\nrequests: {}\n",
            "requests",
            &["a:\n  url: http://h\n".into()],
            None,
        )
        .unwrap();
        assert_eq!(out, "name: x\nrequests:\n  a:\n    url: http://h\n");
        let out = insert_entries(
            "name: x\nrequests:\n  a:\n    url: http://h\n",
            "variables",
            &["v: 1\n".into()],
            Some("requests"),
        )
        .unwrap();
        assert_eq!(
            out,
            "name: x\nvariables:\n  v: 1\n\nrequests:\n  a:\n    url: http://h\n"
        );
        assert!(
            insert_entries(
                "requests: {a: {url: x}}\n",
                "requests",
                &["b: {}\n".into()],
                None
            )
            .is_err()
        );
    }
}
