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
    // Every key of every response is asked: compared without case, nothing is copied.
    let n = name.as_bytes();
    let ends =
        |s: &str| n.len() >= s.len() && n[n.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes());
    const META_SUFFIXES: [&str; 7] = ["_type", "_in", "_at", "_url", "_uri", "_count", "_endpoint"];
    if META_SUFFIXES.iter().any(|s| ends(s)) {
        return false;
    }
    SECRET_PARTS.iter().any(|p| {
        n.windows(p.len())
            .any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// Whether JSON text may hold a secret-named field (a cheap filter before parsing it). Every
/// stored exchange is asked once per command: at 10,000 exchanges (6.5 MB) this takes about
/// 10 ms; an automaton without case took 12 ms, one over the lower-cased text 14 ms.
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
/// The values live in Aho–Corasick automata over runs of them, the older the larger: new values
/// start a run, which takes in the runs before it that are not more than twice its size. Adding N
/// values rebuilds each value O(log N) times in all, and masking scans at most log2(N) + 1
/// automata, so masking costs the same however much history the state holds, and a flow whose
/// every response binds a new secret stays linear. (One automaton rebuilt on every new value made
/// such a flow quadratic: 4,000 steps took 15.7 s.)
///
/// Every occurrence of every value is masked; where occurrences overlap (a secret inside another,
/// or the end of one over the start of the next) the whole stretch they cover is one mask.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
    known: std::collections::HashSet<String>,
    /// `(how many, automaton)`: runs of `values` in order, each more than twice the size of the
    /// next; together they cover every value once.
    levels: Vec<(usize, aho_corasick::AhoCorasick)>,
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

    /// Adds secret values; only the new ones are built into an automaton, merged with the
    /// newest runs as the binary counter says.
    pub fn extend<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let first = self.values.len();
        for v in values {
            let v: String = v.into();
            if v.len() >= MIN_SECRET_LEN && !self.known.contains(&v) {
                self.known.insert(v.clone());
                self.values.push(v);
            }
        }
        let added = self.values.len() - first;
        if added == 0 {
            return;
        }
        // Runs the new one takes in: each older run at least twice the size of what follows it,
        // so there are at most log2(N) + 1 of them. The runs are the newest, so the merged run
        // is the last `len` values.
        let (mut len, mut keep) = (added, self.levels.len());
        while keep > 0 && self.levels[keep - 1].0 <= 2 * len {
            len += self.levels[keep - 1].0;
            keep -= 1;
        }
        let build =
            |n: usize| aho_corasick::AhoCorasick::new(&self.values[self.values.len() - n..]);
        match build(len) {
            Ok(ac) => {
                self.levels.truncate(keep);
                self.levels.push((len, ac));
            }
            // Past the automaton's limits (billions of states): the new values alone, else
            // they are not kept (each run must cover the values after the one before).
            Err(_) => match build(added) {
                Ok(ac) => self.levels.push((added, ac)),
                Err(_) => {
                    for v in self.values.drain(first..) {
                        self.known.remove(&v);
                    }
                }
            },
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
        self.levels.iter().any(|(_, ac)| ac.is_match(text))
    }

    /// Returns `text` with every secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for (_, ac) in &self.levels {
            found.extend(ac.find_overlapping_iter(text).map(|m| (m.start(), m.end())));
        }
        if found.is_empty() {
            return text.to_string();
        }
        found.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut i = 0;
        while i < found.len() {
            let (start, mut end) = found[i];
            i += 1;
            while i < found.len() && found[i].0 < end {
                end = end.max(found[i].1);
                i += 1;
            }
            out.push_str(&text[at..start]);
            out.push_str(MASK);
            at = end;
        }
        out.push_str(&text[at..]);
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
    fn text_mentioning_a_secret_name_is_found_in_any_case() {
        for (text, mentions) in [
            (r#"{"access_token":"x"}"#, true),
            (r#"{"Access_TOKEN":"x"}"#, true),
            (r#"{"user":{"PassWord":"x"}}"#, true),
            (r#"{"passwd":1}"#, true),
            (r#"{"X-Api_Key":"k"}"#, true),
            (r#"{"APIKEY":"k"}"#, true),
            (r#"{"h":"Authorization"}"#, true),
            (r#"{"set":"Cookie: a=b"}"#, true),
            (r#"{"Code_Verifier":"v"}"#, true),
            (r#"{"device_code":"d"}"#, true),
            (r#"{"client_SECRET":"s"}"#, true),
            (r#"{"contact_id":"c-1","first_name":"Load"}"#, false),
            (
                r#"{"tok":"en","pass":"word","api":"key","code":"x"}"#,
                false,
            ),
            ("", false),
            ("caf\u{e9}, token\u{e9}", true),
        ] {
            assert_eq!(mentions_secret_name(text), mentions, "{text}");
        }
    }

    #[test]
    fn names() {
        for n in [
            "client_secret",
            "access_token",
            "refresh_token",
            "password",
            "CC_CLIENT_SECRET",
            "code_verifier",
            // Long, and past ASCII.
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

    /// Masking as if by hand: every occurrence of every value, those that overlap or touch as one
    /// stretch.
    fn mask_by_hand(values: &[String], text: &str) -> String {
        let mut covered = vec![false; text.len()];
        for v in values {
            for i in 0..text.len() {
                if text.is_char_boundary(i) && text[i..].starts_with(v.as_str()) {
                    covered[i..i + v.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        let mut out = String::new();
        let mut i = 0;
        while i < text.len() {
            if covered[i] {
                while i < text.len() && covered[i] {
                    i += 1;
                }
                out.push_str(MASK);
            } else {
                let c = text[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }

    #[test]
    fn values_added_one_at_a_time_mask_as_one_set_would_and_stay_few_automata() {
        // Values that overlap, contain each other and share prefixes, added one by one (as a
        // flow binds a new token per step) and in batches, masked after every addition.
        let mut r = Redactor::default();
        let mut all: Vec<String> = Vec::new();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for step in 0..600 {
            let batch = if step % 50 == 0 {
                1 + (next() % 20) as usize
            } else {
                1
            };
            let mut new = Vec::new();
            for _ in 0..batch {
                let len = 4 + (next() % 6) as usize;
                let v: String = (0..len)
                    .map(|_| (b'a' + (next() % 3) as u8) as char)
                    .collect();
                new.push(v);
            }
            r.extend(new.clone());
            for v in new {
                if !all.contains(&v) {
                    all.push(v);
                }
            }
            let text: String = (0..40)
                .map(|_| (b'a' + (next() % 4) as u8) as char)
                .collect();
            let text = format!("é{text}ü");
            // Occurrences that only touch are two masks, which the hand count runs together.
            let mut masked = r.mask(&text);
            let twice = format!("{MASK}{MASK}");
            while masked.contains(&twice) {
                masked = masked.replace(&twice, MASK);
            }
            assert_eq!(masked, mask_by_hand(&all, &text), "step {step}: {text}");
            assert_eq!(
                r.finds(&text),
                all.iter().any(|v| text.contains(v.as_str()))
            );
        }
        assert_eq!(r.len(), all.len());
        let bound = (all.len() as f64).log2() as usize + 2;
        assert!(
            r.levels.len() <= bound,
            "{} automata for {} values",
            r.levels.len(),
            all.len()
        );
        assert_eq!(
            r.levels.iter().map(|(n, _)| n).sum::<usize>(),
            all.len(),
            "every value is in exactly one automaton"
        );
    }

    #[test]
    fn overlapping_secrets_are_masked_as_one_stretch() {
        let r = Redactor::new(["abcd", "cdef"]);
        assert_eq!(r.mask("xabcdefy abcd"), "x(redacted)y (redacted)");
        assert_eq!(r.mask("abcdabcd"), "(redacted)(redacted)");
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
