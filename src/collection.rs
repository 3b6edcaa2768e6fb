//! Collections: the YAML file a developer commits, loaded into a typed model.
//!
//! Loading is strict: unknown fields are errors (a typo like `captrue:` must not pass), and every
//! error names `file:line:col`, shows the line and says what was expected. Semantic checks (a flow
//! naming a missing request, a body given twice, a bad capture path or template) are located by
//! walking the key path through the source text ([`locate`]).

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::capture::JsonPath;

/// A loaded collection plus where it came from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// Short name, shown in the REPL prompt.
    pub name: String,
    /// What the collection is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Default variables (templates allowed, e.g. `<<env.CC_CLIENT_ID>>`).
    #[serde(default, deserialize_with = "unique")]
    pub variables: IndexMap<String, VarDef>,
    /// Named sets of variable overrides, chosen with `--env NAME`.
    #[serde(default, deserialize_with = "unique_nested")]
    pub environments: IndexMap<String, IndexMap<String, VarDef>>,
    /// Requests by name.
    #[serde(default, deserialize_with = "unique")]
    pub requests: IndexMap<String, Request>,
    /// Named ordered lists of steps.
    #[serde(default, deserialize_with = "unique")]
    pub flows: IndexMap<String, Flow>,
    /// OAuth2 client configuration (which requests authorize, exchange and refresh).
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    /// Run as another tool does (`newman`: Postman's variable scopes, redirects followed, no
    /// automatic chaining). `postie import postman` sets it.
    #[serde(default)]
    pub compat: Option<Compat>,
    /// Scripts run for every request (before the folder's and the request's own).
    #[serde(default)]
    pub script: Option<Scripts>,
    /// Folders by path (`Articles/Comments`): their description and scripts.
    #[serde(default, deserialize_with = "unique")]
    pub folders: IndexMap<String, Folder>,
    /// How long one script may run (default 1s).
    #[serde(default)]
    pub script_timeout: Option<String>,
    /// TLS settings for every request (`--cacert`, `--cert`/`--key`, `--insecure` override).
    #[serde(default)]
    pub tls: Option<crate::exchange::TlsOptions>,
    /// The file this was loaded from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The file's text, kept to locate later errors.
    #[serde(skip)]
    pub source: String,
}

/// A mapping whose keys must be unique: YAML allows a key twice, and the second would silently
/// win (a copied request that replaces the original without a word).
fn unique<'de, D, V>(d: D) -> Result<IndexMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Visit<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
        type Value = IndexMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some(k) = m.next_key::<String>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key `{k}`: the second would silently replace the first — rename or remove one"
                    )));
                }
                let v = m.next_value()?;
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(IndexMap::new())
        }
    }
    d.deserialize_map(Visit(std::marker::PhantomData))
}

/// [`unique`] for a mapping of mappings (environments of variables).
fn unique_nested<'de, D>(d: D) -> Result<IndexMap<String, IndexMap<String, VarDef>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Inner(#[serde(deserialize_with = "unique")] IndexMap<String, VarDef>);
    let outer: IndexMap<String, Inner> = unique(d)?;
    Ok(outer.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// A variable definition: a plain value, or a value with flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum VarDef {
    /// `name: {value: ..., secret: true}`
    Detailed(DetailedVar),
    /// `name: value`
    Plain(serde_json::Value),
}

/// The long form of a variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedVar {
    /// The value (a template when a string).
    pub value: serde_json::Value,
    /// Mask this variable everywhere.
    #[serde(default)]
    pub secret: bool,
    /// Prose shown by `vars`.
    #[serde(default)]
    pub description: Option<String>,
    /// The hosts a secret may be sent to (`api.example.com`, `*.example.com`, `host:port`).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
}

/// The keys of a variable's long form.
const DETAILED_VAR_KEYS: [&str; 4] = ["value", "secret", "description", "hosts"];

impl VarDef {
    /// The (unrendered) value.
    pub fn value(&self) -> &serde_json::Value {
        match self {
            VarDef::Detailed(d) => &d.value,
            VarDef::Plain(v) => v,
        }
    }
    /// Whether declared `secret: true`.
    pub fn declared_secret(&self) -> bool {
        matches!(self, VarDef::Detailed(d) if d.secret)
    }
    /// The hosts a secret is bound to, when it names them.
    pub fn hosts(&self) -> Option<&[String]> {
        match self {
            VarDef::Detailed(d) => d.hosts.as_deref(),
            VarDef::Plain(_) => None,
        }
    }
}

/// Which tool's run-time behaviour a collection follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// Newman's: variables in Postman's scopes (globals < collection < environment < iteration
    /// data < local), redirects followed, no automatic chaining (values come from captures and
    /// scripts only).
    Newman,
}

/// JavaScript run before a request is sent and after its response arrives (see `pm.js`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripts {
    /// Before the request is rendered: may set variables, change headers, skip the request.
    #[serde(default)]
    pub pre: Option<String>,
    /// After the response: `pm.test`s, variables, `setNextRequest`.
    #[serde(default)]
    pub post: Option<String>,
}

/// A folder: requests name it in `folder:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    /// What the folder holds.
    #[serde(default)]
    pub description: Option<String>,
    /// Scripts run for every request in the folder (and its subfolders).
    #[serde(default)]
    pub script: Option<Scripts>,
}

/// A saved example response (from a Postman collection or a HAR file).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Status code.
    pub status: u16,
    /// Response headers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// A text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The request that produced it, when it differs from the request's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<ExampleRequest>,
}

