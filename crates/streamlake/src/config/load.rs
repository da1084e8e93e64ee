//! Layering: defaults < file < environment < flags, with the source of every value kept.

use super::client::is_sensitive_property;
use super::properties::{self, Target};
use super::{validate, Config, ConfigError, Problem};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "STREAMLAKE_";
/// Separator between nested keys in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// `STREAMLAKE_` variables that are not configuration keys: the command's own, and those of
/// the project's scripts and test rig (scripts/cluster.sh, bench/, the brokers the tests run),
/// which an operator may well have exported in the same shell.
const ENV_NOT_CONFIG: &[&str] = &[
    "STREAMLAKE_CONFIG",
    "STREAMLAKE_LOG",
    "STREAMLAKE_LOG_FORMAT",
    "STREAMLAKE_BIN",
    "STREAMLAKE_CLUSTER_DIR",
    "STREAMLAKE_CLUSTER_HOSTS",
    "STREAMLAKE_CLUSTER_LOG",
    "STREAMLAKE_CLUSTER_PORT",
    "STREAMLAKE_CRABKA",
    "STREAMLAKE_CRABKA_CLI",
    "STREAMLAKE_PROPERTY_CASES",
    "STREAMLAKE_PROPERTY_STRICT_SECRETS",
    "STREAMLAKE_PYTHON",
    "STREAMLAKE_RIVVEN_SCHEMA",
    "STREAMLAKE_TANSU",
];

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "env {v}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Builds a [`LoadedConfig`] from the layers.
#[derive(Debug, Default, Clone)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    section: Option<(PathBuf, Value)>,
    env: Vec<(String, String)>,
    flags: Vec<(Vec<String>, Value, String)>,
}

impl ConfigLoader {
    /// Defaults only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a config file layer: `.yaml`/`.yml`/`.json`, `.toml`, or `.properties` (Java style).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Adds a file layer from a mapping already read from `path` (for example the `kafka:`
    /// section of a gateway config); values are reported as coming from that file.
    pub fn file_section(mut self, path: impl Into<PathBuf>, section: Value) -> Self {
        self.section = Some((path.into(), section));
        self
    }

    /// Adds the process environment as a layer.
    pub fn process_env(self) -> Self {
        self.env(std::env::vars())
    }

    /// Adds the given variables as the environment layer (only `STREAMLAKE_` ones are used).
    pub fn env<I: IntoIterator<Item = (String, String)>>(mut self, vars: I) -> Self {
        self.env = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_NOT_CONFIG.contains(&k.as_str()))
            .collect();
        self.env.sort();
        self
    }

    /// Sets a key (dotted path, e.g. `producer.linger_ms`) from a command-line flag.
    pub fn flag(mut self, key: &str, value: impl Into<Value>, flag: &str) -> Self {
        self.flags.push((
            key.split('.').map(str::to_owned).collect(),
            value.into(),
            flag.to_owned(),
        ));
        self
    }

    /// Sets a raw librdkafka property in a passthrough map (`properties`,
    /// `producer.properties` or `consumer.properties`) from a command-line flag.
    pub fn property(mut self, map: &str, name: &str, value: &str, flag: &str) -> Self {
        let mut path: Vec<String> = map.split('.').map(str::to_owned).collect();
        path.push(name.to_owned());
        self.flags
            .push((path, Value::String(value.to_owned()), flag.to_owned()));
        self
    }

    /// Applies every layer. All problems of all layers are reported together.
    pub fn load(self) -> Result<LoadedConfig, ConfigError> {
        let defaults = serde_json::to_value(Config::default()).expect("config serializes");
        let mut layers = Layers {
            tree: defaults.clone(),
            defaults,
            sources: BTreeMap::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        if let Some(path) = &self.file {
            layers.file(path)?;
        }
        if let Some((path, section)) = self.section.clone() {
            match section {
                Value::Object(map) => layers.object(&mut Vec::new(), map, &Source::File(path)),
                Value::Null => {}
                other => {
                    return Err(ConfigError::Syntax {
                        path,
                        message: format!(
                            "the Kafka section must be a mapping, found {}",
                            kind(&other)
                        ),
                    })
                }
            }
        }
        for (var, value) in &self.env {
            let rest = &var[ENV_PREFIX.len()..];
            let mut path: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            // `STREAMLAKE_SCHEMA_REGISTRY_URL` reads as `schema_registry.url` when there is no
            // top-level key of that name.
            if path.len() == 1 && lookup(&layers.defaults, &path).is_none() {
                if let Some(split) = section_split(&layers.defaults, &path[0]) {
                    path = split;
                }
            }
            if let Some(i) = path.iter().position(|s| s == "properties") {
                if let Some(name) = path.get_mut(i + 1) {
                    *name = name.replace('_', ".");
                }
            }
            layers.set(
                &path,
                Value::String(value.clone()),
                true,
                Source::Env(var.clone()),
            );
        }
        for (path, value, flag) in self.flags {
            let coerce = value.is_string();
            layers.set(&path, value, coerce, Source::Flag(flag));
        }
        layers.finish()
    }
}

