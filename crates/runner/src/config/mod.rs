//! The config file: TOML with `${VAR}` from the environment. Every error names
//! the file, the line and the key, and never shows a value read from the
//! environment (those are usually secrets).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tillflow_core::Rules;
use tillflow_kit::config::ConfigProblem;
pub use tillflow_kit::config::PathPart;
use toml::Spanned;

mod credentials;
mod env;
mod locate;
mod server;

use env::{substitute_env, substitute_value};
pub use locate::{LineIndex, line_of, locate};
use server::RawServer;
pub use server::{DEFAULT_MAX_BODY, ServerConfig, ServerLimits, parse_size};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub url: String,
    /// How long a runner's lease on a pipeline lasts without renewal
    /// (Postgres state; renewed every third of it). Default 30 s.
    pub lease_ttl: std::time::Duration,
}

/// `[state] lease_ttl` when the file says nothing.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A `[sources.NAME]` or `[sinks.NAME]` table, environment substituted, for
/// the connector registry to deserialize into the connector's own config type.
#[derive(Debug, Clone)]
pub struct ConnectorTable {
    pub name: String,
    pub type_name: String,
    /// Everything except `type`.
    pub table: toml::Table,
    /// `sources.shop` or `sinks.crm`, for messages.
    pub path: String,
    pub line: usize,
    /// The fraction of the platform's documented limits this account may use
    /// (`rate_share`, every connector's key; default 1).
    pub rate_share: f64,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: String,
    pub source: String,
    pub sink: String,
    pub rules: Rules,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    text: String,
    pub state: StateConfig,
    pub server: ServerConfig,
    pub sources: BTreeMap<String, ConnectorTable>,
    pub sinks: BTreeMap<String, ConnectorTable>,
    pub pipelines: Vec<PipelineConfig>,
    /// Values read from the environment, scrubbed from every message.
    secrets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state: Option<RawState>,
    server: Option<RawServer>,
    #[serde(default)]
    sources: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    sinks: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    pipelines: Vec<Spanned<RawPipeline>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    url: Spanned<String>,
    lease_ttl: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Spanned<String>,
    source: Spanned<String>,
    sink: Spanned<String>,
    #[serde(default = "default_true")]
    skip_zero_total: bool,
    #[serde(default)]
    require_email: bool,
}

fn default_true() -> bool {
    true
}

