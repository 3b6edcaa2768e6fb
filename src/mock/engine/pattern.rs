//! Path patterns, as stub files and fault routes write them: `/v3/contacts/{id}` (one segment,
//! captured by name), `/files/*` (the rest of the path, last), everything else literal and
//! compared after percent-decoding. One parser and one matcher, so a pattern means the same in
//! `--stubs` and in `--fault`.

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    /// A literal segment (decoded).
    Lit(String),
    /// `{name}`: any one segment.
    Param(String),
    /// `*`, last: the rest of the path (captured as `rest`).
    Rest,
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPattern(Vec<Seg>);

/// Decodes `%XX` escapes (a `+` stays a `+`: this is a path, not a form).
pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

impl PathPattern {
    /// Parses a pattern; `label` starts each error (``request.path `/a` ``, ``route `GET /a` ``).
    /// A query string after `?` is ignored.
    pub fn parse(path: &str, label: &str) -> Result<PathPattern, String> {
        if !path.starts_with('/') {
            return Err(format!(
                "{label}: start with `/` (`/users/{{id}}`, `/files/*`)"
            ));
        }
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = Vec::with_capacity(segs.len());
        for (i, s) in segs.iter().enumerate() {
            out.push(if *s == "*" {
                if i + 1 != segs.len() {
                    return Err(format!(
                        "{label}: `*` matches the rest of the path, so it comes last; use `{{name}}` for one segment"
                    ));
                }
                Seg::Rest
            } else if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() {
                    return Err(format!("{label}: `{{}}` needs a name"));
                }
                Seg::Param(name.to_string())
            } else {
                Seg::Lit(percent_decode(s))
            });
        }
        Ok(PathPattern(out))
    }

    /// Its segments.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Walks `path` against the pattern, handing each capture to `found`; whether it matched.
    fn walk(&self, path: &str, mut found: impl FnMut(&str, &str)) -> bool {
        let mut segs = path.split('/').filter(|s| !s.is_empty());
        for p in &self.0 {
            match p {
                Seg::Rest => {
                    let rest: Vec<&str> = segs.by_ref().collect();
                    found("rest", &rest.join("/"));
                    return true;
                }
                Seg::Param(name) => match segs.next() {
                    Some(s) => found(name, s),
                    None => return false,
                },
                Seg::Lit(l) => match segs.next() {
                    Some(s) if s == l || (s.contains('%') && percent_decode(s) == *l) => {}
                    _ => return false,
                },
            }
        }
        segs.next().is_none()
    }

    /// Whether `path` matches (nothing captured, nothing allocated for a literal path).
    pub fn matches(&self, path: &str) -> bool {
        self.walk(path, |_, _| {})
    }

    /// The named segments (decoded) and `rest` when `path` matches.
    pub fn captures(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        self.walk(path, |name, value| {
            out.push((
                name.to_string(),
                if name == "rest" {
                    value.to_string()
                } else {
                    percent_decode(value)
                },
            ))
        })
        .then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_language_for_stubs_and_faults() {
        let p = PathPattern::parse("/v3/contacts/{id}", "x").unwrap();
        assert!(p.matches("/v3/contacts/abc"));
        assert!(!p.matches("/v3/contacts"));
        assert!(!p.matches("/v3/contacts/abc/x"));
        assert_eq!(
            p.captures("/v3/contacts/a%20b"),
            Some(vec![("id".into(), "a b".into())])
        );
        let rest = PathPattern::parse("/files/*", "x").unwrap();
        assert_eq!(
            rest.captures("/files/a/b"),
            Some(vec![("rest".into(), "a/b".into())])
        );
        assert!(rest.matches("/files"));
        let lit = PathPattern::parse("/caf%C3%A9?x=1", "x").unwrap();
        assert!(lit.matches("/café") && lit.matches("/caf%C3%A9"));
        for (bad, says) in [
            ("users", "start with `/`"),
            ("/a/*/b", "comes last"),
            ("/a/{}", "needs a name"),
        ] {
            let e = PathPattern::parse(bad, "route `R`").unwrap_err();
            assert!(e.starts_with("route `R`: ") && e.contains(says), "{e}");
        }
    }
}
