//! Request and response values for the mock, and Constant Contact's response shapes.

use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::{Value, json};

/// A request as the mock's handlers see it (body already read).
#[derive(Debug, Clone)]
pub struct Req {
    /// Method, upper-case.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Req {
    /// `http://host:port` as the client addressed us (its `Host` header; links and verification
    /// URLs), 127.0.0.1 when it sent none.
    pub fn base_url(&self) -> String {
        format!(
            "http://{}",
            self.header(hyper::header::HOST).unwrap_or("127.0.0.1")
        )
    }

    /// First query value.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text. A name given as a [`hyper::header`] constant is not parsed again.
    pub fn header(&self, name: impl hyper::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query and form-body parameters merged (the token endpoint accepts either).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut p = self.query.clone();
        let is_form = match self.header(hyper::header::CONTENT_TYPE) {
            Some(c) => c.starts_with("application/x-www-form-urlencoded"),
            None => !self.body.is_empty(),
        };
        if is_form {
            p.extend(url::form_urlencoded::parse(&self.body).into_owned());
        }
        p
    }

    /// Whether the body is declared JSON.
    pub fn is_json(&self) -> bool {
        const JSON: &[u8] = b"application/json";
        self.header(hyper::header::CONTENT_TYPE).is_some_and(|c| {
            c.trim_start()
                .as_bytes()
                .get(..JSON.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(JSON))
        })
    }
}

/// A response's first header, with room for the few most responses add (CORS, caching) so
/// adding them does not grow the list.
fn first_header(
    name: &'static str,
    value: std::borrow::Cow<'static, str>,
) -> Vec<(&'static str, std::borrow::Cow<'static, str>)> {
    let mut headers = Vec::with_capacity(4);
    headers.push((name, value));
    headers
}

/// A response from a handler.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Extra headers (a fixed value is borrowed, not copied, on every response).
    pub headers: Vec<(&'static str, std::borrow::Cow<'static, str>)>,
    /// Body.
    pub body: Bytes,
    /// The route that answered (for the journal).
    pub route: &'static str,
    /// Headers whose names are not known in advance (a spec's documented headers, a stub's).
    pub extra: Vec<(String, String)>,
    /// A line for the journal (which stub answered, why none did).
    pub note: Option<Box<str>>,
    /// Wait this long (ms) before answering (a stub's `delay`).
    pub delay_ms: u32,
}

impl Resp {
    /// A JSON response.
    pub fn json(status: u16, v: &Value) -> Resp {
        Resp::json_of(status, v)
    }
    /// A JSON response from anything serialisable (no intermediate value).
    pub fn json_of(status: u16, v: &impl serde::Serialize) -> Resp {
        // Room for a contact at once (`to_vec` starts at 128 bytes and grows twice for one).
        let mut body = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut body, v).is_err() {
            body.clear();
        }
        Resp::json_bytes(status, body)
    }
    /// A JSON response whose body is already written (by [`JsonObject`], say).
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Resp {
        Resp {
            status,
            headers: first_header("content-type", "application/json".into()),
            body: Bytes::from(body),
            route: "",
            extra: Vec::new(),
            note: None,
            delay_ms: 0,
        }
    }
    /// A response with no body.
    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: vec![],
            body: Bytes::new(),
            route: "",
            extra: Vec::new(),
            note: None,
            delay_ms: 0,
        }
    }
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Resp {
        Resp {
            status,
            headers: first_header("content-type", "text/html; charset=utf-8".into()),
            body: Bytes::from(body),
            route: "",
            extra: Vec::new(),
            note: None,
            delay_ms: 0,
        }
    }
    /// A 302 redirect.
    pub fn redirect(location: String) -> Resp {
        Resp {
            status: 302,
            headers: first_header("location", location.into()),
            body: Bytes::new(),
            route: "",
            extra: Vec::new(),
            note: None,
            delay_ms: 0,
        }
    }
    /// Replaces the content type.
    pub fn with_content_type(mut self, value: &str) -> Resp {
        self.headers.retain(|(k, _)| *k != "content-type");
        self.headers
            .push(("content-type", value.to_string().into()));
        self
    }

    /// Adds a header.
    pub fn with(
        mut self,
        name: &'static str,
        value: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Resp {
        self.headers.push((name, value.into()));
        self
    }
    /// Sets the journal route name.
    pub fn route(mut self, route: &'static str) -> Resp {
        self.route = route;
        self
    }

    /// Sets the journal note.
    pub fn note(mut self, note: impl Into<String>) -> Resp {
        self.note = Some(note.into().into_boxed_str());
        self
    }
}