pub const DEFAULT_STATE_URL: &str = "sqlite://tillflow.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses `text` as if read from `file`; `env` resolves `${VAR}`.
    pub fn parse(file: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let error_at = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
            file: file.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            key,
            message,
        };
        let document =
            toml::de::Deserializer::parse(text).map_err(|e| error_at(e.span(), None, e.message().trim().to_owned()))?;
        let raw: RawConfig = serde_path_to_error::deserialize(document).map_err(|error| {
            let message = error.inner().message().trim().to_owned();
            let (key, line) = locate(text, &tillflow_kit::config::path_of(error.path(), &message));
            ConfigError {
                file: file.to_owned(),
                line: line.or_else(|| error.inner().span().map(|s| line_of(text, s.start))),
                key,
                message,
            }
        })?;
        let lines = LineIndex::new(text);
        let mut secrets = Vec::new();
        let mut substitute = |value: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
            substitute_env(value.get_ref(), env, &mut secrets)
                .map_err(|message| error_at(Some(value.span()), Some(key.to_owned()), message))
        };

        let lease_ttl = match raw.state.as_ref().and_then(|state| state.lease_ttl.as_ref()) {
            Some(value) => {
                let ttl = tillflow_core::duration::parse_duration(value.get_ref())
                    .map_err(|message| error_at(Some(value.span()), Some("state.lease_ttl".into()), message))?;
                if ttl < std::time::Duration::from_secs(1) || ttl > std::time::Duration::from_secs(3600) {
                    return Err(error_at(
                        Some(value.span()),
                        Some("state.lease_ttl".into()),
                        "must be between 1s and 1h".into(),
                    ));
                }
                ttl
            }
            None => DEFAULT_LEASE_TTL,
        };
        let state = StateConfig {
            url: match &raw.state {
                Some(state) => substitute(&state.url, "state.url")?,
                None => DEFAULT_STATE_URL.to_owned(),
            },
            lease_ttl,
        };
        if !(state.url.starts_with("sqlite:")
            || state.url.starts_with("postgres://")
            || state.url.starts_with("postgresql://"))
        {
            return Err(error_at(
                raw.state.as_ref().map(|s| s.url.span()),
                Some("state.url".into()),
                "must start with sqlite:// or postgres://".into(),
            ));
        }
        let listen = match raw.server.as_ref().and_then(|server| server.listen.as_ref()) {
            Some(listen) => {
                let text = substitute(listen, "server.listen")?;
                text.parse::<SocketAddr>().map_err(|_| {
                    error_at(
                        Some(listen.span()),
                        Some("server.listen".into()),
                        format!("`{text}` is not an address like 127.0.0.1:8787"),
                    )
                })?
            }
            None => DEFAULT_LISTEN.parse().expect("default address"),
        };
        let limits = server::limits(raw.server.as_ref(), &error_at)?;
        let admin_token = match raw.server.as_ref().and_then(|server| server.admin_token.as_ref()) {
            Some(token) => {
                let value = substitute(token, "server.admin_token")?;
                if value.len() < 16 {
                    return Err(error_at(
                        Some(token.span()),
                        Some("server.admin_token".into()),
                        "must be at least 16 characters (it guards the status page and /metrics)".into(),
                    ));
                }
                Some(secrecy::SecretString::from(value))
            }
            None => None,
        };

        let connectors = |kind: &str, tables: BTreeMap<String, Spanned<toml::Table>>, secrets: &mut Vec<String>| {
            let mut out = BTreeMap::new();
            for (name, spanned) in tables {
                let span = spanned.span();
                let path = format!("{kind}.{name}");
                let mut table = spanned.into_inner();
                let type_name = match table.remove("type") {
                    Some(toml::Value::String(type_name)) => type_name,
                    Some(_) => {
                        return Err(error_at(Some(span), Some(format!("{path}.type")), "must be a string".into()));
                    }
                    None => {
                        return Err(error_at(
                            Some(span),
                            Some(format!("{path}.type")),
                            "is missing: every connector names its `type`".into(),
                        ));
                    }
                };
                let rate_share = match table.remove("rate_share") {
                    None => 1.0,
                    Some(value) => {
                        let share = value.as_float().or_else(|| value.as_integer().map(|n| n as f64));
                        match share.filter(|share| *share > 0.0 && *share <= 1.0) {
                            Some(share) => share,
                            None => {
                                let at = [kind, name.as_str(), "rate_share"].map(|p| PathPart::Key(p.to_owned()));
                                let (key, line) = locate(text, &at);
                                return Err(ConfigError {
                                    file: file.to_owned(),
                                    line,
                                    key,
                                    message: format!(
                                        "`{value}` is not a share of the platform's limits: a number above 0 and at most 1 (e.g. 0.5)"
                                    ),
                                });
                            }
                        }
                    }
                };
                let mut at = vec![PathPart::Key(kind.to_owned()), PathPart::Key(name.clone())];
                substitute_value(&mut table, env, secrets, &mut at).map_err(|message| {
                    let (key, line) = locate(text, &at);
                    ConfigError { file: file.to_owned(), line, key, message }
                })?;
                out.insert(
                    name.clone(),
                    ConnectorTable { name, type_name, table, path, line: lines.line(span.start), rate_share },
                );
            }
            Ok(out)
        };
        let sources = connectors("sources", raw.sources, &mut secrets)?;
        let sinks = connectors("sinks", raw.sinks, &mut secrets)?;

        let mut pipelines: Vec<PipelineConfig> = Vec::new();
        let mut pipeline_names = std::collections::HashSet::new();
        for spanned in raw.pipelines {
            let line = lines.line(spanned.span().start);
            let raw = spanned.into_inner();
            let name = raw.name.get_ref().clone();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(error_at(
                    Some(raw.name.span()),
                    Some("pipelines.name".into()),
                    format!("`{name}` must be letters, digits, - or _"),
                ));
            }
            if !pipeline_names.insert(name.clone()) {
                return Err(error_at(
                    Some(raw.name.span()),
                    Some("pipelines.name".into()),
                    format!("pipeline `{name}` is defined twice"),
                ));
            }
            if !sources.contains_key(raw.source.get_ref()) {
                return Err(error_at(
                    Some(raw.source.span()),
                    Some(format!("pipelines.{name}.source")),
                    format!("no source named `{}` (defined: {})", raw.source.get_ref(), names(&sources)),
                ));
            }
            if !sinks.contains_key(raw.sink.get_ref()) {
                return Err(error_at(
                    Some(raw.sink.span()),
                    Some(format!("pipelines.{name}.sink")),
                    format!("no sink named `{}` (defined: {})", raw.sink.get_ref(), names(&sinks)),
                ));
            }
            pipelines.push(PipelineConfig {
                name,
                source: raw.source.into_inner(),
                sink: raw.sink.into_inner(),
                rules: Rules { skip_zero_total: raw.skip_zero_total, require_email: raw.require_email },
                line,
            });
        }
        secrets.retain(|s| s.len() >= 4);
        Ok(Self {
            file: file.to_owned(),
            text: text.to_owned(),
            state,
            server: ServerConfig { listen, limits, admin_token },
            sources,
            sinks,
            pipelines,
            secrets,
        })
    }

    /// A connector's config problem, located in the file by its full key.
    pub fn problem(&self, table: &ConnectorTable, problem: &ConfigProblem) -> ConfigError {
        let mut path: Vec<PathPart> = table.path.split('.').map(|part| PathPart::Key(part.to_owned())).collect();
        path.extend(problem.path.iter().cloned());
        let (key, line) = locate(&self.text, &path);
        ConfigError {
            file: self.file.clone(),
            line: line.or(Some(table.line)),
            key: key.or_else(|| Some(table.path.clone())),
            message: self.scrub(&problem.message),
        }
    }

    /// Replaces every value that came from the environment with `***`.
    pub fn scrub(&self, message: &str) -> String {
        let mut clean = message.to_owned();
        for secret in &self.secrets {
            clean = clean.replace(secret.as_str(), "***");
        }
        clean
    }

    pub fn pipeline(&self, name: &str) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}