struct Layers {
    tree: Value,
    defaults: Value,
    sources: BTreeMap<String, Source>,
    problems: Vec<Problem>,
    notes: Vec<String>,
}

impl Layers {
    fn file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let source = Source::File(path.to_owned());
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(ext.as_str(), "properties" | "conf" | "cfg") {
            for line in properties::parse(&text) {
                match properties::translate(&line) {
                    Ok(Target::Keys(keys)) => {
                        for (key_path, value) in keys {
                            self.set(&key_path, Value::String(value), true, source.clone());
                        }
                    }
                    Ok(Target::Ignored(why)) => {
                        self.notes.push(format!(
                            "{}:{}: `{}` ignored ({why})",
                            path.display(),
                            line.line,
                            line.key
                        ));
                    }
                    Err(p) => self.problems.push(Problem::new(
                        format!("{}: {}", path.display(), p.key),
                        p.message,
                    )),
                }
            }
            return Ok(());
        }
        // Parser messages are given without the source lines they quote and without the
        // values serde repeats: the line holding the mistake may hold a secret.
        let value: Value = if ext == "toml" {
            toml::from_str(&text).map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_owned(),
                message: toml_message(&text, &e),
            })?
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.to_owned(),
                message: without_values(&e.to_string()),
            })?
        };
        match value {
            Value::Null => {}
            Value::Object(map) => self.object(&mut Vec::new(), map, &source),
            other => {
                return Err(ConfigError::Syntax {
                    path: path.to_owned(),
                    message: format!(
                        "expected a mapping of keys at the top level, found {}",
                        kind(&other)
                    ),
                })
            }
        }
        Ok(())
    }

    fn object(&mut self, prefix: &mut Vec<String>, map: Map<String, Value>, source: &Source) {
        for (k, v) in map {
            prefix.push(k);
            let recurse = matches!(v, Value::Object(_))
                && !is_passthrough(prefix)
                && lookup(&self.defaults, prefix).is_some_and(Value::is_object);
            match v {
                Value::Object(inner) if recurse => self.object(prefix, inner, source),
                Value::Object(inner) if is_passthrough(prefix) => {
                    for (name, value) in inner {
                        prefix.push(name);
                        self.set(prefix, value, false, source.clone());
                        prefix.pop();
                    }
                }
                v => self.set(prefix, v, false, source.clone()),
            }
            prefix.pop();
        }
    }

    /// Sets one value at `path`, checking the key exists. `coerce` turns strings (from env,
    /// properties files and flags) into the type of the default at that key.
    fn set(&mut self, path: &[String], value: Value, coerce: bool, source: Source) {
        let shown = display_path(path);
        let passthrough_entry = path.len() >= 2 && is_passthrough(&path[..path.len() - 1]);
        if passthrough_entry {
            let name = &path[path.len() - 1];
            if name.trim() != name {
                self.problems.push(Problem::new(
                    &shown,
                    format!(
                        "the property name has spaces around it; write `{}` (from {source})",
                        name.trim()
                    ),
                ));
                return;
            }
            if path.len() > 1 && lookup(&self.defaults, &path[..path.len() - 1]).is_none() {
                self.problems
                    .push(Problem::new(&shown, format!("unknown key (from {source})")));
                return;
            }
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.problems.push(Problem::new(&shown, format!("librdkafka properties take a string, number or boolean, found {} (from {source})", kind(&other))));
                    return;
                }
            };
            insert(&mut self.tree, path, Value::String(value));
            self.sources.insert(shown, source);
            return;
        }
        let Some(default) = lookup(&self.defaults, path) else {
            let parent = &path[..path.len() - 1];
            let hint = lookup(&self.defaults, parent)
                .and_then(Value::as_object)
                .and_then(|siblings| suggest(&path[path.len() - 1], siblings.keys()))
                .map(|s| {
                    format!(
                        "; did you mean `{}`?",
                        display_path(&[parent, &[s]].concat())
                    )
                })
                .unwrap_or_default();
            self.problems.push(Problem::new(
                &shown,
                format!("unknown key (from {source}){hint}"),
            ));
            return;
        };
        if default.is_object() && !is_passthrough(path) {
            self.problems.push(Problem::new(
                &shown,
                format!("is a section; set the keys inside it (from {source})"),
            ));
            return;
        }
        let value = match (coerce, value) {
            (true, Value::String(s)) => coerce_to(default, s),
            (_, v) => v,
        };
        insert(&mut self.tree, path, value);
        self.sources.insert(shown, source);
    }

    fn finish(mut self) -> Result<LoadedConfig, ConfigError> {
        let mut tree = self.tree;
        let mut config = None;
        for _ in 0..64 {
            match serde_path_to_error::deserialize::<_, Config>(tree.clone()) {
                Ok(c) => {
                    config = Some(c);
                    break;
                }
                Err(e) => {
                    let segments: Vec<String> = e
                        .path()
                        .iter()
                        .filter_map(|s| match s {
                            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                            _ => None,
                        })
                        .collect();
                    let shown = display_path(&segments);
                    let from = self
                        .sources
                        .get(&shown)
                        .map(|s| format!(" (from {s})"))
                        .unwrap_or_default();
                    let leaf = segments.last().map(String::as_str).unwrap_or("");
                    let message = if is_sensitive_property(leaf) {
                        without_values(&e.inner().to_string())
                    } else {
                        e.inner().to_string()
                    };
                    self.problems
                        .push(Problem::new(&shown, format!("{message}{from}")));
                    if segments.is_empty() || !remove(&mut tree, &segments) {
                        break;
                    }
                }
            }
        }
        if let Some(c) = &config {
            // librdkafka's objections come with the others, all at once.
            let mut problems = validate::problems(c);
            problems.extend(c.check_with_librdkafka());
            for mut p in problems {
                if let Some(s) = self.sources.get(&p.key) {
                    p.message = format!("{} (from {s})", p.message);
                }
                self.problems.push(p);
            }
        }
        match config {
            Some(config) if self.problems.is_empty() => Ok(LoadedConfig {
                config,
                sources: self.sources,
                notes: self.notes,
            }),
            _ => Err(ConfigError::Invalid(self.problems)),
        }
    }
}

