//! JWT inspection without verification: what a client needs to know about its own token
//! (claims, expiry, scopes). Verification belongs to the server (see the mock).

use base64::Engine as _;
use serde_json::Value;

/// Why a string could not be read as a JWT.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwtError {
    /// Not three dot-separated parts.
    #[error("not a JWT (expected three dot-separated base64url parts)")]
    Shape,
    /// A part is not base64url JSON.
    #[error("the JWT's {0} is not base64url-encoded JSON")]
    Part(&'static str),
}

fn part(segment: &str, which: &'static str) -> Result<Value, JwtError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| JwtError::Part(which))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Part(which))
}

/// Decodes header and claims.
pub fn decode(token: &str) -> Result<(Value, Value), JwtError> {
    let token = token.trim().strip_prefix("Bearer ").unwrap_or(token.trim());
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Shape);
    };
    Ok((part(h, "header")?, part(c, "claims")?))
}

/// Decodes the claims only.
pub fn claims(token: &str) -> Result<Value, JwtError> {
    decode(token).map(|(_, c)| c)
}

/// The `exp` claim, if the string is a JWT that has one.
pub fn expiry(token: &str) -> Option<i64> {
    claims(token).ok()?.get("exp")?.as_i64()
}

/// A readable report: header, claims, expiry as a date and as time remaining, scopes.
pub fn describe(token: &str, now: i64) -> Result<String, JwtError> {
    let (header, claims) = decode(token)?;
    let mut out = String::new();
    out.push_str("header: ");
    out.push_str(&serde_json::to_string(&header).unwrap_or_default());
    out.push_str("\nclaims:\n");
    out.push_str(&serde_json::to_string_pretty(&claims).unwrap_or_default());
    out.push('\n');
    for key in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(key).and_then(Value::as_i64) {
            let rel = t - now;
            let when = if rel >= 0 {
                format!(
                    "in {}",
                    crate::util::human_duration(std::time::Duration::from_secs(rel as u64))
                )
            } else {
                format!(
                    "{} ago",
                    crate::util::human_duration(std::time::Duration::from_secs((-rel) as u64))
                )
            };
            let label = if key == "exp" && rel < 0 {
                " (EXPIRED)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{key}: {} ({when}){label}\n",
                crate::util::rfc3339(t)
            ));
        }
    }
    let scopes = match claims.get("scp").or_else(|| claims.get("scope")) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    if !scopes.is_empty() {
        out.push_str(&format!("scopes: {scopes}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn decodes_and_describes() {
        let t = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(r#"{"exp":1000,"iat":100,"scp":["contact_data"]}"#)
        );
        assert_eq!(expiry(&t), Some(1000));
        let d = describe(&t, 400).unwrap();
        assert!(d.contains("\"kid\":\"k1\""), "{d}");
        assert!(d.contains("exp: 1970-01-01T00:16:40Z (in 10m00s)"), "{d}");
        assert!(d.contains("scopes: contact_data"), "{d}");
        assert!(describe(&t, 2000).unwrap().contains("EXPIRED"));
        assert!(matches!(decode("abc"), Err(JwtError::Shape)));
        assert!(matches!(decode("a.b.c"), Err(JwtError::Part("header"))));
    }
}
