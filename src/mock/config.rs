//! The mock's configuration: `mocks/constant_contact.yaml` (bundled into the binary) or a file
//! given with `--config`. Every field is documented in `docs/mock.md`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Refresh token policy of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// Each refresh token works once; a new token set expires all earlier ones.
    Rotating,
    /// The same refresh token is returned and reusable.
    LongLived,
}

/// A registered application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// API key (a UUID in real accounts).
    pub client_id: String,
    /// Secret; absent for public (PKCE) clients.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Exact redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Refresh token policy.
    #[serde(default = "rotating")]
    pub refresh_tokens: RefreshPolicy,
    /// A public client (PKCE, no secret).
    #[serde(default)]
    pub public: bool,
    /// Shown on the consent page.
    #[serde(default = "default_app_name")]
    pub name: String,
}

fn rotating() -> RefreshPolicy {
    RefreshPolicy::Rotating
}
fn default_app_name() -> String {
    "An application".into()
}

/// The simulated account's user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Login (the `sub` claim).
    pub login: String,
    /// Okta user id (`uid`).
    pub uid: String,
    /// `platform_user_id` claim.
    pub platform_user_id: String,
    /// Confirmed opt-in enabled (sign-up-form contacts become pending_confirmation).
    #[serde(default)]
    pub confirmed_opt_in: bool,
}

/// The YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// PEM file of the RSA signing key (relative to the config file).
    pub signing_key: String,
    /// `kid` of the signing key.
    pub key_id: String,
    /// The user.
    pub account: Account,
    /// Redirect at once from `authorize` without a consent page.
    #[serde(default)]
    pub auto_approve: bool,
    /// Lifetimes (`24h`, `5m`, ...).
    #[serde(default)]
    pub lifetimes: LifetimeText,
    /// Activity speed.
    #[serde(default)]
    pub activities: ActivityText,
    /// Rate limits (enabled with `--rate-limit`).
    #[serde(default)]
    pub rate_limit: RateText,
    /// Journal entries kept.
    #[serde(default = "default_journal")]
    pub journal_size: usize,
    /// Registered applications.
    pub clients: Vec<Client>,
    /// Seed data files (relative to the config file).
    #[serde(default)]
    pub seed: Seed,
    /// Faults in force from the start (see docs/mock.md, Faults).
    #[serde(default)]
    pub faults: Vec<crate::mock::engine::faults::FaultSpec>,
}

fn default_journal() -> usize {
    1000
}

/// Lifetimes as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimeText {
    /// Access token.
    pub access_token: String,
    /// Authorization code.
    pub authorization_code: String,
    /// Refresh token idle expiry.
    pub refresh_idle: String,
    /// Device code.
    pub device_code: String,
    /// Device poll interval.
    pub device_interval: String,
}

impl Default for LifetimeText {
    fn default() -> Self {
        LifetimeText {
            access_token: "24h".into(),
            authorization_code: "5m".into(),
            refresh_idle: "180d".into(),
            device_code: "10m".into(),
            device_interval: "5s".into(),
        }
    }
}

/// Activity speed as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivityText {
    /// Rows per second of mock time.
    pub rows_per_second: u64,
    /// Time spent `initialized`.
    pub start_delay: String,
}

impl Default for ActivityText {
    fn default() -> Self {
        ActivityText {
            rows_per_second: 40_000,
            start_delay: "100ms".into(),
        }
    }
}

/// Rate limits as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateText {
    /// Requests per second per application.
    pub per_second: u32,
    /// Requests per UTC day per application.
    pub per_day: u32,
    /// Token requests per second per application (the token endpoint's own limit).
    pub token_per_second: u32,
}

impl Default for RateText {
    fn default() -> Self {
        RateText {
            per_second: 4,
            token_per_second: 1,
            per_day: 10_000,
        }
    }
}

/// Seed files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// JSON array of lists (`list_id`, `name`, `description`, `favorite`).
    #[serde(default)]
    pub lists: Option<String>,
    /// JSON array of import rows (`email`, `first_name`, ..., `list_names`).
    #[serde(default)]
    pub contacts: Option<String>,
    /// JSON array of custom fields (`custom_field_id`, `label`, `type`).
    #[serde(default)]
    pub custom_fields: Option<String>,
    /// JSON array of tags (`tag_id`, `name`, `tag_source`).
    #[serde(default)]
    pub tags: Option<String>,
}

