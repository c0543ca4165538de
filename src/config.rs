//! The TOML config file of `metalfarm serve`: types, defaults and validation.
//!
//! Every key has a default, so `serve` with no file starts on embedded defaults
//! (SQLite under `./metalfarm-data/`, 127.0.0.1:8080, workflows from `./workflows/`).
//! A wrong key or value is a startup error naming the key and the file. Relative paths
//! are relative to the config file's folder (the working directory without a file), so
//! a config can be moved together with its key files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole configuration, with every path made absolute.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub forge: ForgeConfig,
    pub cobbler: Option<CobblerConfig>,
    pub ssh: SshConfig,
    #[serde(rename = "repo")]
    pub repos: Vec<RepoConfig>,
    #[serde(rename = "host")]
    pub hosts: Vec<HostConfig>,
    /// The folder relative paths are relative to: the config file's, or the working directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Base of the links check runs carry (`details_url`).
    pub public_url: String,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/metalfarm.db`.
    pub database: Option<String>,
    /// Bearer token for mutating API calls; relative to `data_dir` when it does not exist
    /// beside the config file, and created there on first start.
    pub admin_token_file: PathBuf,
    /// A job's lease on its host lapses when its holder has not renewed it for this
    /// long (the farm process died, or lost the job): the job is retried elsewhere and
    /// the host goes to `repairing`.
    #[serde(with = "duration_text")]
    pub lease_timeout: Duration,
    /// How often a job that met an infrastructure failure (host unreachable, SSH lost,
    /// disk full) is retried on another host before it fails.
    pub infra_retries: u32,
    /// Infrastructure failures in a row (jobs or repairs) after which a host is
    /// quarantined as `broken` until an admin unlocks it.
    pub broken_after: u32,
    /// The most of a job's log kept on disk, in bytes; past it the tail is kept.
    #[serde(with = "byte_size_text")]
    pub job_log_limit: u64,
    /// The most `actions/upload-artifact` stores: one size for each artifact and for a
    /// run's together, or `{ artifact = …, run = … }`.
    #[serde(with = "artifact_limit_text")]
    pub artifact_limit: ArtifactLimit,
    /// Whether reading the API and `/metrics` needs the admin token; default: `open` on
    /// a loopback listener, `token` otherwise (see [`ServerConfig::read_access`]).
    #[serde(rename = "read_access")]
    pub read_access_setting: Option<ReadAccess>,
    /// How long a connection may take to send a request's headers, from its opening or
    /// from the previous answer: slow senders and idle keep-alive connections are closed.
    #[serde(with = "duration_text")]
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive, from its headers.
    #[serde(with = "duration_text")]
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The memory webhook bodies being received may take together, in bytes; a delivery
    /// waits for its share (until `body_timeout`), then gets 503.
    #[serde(with = "byte_size_text")]
    pub webhook_memory: u64,
}

/// Who may read the REST API and `/metrics`: anyone who reaches the server, or only
/// callers with the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadAccess {
    Open,
    Token,
}

/// How many bytes of artifacts the farm keeps, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactLimit {
    /// One artifact's files together.
    pub artifact: u64,
    /// All the artifacts of one run.
    pub run: u64,
}

impl Default for ArtifactLimit {
    fn default() -> Self {
        ArtifactLimit { artifact: 4 << 30, run: 16 << 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    pub api_url: String,
    /// The GitHub App's id; without it the farm does not report to a forge.
    pub app_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
    pub webhook_secret_file: Option<PathBuf>,
    /// How long a request to the forge's API may wait for it: to connect, then for each
    /// read of the answer. Past it the request failed and is tried again later.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    Github,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CobblerConfig {
    pub url: String,
    #[serde(default = "default_cobbler_user")]
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub default_profile: Option<String>,
    /// How long an install may take; past it the host is power-cycled once more and
    /// given as long again.
    #[serde(default = "default_install_timeout", with = "duration_text")]
    pub install_timeout: Duration,
    /// The farm's base URL as the hosts reach it, where an install announces its new
    /// SSH host key (default: `[server] public_url`).
    pub announce_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    pub user: String,
    pub private_key_file: Option<PathBuf>,
    /// TCP connect, handshake and login together.
    #[serde(with = "duration_text")]
    pub connect_timeout: Duration,
    /// A keepalive after this long without a word from the host; after
    /// `keepalive_max` unanswered ones the connection counts as lost.
    #[serde(with = "duration_text")]
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
    /// How long a host that stopped answering during a job may take to answer again
    /// before the job counts as an infrastructure failure (the host is unreachable).
    #[serde(with = "duration_text")]
    pub reconnect_grace: Duration,
}

/// A secrets file (a repository's `secrets_file`, `metalfarm run --secret-file`):
/// `NAME = "value"` lines of TOML. The error is a whole sentence naming the file.
pub fn read_secrets_file(path: &Path) -> Result<indexmap::IndexMap<String, String>, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the secrets file {shown}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("the secrets file {shown} is not TOML: {}", format!("{e}").trim_end()))?;
    table
        .into_iter()
        .map(|(name, value)| match value {
            toml::Value::String(value) => Ok((name, value)),
            _ => Err(format!("secret `{name}` in {shown} must be a string")),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The forge's full name, `owner/name`.
    pub name: String,
    /// Farm-side workflow files for this repository (glob patterns, relative to the config).
    #[serde(default = "default_repo_workflows")]
    pub workflows: Vec<String>,
    /// Also read `.github/workflows` at the pushed commit through the forge API.
    #[serde(default)]
    pub repo_workflows: bool,
    /// The `secrets` of this repository's jobs: a TOML file of `NAME = "value"` lines
    /// (relative to the config). Never given to runs from forks; masked in every log.
    pub secrets_file: Option<PathBuf>,
    /// The `vars` context of this repository's jobs.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Defaults to `name`.
    pub address: Option<String>,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// The host's system name in Cobbler; defaults to `name`.
    pub cobbler_system: Option<String>,
    /// Its architecture, which is also one of its labels (`x64` or `arm64`).
    #[serde(default)]
    pub arch: Arch,
}

/// A host's CPU architecture, named as GitHub's runner labels name it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[default]
    X64,
    Arm64,
}

impl Arch {
    /// The implicit label every host of this architecture has.
    pub fn label(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: "metalfarm-data".into(),
            database: None,
            admin_token_file: "admin-token".into(),
            lease_timeout: Duration::from_secs(600),
            infra_retries: 2,
            broken_after: 3,
            job_log_limit: 64 << 20,
            artifact_limit: ArtifactLimit::default(),
            read_access_setting: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 512,
            webhook_memory: 64 << 20,
        }
    }
}

impl ServerConfig {
    /// `read_access` as set, else `open` when the farm listens on loopback only.
    pub fn read_access(&self) -> ReadAccess {
        self.read_access_setting.unwrap_or(if self.listen.ip().is_loopback() {
            ReadAccess::Open
        } else {
            ReadAccess::Token
        })
    }
}

impl Default for ForgeConfig {
    fn default() -> Self {
        ForgeConfig {
            kind: ForgeKind::Github,
            api_url: "https://api.github.com".into(),
            app_id: None,
            private_key_file: None,
            webhook_secret_file: None,
            request_timeout: crate::forge::app::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            user: "root".into(),
            private_key_file: None,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
            reconnect_grace: Duration::from_secs(60),
        }
    }
}

fn default_cobbler_user() -> String {
    "cobbler".into()
}
fn default_install_timeout() -> Duration {
    Duration::from_secs(45 * 60)
}
fn default_repo_workflows() -> Vec<String> {
    vec!["workflows/*.yml".into(), "workflows/*.yaml".into()]
}
fn default_ssh_port() -> u16 {
    22
}

impl Config {
    /// The embedded defaults, with paths relative to `base` (the working directory).
    pub fn embedded(base: &Path) -> Config {
        let mut config = Config::default();
        config.resolve(base);
        config
    }

    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Config::from_toml(&text, &path.display().to_string(), base)
    }

    /// Parses config text; `origin` names it in errors, `base` anchors relative paths.
    pub fn from_toml(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: origin.to_owned(), message };
        let mut config: Config =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        config.validate().map_err(invalid)?;
        config.resolve(base);
        Ok(config)
    }

    /// The database URL, defaulting to a SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.server.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.server.data_dir.join("metalfarm.db").display()),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(db) = &self.server.database {
            if !(db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://"))
            {
                return Err(format!(
                    "key `server.database`: `{db}` is neither a sqlite:// nor a postgres:// URL"
                ));
            }
        }
        if self.server.job_log_limit < 1024 {
            return Err(format!(
                "key `server.job_log_limit`: {} bytes is too small to keep a log's tail; give at least 1KiB",
                self.server.job_log_limit
            ));
        }
        if self.server.webhook_memory < crate::web::MAX_WEBHOOK_BYTES as u64 {
            return Err(format!(
                "key `server.webhook_memory`: {} bytes cannot hold one webhook body of GitHub's largest (25MiB); give at least 25MiB",
                self.server.webhook_memory
            ));
        }
        if self.server.max_connections == 0 {
            return Err("key `server.max_connections` must be at least 1".into());
        }
        for (key, timeout) in [
            ("server.header_timeout", self.server.header_timeout),
            ("server.body_timeout", self.server.body_timeout),
            ("forge.request_timeout", self.forge.request_timeout),
        ] {
            if timeout.is_zero() {
                return Err(format!("key `{key}` must be longer than 0s"));
            }
        }
        for (key, url) in
            [("server.public_url", &self.server.public_url), ("forge.api_url", &self.forge.api_url)]
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("key `{key}`: `{url}` is not an http(s) URL"));
            }
        }
        if self.forge.app_id.is_some() && self.forge.private_key_file.is_none() {
            return Err("key `forge.private_key_file` is required when `forge.app_id` is set".into());
        }
        for repo in &self.repos {
            let parts: Vec<&str> = repo.name.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(format!("key `repo.name`: `{}` is not of the form owner/name", repo.name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for host in &self.hosts {
            if host.name.is_empty() {
                return Err("key `host.name` must not be empty".into());
            }
            if !seen.insert(host.name.as_str()) {
                return Err(format!("key `host.name`: host `{}` is listed twice", host.name));
            }
        }
        Ok(())
    }

    /// Workflows for any repository when no `[[repo]]` is configured: `./workflows/`.
    pub fn default_workflow_patterns(&self) -> Vec<String> {
        default_repo_workflows().iter().map(|p| self.base_dir.join(p).display().to_string()).collect()
    }

    fn resolve(&mut self, base: &Path) {
        self.base_dir = base.to_path_buf();
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.server.data_dir);
        if self.server.admin_token_file.is_relative() {
            self.server.admin_token_file = self.server.data_dir.join(&self.server.admin_token_file);
        }
        for p in [
            &mut self.forge.private_key_file,
            &mut self.forge.webhook_secret_file,
            &mut self.ssh.private_key_file,
        ]
        .into_iter()
        .flatten()
        {
            join(p);
        }
        if let Some(cobbler) = &mut self.cobbler {
            if let Some(p) = &mut cobbler.password_file {
                join(p);
            }
        }
        for repo in &mut self.repos {
            if let Some(p) = &mut repo.secrets_file {
                join(p);
            }
            for pattern in &mut repo.workflows {
                if Path::new(pattern).is_relative() {
                    *pattern = base.join(&*pattern).display().to_string();
                }
            }
        }
    }
}

/// Durations as the config writes them: `90s`, `45m`, `2h`.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a duration like 90s, 45m or 2h: {e}"))
        })
    }
}

/// `[server] artifact_limit`: a size for both limits, or a table with `artifact` and
/// `run` (each defaulting as [`ArtifactLimit::default`]).
mod artifact_limit_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    use super::ArtifactLimit;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ArtifactLimit, D::Error> {
        let size = |value: &toml::Value| match value {
            toml::Value::Integer(bytes) if *bytes >= 0 => Ok(*bytes as u64),
            toml::Value::String(text) => super::byte_size_text::parse(text).ok_or_else(|| {
                D::Error::custom(format!("`{text}` is not a size like 512KiB, 64MiB, 1GiB or 4096"))
            }),
            other => Err(D::Error::custom(format!(
                "a {} is not a size like 512KiB, 64MiB, 1GiB or 4096",
                other.type_str()
            ))),
        };
        match toml::Value::deserialize(d)? {
            toml::Value::Table(table) => {
                let mut limit = ArtifactLimit::default();
                for (key, value) in &table {
                    match key.as_str() {
                        "artifact" => limit.artifact = size(value)?,
                        "run" => limit.run = size(value)?,
                        other => {
                            return Err(D::Error::custom(format!(
                                "unknown key `{other}`: the limits are `artifact` and `run`"
                            )))
                        }
                    }
                }
                Ok(limit)
            }
            value => {
                let both = size(&value)?;
                Ok(ArtifactLimit { artifact: both, run: both })
            }
        }
    }
}

/// Sizes as the config writes them: `512KiB`, `64MiB`, `1GiB`, or a number of bytes.
mod byte_size_text {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Size::deserialize(d)? {
            Size::Bytes(bytes) => Ok(bytes),
            Size::Text(text) => parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not a size like 512KiB, 64MiB, 1GiB or 4096"))
            }),
        }
    }

    pub(super) fn parse(text: &str) -> Option<u64> {
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let shift = match unit.trim_start() {
            "" | "B" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            _ => return None,
        };
        number.parse::<u64>().ok()?.checked_mul(1 << shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_live_under_the_working_directory() {
        let config = Config::embedded(Path::new("/srv/farm"));
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite:///srv/farm/metalfarm-data/metalfarm.db");
        assert_eq!(config.server.admin_token_file, Path::new("/srv/farm/metalfarm-data/admin-token"));
        assert!(config.forge.app_id.is_none());
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
[server]
listen = "0.0.0.0:9000"
public_url = "https://farm.example.com"
database = "postgres://farm@db/farm"
[forge]
kind = "github"
api_url = "https://ghe.example.com/api/v3"
app_id = 12345
private_key_file = "github-app.pem"
webhook_secret_file = "webhook-secret"
[cobbler]
url = "http://cobbler.lab/cobbler_api"
password_file = "cobbler-password"
default_profile = "f18-autotest-kvm"
install_timeout = "45m"
[[repo]]
name = "lab/qemu"
workflows = ["workflows/qemu-*.yml"]
[[host]]
name = "foo-amd.example.com"
labels = ["amd64", "hostprovisioning"]
"#;
        let config = Config::from_toml(text, "farm.toml", Path::new("/etc/metalfarm")).unwrap();
        assert_eq!(config.forge.app_id, Some(12345));
        assert_eq!(
            config.forge.private_key_file.as_deref(),
            Some(Path::new("/etc/metalfarm/github-app.pem"))
        );
        assert_eq!(config.cobbler.as_ref().unwrap().install_timeout, Duration::from_secs(2700));
        assert_eq!(config.repos[0].workflows, ["/etc/metalfarm/workflows/qemu-*.yml"]);
        assert_eq!(config.hosts[0].port, 22);
        assert_eq!(config.database_url(), "postgres://farm@db/farm");
    }

    #[test]
    fn the_artifact_limit_is_one_size_or_one_for_each_artifact_and_run() {
        let limit =
            |toml: &str| Config::from_toml(toml, "f.toml", Path::new(".")).map(|c| c.server.artifact_limit);
        assert_eq!(limit("").unwrap(), ArtifactLimit { artifact: 4 << 30, run: 16 << 30 });
        assert_eq!(
            limit("[server]\nartifact_limit = \"1GiB\"\n").unwrap(),
            ArtifactLimit { artifact: 1 << 30, run: 1 << 30 }
        );
        assert_eq!(
            limit("[server]\nartifact_limit = { artifact = \"1MiB\", run = 3145728 }\n").unwrap(),
            ArtifactLimit { artifact: 1 << 20, run: 3 << 20 }
        );
        assert_eq!(
            limit("[server]\nartifact_limit = { run = \"20GiB\" }\n").unwrap(),
            ArtifactLimit { artifact: 4 << 30, run: 20 << 30 }
        );
        for (toml, says) in [
            ("[server]\nartifact_limit = \"huge\"\n", "`huge` is not a size"),
            ("[server]\nartifact_limit = { job = \"1GiB\" }\n", "unknown key `job`"),
            ("[server]\nartifact_limit = true\n", "not a size"),
        ] {
            let err = limit(toml).unwrap_err().to_string();
            assert!(err.contains("artifact_limit") && err.contains(says), "{toml}: {err}");
        }
    }

    #[test]
    fn sizes_are_bytes_or_binary_units() {
        assert_eq!(byte_size_text::parse("512KiB"), Some(512 << 10));
        assert_eq!(byte_size_text::parse("64MiB"), Some(64 << 20));
        assert_eq!(byte_size_text::parse("1 GiB"), Some(1 << 30));
        assert_eq!(byte_size_text::parse("4096"), Some(4096));
        assert_eq!(byte_size_text::parse("64MB"), None);
        assert_eq!(byte_size_text::parse("MiB"), None);
        let config =
            Config::from_toml("[server]\njob_log_limit = \"2MiB\"\n", "f.toml", Path::new(".")).unwrap();
        assert_eq!(config.server.job_log_limit, 2 << 20);
        let config =
            Config::from_toml("[server]\njob_log_limit = 100000\n", "f.toml", Path::new(".")).unwrap();
        assert_eq!(config.server.job_log_limit, 100_000);
        assert_eq!(Config::embedded(Path::new("/")).server.job_log_limit, 64 << 20);
        let err = Config::from_toml("[server]\njob_log_limit = \"lots\"\n", "f.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("job_log_limit") && err.contains("not a size"), "{err}");
        let err = Config::from_toml("[server]\njob_log_limit = 100\n", "f.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.job_log_limit") && err.contains("at least 1KiB"), "{err}");
    }

    #[test]
    fn reads_are_open_on_loopback_only_unless_set() {
        let parse = |text: &str| Config::from_toml(text, "f.toml", Path::new("."));
        assert_eq!(Config::embedded(Path::new("/")).server.read_access(), ReadAccess::Open);
        assert_eq!(
            parse("[server]\nlisten = \"[::1]:80\"\n").unwrap().server.read_access(),
            ReadAccess::Open
        );
        assert_eq!(
            parse("[server]\nlisten = \"0.0.0.0:80\"\n").unwrap().server.read_access(),
            ReadAccess::Token
        );
        assert_eq!(
            parse("[server]\nlisten = \"10.1.2.3:80\"\n").unwrap().server.read_access(),
            ReadAccess::Token
        );
        let set = parse("[server]\nlisten = \"0.0.0.0:80\"\nread_access = \"open\"\n").unwrap();
        assert_eq!(set.server.read_access(), ReadAccess::Open);
        let set = parse("[server]\nread_access = \"token\"\n").unwrap();
        assert_eq!(set.server.read_access(), ReadAccess::Token);
        let err = parse("[server]\nread_access = \"public\"\n").unwrap_err().to_string();
        assert!(err.contains("read_access") && err.contains("open") && err.contains("token"), "{err}");
        let err = parse("[server]\nwebhook_memory = \"8MiB\"\n").unwrap_err().to_string();
        assert!(err.contains("server.webhook_memory") && err.contains("at least 25MiB"), "{err}");
        let err = parse("[server]\nmax_connections = 0\n").unwrap_err().to_string();
        assert!(err.contains("server.max_connections"), "{err}");
        let err = parse("[server]\nheader_timeout = \"0s\"\n").unwrap_err().to_string();
        assert!(err.contains("server.header_timeout"), "{err}");
    }

    #[test]
    fn a_wrong_key_is_named_with_the_file() {
        let err =
            Config::from_toml("[server]\nlisten_on = \"x\"\n", "farm.toml", Path::new(".")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("farm.toml: "), "{text}");
        assert!(text.contains("listen_on"), "{text}");
    }

    #[test]
    fn a_wrong_value_is_named_with_the_key() {
        let err = Config::from_toml(
            "[cobbler]\nurl = \"http://c\"\ninstall_timeout = \"soon\"\n",
            "f.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("install_timeout") && err.contains("not a duration"), "{err}");
        let err = Config::from_toml("[server]\ndatabase = \"mysql://x\"\n", "f.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.database"), "{err}");
        let err =
            Config::from_toml("[[host]]\nname = \"a\"\n[[host]]\nname = \"a\"\n", "f.toml", Path::new("."))
                .unwrap_err()
                .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }
}
