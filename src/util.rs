//! Small shared helpers: human durations, atomic private file writes, timestamps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest duration accepted anywhere (a clock advance, a timeout): 100 years.
pub const MAX_DURATION_SECS: f64 = 100.0 * 365.25 * 86400.0;

/// Parses `250ms`, `2s`, `5m`, `24h`, `1d`, `1h30m`, `1 h`, or a bare number of seconds; at most
/// [`MAX_DURATION_SECS`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let t = compact.as_str();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let too_long = || {
        format!(
            "`{}` is longer than 100 years; use a shorter duration",
            text.trim()
        )
    };
    if let Ok(secs) = t.parse::<f64>()
        && secs >= 0.0
        && secs.is_finite()
    {
        if secs > MAX_DURATION_SECS {
            return Err(too_long());
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration (expected e.g. 500ms, 2s, 5m, 24h, 1d)"
            ));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "sec" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => {
                return Err(format!(
                    "`{text}`: unknown unit `{unit}` (use ms, s, m, h or d)"
                ));
            }
        };
        if !secs.is_finite() || total.as_secs_f64() + secs > MAX_DURATION_SECS {
            return Err(too_long());
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// Formats a duration with every unit down to the second (and milliseconds when under a
/// second): `23h59m30s`, `1d0h0m1s`, `250ms` — for reports where rounding would mislead.
pub fn exact_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let units = [
        (s / 86400, 'd'),
        ((s % 86400) / 3600, 'h'),
        ((s % 3600) / 60, 'm'),
        (s % 60, 's'),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    let last = units.iter().rposition(|(n, _)| *n > 0).unwrap_or(3);
    units[first..=last]
        .iter()
        .map(|(n, u)| format!("{n}{u}"))
        .collect()
}

/// Formats a duration compactly: `23h59m`, `4m10s`, `850ms`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    if days >= 4 {
        format!("{days}d{h}h")
    } else if days > 0 || h > 0 {
        format!("{}h{m:02}m", days * 24 + h)
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename) with
/// mode 0600, so a crash leaves either the old file or the new one and nobody else can read it.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// RFC 3339 UTC timestamp of a unix time in seconds (or a note that it is out of range).
pub fn rfc3339(unix: i64) -> String {
    match Rfc3339::of(unix) {
        Some(t) => t.as_str().to_string(),
        None => format!("(out of range: {unix})"),
    }
}

/// An RFC 3339 UTC timestamp to whole seconds (`2026-11-28T19:45:51Z`), formatted on the stack:
/// the mock writes several into every contact it returns.
#[derive(Clone, Copy)]
pub struct Rfc3339([u8; 20]);

impl Rfc3339 {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Rfc3339 = Rfc3339(*b"1970-01-01T00:00:00Z");