/// The engine's own errors (validation, 404, 405, 415) in the vendor's shape, for its Swagger
/// served behind the pack.
pub fn cc_shape(status: u16, detail: &str, errors: &[String]) -> Resp {
    match status {
        400 if !errors.is_empty() => validation(errors),
        401 => unauthorized(),
        _ => {
            let key = match status {
                400 => "bad_request",
                404 => "not_found",
                405 => "method_not_allowed",
                406 => "not_acceptable",
                409 => "conflict",
                415 => "unsupported_media_type",
                _ => "error",
            };
            cc_error(status, key, detail)
        }
    }
}

/// The vendor's array-of-errors body: `[{"error_key": ..., "error_message": ...}]`.
pub fn cc_error(status: u16, key: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!([{"error_key": key, "error_message": message}]),
    )
}

/// The pack's error for a status nothing in it produces by itself (an injected fault): its own
/// bodies for 401, 403 and 429, else the usual array with a key for the status.
pub fn cc_status_error(status: u16) -> Resp {
    match status {
        401 => unauthorized(),
        403 => forbidden_scope(),
        429 => Resp::json(
            429,
            &json!({"error_key": "throttled", "error_message": "Too Many Requests"}),
        ),
        _ => {
            let (key, message) = match status {
                400 => ("bad_request", "Bad request"),
                404 => ("not_found", "The requested resource was not found"),
                405 => ("method_not_allowed", "Method not allowed"),
                409 => ("conflict", "Conflict"),
                415 => ("unsupported_media_type", "Unsupported media type"),
                500 => ("server_error", "An internal server error occurred"),
                502..=504 => (
                    "service_unavailable",
                    "Service unavailable; try again later",
                ),
                _ => ("error", "Error"),
            };
            cc_error(status, key, message)
        }
    }
}

/// `400 contacts.api.validation.error` with the messages comma-joined, as the vendor does.
pub fn validation(messages: &[String]) -> Resp {
    cc_error(400, "contacts.api.validation.error", &messages.join(", "))
}

/// The exact 401 Constant Contact's gateway sends for a missing, bad, expired or revoked token.
pub fn unauthorized() -> Resp {
    Resp::json(
        401,
        &json!({"error_key": "unauthorized", "error_message": "Unauthorized"}),
    )
    .with("www-authenticate", "Bearer realm=api.cc.email")
    .with("x-amzn-errortype", "UnauthorizedException")
}

/// 403 for a token without the needed scope.
pub fn forbidden_scope() -> Resp {
    Resp::json(
        403,
        &json!({"error_key": "access_denied", "error_message": "Forbidden request. You lack the necessary scopes, you lack the necessary user privileges, or the application is deactivated."}),
    )
}

/// Okta's token-endpoint error shape.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    let r = Resp::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
    .with("cache-control", "no-store")
    .with("pragma", "no-cache");
    if status == 401 {
        r.with("www-authenticate", "Basic realm=\"okta\"")
    } else {
        r
    }
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Parses a JSON body, answering the vendor's 415 / 400 when it is not JSON.
pub fn json_body(req: &Req) -> Result<Value, Resp> {
    if !req.is_json() {
        return Err(unsupported_media_type());
    }
    serde_json::from_slice(&req.body).map_err(|e| not_json(&e))
}

fn unsupported_media_type() -> Resp {
    cc_error(
        415,
        "unsupported_media_type",
        "Content-Type must be application/json",
    )
}

fn not_json(e: &serde_json::Error) -> Resp {
    cc_error(
        400,
        "contacts.api.validation.error",
        &format!("Request body is not valid JSON: {e}"),
    )
}

fn not_an_object() -> Resp {
    validation(&["Request body must be a JSON object".into()])
}

/// A JSON object body (415 / 400 as [`json_body`], and 400 when it is not an object).
pub fn json_object(req: &Req) -> Result<serde_json::Map<String, Value>, Resp> {
    match json_body(req)? {
        Value::Object(m) => Ok(m),
        _ => Err(not_an_object()),
    }
}