/// Lifetimes in numbers.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access token seconds.
    pub access_s: i64,
    /// Code ms.
    pub code_ms: i64,
    /// Refresh idle ms.
    pub refresh_idle_ms: i64,
    /// Device code ms.
    pub device_ms: i64,
    /// Device interval seconds.
    pub device_interval_s: u64,
}

/// A ready configuration.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The file's content.
    pub file: FileConfig,
    /// Signing key PEM.
    pub key_pem: String,
    /// Seed lists.
    pub seed_lists: Vec<Value>,
    /// Seed contacts.
    pub seed_contacts: Vec<Value>,
    /// Seed custom fields.
    pub seed_custom_fields: Vec<Value>,
    /// Seed tags.
    pub seed_tags: Vec<Value>,
    /// Parsed lifetimes.
    pub lifetimes: Lifetimes,
    /// Activity speed.
    pub speed: crate::mock::packs::constant_contact::activities::Speed,
    /// Auto-approve (file or `--auto-approve`).
    pub auto_approve: bool,
    /// Enforce rate limits.
    pub rate_limit: bool,
    /// Bind address.
    pub host: String,
    /// Port (0 = any free one).
    pub port: u16,
    /// Where the simulation is saved.
    pub state_file: Option<PathBuf>,
    /// How long to wait for another process that holds the state file (zero: refuse at once).
    pub lock_wait: std::time::Duration,
    /// When an acknowledged write is durable.
    pub sync: super::wal::SyncMode,
    /// Clients (file + `--client`).
    pub clients: Vec<Client>,
    /// Serve the Constant Contact pack (its API under `/v3` and its authorization server).
    pub pack: bool,
    /// With the pack and no `--spec`: the vendor's own Swagger (bundled) answers every operation
    /// the pack does not simulate, validated, behind the same authorization server.
    pub vendor_contract: bool,
    /// A served OpenAPI document (`--spec`).
    pub spec: Option<std::sync::Arc<crate::mock::engine::spec::SpecServer>>,
    /// Serve the authorization server without the pack, and make the spec's OAuth2 operations
    /// require its tokens (`--oauth`).
    pub oauth: bool,
    /// Faults in force from the start: the file's `faults:` and `--fault`.
    pub faults: Vec<crate::mock::engine::faults::FaultSpec>,
    /// When set, `/__postie/*` needs `Authorization: Bearer <this>` (`--admin-token`).
    pub admin_token: Option<String>,
    /// Served stub files (`--stubs`): they answer first where they match.
    pub stubs: Option<std::sync::Arc<crate::mock::engine::stubs::Stubs>>,
}

const BUNDLED_CONFIG: &str = include_str!("../../mocks/constant_contact.yaml");
const BUNDLED_KEY: &str = include_str!("../../mocks/dev_signing_key.pem");
const BUNDLED_LISTS: &str = include_str!("../../fixtures/lists.json");
const BUNDLED_CONTACTS: &str = include_str!("../../fixtures/contacts.json");
const BUNDLED_CUSTOM_FIELDS: &str = include_str!("../../fixtures/custom_fields.json");
const BUNDLED_TAGS: &str = include_str!("../../fixtures/tags.json");
/// The vendor's Swagger 2.0 document (128 operations), served behind the pack.
pub const VENDOR_SWAGGER: &str =
    include_str!("../../fixtures/interop/openapi/constant-contact-v3-swagger.yaml");

impl MockConfig {
    /// The bundled configuration (compiled into the binary, so it works from any directory).
    pub fn bundled() -> Result<MockConfig, String> {
        Self::from_text(
            "mocks/constant_contact.yaml",
            BUNDLED_CONFIG,
            &|p: &str| match Path::new(p).file_name().and_then(|f| f.to_str()) {
                Some("dev_signing_key.pem") => Ok(BUNDLED_KEY.to_string()),
                Some("lists.json") => Ok(BUNDLED_LISTS.to_string()),
                Some("contacts.json") => Ok(BUNDLED_CONTACTS.to_string()),
                Some("custom_fields.json") => Ok(BUNDLED_CUSTOM_FIELDS.to_string()),
                Some("tags.json") => Ok(BUNDLED_TAGS.to_string()),
                _ => Err(format!(
                    "{p}: not bundled; use --config with a file on disk"
                )),
            },
        )
    }