    /// The timestamp of a unix time in seconds; None outside years 0000–9999, which RFC 3339
    /// cannot write.
    pub fn of(unix: i64) -> Option<Rfc3339> {
        const FIRST: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
        const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        // Two digits at a time.
        const PAIRS: [[u8; 2]; 100] = {
            let mut t = [[0; 2]; 100];
            let mut i = 0;
            while i < 100 {
                t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
                i += 1;
            }
            t
        };
        if !(FIRST..=LAST).contains(&unix) {
            return None;
        }
        let since = (unix - FIRST) as u64;
        let secs = (since % 86_400) as u32;
        // Days to a civil date: Howard Hinnant's `civil_from_days`, unsigned. Days count from
        // 0000-03-01 (year 0 is a leap year: 60 days after 0000-01-01), plus one 400-year era so
        // that January and February of year 0 are not negative.
        let z = (since / 86_400) as u32 + 146_097 - 60;
        let (era, doe) = (z / 146_097, z % 146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u32::from(month <= 2) - 400;
        let mut b = *b"0000-00-00T00:00:00Z";
        for (at, n) in [
            (0, year / 100),
            (2, year % 100),
            (5, month),
            (8, day),
            (11, secs / 3600),
            (14, secs / 60 % 60),
            (17, secs % 60),
        ] {
            b[at..at + 2].copy_from_slice(&PAIRS[n as usize]);
        }
        Some(Rfc3339(b))
    }

    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Current unix time in seconds (wall clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// PKCE S256 challenge: base64url(SHA-256(verifier)) without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A JSON value's kind with its article, for messages: `a number`, `an object`.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The deepest nesting a YAML file may have: serde_yaml's own recursion limit, which it applies
/// only after its parser has read the whole file (in time that grows with the square of the
/// depth: 100,000 `[` took 40 s).
pub const YAML_MAX_DEPTH: usize = 128;

/// Refuses YAML nested deeper than [`YAML_MAX_DEPTH`] before any parser sees it, in one linear
/// pass: flow collections (`[`, `{`) and compact block sequences (`- - - x`). Returns the
/// 1-based line and column where the limit is passed. Quoted strings, comments and block scalars
/// (`|`, `>`) are skipped; anything it cannot classify counts as text, so it never refuses a file
/// serde_yaml would accept.
pub fn yaml_nesting(source: &str) -> Result<(), (usize, usize, String)> {
    let too_deep = |line: usize, col: usize| {
        Err((
            line,
            col,
            format!(
                "nested deeper than {YAML_MAX_DEPTH} levels; postie reads at most {YAML_MAX_DEPTH} (flatten the value, or keep it in a file the request reads)"
            ),
        ))
    };
    let mut depth = 0usize; // open flow collections
    let mut quote: Option<char> = None; // a quoted scalar inside a flow collection, across lines
    let mut block_scalar: Option<usize> = None; // the indent of the line that opened `|` or `>`
    for (ln, line) in source.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_scalar {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut i = 0;
        // In block context: whether the next token starts a value.
        let mut value_start = depth == 0 && quote.is_none();
        let mut dashes = 0usize;
        while i < chars.len() {
            let (byte, c) = chars[i];
            let col = || line[..byte].chars().count() + 1;
            if let Some(q) = quote {
                if c == '\\' && q == '"' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == '\'' && chars.get(i + 1).map(|x| x.1) == Some('\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                }
                i += 1;
                continue;
            }
            let after_space = i == 0 || chars[i - 1].1.is_whitespace();
            if c == '#' && after_space {
                break;
            }
            if depth > 0 {
                match c {
                    '"' | '\'' => quote = Some(c),
                    '[' | '{' => {
                        depth += 1;
                        if depth + dashes > YAML_MAX_DEPTH {
                            return too_deep(ln + 1, col());
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    value_start = false;
                }
                continue;
            }
            if c == ' ' || c == '\t' {
                i += 1;
                continue;
            }
            if value_start {
                match c {
                    '-' | '?' if chars.get(i + 1).is_none_or(|n| n.1 == ' ') => {
                        dashes += 1;
                        if dashes > YAML_MAX_DEPTH {
                            return too_deep(ln + 1, col());
                        }
                        i += 1;
                        continue;
                    }
                    '&' | '!' => {
                        // An anchor or a tag before the value.
                        while i < chars.len() && chars[i].1 != ' ' {
                            i += 1;
                        }
                        continue;
                    }
                    '[' | '{' => {
                        depth = 1;
                        if depth + dashes > YAML_MAX_DEPTH {
                            return too_deep(ln + 1, col());
                        }
                        i += 1;
                        continue;
                    }
                    '|' | '>' => {
                        block_scalar = Some(indent);
                        break;
                    }
                    '"' | '\'' => {
                        // A quoted scalar in block context: skip it on this line.
                        let q = c;
                        i += 1;
                        while i < chars.len() {
                            if chars[i].1 == '\\' && q == '"' {
                                i += 2;
                                continue;
                            }
                            if chars[i].1 == q {
                                break;
                            }
                            i += 1;
                        }
                        i += 1;
                        value_start = false;
                        continue;
                    }
                    _ => value_start = false,
                }
            }
            // Plain text: a `: ` (or a final `:`) starts a value.
            if c == ':' && chars.get(i + 1).is_none_or(|n| n.1 == ' ' || n.1 == '\t') {
                value_start = true;
            }
            i += 1;
        }
    }
    Ok(())
}

/// Runs `git -C DIR ARGS...` with no input and collects its output (for lint, diff and the
/// staged/revision readers; a missing git is the `Err`).
pub fn git(dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
}

/// The directory a file is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn yaml_nesting_is_refused_before_parsing_and_ordinary_files_pass() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let (line, col, msg) = yaml_nesting(&deep).unwrap_err();
        assert_eq!((line, col), (1, 4 + YAML_MAX_DEPTH));
        assert!(msg.contains("deeper than 128"), "{msg}");
        let dashes = format!("x:\n{}1\n", "- ".repeat(200));
        assert_eq!(yaml_nesting(&dashes).unwrap_err().0, 2);
        let mixed = format!("x:\n  - {}1{}\n", "{a: ".repeat(150), "}".repeat(150));
        assert!(yaml_nesting(&mixed).is_err());
        // Brackets in text, quotes, comments and block scalars are not nesting.
        let fine = format!(
            "title: a{}b\nq: \"{}\"\nr: '{}'\n# {}\nbody: |\n  {}\nflow: [\"{}\", 'x''{}']\nok: [[1], {{a: [2]}}]\n",
            "[".repeat(300),
            "[".repeat(300),
            "{".repeat(300),
            "[".repeat(300),
            "[".repeat(300),
            "[".repeat(300),
            "[".repeat(300),
        );
        assert_eq!(yaml_nesting(&fine), Ok(()));
        let at_limit = format!(
            "a: {}{}\n",
            "[".repeat(YAML_MAX_DEPTH),
            "]".repeat(YAML_MAX_DEPTH)
        );
        assert_eq!(yaml_nesting(&at_limit), Ok(()));
    }

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("25h").unwrap(), Duration::from_secs(90000));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_duration("1 h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("99999999999h").is_err());
        assert!(parse_duration("1e300").is_err());
        assert_eq!(exact_duration(Duration::from_secs(86370)), "23h59m30s");
        assert_eq!(exact_duration(Duration::from_secs(3600)), "1h");
        assert!(rfc3339(i64::MAX).contains("out of range"));
        assert!(rfc3339(i64::MIN).contains("out of range"));
        assert_eq!(human_duration(Duration::from_secs(86399)), "23h59m");
        assert_eq!(human_duration(Duration::from_secs(90000)), "25h00m");
        assert_eq!(human_duration(Duration::from_secs(180 * 86400)), "180d0h");
    }

    /// The formatter agrees with the `time` crate everywhere RFC 3339 can write a year,
    /// and refuses where it cannot.
    #[test]
    fn rfc3339_matches_the_time_crate() {
        use time::format_description::well_known::Rfc3339 as Format;
        let reference = |unix: i64| {
            time::OffsetDateTime::from_unix_timestamp(unix)
                .ok()
                .and_then(|t| t.format(&Format).ok())
        };
        let first = -62_167_219_200; // 0000-01-01T00:00:00Z
        let last = 253_402_300_799; // 9999-12-31T23:59:59Z
        let mut edges = vec![0, -1, 1, 951_782_400, 4_107_542_400, 1_795_895_151];
        edges.extend([first, first - 1, last, last + 1]);
        // Every day boundary across leap and century years (1896–2104), and the last second of
        // each.
        for day in -27_029..49_000i64 {
            edges.extend([day * 86_400, day * 86_400 - 1]);
        }
        // And a sweep over the whole range with an odd step.
        edges.extend((first - 86_400..last + 86_400).step_by(7_777_777_777 / 1000));
        for unix in edges {
            assert_eq!(
                Rfc3339::of(unix).map(|t| t.as_str().to_string()),
                reference(unix),
                "{unix}"
            );
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(first - 1), format!("(out of range: {})", first - 1));
    }

    #[test]
    fn atomic_private_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        write_private_atomic(&p, b"one").unwrap();
        write_private_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }
}
