//! Looking at responses and tokens: `last`, `get`, `diff`, `jwt`.

use serde_json::Value;

use super::Session;
use crate::output;

/// Normalises JSON for a structural diff: keys sorted, volatile fields blanked when asked.
fn normalise(v: &Value, ignore_volatile: bool) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                let volatile = ignore_volatile
                    && (k.ends_with("_at")
                        || k.ends_with("_date")
                        || k == "date"
                        || k == "elapsed_ms"
                        || k == "seq");
                out.insert(
                    k.clone(),
                    if volatile {
                        Value::String("<volatile>".into())
                    } else {
                        normalise(&m[k], ignore_volatile)
                    },
                );
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| normalise(x, ignore_volatile)).collect()),
        other => other.clone(),
    }
}

impl Session {
    pub(super) fn last(&self) -> Result<String, String> {
        let ex = self.last.as_ref().ok_or("no response yet")?;
        Ok(output::response_text(ex, true, &self.red(), self.style))
    }

    pub(super) fn get(&self, args: &[&str]) -> Result<String, String> {
        let path = self.need(args, "JSONPath (e.g. $.contacts[0].contact_id)")?;
        let ex = self.last.as_ref().ok_or("no response yet")?;
        let body = ex.json.as_ref().ok_or("the last response is not JSON")?;
        let p = crate::capture::JsonPath::parse(path)?;
        match p.value(body) {
            Some(v) => Ok(format!(
                "{}\n",
                output::pretty_json(&self.red().mask_json(&v), self.style)
            )),
            None => Err(format!("`{path}` matched nothing")),
        }
    }

    pub(super) fn diff(&self, args: &[&str]) -> Result<String, String> {
        let ignore = args.contains(&"--ignore-volatile") || args.contains(&"-i");
        let name = match args.iter().find(|a| !a.starts_with('-')) {
            Some(n) => n.to_string(),
            None => self
                .last
                .as_ref()
                .map(|e| e.request.name.clone())
                .ok_or("no request sent yet; name one")?,
        };
        let st = self.runner.env_state();
        let list = st
            .exchanges
            .get(&name)
            .ok_or_else(|| format!("`{name}` has no responses yet"))?;
        if list.len() < 2 {
            return Err(format!(
                "`{name}` has only one response; send it again to compare"
            ));
        }
        let red = self.red();
        let text = |v: &Value| {
            let shown =
                serde_json::json!({"status": v["status"], "body": red.mask_json(&v["body"])});
            serde_json::to_string_pretty(&normalise(&shown, ignore)).unwrap_or_default() + "\n"
        };
        let (a, b) = (text(&list[list.len() - 2]), text(&list[list.len() - 1]));
        if a == b {
            return Ok(format!(
                "`{name}`: the last two responses are the same{}\n",
                if ignore {
                    " (ignoring volatile fields)"
                } else {
                    ""
                }
            ));
        }
        let diff = similar::TextDiff::from_lines(&a, &b);
        let mut out = format!("--- {name} (previous)\n+++ {name} (latest)\n");
        for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
            out.push_str(&format!("{}\n", self.style.dim(&hunk.header().to_string())));
            for change in hunk.iter_changes() {
                let line = change.value().trim_end_matches('\n');
                match change.tag() {
                    similar::ChangeTag::Delete => {
                        out.push_str(&format!("{}\n", self.style.bad(&format!("-{line}"))))
                    }
                    similar::ChangeTag::Insert => {
                        out.push_str(&format!("{}\n", self.style.ok(&format!("+{line}"))))
                    }
                    similar::ChangeTag::Equal => out.push_str(&format!(" {line}\n")),
                }
            }
        }
        Ok(out)
    }

    pub(super) fn jwt(&self, args: &[&str]) -> Result<String, String> {
        let var = args.first().map(|s| s.to_string()).unwrap_or_else(|| {
            self.runner
                .collection
                .oauth2
                .as_ref()
                .map(|o| o.access_token.clone())
                .unwrap_or_else(|| "access_token".into())
        });
        let scope = self.runner.scope();
        let token = scope
            .ctx
            .get(&var)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{var}` is not set"))?;
        crate::jwt::describe(token, self.runner.now()).map_err(|e| e.to_string())
    }
}