    /// A configuration file on disk; relative paths inside resolve against its directory.
    pub fn load(path: &Path) -> Result<MockConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_text(&path.display().to_string(), &text, &|p: &str| {
            let full = dir.join(p);
            std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))
        })
    }

    fn from_text(
        name: &str,
        text: &str,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<MockConfig, String> {
        if let Err((line, col, message)) = crate::util::yaml_nesting(text) {
            return Err(format!("{name}:{line}:{col}: {message}"));
        }
        let file: FileConfig = serde_yaml::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{name}:{}:{}: {}", l.line(), l.column(), e),
            None => format!("{name}: {e}"),
        })?;
        let dur = |field: &str, s: &str| {
            crate::util::parse_duration(s)
                .map(|d| d.as_millis() as i64)
                .map_err(|e| format!("{name}: lifetimes.{field}: {e}"))
        };
        let lifetimes = Lifetimes {
            access_s: dur("access_token", &file.lifetimes.access_token)? / 1000,
            code_ms: dur("authorization_code", &file.lifetimes.authorization_code)?,
            refresh_idle_ms: dur("refresh_idle", &file.lifetimes.refresh_idle)?,
            device_ms: dur("device_code", &file.lifetimes.device_code)?,
            device_interval_s: (dur("device_interval", &file.lifetimes.device_interval)? / 1000)
                .max(1) as u64,
        };
        let speed = crate::mock::packs::constant_contact::activities::Speed {
            rows_per_second: file.activities.rows_per_second.max(1),
            start_delay_ms: crate::util::parse_duration(&file.activities.start_delay)
                .map_err(|e| format!("{name}: activities.start_delay: {e}"))?
                .as_millis() as i64,
        };
        let key_pem = read(&file.signing_key)?;
        let json_array = |p: &Option<String>| -> Result<Vec<Value>, String> {
            match p {
                None => Ok(vec![]),
                Some(p) => serde_json::from_str(&read(p)?).map_err(|e| format!("{p}: {e}")),
            }
        };
        let seed_lists = json_array(&file.seed.lists)?;
        let seed_contacts = json_array(&file.seed.contacts)?;
        let seed_custom_fields = json_array(&file.seed.custom_fields)?;
        let seed_tags = json_array(&file.seed.tags)?;
        for c in &file.clients {
            if !c.public && c.client_secret.is_none() {
                return Err(format!(
                    "{name}: client {} has no client_secret; mark it `public: true` for PKCE",
                    c.client_id
                ));
            }
        }
        let check = crate::mock::engine::faults::Faults::default();
        for (i, f) in file.faults.iter().enumerate() {
            check
                .add(f.clone())
                .map_err(|e| format!("{name}: faults[{i}]: {e}"))?;
        }
        Ok(MockConfig {
            faults: file.faults.clone(),
            auto_approve: file.auto_approve,
            clients: file.clients.clone(),
            file,
            key_pem,
            seed_lists,
            seed_contacts,
            seed_custom_fields,
            seed_tags,
            lifetimes,
            speed,
            rate_limit: false,
            host: "127.0.0.1".into(),
            port: 0,
            state_file: None,
            lock_wait: std::time::Duration::ZERO,
            sync: super::wal::SyncMode::default(),
            pack: true,
            vendor_contract: true,
            spec: None,
            oauth: false,
            admin_token: None,
            stubs: None,
        })
    }

    /// Keeps the simulation in this file (loaded at start, saved as it changes and at shutdown).
    pub fn with_state_file(mut self, path: PathBuf) -> MockConfig {
        self.state_file = Some(path);
        self
    }

    /// Registers an extra confidential client from `ID:SECRET:REDIRECT_URI`.
    pub fn add_client_spec(&mut self, spec: &str) -> Result<(), String> {
        let mut it = spec.splitn(3, ':');
        match (it.next(), it.next(), it.next()) {
            (Some(id), Some(secret), Some(uri))
                if !id.is_empty() && !secret.is_empty() && uri.contains("://") =>
            {
                self.clients.retain(|c| c.client_id != id);
                self.clients.push(Client {
                    client_id: id.into(),
                    client_secret: Some(secret.into()),
                    redirect_uris: vec![uri.into()],
                    refresh_tokens: RefreshPolicy::Rotating,
                    public: false,
                    name: format!("client {id}"),
                });
                Ok(())
            }
            _ => Err(format!(
                "--client `{spec}`: expected ID:SECRET:REDIRECT_URI"
            )),
        }
    }

    /// A registered client.
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == id)
    }
}