fn names(map: &BTreeMap<String, ConnectorTable>) -> String {
    if map.is_empty() { "none".into() } else { map.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ") }
}

/// Deserializes a connector table into the connector's config type; errors
/// name the full key and its line and never echo environment values.
pub fn connector_config<T: serde::de::DeserializeOwned>(
    config: &Config,
    table: &ConnectorTable,
) -> Result<T, ConfigError> {
    let value = serde_json::to_value(&table.table).expect("TOML values are JSON values");
    tillflow_kit::config::parse(value).map_err(|problem| config.problem(table, &problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "WC_SECRET" => Some("cs_live_verysecret".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("tillflow.toml"), text, &env)
    }

    const GOOD: &str = r#"
[state]
url = "sqlite://state.db"

[sources.shop]
type = "woocommerce"
base_url = "https://shop.example.com"
consumer_secret = "${WC_SECRET}"

[sinks.crm]
type = "customerio"
region = "us"

[[pipelines]]
name = "shop-to-crm"
source = "shop"
sink = "crm"
"#;

    #[test]
    fn a_good_config_parses_with_defaults_and_environment() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.state.url, "sqlite://state.db");
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        let shop = &config.sources["shop"];
        assert_eq!(shop.type_name, "woocommerce");
        assert_eq!(shop.table["consumer_secret"].as_str(), Some("cs_live_verysecret"));
        assert_eq!(shop.line, 5);
        assert!(config.pipelines[0].rules.skip_zero_total);
        assert_eq!(config.scrub("bad value cs_live_verysecret"), "bad value ***");
    }

    #[test]
    fn the_server_limits_have_defaults_and_name_their_key_when_wrong() {
        let limits = parse(GOOD).unwrap().server.limits;
        assert_eq!(limits, ServerLimits::default());
        let with = |text: &str| parse(&format!("[server]\n{text}\n"));
        let set =
            with("read_timeout = \"30s\"\nmax_in_flight = \"8MiB\"\nmax_connections = 200").unwrap().server.limits;
        assert_eq!(set.read_timeout, std::time::Duration::from_secs(30));
        assert_eq!(set.max_in_flight, 8 * 1024 * 1024);
        assert_eq!(set.max_connections, Some(200));
        for (wrong, key) in [
            ("read_timeout = \"soon\"", "server.read_timeout"),
            ("read_timeout = \"1h\"", "server.read_timeout"),
            ("max_in_flight = \"10KiB\"", "server.max_in_flight"),
            ("max_connections = 1", "server.max_connections"),
        ] {
            let error = with(wrong).unwrap_err();
            assert_eq!(error.key.as_deref(), Some(key), "{wrong}: {error}");
            assert_eq!(error.line, Some(2), "{wrong}: {error}");
        }
    }

    #[test]
    fn max_body_takes_bytes_or_a_unit_and_names_itself_when_wrong() {
        assert_eq!(parse(GOOD).unwrap().server.limits.max_body, DEFAULT_MAX_BODY, "1 MiB by default");
        let with = |value: &str| parse(&format!("[server]\nmax_body = {value}\n"));
        assert_eq!(with("\"256KiB\"").unwrap().server.limits.max_body, 256 * 1024);
        assert_eq!(with("\"2MB\"").unwrap().server.limits.max_body, 2_000_000);
        assert_eq!(with("65536").unwrap().server.limits.max_body, 65536);
        assert_eq!(with("\"256KiB\"").unwrap().server.listen.to_string(), DEFAULT_LISTEN, "listen keeps its default");
        for wrong in ["\"lots\"", "\"5GiB\"", "10", "\"1 parsec\""] {
            let error = with(wrong).unwrap_err();
            assert_eq!(error.key.as_deref(), Some("server.max_body"), "{wrong}: {error}");
            assert_eq!(error.line, Some(2), "{wrong}: {error}");
        }
    }

    #[test]
    fn an_unknown_key_names_line_and_full_key() {
        let error = parse("[state]\nurl = \"sqlite://x.db\"\nurll = 3\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert_eq!(error.key.as_deref(), Some("state.urll"), "{error}");
        assert!(error.to_string().starts_with("tillflow.toml:3: `state.urll`"), "{error}");
    }

    #[test]
    fn a_wrong_type_names_the_full_key_and_its_line() {
        let error =
            parse("[[pipelines]]\nname = \"p\"\nsource = \"a\"\nsink = \"b\"\nrequire_email = \"yes\"\n").unwrap_err();
        assert_eq!(error.line, Some(5), "{error}");
        assert_eq!(error.key.as_deref(), Some("pipelines.p.require_email"), "{error}");
        assert!(error.message.contains("expected a boolean"), "{error}");
    }

    #[test]
    fn a_wrong_typed_connector_key_names_the_key_its_line_and_the_expected_form() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Location {
            api_key: String,
        }
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Shop {
            base_url: String,
            consumer_secret: String,
            poll_interval: Option<tillflow_core::duration::HumanDuration>,
            #[serde(default)]
            locations: Vec<Location>,
        }
        let text = GOOD.replace(
            "consumer_secret = \"${WC_SECRET}\"\n",
            "consumer_secret = \"${WC_SECRET}\"\npoll_interval = 300\n",
        );
        let config = parse(&text).unwrap();
        let error = connector_config::<Shop>(&config, &config.sources["shop"]).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("sources.shop.poll_interval"), "{error}");
        assert_eq!(error.line, Some(9), "the key's own line, not the table header's: {error}");
        assert!(error.message.contains("integer `300`") && error.message.contains("\"5m\""), "{error}");

        // Nested tables: an array of tables inside the connector's table.
        let text = GOOD.replace(
            "[sinks.crm]",
            "[[sources.shop.locations]]\napi_key = \"a\"\n\n[[sources.shop.locations]]\napi_key = 5\n\n[sinks.crm]",
        );
        let config = parse(&text).unwrap();
        let error = connector_config::<Shop>(&config, &config.sources["shop"]).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("sources.shop.locations[1].api_key"), "{error}");
        assert_eq!(error.line, Some(14), "{error}");
        assert!(error.message.contains("integer `5`, expected a string"), "{error}");
    }

    #[test]
    fn an_unset_variable_inside_a_nested_table_names_its_full_key() {
        let text = GOOD.replace("[sinks.crm]", "[[sources.shop.locations]]\napi_key = \"${KEY_B}\"\n\n[sinks.crm]");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("sources.shop.locations[0].api_key"), "{error}");
        assert_eq!(error.line, Some(11), "{error}");
    }

    #[test]
    fn a_pipeline_naming_a_missing_source_is_refused() {
        let text = GOOD.replace("source = \"shop\"", "source = \"shoppe\"");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("pipelines.shop-to-crm.source"));
        assert_eq!(error.line, Some(16));
        assert!(error.message.contains("no source named `shoppe`"), "{error}");
    }

    #[test]
    fn an_unset_variable_is_named_and_no_value_is_shown() {
        let text = GOOD.replace("${WC_SECRET}", "${WC_MISSING}");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("sources.shop.consumer_secret"));
        assert_eq!(error.line, Some(8));
        assert!(error.message.contains("WC_MISSING is not set"), "{error}");
    }

    #[test]
    fn connector_keys_are_checked_by_the_connector_type() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Shop {
            base_url: String,
            consumer_secret: String,
        }
        let text = GOOD.replace("consumer_secret", "consumer_secrt");
        let config = parse(&text).unwrap();
        let error = connector_config::<Shop>(&config, &config.sources["shop"]).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("sources.shop.consumer_secrt"), "{error}");
        assert_eq!(error.line, Some(8), "{error}");
        assert!(!error.to_string().contains("verysecret"), "{error}");
        let missing = GOOD.replace("consumer_secret = \"${WC_SECRET}\"\n", "");
        let config = parse(&missing).unwrap();
        let error = connector_config::<Shop>(&config, &config.sources["shop"]).unwrap_err();
        assert!(error.message.contains("missing field `consumer_secret`"), "{error}");
        assert_eq!(error.line, Some(5), "a missing key points at its table");
    }

    #[test]
    fn rate_share_is_every_connectors_key_and_must_be_a_share() {
        let text = GOOD.replace("region = \"us\"", "region = \"us\"\nrate_share = 0.25");
        let config = parse(&text).unwrap();
        assert_eq!(config.sinks["crm"].rate_share, 0.25);
        assert!(!config.sinks["crm"].table.contains_key("rate_share"), "not passed on to the connector");
        assert_eq!(config.sources["shop"].rate_share, 1.0, "the default");
        for bad in ["0", "1.5", "\"half\""] {
            let text = GOOD.replace("region = \"us\"", &format!("region = \"us\"\nrate_share = {bad}"));
            let error = parse(&text).unwrap_err();
            assert_eq!(error.key.as_deref(), Some("sinks.crm.rate_share"), "{error}");
            assert_eq!(error.line, Some(13), "{error}");
        }
    }

    #[test]
    fn a_literal_dollar_brace_is_kept() {
        let mut secrets = Vec::new();
        assert_eq!(substitute_env("a$${B}c", &env, &mut secrets).unwrap(), "a${B}c");
        assert!(substitute_env("${UNCLOSED", &env, &mut secrets).is_err());
    }
}
