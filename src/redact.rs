//! Secret hygiene: which names are secret, and masking of secret values in any text.
//!
//! One mechanism serves every output (terminal, reports, state listing, REPL history): a
//! [`Redactor`] holds the secret *values* currently known and replaces each occurrence with
//! `(redacted)`. Names decide which values are secret; values decide what is masked, so a token
//! that reappears inside a URL, a curl line or an error message is caught too.

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
    // Every key of every response is asked: a short name is lower-cased on the stack.
    let mut buf = [0u8; 64];
    let owned;
    let n = match buf.get_mut(..name.len()) {
        Some(b) => {
            b.copy_from_slice(name.as_bytes());
            b.make_ascii_lowercase();
            std::str::from_utf8(b).unwrap_or_default()
        }
        None => {
            owned = name.to_ascii_lowercase();
            owned.as_str()
        }
    };
    const META_SUFFIXES: [&str; 7] = ["_type", "_in", "_at", "_url", "_uri", "_count", "_endpoint"];
    if META_SUFFIXES.iter().any(|s| n.ends_with(s)) {
        return false;
    }
    SECRET_PARTS.iter().any(|p| n.contains(p))
}

/// Whether JSON text may hold a secret-named field (a cheap filter before parsing it).
pub fn mentions_secret_name(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|p| lower.contains(p))
}

/// The parts of a name that make it secret (see [`is_secret_name`]).
const SECRET_PARTS: [&str; 10] = [
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
];

/// Masks every known secret value in text.
///
/// The values live in an Aho–Corasick automaton (leftmost-longest, so a secret that contains
/// another is masked whole). It grows as values are bound and is rebuilt only when a value is new,
/// so masking costs the same however much history the state holds.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
    known: std::collections::HashSet<String>,
    automaton: Option<aho_corasick::AhoCorasick>,
}

impl Redactor {
    /// Builds a redactor from secret values (short and duplicate values are ignored).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut r = Redactor::default();
        r.extend(values);
        r
    }

    /// Adds secret values; rebuilds the automaton only when one of them is new.
    pub fn extend<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut added = false;
        for v in values {
            let v: String = v.into();
            if v.len() >= MIN_SECRET_LEN && !self.known.contains(&v) {
                self.known.insert(v.clone());
                self.values.push(v);
                added = true;
            }
        }
        if added {
            self.automaton = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&self.values)
                .ok();
        }
    }

    /// The values it masks.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// How many values it masks.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it masks nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `text` contains a secret value.
    pub fn finds(&self, text: &str) -> bool {
        self.automaton.as_ref().is_some_and(|ac| ac.is_match(text))
    }

    /// Returns `text` with every secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        match &self.automaton {
            Some(ac) => {
                let mut out = String::with_capacity(text.len());
                ac.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                out
            }
            None => text.to_string(),
        }
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
            // Past the 64 bytes lower-cased on the stack, and past ASCII.
            "X_VERY_LONG_PREFIX_THAT_GOES_ON_AND_ON_FOR_MORE_THAN_SIXTY_FOUR_BYTES_API_KEY",
            "clé_API_KEY",
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
            "X_VERY_LONG_PREFIX_THAT_GOES_ON_AND_ON_FOR_MORE_THAN_SIXTY_FOUR_BYTES_TOKEN_URL",
            "été",
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
