//! Looking at responses and tokens: `last`, `get`, `diff`, `jwt`.

use serde_json::Value;

use super::Session;
use crate::exchange::Exchange;
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
    /// The last response: this session's, else the newest one saved in state.
    fn last_exchange(&self) -> Result<Exchange, String> {
        if let Some(ex) = &self.last {
            return Ok(ex.clone());
        }
        let st = self.runner.env_state();
        let newest = st
            .exchanges()
            .iter()
            .filter_map(|(name, list)| list.last().map(|e| (name, e)))
            .max_by_key(|(_, e)| crate::state::stored_seq(e));
        match newest {
            Some((name, stored)) => crate::state::parse_stored(stored)
                .and_then(|v| Exchange::from_stored(name, &v))
                .ok_or_else(|| format!("the saved response of `{name}` cannot be read")),
            None => Err("no response yet (none in this session, none saved)".into()),
        }
    }

    pub(super) fn last_cmd(&self, save: Option<&str>) -> Result<String, String> {
        let ex = self.last_exchange()?;
        if let Some(file) = save {
            std::fs::write(file, &ex.raw).map_err(|e| format!("{file}: {e}"))?;
            return Ok(format!(
                "saved the body of `{}` ({}) to {file}\n",
                ex.request.name,
                output::human_bytes(ex.raw.len())
            ));
        }
        let mut out = String::new();
        if self.last.is_none() {
            out.push_str(&format!(
                "(saved response of `{}`, from an earlier session)\n",
                ex.request.name
            ));
        }
        out.push_str(&output::response_text(&ex, true, self.red(), self.style));
        Ok(out)
    }

    pub(super) fn get(&self, path: &str) -> Result<String, String> {
        if path.is_empty() {
            return Err("which JSONPath? (e.g. get $.contacts[0].contact_id)".into());
        }
        let ex = self.last_exchange()?;
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

    pub(super) fn diff(&self, name: Option<&str>, ignore: bool) -> Result<String, String> {
        let name = match name {
            Some(n) => {
                self.known_request(n)?;
                n.to_string()
            }
            None => self
                .last_exchange()
                .map(|e| e.request.name.clone())
                .map_err(|_| "no request sent yet; name one".to_string())?,
        };
        let st = self.runner.env_state();
        let list = st.exchange_values(&name);
        if list.is_empty() {
            return Err(format!(
                "`{name}` has no responses yet; send it twice to compare"
            ));
        }
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

    pub(super) fn jwt(&self, var: Option<&str>) -> Result<String, String> {
        let var = var.map(String::from).unwrap_or_else(|| {
            self.runner
                .collection
                .oauth2
                .as_ref()
                .map(|o| o.access_token.clone())
                .unwrap_or_else(|| "access_token".into())
        });
        let scope = self.runner.scope();
        let value = scope
            .get(&var)
            .ok_or_else(|| format!("`{var}` is not set"))?;
        let token = value
            .as_str()
            .ok_or_else(|| format!("`{var}` is not a JWT (not a string)"))?;
        crate::jwt::describe(token, self.runner.now())
            .map_err(|e| format!("`{var}` is not a JWT ({e})"))
    }
}
