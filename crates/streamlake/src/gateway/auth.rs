//! API keys (bearer tokens, allowed per dataset) and a token-bucket rate limit per key.

use super::config::ApiKeyConfig;
use std::sync::Mutex;
use std::time::Instant;

/// The configured keys. With none configured, every request is let through.
#[derive(Debug, Default)]
pub(crate) struct ApiKeys {
    keys: Vec<Key>,
}

struct Key {
    name: String,
    secret: Vec<u8>,
    datasets: Vec<String>,
    bucket: Option<Mutex<Bucket>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("datasets", &self.datasets)
            .finish_non_exhaustive()
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes one token, or says how many seconds until one is there.
    fn take(&mut self, now: Instant) -> Result<(), f64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / self.rate)
        }
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq)]
pub(crate) enum Denied {
    /// No `Authorization: Bearer` header (401).
    Missing,
    /// The key is not one of ours (401).
    Unknown,
    /// The key may not write to this dataset (403).
    Forbidden(String),
    /// Over the key's rate (429), with seconds to wait.
    Limited(String, u64),
}

impl ApiKeys {
    /// Resolves the keys (`key_env` read now).
    pub(crate) fn new(config: &[ApiKeyConfig]) -> Result<Self, String> {
        let mut keys = Vec::with_capacity(config.len());
        for (i, k) in config.iter().enumerate() {
            let secret = match (&k.key, &k.key_env) {
                (Some(s), _) => s.expose().to_owned(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    format!(
                        "api_keys[{i}] ({}): environment variable {var} is not set",
                        k.name
                    )
                })?,
                (None, None) => {
                    return Err(format!("api_keys[{i}] ({}): no key", k.name));
                }
            };
            if secret.len() < 16 {
                return Err(format!(
                    "api_keys[{i}] ({}): the key is shorter than 16 characters",
                    k.name
                ));
            }
            let bucket = k.requests_per_second.map(|rate| {
                let burst = k.burst.map_or(rate.max(1.0), f64::from);
                Mutex::new(Bucket {
                    rate,
                    burst,
                    tokens: burst,
                    last: Instant::now(),
                })
            });
            keys.push(Key {
                name: k.name.clone(),
                secret: secret.into_bytes(),
                datasets: k.datasets.clone(),
                bucket,
            });
        }
        Ok(Self { keys })
    }

    /// Whether keys are required.
    pub(crate) fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks the `Authorization` header for `dataset` and charges the key's bucket. Returns
    /// the key's name (`None` when no keys are configured).
    pub(crate) fn check(
        &self,
        authorization: Option<&str>,
        dataset: &str,
    ) -> Result<Option<&str>, Denied> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(Denied::Missing)?;
        // Every key is compared in full, so the time taken does not tell which bytes matched.
        let mut found = None;
        for k in &self.keys {
            if constant_time_eq(k.secret.as_slice(), token.as_bytes()) {
                found = Some(k);
            }
        }
        let key = found.ok_or(Denied::Unknown)?;
        if !key.datasets.is_empty() && !key.datasets.iter().any(|d| d == dataset) {
            return Err(Denied::Forbidden(key.name.clone()));
        }
        if let Some(bucket) = &key.bucket {
            bucket
                .lock()
                .expect("lock")
                .take(Instant::now())
                .map_err(|wait| Denied::Limited(key.name.clone(), wait.ceil().max(1.0) as u64))?;
        }
        Ok(Some(&key.name))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::Duration;

    fn key(name: &str, secret: &str, datasets: &[&str], rps: Option<f64>) -> ApiKeyConfig {
        ApiKeyConfig {
            name: name.into(),
            key: Some(Secret::new(secret)),
            key_env: None,
            datasets: datasets.iter().map(|d| (*d).to_owned()).collect(),
            requests_per_second: rps,
            burst: None,
        }
    }

    #[test]
    fn keys_are_checked_per_dataset() {
        let keys = ApiKeys::new(&[
            key("checkout", "checkout-0123456789", &["orders"], None),
            key("admin", "admin-0123456789abc", &[], None),
        ])
        .unwrap();
        assert_eq!(keys.check(None, "orders"), Err(Denied::Missing));
        assert_eq!(
            keys.check(Some("Basic abc"), "orders"),
            Err(Denied::Missing)
        );
        assert_eq!(
            keys.check(Some("Bearer nope-0123456789abc"), "orders"),
            Err(Denied::Unknown)
        );
        assert_eq!(
            keys.check(Some("Bearer checkout-0123456789"), "orders"),
            Ok(Some("checkout"))
        );
        assert_eq!(
            keys.check(Some("bearer checkout-0123456789"), "clicks"),
            Err(Denied::Forbidden("checkout".into()))
        );
        assert_eq!(
            keys.check(Some("Bearer admin-0123456789abc"), "clicks"),
            Ok(Some("admin"))
        );
        assert!(ApiKeys::new(&[key("short", "abc", &[], None)]).is_err());
        assert!(ApiKeys::default().check(None, "x").unwrap().is_none());
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let start = Instant::now();
        let mut b = Bucket {
            rate: 2.0,
            burst: 2.0,
            tokens: 2.0,
            last: start,
        };
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        let wait = b.take(start).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(b.take(start + Duration::from_millis(500)).is_ok());
        assert!(b.take(start + Duration::from_millis(500)).is_err());
        // Idle time never saves more than the burst.
        let later = start + Duration::from_secs(60);
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_err());
    }
}
