//! Cursor paging as the vendor does it: `_links.next.href` carries an opaque cursor that holds the
//! original query and where the next page starts, so following the link needs nothing else.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::mock::http::{Req, Resp, validation};

/// The query a list request means (its own, or the one its cursor carries) and the index its
/// page starts at.
pub fn query_of(req: &Req) -> Result<(Vec<(String, String)>, usize), Resp> {
    match req.q("cursor") {
        Some(c) => decode_cursor(c)
            .ok_or_else(|| validation(&["cursor does not have a valid value".into()])),
        None => Ok((req.query.clone(), 0)),
    }
}

/// `{"next": {"href": PATH?cursor=...}}` for the page starting at `next`.
pub fn next_link(path: &str, query: &[(String, String)], next: usize) -> Value {
    json!({"next": {"href": format!("{path}?cursor={}", encode_cursor(query, next))}})
}

/// The `limit` of a query: `default` when absent, 400 outside `1..=max`.
pub fn limit(query: &[(String, String)], default: usize, max: usize) -> Result<usize, Resp> {
    match query
        .iter()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.parse::<usize>())
    {
        None => Ok(default),
        Some(Ok(n)) if (1..=max).contains(&n) => Ok(n),
        _ => Err(validation(&["limit does not have a valid value".into()])),
    }
}

/// A query value.
pub fn get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An opaque cursor: the query (without `cursor`) and the next index, base64url.
pub fn encode_cursor(query: &[(String, String)], next: usize) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    pairs.push(("next".into(), next.to_string()));
    let text = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The query and next index a cursor carries; `None` when it is not one of ours.
pub fn decode_cursor(c: &str) -> Option<(Vec<(String, String)>, usize)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(&bytes).into_owned().collect();
    let pos = pairs.iter().position(|(k, _)| k == "next")?;
    let next = pairs.remove(pos).1.parse().ok()?;
    Some((pairs, next))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_carry_the_query_and_refuse_strangers() {
        let q = vec![
            ("email".to_string(), "x@y.io".to_string()),
            ("limit".into(), "2".into()),
        ];
        assert_eq!(
            super::decode_cursor(&super::encode_cursor(&q, 7)),
            Some((q, 7))
        );
        assert_eq!(super::decode_cursor("50"), None);
    }
}