/// The request side of an [`Example`].
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExampleRequest {
    /// Method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// A text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One part of a `multipart:` body: a text value, or a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Part {
    /// `field: value` (a template).
    Text(Scalar),
    /// `field: {file: PATH, content_type: ..., filename: ...}`.
    File(FilePart),
}

/// A file part of a `multipart:` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePart {
    /// The file, relative to the collection (a template).
    pub file: String,
    /// Its media type (default from the extension, else `application/octet-stream`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// The file name sent (default the file's own).
    #[serde(default)]
    pub filename: Option<String>,
}

/// One HTTP request template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The request's name where it came from (`Create Article`); shown beside its key.
    #[serde(default)]
    pub title: Option<String>,
    /// The folder it belongs to (`Articles/Comments`); `run --folder` runs a folder's requests.
    #[serde(default)]
    pub folder: Option<String>,
    /// Prose shown before the step in the REPL.
    #[serde(default)]
    pub note: Option<String>,
    /// HTTP method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// URL template.
    pub url: String,
    /// Query parameters, appended to the URL (values are templates).
    #[serde(default, deserialize_with = "unique")]
    pub query: IndexMap<String, Scalar>,
    /// Request headers (values are templates).
    #[serde(default, deserialize_with = "unique")]
    pub headers: IndexMap<String, Scalar>,
    /// JSON body; every string inside is a template, and a string that is exactly one `<<expr>>`
    /// is replaced by the expression's value (so lists and objects can be spliced in).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// `application/x-www-form-urlencoded` body.
    #[serde(default)]
    pub form: Option<IndexMap<String, Scalar>>,
    /// Raw text body.
    #[serde(default)]
    pub text: Option<String>,
    /// `multipart/form-data` body: text fields and files.
    #[serde(default, deserialize_with = "unique")]
    pub multipart: IndexMap<String, Part>,
    /// Authentication.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Explicit captures; they win over automatic ones.
    #[serde(default, deserialize_with = "unique")]
    pub capture: IndexMap<String, CaptureSpec>,
    /// Assertions checked against the response.
    #[serde(default)]
    pub assert: Vec<AssertSpec>,
    /// Follow redirects (off by default so OAuth redirects stay observable; on under
    /// `compat: newman`).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Timeout, e.g. `30s` (default 30s).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Scripts run before sending and after the response.
    #[serde(default)]
    pub script: Option<Scripts>,
    /// Saved example responses (kept from an import).
    #[serde(default)]
    pub examples: Vec<Example>,
}

impl Request {
    /// Every string of the request that is rendered as a template, with the key path of its field
    /// inside the request (`["url"]`, `["headers", "Authorization"]`, `["json"]`, ...).
    pub fn template_sources(&self) -> Vec<(Vec<String>, &str)> {
        let one = |k: &str| vec![k.to_string()];
        let two = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        let mut out: Vec<(Vec<String>, &str)> = vec![(one("url"), self.url.as_str())];
        out.extend(
            self.query
                .iter()
                .map(|(k, v)| (two("query", k), v.0.as_str())),
        );
        out.extend(
            self.headers
                .iter()
                .map(|(k, v)| (two("headers", k), v.0.as_str())),
        );
        match &self.auth {
            Some(Auth::Basic { user, password }) => {
                out.push((
                    vec!["auth".into(), "basic".into(), "user".into()],
                    user.as_str(),
                ));
                out.push((
                    vec!["auth".into(), "basic".into(), "password".into()],
                    password.as_str(),
                ));
            }
            Some(Auth::Bearer(t)) => out.push((two("auth", "bearer"), t.as_str())),
            None => {}
        }
        if let Some(f) = &self.form {
            out.extend(f.iter().map(|(k, v)| (two("form", k), v.0.as_str())));
        }
        if let Some(t) = &self.text {
            out.push((one("text"), t.as_str()));
        }
        for (k, p) in &self.multipart {
            match p {
                Part::Text(v) => out.push((two("multipart", k), v.0.as_str())),
                Part::File(f) => out.push((
                    vec!["multipart".into(), k.clone(), "file".into()],
                    f.file.as_str(),
                )),
            }
        }
        if let Some(j) = &self.json {
            let mut found = Vec::new();
            crate::capture::json_str_refs(j, &mut found);
            out.extend(found.into_iter().map(|s| (one("json"), s)));
        }
        for (i, a) in self.assert.iter().enumerate() {
            let at = |k: &str| vec!["assert".to_string(), i.to_string(), k.to_string()];
            if let Some(e) = &a.equals {
                let mut found = Vec::new();
                crate::capture::json_str_refs(e, &mut found);
                out.extend(found.into_iter().map(|s| (at("equals"), s)));
            }
            if let Some(m) = &a.matches {
                out.push((at("matches"), m.as_str()));
            }
        }
        out
    }
}

fn default_method() -> String {
    "GET".into()
}

/// A scalar YAML value used as text (`limit: 50` and `limit: "50"` mean the same).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(
                    serde_json::Number::from_f64(v)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| v.to_string()),
                ))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Request authentication: `auth: {basic: {user, password}}` or `auth: {bearer: TOKEN}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "AuthSpec")]
pub enum Auth {
    /// HTTP Basic.
    Basic {
        /// User (client id).
        user: String,
        /// Password (client secret).
        password: String,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
}

/// The YAML shape of [`Auth`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    #[serde(default)]
    basic: Option<BasicSpec>,
    #[serde(default)]
    bearer: Option<String>,
}

/// `basic: {user, password}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSpec {
    user: String,
    password: String,
}