/// A TOML parse error as `message at line L column C`. toml's own `Display` quotes the source
/// line, which may hold a secret.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = without_values(&e.message().lines().collect::<Vec<_>>().join("; "));
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message,
    }
}

/// `message` without the values serde quotes in it (``invalid value: string "…"``,
/// ``integer `…` ``, …), for messages about a value that may be a secret.
fn without_values(message: &str) -> String {
    const QUOTED: &[(&str, char)] = &[
        ("string \"", '"'),
        ("integer `", '`'),
        ("floating point `", '`'),
        ("boolean `", '`'),
        ("character `", '`'),
        ("unknown variant `", '`'),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        for (opening, close) in QUOTED {
            if let Some(after) = rest.strip_prefix(opening) {
                out.push_str(&opening[..opening.len() - 1]);
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == *close {
                        out.push_str("(value not shown)");
                        rest = &after[i + 1..];
                        continue 'scan;
                    }
                }
                out.push_str("(value not shown)");
                return out;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `schema_registry_url` → `["schema_registry", "url"]` when that key exists.
fn section_split(defaults: &Value, key: &str) -> Option<Vec<String>> {
    let sections = defaults.as_object()?;
    sections
        .iter()
        .filter(|(_, v)| v.is_object())
        .find_map(|(name, section)| {
            let rest = key.strip_prefix(name.as_str())?.strip_prefix('_')?;
            section
                .as_object()?
                .contains_key(rest)
                .then(|| vec![name.clone(), rest.to_owned()])
        })
}

fn is_passthrough(path: &[String]) -> bool {
    path.last().is_some_and(|k| k == "properties")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn lookup<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(tree, |node, seg| node.as_object()?.get(seg))
}

fn insert(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for seg in &path[..path.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node
            .as_object_mut()
            .expect("object")
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(map) = node.as_object_mut() {
        map.insert(path[path.len() - 1].clone(), value);
    }
}

fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for seg in parents {
        match node.as_object_mut().and_then(|m| m.get_mut(seg)) {
            Some(next) => node = next,
            None => return false,
        }
    }
    node.as_object_mut().and_then(|m| m.remove(last)).is_some()
}

fn coerce_to(default: &Value, s: String) -> Value {
    match default {
        Value::Bool(_) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => Value::String(s),
        },
        Value::Number(_) => s
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| s.trim().parse::<i64>().map(Value::from))
            .unwrap_or(Value::String(s)),
        _ => Value::String(s),
    }
}

fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a String>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(key, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

/// A key path as users write it: `producer.linger_ms`, `producer.properties."message.max.bytes"`.
fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if i > 0 && path[i - 1] == "properties" {
            out.push('"');
            out.push_str(seg);
            out.push('"');
        } else {
            out.push_str(seg);
        }
    }
    out
}

