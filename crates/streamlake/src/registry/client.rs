//! The HTTP client and its caches.

use super::error::RegistryError;
use crate::config::SchemaRegistryConfig;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The kind of a schema, as the registry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Apache Avro.
    Avro,
    /// Protocol Buffers.
    Protobuf,
    /// JSON Schema.
    Json,
}

impl SchemaType {
    /// The registry's name (`AVRO`, `PROTOBUF`, `JSON`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avro => "AVRO",
            Self::Protobuf => "PROTOBUF",
            Self::Json => "JSON",
        }
    }
}

/// A reference from one schema to another registered one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referring schema uses (e.g. the imported `.proto` file).
    pub name: String,
    /// Subject of the referenced schema.
    pub subject: String,
    /// Version of the referenced schema.
    pub version: i32,
}

/// A schema as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// Globally unique id (what goes on the wire).
    pub id: u32,
    /// Kind.
    pub schema_type: SchemaType,
    /// The schema text.
    pub schema: String,
    /// References to other schemas.
    pub references: Vec<Reference>,
    /// Subject and version, when looked up by subject.
    pub version: Option<(String, i32)>,
}

/// The registry's verdict on a candidate schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compatibility {
    /// Whether the schema may be registered under the subject.
    pub compatible: bool,
    /// The registry's reasons, when incompatible.
    pub messages: Vec<String>,
}

#[derive(Default)]
struct Cache {
    by_id: HashMap<u32, Arc<RegisteredSchema>>,
    /// (subject, schema type, schema text) → id.
    ids: HashMap<(String, SchemaType, String), u32>,
    latest: HashMap<String, Arc<RegisteredSchema>>,
}

/// A registry client. Cheap to share behind an `Arc`.
pub struct Registry {
    http: reqwest::Client,
    urls: Vec<String>,
    config: SchemaRegistryConfig,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SchemaResponse {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<SchemaType>,
    schema: String,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    version: Option<i32>,
}

impl SchemaResponse {
    fn into_schema(self, id: Option<u32>) -> Result<RegisteredSchema, RegistryError> {
        Ok(RegisteredSchema {
            id: self
                .id
                .or(id)
                .ok_or_else(|| RegistryError::BadResponse("schema without an id".into()))?,
            schema_type: self.schema_type.unwrap_or(SchemaType::Avro),
            schema: self.schema,
            references: self.references,
            version: self.subject.zip(self.version),
        })
    }
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Registry {
    /// A client for the configured registry.
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, RegistryError> {
        let urls: Vec<String> = config
            .url
            .as_deref()
            .ok_or_else(|| RegistryError::Config("no URL: set schema_registry.url, STREAMLAKE_SCHEMA_REGISTRY_URL or --schema-registry".into()))?
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_millis(config.request_timeout_ms));
        if let Some(ca) = &config.ssl_ca_location {
            let pem = std::fs::read(ca)
                .map_err(|e| RegistryError::Config(format!("cannot read {ca}: {e}")))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| RegistryError::Config(format!("{ca}: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        Ok(Self {
            http,
            urls,
            config: config.clone(),
            cache: Mutex::new(Cache::default()),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError> {
        let mut unreachable = Vec::new();
        for base in &self.urls {
            let mut req = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .header("Accept", CONTENT_TYPE);
            if let (Some(user), Some(pass)) = (
                &self.config.basic_auth_user,
                &self.config.basic_auth_password,
            ) {
                req = req.basic_auth(user, Some(pass.expose()));
            }
            if let Some(token) = &self.config.bearer_token {
                req = req.bearer_auth(token.expose());
            }
            if let Some(b) = &body {
                req = req.header("Content-Type", CONTENT_TYPE).body(b.to_string());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    unreachable.push(format!("{base}: {}", without_url(e)));
                    continue;
                }
            };
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(|e| RegistryError::BadResponse(e.to_string()))?;
            if status.is_success() {
                return serde_json::from_str(&text)
                    .map_err(|e| RegistryError::BadResponse(format!("{e}: {text}")));
            }
            if status.is_server_error() && self.urls.len() > 1 {
                unreachable.push(format!("{base}: HTTP {status}"));
                continue;
            }
            return Err(refused(status, &text));
        }
        Err(RegistryError::Unreachable(unreachable.join("; ")))
    }

    /// Registers `schema` under `subject` (or finds it there) and returns its id. Cached.
    pub async fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[Reference],
    ) -> Result<u32, RegistryError> {
        let mut body = json!({ "schema": schema, "schemaType": schema_type.as_str() });
        if !references.is_empty() {
            body["references"] = serde_json::to_value(references).expect("references serialize");
        }
        let path = format!("/subjects/{}/versions", enc(subject));
        let id = self
            .schema_id(path, subject, schema_type, schema, body)
            .await?;
        self.cache
            .lock()
            .expect("lock")
            .by_id
            .entry(id)
            .or_insert_with(|| {
                Arc::new(RegisteredSchema {
                    id,
                    schema_type,
                    schema: schema.to_owned(),
                    references: references.to_vec(),
                    version: None,
                })
            });
        Ok(id)
    }

    /// The id of `schema` if it is registered under `subject` (no registration). Cached.
    pub async fn lookup(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        let body = json!({ "schema": schema, "schemaType": schema_type.as_str() });
        let path = format!("/subjects/{}", enc(subject));
        self.schema_id(path, subject, schema_type, schema, body)
            .await
    }

    /// POSTs `body` to `path` and reads the schema id from the answer; cached per subject and
    /// schema text.
    async fn schema_id(
        &self,
        path: String,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        body: Value,
    ) -> Result<u32, RegistryError> {
        let key = (subject.to_owned(), schema_type, schema.to_owned());
        if let Some(id) = self.cache.lock().expect("lock").ids.get(&key) {
            return Ok(*id);
        }
        let v = self.call(Method::POST, &path, Some(body)).await?;
        let id = v["id"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| RegistryError::BadResponse(v.to_string()))?;
        self.cache.lock().expect("lock").ids.insert(key, id);
        Ok(id)
    }

    /// The schema with this id. Cached forever (ids never change meaning).
    pub async fn by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(s) = self.cache.lock().expect("lock").by_id.get(&id) {
            return Ok(Arc::clone(s));
        }
        let v = self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None)
            .await?;
        let parsed: SchemaResponse =
            serde_json::from_value(v).map_err(|e| RegistryError::BadResponse(e.to_string()))?;
        let schema = Arc::new(parsed.into_schema(Some(id))?);
        self.cache
            .lock()
            .expect("lock")
            .by_id
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    /// A version of a subject (`None`: the latest). The latest is cached after the first call,
    /// so a registry outage does not stop serializers that use it.
    pub async fn version(
        &self,
        subject: &str,
        version: Option<i32>,
    ) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if version.is_none() {
            if let Some(s) = self.cache.lock().expect("lock").latest.get(subject) {
                return Ok(Arc::clone(s));
            }
        }
        let v = version.map_or_else(|| "latest".to_owned(), |v| v.to_string());
        let value = self
            .call(
                Method::GET,
                &format!("/subjects/{}/versions/{v}", enc(subject)),
                None,
            )
            .await?;
        let parsed: SchemaResponse =
            serde_json::from_value(value).map_err(|e| RegistryError::BadResponse(e.to_string()))?;
        let schema = Arc::new(parsed.into_schema(None)?);
        let mut cache = self.cache.lock().expect("lock");
        cache
            .by_id
            .entry(schema.id)
            .or_insert_with(|| Arc::clone(&schema));
        if version.is_none() {
            cache.latest.insert(subject.to_owned(), Arc::clone(&schema));
        }
        Ok(schema)
    }

