//! Bounds on what postie reads and renders from files other people wrote: a collection's size and
//! request count, a template's output and work. Set once per process (`--limit NAME=VALUE`),
//! read everywhere; the defaults are far above any real collection and far below what would
//! hang or exhaust the machine. docs/collections.md lists them.

use std::str::FromStr;
use std::sync::OnceLock;

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one collection file.
    pub collection_size: u64,
    /// Requests in one collection.
    pub requests: usize,
    /// Bytes one rendered template (a URL, a header, a body) may produce.
    pub template_output: usize,
    /// Engine instructions one template may run (loops, filters): minijinja's fuel.
    pub template_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            collection_size: 64 << 20,
            requests: 100_000,
            template_output: 64 << 20,
            template_steps: 50_000_000,
        }
    }
}

/// The names `--limit` takes, with what each bounds (for help and errors).
pub const NAMES: &[(&str, &str)] = &[
    (
        "collection-size",
        "bytes in one collection file (e.g. 64MiB)",
    ),
    ("requests", "requests in one collection"),
    (
        "template-output",
        "bytes one rendered template may produce (e.g. 64MiB)",
    ),
    ("template-steps", "engine instructions one template may run"),
];

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// The limits in force (the defaults unless [`set`] was called first).
pub fn get() -> &'static Limits {
    LIMITS.get_or_init(Limits::default)
}

/// Sets the limits for this process; the first call wins (the CLI makes it before any work).
pub fn set(limits: Limits) {
    let _ = LIMITS.set(limits);
}

/// One `--limit NAME=VALUE` argument.
#[derive(Debug, Clone)]
pub struct LimitSpec {
    name: String,
    value: u64,
}

impl FromStr for LimitSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = || NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: write NAME=VALUE, NAME one of {}", names()))?;
        let name = name.trim();
        if !NAMES.iter().any(|(n, _)| *n == name) {
            let known: Vec<String> = NAMES.iter().map(|(n, _)| n.to_string()).collect();
            let hint = crate::collection::suggest(name, known.iter());
            return Err(format!(
                "unknown limit `{name}`{hint}; the limits are {}",
                names()
            ));
        }
        let value = parse_amount(value.trim()).ok_or_else(|| {
            format!("limit `{name}`: `{value}` is not a number (sizes take KiB, MiB, GiB)")
        })?;
        if value == 0 {
            return Err(format!("limit `{name}` must be more than 0"));
        }
        Ok(LimitSpec {
            name: name.to_string(),
            value,
        })
    }
}

/// The defaults with each spec applied in order.
pub fn from_specs(specs: &[LimitSpec]) -> Limits {
    let mut l = Limits::default();
    for s in specs {
        match s.name.as_str() {
            "collection-size" => l.collection_size = s.value,
            "requests" => l.requests = usize::try_from(s.value).unwrap_or(usize::MAX),
            "template-output" => l.template_output = usize::try_from(s.value).unwrap_or(usize::MAX),
            "template-steps" => l.template_steps = s.value,
            _ => unreachable!("names are checked when parsed"),
        }
    }
    l
}

/// `1000`, `1_000`, `64KiB`, `64MiB`, `1GiB` (also `KB`/`MB`/`GB`/`K`/`M`/`G`, binary multiples).
fn parse_amount(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = s[digits.len()..].to_ascii_lowercase();
    let n: u64 = digits.trim().parse().ok()?;
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A human form of a byte count, for messages.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_sizes_and_refuse_unknown_names() {
        let s: LimitSpec = "collection-size=2MiB".parse().unwrap();
        assert_eq!(from_specs(&[s]).collection_size, 2 << 20);
        let s: LimitSpec = "requests=1_000".parse().unwrap();
        assert_eq!(from_specs(&[s]).requests, 1000);
        let e = "request=5".parse::<LimitSpec>().unwrap_err();
        assert!(e.contains("did you mean `requests`"), "{e}");
        assert!("requests=lots".parse::<LimitSpec>().is_err());
        assert!("requests=0".parse::<LimitSpec>().is_err());
        assert!("requests".parse::<LimitSpec>().is_err());
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(1500), "1500 bytes");
    }
}