impl TryFrom<AuthSpec> for Auth {
    type Error = String;
    fn try_from(a: AuthSpec) -> Result<Auth, String> {
        match (a.basic, a.bearer) {
            (Some(b), None) => Ok(Auth::Basic {
                user: b.user,
                password: b.password,
            }),
            (None, Some(t)) => Ok(Auth::Bearer(t)),
            _ => Err(
                "`auth` takes exactly one of `basic: {user, password}` or `bearer: TOKEN`".into(),
            ),
        }
    }
}

/// A capture: a JSONPath shorthand string, or the long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CaptureSpec {
    /// `name: $.path`
    Path(String),
    /// `name: {jsonpath|header|regex: ..., from: ..., secret: ...}`
    Detailed(DetailedCapture),
}

/// Long-form capture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedCapture {
    /// JSONPath into the body.
    #[serde(default)]
    pub jsonpath: Option<String>,
    /// A response header.
    #[serde(default)]
    pub header: Option<String>,
    /// A regex (first capture group, or the whole match) over `from`.
    #[serde(default)]
    pub regex: Option<String>,
    /// What `regex` reads: `body` (default) or `header:NAME`.
    #[serde(default)]
    pub from: Option<String>,
    /// Mask the captured value.
    #[serde(default)]
    pub secret: bool,
    /// Matching nothing is not an error (the variable is left as it was).
    #[serde(default)]
    pub optional: bool,
}

/// One assertion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertSpec {
    /// Shown instead of the generated description (an imported `pm.test` keeps its name).
    #[serde(default)]
    pub name: Option<String>,
    /// Expected status, or one of a list.
    #[serde(default)]
    pub status: Option<StatusSpec>,
    /// JSONPath into the body.
    #[serde(default)]
    pub jsonpath: Option<String>,
    /// A response header.
    #[serde(default)]
    pub header: Option<String>,
    /// Response time must be below this many milliseconds.
    #[serde(default)]
    pub max_ms: Option<u64>,
    /// The selected value equals this (`equals: null` asserts a null, not "no predicate").
    #[serde(default, deserialize_with = "present")]
    pub equals: Option<serde_json::Value>,
    /// The selected value exists (true) or does not (false).
    #[serde(default)]
    pub exists: Option<bool>,
    /// The selected value (as text) matches this regex.
    #[serde(default)]
    pub matches: Option<String>,
}

/// A key that is present is `Some`, even when its value is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `status: 200` or `status: [200, 201]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// One status.
    One(u16),
    /// Any of these.
    Any(Vec<u16>),
}

impl StatusSpec {
    /// Whether `status` satisfies the spec.
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusSpec::One(s) => *s == status,
            StatusSpec::Any(v) => v.contains(&status),
        }
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSpec::One(s) => write!(f, "{s}"),
            StatusSpec::Any(v) => {
                let parts: Vec<String> = v.iter().map(|s| s.to_string()).collect();
                write!(f, "one of {}", parts.join(", "))
            }
        }
    }
}

/// A named ordered list of steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// What the flow does.
    #[serde(default)]
    pub description: Option<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A flow step: a request name, or the long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Step {
    /// `- token`
    Name(String),
    /// `- request: token ...`
    Detailed(DetailedStep),
}

/// Long-form step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedStep {
    /// The request to send.
    pub request: String,
    /// Send only when this expression is true (evaluated just before the step).
    #[serde(default)]
    pub when: Option<String>,
    /// Re-send until this expression is true (polling).
    #[serde(default)]
    pub until: Option<String>,
    /// Pause between polls (default 1s).
    #[serde(default)]
    pub interval: Option<String>,
    /// Give up polling after this many attempts (default 30).
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

impl Step {
    /// The request the step sends.
    pub fn request(&self) -> &str {
        match self {
            Step::Name(n) => n,
            Step::Detailed(d) => &d.request,
        }
    }
    /// The `when` condition.
    pub fn when(&self) -> Option<&str> {
        match self {
            Step::Detailed(d) => d.when.as_deref(),
            Step::Name(_) => None,
        }
    }
    /// The polling form, if any.
    pub fn poll(&self) -> Option<Poll<'_>> {
        match self {
            Step::Detailed(DetailedStep {
                until: Some(until),
                interval,
                max_attempts,
                ..
            }) => Some(Poll {
                until,
                interval: interval
                    .as_deref()
                    .and_then(|i| crate::util::parse_duration(i).ok())
                    .unwrap_or(std::time::Duration::from_secs(1)),
                max_attempts: max_attempts.unwrap_or(30).max(1),
            }),
            _ => None,
        }
    }
}

/// The polling form of a step.
#[derive(Debug, Clone, Copy)]
pub struct Poll<'a> {
    /// Stop when this is true.
    pub until: &'a str,
    /// Pause between attempts.
    pub interval: std::time::Duration,
    /// Maximum attempts.
    pub max_attempts: u32,
}