    /// Asks whether `schema` could be registered under `subject`, with the registry's reasons.
    pub async fn check_compatibility(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
    ) -> Result<Compatibility, RegistryError> {
        let body = json!({ "schema": schema, "schemaType": schema_type.as_str() });
        let path = format!(
            "/compatibility/subjects/{}/versions/latest?verbose=true",
            enc(subject)
        );
        match self.call(Method::POST, &path, Some(body)).await {
            Ok(v) => Ok(Compatibility {
                compatible: v["is_compatible"].as_bool().unwrap_or(false),
                messages: v["messages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            // No version yet: anything is compatible.
            Err(e) if e.is_not_found() => Ok(Compatibility {
                compatible: true,
                messages: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Every subject.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let v = self.call(Method::GET, "/subjects", None).await?;
        serde_json::from_value(v).map_err(|e| RegistryError::BadResponse(e.to_string()))
    }

    /// Sets the compatibility level of a subject, or the global default with `None`.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: &str,
    ) -> Result<(), RegistryError> {
        let path = subject.map_or_else(|| "/config".to_owned(), |s| format!("/config/{}", enc(s)));
        self.call(Method::PUT, &path, Some(json!({ "compatibility": level })))
            .await
            .map(|_| ())
    }
}

fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn refused(status: StatusCode, text: &str) -> RegistryError {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    RegistryError::Refused {
        status: status.as_u16(),
        code: v["error_code"]
            .as_i64()
            .unwrap_or(i64::from(status.as_u16())),
        message: v["message"]
            .as_str()
            .map_or_else(|| text.trim().to_owned(), str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_url_encoded() {
        assert_eq!(enc("orders-value"), "orders-value");
        assert_eq!(enc("shop/Order v1"), "shop%2FOrder%20v1");
    }

    #[test]
    fn no_url_is_a_clear_error() {
        let err = Registry::new(&SchemaRegistryConfig::default()).unwrap_err();
        assert!(
            err.to_string().contains("STREAMLAKE_SCHEMA_REGISTRY_URL"),
            "{err}"
        );
    }
}