/// A configuration and where each of its values came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: Config,
    sources: BTreeMap<String, Source>,
    /// Things worth telling the user that are not errors (ignored Java-only properties).
    pub notes: Vec<String>,
}

/// One line of [`LoadedConfig::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key path.
    pub key: String,
    /// The value as JSON, or `[redacted]`.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl LoadedConfig {
    /// Wraps a configuration built in code (every value counts as a default).
    pub fn from_config(config: Config) -> Self {
        Self {
            config,
            sources: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Where the value at `key` came from.
    pub fn source_of(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// Every key with its effective value (secrets redacted) and source. Unset optional keys
    /// are listed as `null`.
    pub fn entries(&self) -> Vec<Entry> {
        let tree = serde_json::to_value(&self.config).expect("config serializes");
        let mut out = Vec::new();
        flatten(&tree, &mut Vec::new(), &mut |path, v| {
            let key = display_path(path);
            let leaf = path.last().map(String::as_str).unwrap_or("");
            let value = match v {
                Value::Null => "null".to_owned(),
                _ if is_sensitive_property(leaf) => super::secret::REDACTED.to_owned(),
                v => v.to_string(),
            };
            out.push(Entry {
                source: self.source_of(&key),
                key,
                value,
            });
        });
        out
    }

    /// The effective configuration as `key = value  # source` lines.
    pub fn show(&self) -> String {
        let entries = self.entries();
        let width = entries
            .iter()
            .map(|e| e.key.len() + e.value.len() + 3)
            .max()
            .unwrap_or(0);
        entries
            .iter()
            .map(|e| {
                let kv = format!("{} = {}", e.key, e.value);
                format!("{kv:<width$}  # {}\n", e.source)
            })
            .collect()
    }
}

fn flatten(v: &Value, path: &mut Vec<String>, f: &mut dyn FnMut(&[String], &Value)) {
    match v {
        Value::Object(map) if !(is_passthrough(path) && map.is_empty()) => {
            for (k, child) in map {
                path.push(k.clone());
                flatten(child, path, f);
                path.pop();
            }
        }
        Value::Object(_) => {}
        v => f(path, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Acks, SaslMechanism, SecurityProtocol};
    use std::io::Write;

    fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(&format!(".{ext}"))
            .tempfile()
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_then_flag() {
        let f = file("yaml", "bootstrap_servers: file:9092\nclient_id: from-file\nproducer:\n  linger_ms: 20\n  acks: all\n");
        let loaded = ConfigLoader::new()
            .file(f.path())
            .env(env(&[
                ("STREAMLAKE_BOOTSTRAP_SERVERS", "env:9092"),
                ("STREAMLAKE_PRODUCER__LINGER_MS", "30"),
                ("STREAMLAKE_SCHEMA_REGISTRY_URL", "http://registry:8081"),
                ("OTHER", "x"),
                // The cluster script's and test rig's own variables are no config keys.
                ("STREAMLAKE_CLUSTER_DIR", "/tmp/c"),
                ("STREAMLAKE_CRABKA", "/usr/bin/crabka-broker"),
            ]))
            .flag("bootstrap_servers", "flag:9092", "--bootstrap-servers")
            .load()
            .unwrap();
        let c = &loaded.config;
        assert_eq!(c.bootstrap_servers, "flag:9092");
        assert_eq!(c.client_id, "from-file");
        assert_eq!(c.producer.linger_ms, 30);
        assert_eq!(c.producer.acks, Acks::All);
        assert_eq!(
            c.schema_registry.url.as_deref(),
            Some("http://registry:8081")
        );
        assert_eq!(
            loaded.source_of("bootstrap_servers"),
            Source::Flag("--bootstrap-servers".into())
        );
        assert_eq!(
            loaded.source_of("client_id"),
            Source::File(f.path().to_owned())
        );
        assert_eq!(
            loaded.source_of("producer.linger_ms"),
            Source::Env("STREAMLAKE_PRODUCER__LINGER_MS".into())
        );
        assert_eq!(loaded.source_of("producer.compression"), Source::Default);
    }

    #[test]
    fn toml_files_and_passthrough_maps() {
        let f = file("toml", "[producer]\ncompression = \"zstd\"\n[producer.properties]\n\"message.max.bytes\" = 2000000\n");
        let loaded = ConfigLoader::new()
            .file(f.path())
            .env(env(&[(
                "STREAMLAKE_CONSUMER__PROPERTIES__FETCH_MIN_BYTES",
                "10",
            )]))
            .load()
            .unwrap();
        assert_eq!(
            loaded.config.producer.properties["message.max.bytes"],
            "2000000"
        );
        assert_eq!(loaded.config.consumer.properties["fetch.min.bytes"], "10");
        assert_eq!(
            loaded.source_of("consumer.properties.\"fetch.min.bytes\""),
            Source::Env("STREAMLAKE_CONSUMER__PROPERTIES__FETCH_MIN_BYTES".into())
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let f = file(
            "yaml",
            "bootstrap_server: x:1\nproducer:\n  linger_ms: soon\n  acks: leader\n  compresion: lz4\nconsumer:\n  session_timeout_ms: -5\n",
        );
        let err = ConfigLoader::new()
            .file(f.path())
            .env(env(&[("STREAMLAKE_PRODUCER__MAX_IN_FLIGHT", "many")]))
            .load()
            .unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        for k in [
            "bootstrap_server",
            "producer.compresion",
            "producer.linger_ms",
            "producer.max_in_flight",
            "consumer.session_timeout_ms",
            "producer.acks",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("did you mean `bootstrap_servers`?"), "{text}");
        assert!(
            text.contains("did you mean `producer.compression`?"),
            "{text}"
        );
        assert!(
            text.contains("from env STREAMLAKE_PRODUCER__MAX_IN_FLIGHT"),
            "{text}"
        );
        assert!(text.contains("enable_idempotence"), "{text}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let f = file("yaml", "producer: [unclosed\n");
        let err = ConfigLoader::new().file(f.path()).load().unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(err.to_string().contains(&f.path().display().to_string()));
        let missing = ConfigLoader::new()
            .file("/no/such/streamlake.yaml")
            .load()
            .unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    }

    #[test]
    fn client_properties_from_a_managed_service() {
        let f = file(
            "properties",
            "# Required connection configs for Kafka producer, consumer, and admin\n\
             bootstrap.servers=pkc-abc12.eu-west-1.aws.example.cloud:9092\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanisms=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username='APIKEY' password='s3cr3t/+=';\n\
             client.dns.lookup=use_all_dns_ips\n\
             session.timeout.ms=45000\n\
             acks=all\n\
             socket.keepalive.enable=true\n",
        );
        let loaded = ConfigLoader::new().file(f.path()).load().unwrap();
        let c = &loaded.config;
        assert_eq!(
            c.bootstrap_servers,
            "pkc-abc12.eu-west-1.aws.example.cloud:9092"
        );
        assert_eq!(c.security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.security.sasl_mechanism, Some(SaslMechanism::Plain));
        assert_eq!(c.security.sasl_username.as_deref(), Some("APIKEY"));
        assert_eq!(
            c.security.sasl_password.as_ref().map(|s| s.expose()),
            Some("s3cr3t/+=")
        );
        assert_eq!(c.consumer.session_timeout_ms, 45_000);
        assert_eq!(c.properties["socket.keepalive.enable"], "true");
        assert_eq!(loaded.notes.len(), 1, "{:?}", loaded.notes);
        assert!(loaded.notes[0].contains("client.dns.lookup"));
        assert!(
            c.check_with_librdkafka().is_empty(),
            "{:?}",
            c.check_with_librdkafka()
        );
    }

    #[test]
    fn client_properties_errors_name_the_line() {
        let f = file(
            "properties",
            "bootstrap.servers=a:1\nacks=2\nssl.truststore.location=/x.jks\n",
        );
        let err = ConfigLoader::new().file(f.path()).load().unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys[0].ends_with("line 2 `acks`"), "{keys:?}");
        assert!(
            keys[1].ends_with("line 3 `ssl.truststore.location`"),
            "{keys:?}"
        );
    }

    #[test]
    fn show_redacts_secrets_and_names_sources() {
        let loaded = ConfigLoader::new()
            .env(env(&[
                ("STREAMLAKE_SECURITY__PROTOCOL", "sasl_ssl"),
                ("STREAMLAKE_SECURITY__SASL_MECHANISM", "SCRAM-SHA-512"),
                ("STREAMLAKE_SECURITY__SASL_USERNAME", "alice"),
                ("STREAMLAKE_SECURITY__SASL_PASSWORD", "hunter2"),
            ]))
            .property("properties", "ssl.keystore.password", "topsecret", "-X")
            .load()
            .unwrap();
        let shown = loaded.show();
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
        assert!(
            shown.contains("security.sasl_password = [redacted]"),
            "{shown}"
        );
        assert!(
            shown.contains("# env STREAMLAKE_SECURITY__SASL_PASSWORD"),
            "{shown}"
        );
        assert!(
            shown.contains("security.sasl_username = \"alice\""),
            "{shown}"
        );
        assert!(shown.contains("producer.acks = \"all\""), "{shown}");
        assert!(!format!("{:?}", loaded.config).contains("hunter2"));
    }

    #[test]
    fn mistyped_secret_properties_are_named_never_shown() {
        let err = ConfigLoader::new()
            .env(env(&[
                ("STREAMLAKE_PROPERTIES__SASL_PASWORD", "hunter2-env"),
                ("STREAMLAKE_SECURITY__SASL_PASWORD", "hunter2-typed"),
            ]))
            .property("properties", "SASL.PASSWORD", "hunter2-upper", "-X")
            .property("properties", "Sasl.Password", "hunter2-mixed", "-X")
            .property("properties", "sasl.password ", "hunter2-space", "-X")
            .property("producer.properties", "ssl.key.pme", "hunter2-pem", "-X")
            .load()
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        for key in [
            "properties.\"sasl.pasword\"",
            "security.sasl_pasword",
            "properties.\"SASL.PASSWORD\"",
            "properties.\"Sasl.Password\"",
            "properties.\"sasl.password \"",
            "producer.properties.\"ssl.key.pme\"",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert!(
            text.contains("properties.\"sasl.password \": the property name has spaces around it; write `sasl.password` (from flag -X)"),
            "{text}"
        );
        assert!(
            text.contains("did you mean `security.sasl_password`?"),
            "{text}"
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_shown() {
        let f = file(
            "yaml",
            "security:\n  protocol: sasl_ssl\n  sasl_mechanism: PLAIN\n  sasl_username: u\n  sasl_password: 91827364\n",
        );
        let err = ConfigLoader::new().file(f.path()).load().unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("91827364"), "{text}");
        assert!(
            text.contains("security.sasl_password: invalid type: integer (value not shown), expected a string"),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column_never_the_source() {
        let cases = [
            (
                "yaml",
                "security:\n  sasl_password: \"hunter2\n",
                "line 3 column 1",
            ),
            (
                "yaml",
                "security: {sasl_password: hunter2",
                "line 2 column 1",
            ),
            (
                "yaml",
                "security:\n  sasl_password: 'hunter2'x\n",
                "line 2 column 27",
            ),
            (
                "yaml",
                "security:\n  sasl_password: !!int hunter2\n",
                "line 2 column 18",
            ),
            (
                "yaml",
                "security:\n  sasl_password: !!bool hunter2\n",
                "line 2 column 18",
            ),
            (
                "json",
                "{\"security\": {\"sasl_password\": \"hunter2\" \"x\": 1}}",
                "line 1 column 42",
            ),
            (
                "json",
                "{\"sasl_password\": \"hunter2\\q\"}",
                "line 1 column 27",
            ),
            (
                "toml",
                "[security]\nsasl_password = \"hunter2\nx\n",
                "line 2 column 25",
            ),
            (
                "toml",
                "[security]\nsasl_password = hunter2\n",
                "line 2 column 17",
            ),
            (
                "toml",
                "[security]\nsasl_password = \"hunter2\" x\n",
                "line 2 column 27",
            ),
        ];
        for (ext, text, at) in cases {
            let f = file(ext, text);
            let err = ConfigLoader::new().file(f.path()).load().unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, ConfigError::Syntax { .. }), "{shown}");
            assert!(!shown.contains("hunter2"), "{text:?}: {shown}");
            assert!(shown.contains(at), "{text:?}: {at} not in {shown}");
            assert!(!shown.contains('\n'), "one line: {shown}");
        }
    }

    #[test]
    fn librdkafka_objections_come_with_the_other_problems() {
        let f = file(
            "yaml",
            "producer:\n  lingr_ms: 5\n  properties:\n    no.such.thing: 1\n    SASL.PASSWORD: hunter2\n",
        );
        let err = ConfigLoader::new().file(f.path()).load().unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "producer.lingr_ms",
                "producer.properties.\"SASL.PASSWORD\"",
                "producer.properties.\"no.such.thing\""
            ]
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