/// A JSON object body's members in the order sent ([`json_fields`]), names borrowed from the
/// body where they hold no escapes. A contact's body has a handful: finding one by comparing
/// names costs less than building serde_json's map, which hashes every name with SipHash
/// (1,050 instructions of a two-member `sign_up_form`, more than the values took).
#[derive(Debug)]
pub struct Fields<'a>(Vec<(std::borrow::Cow<'a, str>, Value)>);

impl Member for Fields<'_> {
    /// The last member of that name, as serde_json's map keeps it when a name repeats.
    fn member(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .rev()
            .find_map(|(k, v)| (k == name).then_some(v))
    }
}

/// What a JSON body is at its top: an object's members, or something else.
struct TopLevel<'a>(Option<Fields<'a>>);

impl<'de> serde::Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::borrow::Cow;
        /// A member's name, borrowed unless it had to be unescaped.
        struct Name<'a>(Cow<'a, str>);
        impl<'de> serde::Deserialize<'de> for Name<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Name<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a member name")
                    }
                    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Borrowed(s)))
                    }
                    fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Owned(s.to_owned())))
                    }
                }
                d.deserialize_str(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TopLevel<'de>, A::Error> {
                let mut fields = Vec::with_capacity(m.size_hint().unwrap_or(8).min(64));
                while let Some((Name(k), v)) = m.next_entry::<Name<'de>, Value>()? {
                    fields.push((k, v));
                }
                Ok(TopLevel(Some(Fields(fields))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<TopLevel<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
            fn visit_unit<E>(self) -> Result<TopLevel<'de>, E> {
                Ok(TopLevel(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON object body as [`Fields`]: the same answers as [`json_object`] (415 when it is not
/// JSON by its type, 400 when it does not parse or is not an object).
pub fn json_fields(req: &Req) -> Result<Fields<'_>, Resp> {
    if !req.is_json() {
        return Err(unsupported_media_type());
    }
    match serde_json::from_slice::<TopLevel>(&req.body) {
        Ok(TopLevel(Some(fields))) => Ok(fields),
        Ok(TopLevel(None)) => Err(not_an_object()),
        Err(e) => Err(not_json(&e)),
    }
}

/// A member of a JSON object by name, found by comparing the names in turn. serde_json's map
/// hashes the name asked for with SipHash, which costs more than comparing the few names a
/// request body has (a contact's handful of fields read from `sign_up_form`'s body were 4,400
/// instructions a request). A larger object is looked up through its map as before.
pub trait Member {
    /// The member called `name`: None when there is none, or when this is not an object.
    fn member(&self, name: &str) -> Option<&Value>;
}

impl Member for serde_json::Map<String, Value> {
    fn member(&self, name: &str) -> Option<&Value> {
        if self.len() > 16 {
            return self.get(name);
        }
        self.iter().find_map(|(k, v)| (k == name).then_some(v))
    }
}

impl Member for Value {
    fn member(&self, name: &str) -> Option<&Value> {
        self.as_object()?.member(name)
    }
}

/// `s` as a JSON string at the end of `out`, escaped as serde_json escapes it (control
/// characters, `"` and `\`). Text with nothing to escape, which is most, is checked eight bytes
/// at a time and copied whole; serde_json looks each byte up in a table and branches on it, which
/// was the largest single cost of journaling a contact.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte is one JSON escapes: below 0x20, `"` or `\`. A word at a time, with the
/// bit tricks for "has a zero byte" and "has a byte less than n", which are exact about whether
/// any byte matches.
fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let zero_in = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let word = |w: u64| {
        w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || zero_in(w ^ (ONES * u64::from(b'"')))
            || zero_in(w ^ (ONES * u64::from(b'\\')))
    };
    let mut words = b.chunks_exact(8);
    let found = words
        .by_ref()
        .any(|c| word(u64::from_le_bytes(c.try_into().unwrap_or_default())));
    found
        || words
            .remainder()
            .iter()
            .any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

/// Text that needs no escaping (a fixed name, a formatted id or time) as a JSON string.
#[inline(always)]
fn write_plain(out: &mut Vec<u8>, text: &[u8]) {
    debug_assert!(!needs_escape(text), "{text:?}");
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// Any serialisable value as JSON (`null` if it cannot be written).
fn write_value(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    let at = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(at);
        out.extend_from_slice(b"null");
    }
}

/// A JSON array written straight into a buffer, element by element (the journal's and the
/// snapshot's positional records), with strings escaped by [`write_str`].
pub struct JsonArray<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonArray<'a> {
    /// Opens an array at the end of `out`.
    pub fn open(out: &'a mut Vec<u8>) -> JsonArray<'a> {
        out.push(b'[');
        JsonArray { out, first: true }
    }
    /// Starts an element and returns the buffer, for its value to follow.
    #[inline(always)]
    pub fn element(&mut self) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out
    }
    /// `null`.
    #[inline]
    pub fn null(&mut self) {
        self.element().extend_from_slice(b"null");
    }
    /// A string, escaped.
    #[inline]
    pub fn str(&mut self, s: &str) {
        write_str(self.element(), s);
    }
    /// A string, or `null`.
    #[inline]
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }
    /// A string that needs no escaping (a fixed name, a formatted id).
    #[inline]
    pub fn plain(&mut self, s: &str) {
        write_plain(self.element(), s.as_bytes());
    }
    /// An id, hyphenated in lower case.
    #[inline]
    pub fn uuid(&mut self, id: &uuid::Uuid) {
        self.plain(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
    }
    /// An integer.
    #[inline]
    pub fn int(&mut self, n: impl itoa::Integer) {
        self.element()
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    /// An integer, or `null`.
    #[inline]
    pub fn opt_int(&mut self, n: Option<impl itoa::Integer>) {
        match n {
            Some(n) => self.int(n),
            None => self.null(),
        }
    }
    /// Any serialisable element (`null` if it cannot be written).
    pub fn value(&mut self, value: &impl serde::Serialize) {
        write_value(self.element(), value);
    }
    /// Closes the array.
    pub fn close(self) {
        self.out.push(b']');
    }
}

/// A JSON object written straight into a buffer, member by member: no intermediate map, and the
/// member names, which are the code's own, are written as they are (a returned contact has about
/// a dozen; escaping them each time was a tenth of `GET /v3/contacts/{id}`'s own work). Values are
/// escaped as serde_json escapes them.
pub struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObject<'a> {
    /// Opens an object at the end of `out`.
    pub fn open(out: &'a mut Vec<u8>) -> JsonObject<'a> {
        out.push(b'{');
        JsonObject { out, first: true }
    }
    /// Writes `"name":` and returns the buffer, for the value to follow. Inlined, with the
    /// member's name known at each call, so copying it is a store or two rather than a call to
    /// `memcpy`.
    #[inline(always)]
    pub fn key(&mut self, name: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20),
            "a member name that needs escaping: {name}"
        );
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }
    /// A string member, escaped.
    #[inline(always)]
    pub fn str(&mut self, name: &'static str, value: &str) {
        write_str(self.key(name), value);
    }
    /// A string member whose text needs no escaping (a timestamp, a fixed name).
    #[inline(always)]
    pub fn plain(&mut self, name: &'static str, value: &str) {
        self.plain_bytes(name, value.as_bytes());
    }
    /// [`JsonObject::plain`] of text held as bytes (a formatted timestamp), not checked again.
    #[inline(always)]
    pub fn plain_bytes(&mut self, name: &'static str, value: &[u8]) {
        write_plain(self.key(name), value);
    }
    /// Any serialisable member (`null` if it cannot be written).
    pub fn value(&mut self, name: &'static str, value: &impl serde::Serialize) {
        write_value(self.key(name), value);
    }
    /// Closes the object.
    pub fn close(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonObject, Member};
    use serde_json::{Value, json};

    /// A body read as [`super::Fields`] answers as the same body read as serde_json's map: the
    /// same error for what is not JSON or not an object, the same value for every name (the last
    /// of a repeated one, a name written with escapes, one that is absent).
    #[test]
    fn fields_answer_as_the_map_does() {
        use super::{Req, json_fields, json_object};
        let req = |body: &str, json: bool| {
            let mut headers = hyper::HeaderMap::new();
            if json {
                headers.insert("content-type", "application/json".parse().unwrap());
            }
            Req {
                method: "POST".into(),
                path: "/v3/contacts".into(),
                query: Vec::new(),
                headers,
                body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            }
        };
        let names = ["a", "b", "c", "d", "é", "q\"", "", "A"];
        for body in [
            r#"{"a":1,"b":null,"c":{"d":[2]},"a":3}"#,
            r#"{"\u00e9":"x","q\"":[1,{"a":2}],"":true}"#,
            r#"{}"#,
            r#" [1, {"a": 2}] "#,
            r#""a""#,
            "12",
            "-1.5",
            "true",
            "null",
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            "",
        ] {
            for json in [true, false] {
                let (r, name) = (req(body, json), format!("{body} ({json})"));
                match (json_fields(&r), json_object(&r)) {
                    (Ok(fields), Ok(map)) => {
                        for n in names {
                            assert_eq!(fields.member(n), map.get(n), "{name}: {n}");
                        }
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!((a.status, &a.body), (b.status, &b.body), "{name}")
                    }
                    (a, b) => panic!("{name}: {:?} against {:?}", a.is_ok(), b.is_ok()),
                }
            }
        }
    }

    /// A JSON content type in any case, with parameters or leading space; nothing shorter, and
    /// no other type (as the lower-cased comparison this replaced answered).
    #[test]
    fn a_json_content_type_is_known_in_any_case() {
        for (ct, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("  application/json", true),
            ("application/json-patch+json", true),
            ("application/jso", false),
            ("text/plain", false),
            ("", false),
            ("é", false),
        ] {
            let mut headers = hyper::HeaderMap::new();
            headers.insert("content-type", ct.parse().unwrap());
            let req = super::Req {
                method: "POST".into(),
                path: "/".into(),
                query: Vec::new(),
                headers,
                body: bytes::Bytes::new(),
            };
            let before = ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json");
            assert_eq!((req.is_json(), before), (json, json), "{ct}");
        }
    }

    #[test]
    fn a_member_is_found_as_the_map_finds_it() {
        // Small objects are scanned, large ones looked up: both answer as `get` does, and a
        // repeated name in the text is read as serde_json reads it (the last one).
        let small: Value = serde_json::from_str(r#"{"a":1,"b":null,"c":{"d":[2]},"a":3}"#).unwrap();
        let mut large = serde_json::Map::new();
        for i in 0..40 {
            large.insert(format!("k{i}"), json!(i));
        }
        let large = Value::Object(large);
        for (v, names) in [
            (&small, &["a", "b", "c", "d", "", "A"][..]),
            (&large, &["k0", "k17", "k39", "k40", "k"][..]),
        ] {
            for name in names {
                assert_eq!(v.member(name), v.get(name), "{name}");
                assert_eq!(v.as_object().unwrap().member(name), v.get(name), "{name}");
            }
        }
        assert_eq!(small.member("a"), Some(&json!(3)));
        assert_eq!(small.member("b"), Some(&Value::Null));
        for not_object in [json!([{"a": 1}]), json!("a"), json!(null), json!(1)] {
            assert_eq!(not_object.member("a"), None);
        }
    }

    #[test]
    fn a_string_is_written_as_serde_json_writes_it() {
        // Every character below U+0100 at every place in words read eight bytes at a time, and
        // in the bytes left over after them.
        let mut texts: Vec<String> = Vec::new();
        for c in (0u32..0x100).filter_map(char::from_u32) {
            for at in 0..19 {
                texts.push(format!("{}{c}{}", "x".repeat(at), "y".repeat(18 - at)));
            }
        }
        texts.extend(["", "plain", "\u{2028}😀 é", "\"\\\n"].map(String::from));
        texts.push("x".repeat(100) + "\u{1}");
        for t in texts {
            let mut out = b"[".to_vec();
            super::write_str(&mut out, &t);
            assert_eq!(out[1..], serde_json::to_vec(&t).unwrap()[..], "{t:?}");
            // Exact, so that text with nothing to escape is never sent the slow way.
            let escaped = t.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\');
            assert_eq!(super::needs_escape(t.as_bytes()), escaped, "{t:?}");
        }
    }

    #[test]
    fn members_are_written_with_commas_between_them() {
        const LONG: &str = "a_member_name_longer_than_sixty_bytes_written_as_it_is_like_any_other";
        let mut out = Vec::new();
        JsonObject::open(&mut out).close();
        assert_eq!(out, b"{}");
        for names in [
            &["a"][..],
            &["a", "bc", ""],
            &[LONG, "x", LONG],
            &["x", LONG],
        ] {
            let mut out = b"[".to_vec();
            let mut m = JsonObject::open(&mut out);
            for (i, name) in names.iter().enumerate() {
                m.value(name, &i);
            }
            m.close();
            let want: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("\"{n}\":{i}"))
                .collect();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("[{{{}}}", want.join(","))
            );
        }
    }
}