/// OAuth2 client configuration: which requests play which role, which variables hold tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The authorize request (its rendered URL is opened in the browser).
    pub authorize: String,
    /// The code-exchange request (sent with `code` set from the callback).
    pub token: String,
    /// The refresh request.
    #[serde(default)]
    pub refresh: Option<String>,
    /// The device-authorization request.
    #[serde(default)]
    pub device_authorize: Option<String>,
    /// The device token poll request.
    #[serde(default)]
    pub device_token: Option<String>,
    /// Variable holding the access token (default `access_token`).
    #[serde(default = "default_access_var")]
    pub access_token: String,
    /// Variable holding the refresh token (default `refresh_token`).
    #[serde(default = "default_refresh_var")]
    pub refresh_token: String,
    /// Variable holding the redirect URI (default `redirect_uri`).
    #[serde(default = "default_redirect_var")]
    pub redirect_uri: String,
    /// Variable the authorize request's `state` comes from (default `oauth_state`); `login`
    /// sets it to a fresh random value and checks the redirect carries it back.
    #[serde(default = "default_state_var")]
    pub state: String,
    /// Variable the token request's authorization code comes from (default `code`).
    #[serde(default = "default_code_var")]
    pub code: String,
    /// Use PKCE S256 (`login` sets `code_verifier` and `code_challenge` before authorize).
    #[serde(default)]
    pub pkce: bool,
    /// How the client authenticates at the token endpoint. When given, postie adds it to the
    /// token and refresh requests itself (`basic`: RFC 6749 §2.3.1 form-encoded Basic; `post`:
    /// `client_id` and `client_secret` in the form; `none`: a public client's `client_id`).
    #[serde(default)]
    pub client_auth: Option<crate::state::ClientAuth>,
    /// Variable holding the client id (default `client_id`), for `client_auth`.
    #[serde(default = "default_client_id_var")]
    pub client_id: String,
    /// Variable holding the client secret (default `client_secret`), for `client_auth`.
    #[serde(default = "default_client_secret_var")]
    pub client_secret: String,
}

impl OAuth2Config {
    /// The variables the OAuth2 engine reads or sets by name.
    pub fn named_variables(&self) -> std::collections::BTreeSet<&str> {
        let mut out: std::collections::BTreeSet<&str> = [
            self.access_token.as_str(),
            self.refresh_token.as_str(),
            self.redirect_uri.as_str(),
            self.state.as_str(),
            self.code.as_str(),
        ]
        .into();
        if self.client_auth.is_some() {
            out.extend([self.client_id.as_str(), self.client_secret.as_str()]);
        }
        out
    }

    /// The role a request plays at the token endpoint, if any.
    pub fn token_role(&self, request: &str) -> Option<TokenRole> {
        if request == self.token {
            Some(TokenRole::Code)
        } else if self.refresh.as_deref() == Some(request) {
            Some(TokenRole::Refresh)
        } else if self.device_token.as_deref() == Some(request) {
            Some(TokenRole::Device)
        } else {
            None
        }
    }

    /// Whether a request is one of the engine's own (authorize, token, refresh, device).
    pub fn is_engine_request(&self, request: &str) -> bool {
        request == self.authorize
            || self.device_authorize.as_deref() == Some(request)
            || self.token_role(request).is_some()
    }
}

/// What a request does at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// Exchanges an authorization code.
    Code,
    /// Refreshes.
    Refresh,
    /// Polls the device flow.
    Device,
}

fn default_access_var() -> String {
    "access_token".into()
}
fn default_refresh_var() -> String {
    "refresh_token".into()
}
fn default_redirect_var() -> String {
    "redirect_uri".into()
}
fn default_state_var() -> String {
    "oauth_state".into()
}
fn default_code_var() -> String {
    "code".into()
}
fn default_client_id_var() -> String {
    "client_id".into()
}
fn default_client_secret_var() -> String {
    "client_secret".into()
}

/// A loading error with its location.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong and what to do.
    pub message: String,
    /// The offending line of source, when known.
    pub snippet: Option<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(s) = &self.snippet {
            let (shown, caret) = excerpt(s, self.column.saturating_sub(1), SNIPPET_CHARS);
            write!(
                f,
                "\n{:>5} | {shown}\n      | {}^",
                self.line,
                " ".repeat(caret)
            )?;
        }
        Ok(())
    }
}

/// The most of an offending line an error shows.
const SNIPPET_CHARS: usize = 160;

/// At most `width` characters of `line` around character `col`, with `…` where it was cut, and
/// the caret's position in what is shown. A 200 kB line is not echoed back whole.
fn excerpt(line: &str, col: usize, width: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= width {
        return (line.to_string(), col);
    }
    let start = col
        .saturating_sub(width / 2)
        .min(chars.len().saturating_sub(width));
    let end = (start + width).min(chars.len());
    let mut out = String::new();
    let mut caret = col - start;
    if start > 0 {
        out.push('…');
        caret += 1;
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    (out, caret)
}

impl LoadError {
    /// An error at a line and column of `source` (1-based), showing that line.
    pub fn at(
        file: &Path,
        source: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let snippet = (line > 0).then(|| source.lines().nth(line - 1).unwrap_or("").to_string());
        LoadError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            snippet,
        }
    }
}

