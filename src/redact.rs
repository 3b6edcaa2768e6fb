//! Secret hygiene: which names are secret, and masking of secret values in any text.
//!
//! One mechanism serves every output (terminal, reports, state listing, REPL history): a
//! [`Redactor`] holds the secret *values* currently known and replaces each occurrence with
//! `(redacted)`. Names decide which values are secret; values decide what is masked, so a token
//! that reappears inside a URL, a curl line or an error message is caught too.

use std::collections::BTreeSet;

/// What a masked value prints as.
pub const MASK: &str = "(redacted)";

/// Shortest value that is masked by value; shorter secrets would mangle ordinary text.
const MIN_SECRET_LEN: usize = 4;

/// Whether a variable, JSON field or header name denotes a secret.
///
/// Secret: names containing `secret`, `password`, `passwd`, `token`, `api_key`/`apikey`,
/// `authorization`, `cookie`, `code_verifier`, `device_code` — except descriptive companions such as
/// `token_type`, `expires_in`, `token_url`, which are metadata about a secret, not the secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const META_SUFFIXES: [&str; 7] = ["_type", "_in", "_at", "_url", "_uri", "_count", "_endpoint"];
    if META_SUFFIXES.iter().any(|s| n.ends_with(s)) {
        return false;
    }
    [
        "secret",
        "password",
        "passwd",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "code_verifier",
        "device_code",
    ]
    .iter()
    .any(|p| n.contains(p))
}

/// Masks every known secret value in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    // Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
}

impl Redactor {
    /// Builds a redactor from secret values (short and duplicate values are ignored).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: BTreeSet<String> = values
            .into_iter()
            .map(Into::into)
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        let mut values: Vec<String> = set.into_iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Redactor { values }
    }

    /// Returns `text` with every secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Masks a header value: credentials-bearing headers are masked whole (keeping the scheme).
    pub fn mask_header(&self, name: &str, value: &str) -> String {
        let n = name.to_ascii_lowercase();
        if n == "authorization" || n == "proxy-authorization" {
            return match value.split_once(' ') {
                Some((scheme, _)) => format!("{scheme} {MASK}"),
                None => MASK.to_string(),
            };
        }
        if n == "cookie" || n == "set-cookie" || is_secret_name(&n) {
            return MASK.to_string();
        }
        self.mask(value)
    }

    /// Masks a JSON value: fields with secret names are masked whole, other strings by value.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let masked =
                            if is_secret_name(k) && !v.is_null() && !v.is_object() && !v.is_array()
                            {
                                Value::String(MASK.to_string())
                            } else {
                                self.mask_json(v)
                            };
                        (k.clone(), masked)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::String(s) => Value::String(self.mask(s)),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "client_secret",
            "access_token",
            "refresh_token",
            "password",
            "CC_CLIENT_SECRET",
            "code_verifier",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "token_type",
            "expires_in",
            "contact_id",
            "state",
            "code",
            "token_url",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn masks_longest_first_and_headers() {
        let r = Redactor::new(["abcd", "abcdefgh", "x"]);
        assert_eq!(
            r.mask("t=abcdefgh u=abcd v=x"),
            "t=(redacted) u=(redacted) v=x"
        );
        assert_eq!(
            r.mask_header("Authorization", "Bearer zzz"),
            "Bearer (redacted)"
        );
        let j = r.mask_json(
            &serde_json::json!({"access_token": "q", "n": ["abcd"], "token_type": "Bearer"}),
        );
        assert_eq!(
            j,
            serde_json::json!({"access_token": MASK, "n": [MASK], "token_type": "Bearer"})
        );
    }
}
