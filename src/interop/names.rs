//! Names: request keys slugged from titles, variable names made into identifiers, and
//! uniqueness — deterministic, so importing the same file twice gives the same collection.

use std::collections::HashSet;

/// Words a template cannot use as a variable name (minijinja's keywords and postie's `env`).
const RESERVED: [&str; 16] = [
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "env", "loop", "self",
];

/// A request key from a title: lower-case words joined by `_` (`Create Article` →
/// `create_article`); never empty, never starting with a digit.
pub fn slug(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut gap = false;
    for c in title.chars() {
        if c.is_alphanumeric() && c.is_ascii() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    if out.is_empty() {
        out.push_str("request");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "r_");
    }
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Whether a name can be used as it is in a template (`<<name>>`).
pub fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

/// A variable name made usable in templates: other characters become `_` (`base-url` →
/// `base_url`, `my var` → `my_var`), a leading digit gets a `_`, a keyword gets a trailing `_`.
/// Case is kept (`APIURL` stays `APIURL`).
pub fn ident(name: &str) -> String {
    if is_ident(name) {
        return name.to_string();
    }
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push_str("var");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Hands out names that are unique among those it handed out (and those it was told about).
#[derive(Debug, Default, Clone)]
pub struct Namer {
    used: HashSet<String>,
}

impl Namer {
    /// Marks a name as taken.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// Whether a name is taken.
    pub fn taken(&self, name: &str) -> bool {
        self.used.contains(name)
    }

    /// The first of `candidates` that is free, else the last with `_2`, `_3`, ...
    pub fn unique(&mut self, candidates: &[String]) -> String {
        for c in candidates {
            if !self.used.contains(c) {
                self.used.insert(c.clone());
                return c.clone();
            }
        }
        let base = candidates
            .last()
            .cloned()
            .unwrap_or_else(|| "request".into());
        let mut n = 2;
        loop {
            let c = format!("{base}_{n}");
            if self.used.insert(c.clone()) {
                return c;
            }
            n += 1;
        }
    }
}

/// The name a secret gets in `.env`: upper-case words (`dev`, `api-key` → `DEV_API_KEY`).
pub fn env_key(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_");
    let mut out = String::new();
    for c in joined.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        format!("V_{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_idents_and_uniqueness() {
        assert_eq!(slug("Create Article"), "create_article");
        assert_eq!(slug("  GET /users/{id} "), "get_users_id");
        assert_eq!(slug("2FA"), "r_2fa");
        assert_eq!(slug("—"), "request");
        assert_eq!(ident("base-url"), "base_url");
        assert_eq!(ident("APIURL"), "APIURL");
        assert_eq!(ident("in"), "in_");
        assert_eq!(ident("1st"), "_1st");
        let mut n = Namer::default();
        assert_eq!(n.unique(&["login".into()]), "login");
        assert_eq!(
            n.unique(&["login".into(), "auth_login".into()]),
            "auth_login"
        );
        assert_eq!(
            n.unique(&["login".into(), "auth_login".into()]),
            "auth_login_2"
        );
        assert_eq!(env_key(&["Conduit dev", "api-key"]), "CONDUIT_DEV_API_KEY");
    }
}