impl Collection {
    /// Reads and parses a collection file.
    pub fn load(path: &Path) -> Result<Collection, LoadError> {
        use std::io::Read as _;
        let whole = |message: String| LoadError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
            snippet: None,
        };
        let limit = crate::limits::get().collection_size;
        let too_big = |n: u64| {
            whole(format!(
                "the collection is {}, over the {} limit on a collection file; split it, or raise \
                 the limit with `--limit collection-size={}MiB`",
                crate::limits::bytes(n),
                crate::limits::bytes(limit),
                (n >> 20) + 1
            ))
        };
        let file = std::fs::File::open(path)
            .map_err(|e| whole(format!("cannot read the collection: {e}")))?;
        if let Ok(meta) = file.metadata()
            && meta.len() > limit
        {
            return Err(too_big(meta.len()));
        }
        // Read at most one byte past the limit: a file that grows, or a device, stops there.
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| whole(format!("cannot read the collection: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(too_big(bytes.len() as u64));
        }
        let source = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let good = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
            let line = good.matches('\n').count() + 1;
            let col = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            LoadError::at(
                path,
                &good,
                line,
                col,
                format!("not UTF-8 text (byte {at}); save the file as UTF-8"),
            )
        })?;
        Self::parse(path, source)
    }

    /// Parses collection text; `path` is used for messages and to find `.env` and state.
    pub fn parse(path: &Path, source: String) -> Result<Collection, LoadError> {
        if let Err((line, col, message)) = crate::util::yaml_nesting(&source) {
            return Err(LoadError::at(path, &source, line, col, message));
        }
        let mut c: Collection = serde_yaml::from_str(&source).map_err(|e| {
            let (mut line, mut col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            // serde_yaml points at the mapping; point at the key's second occurrence instead.
            if let Some(key) = duplicate_key(&e.to_string())
                && let Some(at) = second_key(&source, line, col, &key)
            {
                (line, col) = at;
            }
            LoadError::at(
                path,
                &source,
                line,
                col,
                friendly_yaml_message(&e.to_string()),
            )
        })?;
        c.path = path.to_path_buf();
        c.source = source;
        c.check()?;
        Ok(c)
    }

    /// Whether the collection runs as Newman would (`compat: newman`).
    pub fn newman(&self) -> bool {
        self.compat == Some(Compat::Newman)
    }

    /// Whether a request follows redirects: its own setting, else the collection's default
    /// (on under `compat: newman`, off otherwise).
    pub fn follows_redirects(&self, req: &Request) -> bool {
        req.follow_redirects.unwrap_or(self.newman())
    }

    /// The scripts that run for a request, outermost first: the collection's, each enclosing
    /// folder's, the request's own — with a label for messages. `post` picks the phase.
    pub fn scripts_for(&self, name: &str, post: bool) -> Vec<crate::script::Source<'_>> {
        let Some(req) = self.requests.get(name) else {
            return vec![];
        };
        let phase = if post { "post" } else { "pre" };
        fn pick(s: &Option<Scripts>, post: bool) -> Option<&str> {
            s.as_ref().and_then(|s| {
                if post {
                    s.post.as_deref()
                } else {
                    s.pre.as_deref()
                }
            })
        }
        let mut out = Vec::new();
        if let Some(code) = pick(&self.script, post) {
            out.push(crate::script::Source {
                label: format!("collection script.{phase}"),
                code,
            });
        }
        if let Some(folder) = &req.folder {
            let mut path = String::new();
            for part in folder.split('/') {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(part);
                if let Some(code) = self.folders.get(&path).and_then(|f| pick(&f.script, post)) {
                    out.push(crate::script::Source {
                        label: format!("folder `{path}` script.{phase}"),
                        code,
                    });
                }
            }
        }
        if let Some(code) = pick(&req.script, post) {
            out.push(crate::script::Source {
                label: format!("request `{name}` script.{phase}"),
                code,
            });
        }
        out
    }

    /// The text of every script in the collection (collection, folders, requests).
    pub fn script_texts(&self) -> Vec<&str> {
        fn both(s: &Option<Scripts>) -> Vec<&str> {
            s.as_ref()
                .map(|s| {
                    s.pre
                        .iter()
                        .chain(s.post.iter())
                        .map(String::as_str)
                        .collect()
                })
                .unwrap_or_default()
        }
        let mut out = both(&self.script);
        for f in self.folders.values() {
            out.extend(both(&f.script));
        }
        for r in self.requests.values() {
            out.extend(both(&r.script));
        }
        out
    }

    /// Whether any script runs for this request (in either phase).
    pub fn has_scripts(&self, name: &str) -> bool {
        !self.scripts_for(name, false).is_empty() || !self.scripts_for(name, true).is_empty()
    }

    /// The directory holding the collection (where `.env` and `.postie/` live).
    pub fn dir(&self) -> PathBuf {
        crate::util::dir_of(&self.path)
    }

    /// An error located at a key path such as `["requests", "token", "url"]`.
    pub fn error_at(&self, key_path: &[&str], message: impl Into<String>) -> LoadError {
        let (line, col) = locate(&self.source, key_path).unwrap_or((0, 0));
        LoadError::at(&self.path, &self.source, line, col, message)
    }

    /// Structural checks that serde cannot express.
    fn check(&self) -> Result<(), LoadError> {
        let most = crate::limits::get().requests;
        if let Some((name, _)) = self.requests.get_index(most) {
            return Err(self.error_at(
                &["requests", name],
                format!(
                    "the collection has {} requests, over the limit of {most}; split it, or raise \
                     the limit with `--limit requests={}`",
                    self.requests.len(),
                    self.requests.len()
                ),
            ));
        }
        // `<<name>>` of a request means its last exchange; a variable of the same name would hide
        // it (or be hidden by it), so the two may not share a name.
        let envs = self
            .environments
            .iter()
            .flat_map(|(e, m)| m.keys().map(move |k| (Some(e.as_str()), k)));
        for (env, var) in self.variables.keys().map(|k| (None, k)).chain(envs) {
            if self.requests.contains_key(var) || var == "env" {
                let path: Vec<&str> = match env {
                    Some(e) => vec!["environments", e, var],
                    None => vec!["variables", var],
                };
                return Err(self.error_at(
                    &path,
                    format!("variable `{var}` has the name of {}; `<<{var}>>` means {} — rename the variable", if var == "env" {"the process environment".to_string()} else {format!("request `{var}`")}, if var == "env" {"the process environment".to_string()} else {"that request's last exchange".to_string()}),
                ));
            }
        }
        // `{value: ..., secret: true}` is the long form of a variable; with a key it does not
        // know, serde would take the whole mapping as a literal object and send it as text.
        let envs = self
            .environments
            .iter()
            .flat_map(|(e, m)| m.iter().map(move |(k, v)| (Some(e.as_str()), k, v)));
        for (env, var, def) in self.variables.iter().map(|(k, v)| (None, k, v)).chain(envs) {
            if let VarDef::Plain(serde_json::Value::Object(m)) = def
                && m.contains_key("value")
            {
                let known: Vec<String> = DETAILED_VAR_KEYS.iter().map(|k| k.to_string()).collect();
                let unknown: Vec<&String> = m.keys().filter(|k| !known.contains(k)).collect();
                let first = unknown.first().map(|k| k.as_str()).unwrap_or("");
                let mut path: Vec<&str> = match env {
                    Some(e) => vec!["environments", e, var],
                    None => vec!["variables", var],
                };
                path.push(first);
                return Err(self.error_at(
                    &path,
                    format!(
                        "variable `{var}` is written in the long form (with `value:`), which takes only `value`, `secret`, `description` and `hosts`; unknown `{first}`{} — to give a literal mapping that has a `value` key, write `{var}: {{value: {{...}}}}`",
                        suggest(first, known.iter())
                    ),
                ));
            }
        }
        // `hosts:` binds a secret; on anything else it would promise a protection it cannot give.
        let envs = self
            .environments
            .iter()
            .flat_map(|(e, m)| m.iter().map(move |(k, v)| (Some(e.as_str()), k, v)));
        for (env, var, def) in self.variables.iter().map(|(k, v)| (None, k, v)).chain(envs) {
            let VarDef::Detailed(d) = def else { continue };
            let Some(hosts) = &d.hosts else { continue };
            let path: Vec<&str> = match env {
                Some(e) => vec!["environments", e, var, "hosts"],
                None => vec!["variables", var, "hosts"],
            };
            if !d.secret {
                return Err(self.error_at(
                    &path,
                    format!("variable `{var}` lists `hosts:` but is not `secret: true`; hosts bind a secret to where it may be sent — add `secret: true`"),
                ));
            }
            if hosts.is_empty() {
                return Err(self.error_at(
                    &path,
                    format!(
                        "variable `{var}` has an empty `hosts:`; list the hosts it may be sent to"
                    ),
                ));
            }
            for h in hosts {
                if let Err(e) = crate::secret_hosts::check_pattern(h) {
                    return Err(self.error_at(&path, format!("variable `{var}`, hosts: {e}")));
                }
            }
        }
        for (name, req) in &self.requests {
            for cname in req.capture.keys() {
                if self.requests.contains_key(cname) || cname == "env" {
                    return Err(self.error_at(
                        &["requests", name, "capture", cname],
                        format!("capture `{cname}` has the name of {}; `<<{cname}>>` already means {} — choose another name", if cname == "env" {"the process environment"} else {"a request"}, if cname == "env" {"the process environment"} else {"that request's last exchange"}),
                    ));
                }
            }
        }
        for (name, req) in &self.requests {
            let bodies = [
                req.json.is_some(),
                req.form.is_some(),
                req.text.is_some(),
                !req.multipart.is_empty(),
            ];
            if bodies.iter().filter(|b| **b).count() > 1 {
                return Err(self.error_at(
                    &["requests", name],
                    format!("request `{name}` has more than one body; use exactly one of `json`, `form`, `text` or `multipart`"),
                ));
            }
            if req.method.parse::<reqwest::Method>().is_err() || req.method.is_empty() {
                return Err(self.error_at(
                    &["requests", name, "method"],
                    format!(
                        "`{}` is not an HTTP method (expected GET, POST, PUT, DELETE, PATCH, ...)",
                        req.method
                    ),
                ));
            }
            for h in req.headers.keys() {
                if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(self.error_at(
                        &["requests", name, "headers", h],
                        format!("`{h}` is not a valid header name (letters, digits and `-`, no spaces or `:`)"),
                    ));
                }
            }
            if let Some(t) = &req.timeout
                && let Err(e) = crate::util::parse_duration(t)
            {
                return Err(self.error_at(&["requests", name, "timeout"], e));
            }
            if let Some(f) = &req.folder
                && (f.is_empty() || f.starts_with('/') || f.ends_with('/') || f.contains("//"))
            {
                return Err(self.error_at(
                    &["requests", name, "folder"],
                    format!("folder `{f}` is not a folder path; write `Name` or `Outer/Inner`"),
                ));
            }
            for (cname, spec) in &req.capture {
                if let Err(msg) = check_capture(spec) {
                    return Err(self.error_at(
                        &["requests", name, "capture", cname],
                        format!("capture `{cname}`: {msg}"),
                    ));
                }
            }
            for (i, a) in req.assert.iter().enumerate() {
                let idx = i.to_string();
                if let Err(msg) = check_assert(a) {
                    return Err(self.error_at(&["requests", name, "assert", &idx], msg));
                }
            }
        }
        for (fname, flow) in &self.flows {
            if flow.steps.is_empty() {
                return Err(self.error_at(
                    &["flows", fname, "steps"],
                    format!("flow `{fname}` has no steps"),
                ));
            }
            for (i, step) in flow.steps.iter().enumerate() {
                let idx = i.to_string();
                if !self.requests.contains_key(step.request()) {
                    return Err(self.error_at(
                        &["flows", fname, "steps", &idx],
                        format!(
                            "flow `{fname}` step {} names request `{}`, which does not exist{}",
                            i + 1,
                            step.request(),
                            suggest(step.request(), self.requests.keys())
                        ),
                    ));
                }
                if let Step::Detailed(d) = step {
                    if let Some(iv) = &d.interval
                        && let Err(e) = crate::util::parse_duration(iv)
                    {
                        return Err(self.error_at(&["flows", fname, "steps", &idx, "interval"], e));
                    }
                    if (d.interval.is_some() || d.max_attempts.is_some()) && d.until.is_none() {
                        return Err(self.error_at(
                            &["flows", fname, "steps", &idx],
                            "`interval` and `max_attempts` only make sense with `until:`",
                        ));
                    }
                }
            }
        }
        if let Some(t) = &self.script_timeout
            && let Err(e) = crate::util::parse_duration(t)
        {
            return Err(self.error_at(&["script_timeout"], e));
        }
        if let Some(o) = &self.oauth2 {
            let roles = [
                ("authorize", Some(&o.authorize)),
                ("token", Some(&o.token)),
                ("refresh", o.refresh.as_ref()),
                ("device_authorize", o.device_authorize.as_ref()),
                ("device_token", o.device_token.as_ref()),
            ];
            for (role, req) in roles {
                if let Some(r) = req
                    && !self.requests.contains_key(r)
                {
                    return Err(self.error_at(
                        &["oauth2", role],
                        format!(
                            "oauth2.{role} names request `{r}`, which does not exist{}",
                            suggest(r, self.requests.keys())
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_capture(spec: &CaptureSpec) -> Result<(), String> {
    match spec {
        CaptureSpec::Path(p) => JsonPath::parse(p).map(|_| ()),
        CaptureSpec::Detailed(d) => {
            let n = [d.jsonpath.is_some(), d.header.is_some(), d.regex.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if n != 1 {
                return Err("give exactly one of `jsonpath`, `header` or `regex`".into());
            }
            if let Some(p) = &d.jsonpath {
                JsonPath::parse(p)?;
            }
            if let Some(r) = &d.regex {
                regex::Regex::new(r).map_err(|e| format!("bad regex: {e}"))?;
            }
            if let Some(from) = &d.from {
                if d.regex.is_none() {
                    return Err("`from` goes with `regex`".into());
                }
                if from != "body" && !from.starts_with("header:") {
                    return Err(format!("`from: {from}` must be `body` or `header:NAME`"));
                }
            }
            Ok(())
        }
    }
}

fn check_assert(a: &AssertSpec) -> Result<(), String> {
    let subjects = [
        a.status.is_some(),
        a.jsonpath.is_some(),
        a.header.is_some(),
        a.max_ms.is_some(),
    ];
    if subjects.iter().filter(|b| **b).count() != 1 {
        return Err(
            "an assertion checks exactly one of `status`, `jsonpath`, `header` or `max_ms`".into(),
        );
    }
    let predicates = [a.equals.is_some(), a.exists.is_some(), a.matches.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if a.jsonpath.is_some() || a.header.is_some() {
        if predicates != 1 {
            return Err("give exactly one of `equals`, `exists` or `matches`".into());
        }
    } else if predicates != 0 {
        return Err("`equals`, `exists` and `matches` go with `jsonpath` or `header`".into());
    }
    if let Some(p) = &a.jsonpath {
        JsonPath::parse(p)?;
    }
    if let Some(r) = &a.matches
        && !crate::template::is_template(r)
    {
        regex::Regex::new(r).map_err(|e| format!("bad regex in `matches`: {e}"))?;
    }
    Ok(())
}

fn duplicate_key(msg: &str) -> Option<String> {
    let rest = msg.split("duplicate key `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// The second line, from `line` on, where `key:` starts at column `col` (1-based).
fn second_key(source: &str, line: usize, col: usize, key: &str) -> Option<(usize, usize)> {
    let indent = col.saturating_sub(1);
    let mut seen = 0;
    for (i, l) in source.lines().enumerate().skip(line.saturating_sub(1)) {
        let Some(rest) = l.get(indent..) else {
            continue;
        };
        if l[..indent].trim().is_empty()
            && (rest.starts_with(&format!("{key}:"))
                || rest.starts_with(&format!("\"{key}\":"))
                || rest.starts_with(&format!("'{key}':")))
        {
            seen += 1;
            if seen == 2 {
                return Some((i + 1, col));
            }
        }
    }
    None
}

/// "did you mean `x`?" when a close name exists.
pub fn suggest<'a>(wrong: &str, candidates: impl Iterator<Item = &'a String>) -> String {
    let best = candidates
        .map(|c| (edit_distance(wrong, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// A name that is almost certainly what `wrong` meant to be: within one edit per four characters
/// (at least one). Stricter than [`suggest`], because it turns a guess into an error.
pub fn near_miss<'a>(
    wrong: &str,
    candidates: impl Iterator<Item = &'a String>,
) -> Option<&'a String> {
    let limit = (wrong.chars().count() / 4).max(1);
    candidates
        .filter(|c| c.as_str() != wrong)
        .map(|c| (edit_distance(wrong, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Turns serde_yaml's wording into advice; strips its trailing location (we print our own).
pub(crate) fn friendly_yaml_message(msg: &str) -> String {
    let located = regex::Regex::new(r" at line \d+ column \d+").expect("static regex");
    let msg = located.replace_all(msg, "");
    let msg = msg.as_ref();
    let mut out = msg.to_string();
    if msg.contains("unknown field") {
        out.push_str(" — remove it or fix its spelling");
    } else if msg.contains("did not match any variant of untagged enum CaptureSpec") {
        out = "a capture is a JSONPath string (`$.a.b`) or a mapping with one of `jsonpath`, `header`, `regex` (and optional `from`, `secret`, `optional`)".into();
    } else if msg.contains("untagged enum Step") {
        out = "a step is a request name, or a mapping with `request` and optional `when`, `until`, `interval`, `max_attempts`".into();
    } else if msg.contains("untagged enum VarDef") {
        out =
            "a variable is a value, or a mapping with `value` and optional `secret`, `description`"
                .into();
    } else if msg.contains("untagged enum StatusSpec") {
        out = "`status` is a number or a list of numbers".into();
    }
    out
}

/// Finds the 1-based line and column of a key path in YAML text, by indentation.
///
/// Segments are mapping keys, or decimal indexes into block sequences (`- item`). Returns the
/// deepest position found, so a partly-matching path still points near the problem.
pub fn locate(source: &str, path: &[&str]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut start = 0usize;
    let mut parent: isize = -1;
    let mut inside_item = false;
    let mut found = None;
    for seg in path {
        let index: Option<usize> = seg.parse().ok();
        let mut block_indent: Option<usize> = None;
        let mut seen = 0usize;
        let mut hit = None;
        for (i, raw) in lines.iter().enumerate().skip(start) {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = raw.len() - trimmed.len();
            // Inside a sequence item, the item line's own key sits after its "- ".
            let (eff, body) = match trimmed.strip_prefix("- ") {
                Some(rest) if inside_item && i == start && index.is_none() => (indent + 2, rest),
                _ => (indent, trimmed),
            };
            // YAML lets a block sequence sit at its parent key's indentation.
            let same_level_seq =
                index.is_some() && trimmed.starts_with('-') && eff as isize == parent;
            if eff as isize <= parent && !same_level_seq {
                break;
            }
            if eff != *block_indent.get_or_insert(eff) {
                continue;
            }
            match index {
                Some(n) => {
                    if trimmed.starts_with('-') {
                        if seen == n {
                            hit = Some((i, indent + 2, true));
                            break;
                        }
                        seen += 1;
                    }
                }
                None => {
                    let key = body
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'');
                    if key == *seg && body.contains(':') {
                        hit = Some((i, eff, false));
                        break;
                    }
                }
            }
        }
        let Some((line, col0, is_item)) = hit else {
            break;
        };
        found = Some((line + 1, col0 + 1));
        if is_item {
            start = line;
            parent = col0 as isize - 1;
            inside_item = true;
        } else {
            start = line + 1;
            parent = col0 as isize;
            inside_item = false;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: t
variables:
  base: http://x
requests:
  token:
    method: POST
    url: <<base>>/token
    capture:
      contact_id: $.contacts[0].contact_id
  other:
    url: <<base>>/o
flows:
  main:
    steps:
      - token
      - request: other
        when: token.status == 200
";

    fn parse(src: &str) -> Result<Collection, LoadError> {
        Collection::parse(Path::new("c.yaml"), src.to_string())
    }

    #[test]
    fn loads_a_good_collection() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.requests.len(), 2);
        assert_eq!(c.flows["main"].steps[1].when(), Some("token.status == 200"));
    }

    #[test]
    fn unknown_field_names_file_line_col() {
        let src = GOOD.replace("    capture:", "    captrue:");
        let e = parse(&src).unwrap_err();
        assert_eq!((e.line, e.column), (8, 5), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("c.yaml:8:5: requests.token: unknown field `captrue`"),
            "{text}"
        );
        assert!(text.contains("    captrue:"), "{text}");
    }

    #[test]
    fn malformed_yaml_is_located() {
        let e = parse("name: t\nrequests:\n  a: {url: x\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().starts_with("c.yaml:4:"), "{e}");
        let e = parse("name: t\nrequests:\n  a:\n    url: x\n   bad: y\n").unwrap_err();
        assert_eq!((e.line, e.column), (5, 4), "{e}");
        assert!(!e.message.contains("at line"), "{e}");
    }

    #[test]
    fn missing_request_in_flow_is_located_with_suggestion() {
        let src = GOOD.replace("      - token\n", "      - tokn\n");
        let e = parse(&src).unwrap_err();
        assert_eq!((e.line, e.column), (15, 9), "{e}");
        assert!(e.message.contains("did you mean `token`?"), "{e}");
    }

    #[test]
    fn bad_capture_path_is_located() {
        let src = GOOD.replace("$.contacts[0].contact_id", "$.contacts[0.contact_id");
        let e = parse(&src).unwrap_err();
        assert_eq!((e.line, e.column), (9, 7), "{e}");
        assert!(e.message.starts_with("capture `contact_id`"), "{e}");
    }

    #[test]
    fn two_bodies_rejected() {
        let src = GOOD.replace(
            "    url: <<base>>/o\n",
            "    url: <<base>>/o\n    json: {a: 1}\n    text: hi\n",
        );
        let e = parse(&src).unwrap_err();
        assert_eq!(e.line, 10, "{e}");
        assert!(e.message.contains("more than one body"));
    }

    #[test]
    fn wrong_type_is_located() {
        let src = GOOD.replace("    method: POST\n", "    method: [POST]\n");
        let e = parse(&src).unwrap_err();
        assert_eq!((e.line, e.column), (6, 13), "{e}");
    }

    #[test]
    fn near_misses_are_strict() {
        let names: Vec<String> = ["access_token", "device_token", "list_ids", "email"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            near_miss("acess_token", names.iter()).map(String::as_str),
            Some("access_token")
        );
        assert_eq!(near_miss("device_code", names.iter()), None);
        assert_eq!(
            near_miss("emial", names.iter()),
            None,
            "too short to be sure"
        );
        assert_eq!(
            near_miss("email", names.iter()),
            None,
            "itself is not a near miss"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let (shown, caret) = excerpt(&line, 1000, 160);
        assert!(shown.chars().count() <= 162, "{}", shown.len());
        assert_eq!(shown.chars().nth(caret), Some('X'));
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(excerpt("short", 2, 160), ("short".to_string(), 2));
    }

    #[test]
    fn locate_paths() {
        assert_eq!(locate(GOOD, &["requests", "other", "url"]), Some((11, 5)));
        assert_eq!(
            locate(GOOD, &["flows", "main", "steps", "1", "when"]),
            Some((17, 9))
        );
    }
}
