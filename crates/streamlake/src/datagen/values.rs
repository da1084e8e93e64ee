//! Realistic values, chosen by field name first and type second.

use super::shape::{Field, Shape, Text};
use super::spec::{FieldSpec, Spec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value};

/// Brand names the generator and the demo use.
pub const BRANDS: &[&str] = &[
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
];
const ADJECTIVES: &[&str] = &[
    "Air", "Cloud", "Trail", "Urban", "Swift", "Classic", "Ultra", "Retro", "Summit", "Storm",
];
const NOUNS: &[&str] = &[
    "Runner", "Walker", "Glide", "Boost", "Court", "Trek", "Sprint", "Flex", "Pulse", "Drift",
];
const FIRST: &[&str] = &[
    "ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "radia", "john",
];
const LAST: &[&str] = &[
    "lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie",
    "perlman", "backus",
];
const CITIES: &[&str] = &[
    "Amsterdam",
    "Berlin",
    "Lisbon",
    "Madrid",
    "Paris",
    "Rome",
    "Vienna",
    "Warsaw",
    "Dublin",
    "Oslo",
];
const COUNTRIES: &[&str] = &["NL", "DE", "PT", "ES", "FR", "IT", "AT", "PL", "IE", "NO"];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];
const WORDS: &[&str] = &[
    "alpha", "bravo", "delta", "echo", "kilo", "lima", "nova", "orbit", "quartz", "zephyr",
];

/// Fills shapes with values. Deterministic for a given seed, base time and record number.
pub(crate) struct Filler<'a> {
    pub rng: &'a mut ChaCha8Rng,
    pub spec: &'a Spec,
    /// Record number, from 0.
    pub seq: u64,
    /// "Now", in ms since the epoch.
    pub now_ms: i64,
}

/// A field path, built only when a spec could match it.
fn join(track: bool, base: &str, part: &dyn std::fmt::Display) -> String {
    if track {
        format!("{base}/{part}")
    } else {
        String::new()
    }
}

fn pick<'s>(rng: &mut ChaCha8Rng, from: &'s [&'s str]) -> &'s str {
    from[rng.random_range(0..from.len())]
}

fn round(x: f64, decimals: u32) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}

fn num(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn id_prefix(name: &str) -> String {
    let stem = name
        .trim_end_matches("_id")
        .trim_end_matches("Id")
        .trim_end_matches("id")
        .trim_end_matches('_');
    match stem {
        "" => "ID".to_owned(),
        "order" => "ORD".to_owned(),
        "customer" => "CUST".to_owned(),
        "user" => "USR".to_owned(),
        "product" => "PRD".to_owned(),
        s => s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(4)
            .collect::<String>()
            .to_ascii_uppercase(),
    }
}

fn is_id(name: &str) -> bool {
    name == "id" || name.ends_with("_id") || name.ends_with("Id")
}

impl Filler<'_> {
    /// A value for `shape` at `path`; `name` is the field's name.
    pub(crate) fn value(&mut self, shape: &Shape, name: &str, path: &str, wildcard: &str) -> Value {
        let track = !self.spec.fields.is_empty();
        let spec = if track {
            self.spec.get(path, wildcard).cloned()
        } else {
            None
        };
        if let Some(s) = &spec {
            if let Some(v) = self.overridden(s, shape) {
                return v;
            }
        }
        let null_rate = spec.as_ref().and_then(|s| s.null_rate).unwrap_or(0.1);
        let n = name.to_ascii_lowercase();
        match shape {
            Shape::Null => Value::Null,
            Shape::Const(v) => v.clone(),
            Shape::Bool => Value::Bool(self.rng.random_bool(0.5)),
            Shape::Optional(inner) => {
                if self.rng.random_bool(null_rate) {
                    Value::Null
                } else {
                    self.value(inner, name, path, wildcard)
                }
            }
            Shape::OneOf(options) if !options.is_empty() => {
                let i = self.rng.random_range(0..options.len());
                self.value(&options[i], name, path, wildcard)
            }
            Shape::OneOf(_) => Value::Null,
            Shape::Enum(symbols) if !symbols.is_empty() => {
                Value::String(symbols[self.rng.random_range(0..symbols.len())].clone())
            }
            Shape::Enum(_) => Value::Null,
            Shape::Array(item) => {
                let len = self.rng.random_range(1..=3);
                Value::Array(
                    (0..len)
                        .map(|i| {
                            self.value(
                                item,
                                name,
                                &join(track, path, &i),
                                &join(track, wildcard, &"*"),
                            )
                        })
                        .collect(),
                )
            }
            Shape::Map(item) => {
                let len = self.rng.random_range(1..=3);
                let mut m = Map::new();
                for _ in 0..len {
                    let k = pick(self.rng, WORDS).to_owned();
                    let v = self.value(
                        item,
                        &k,
                        &join(track, path, &k),
                        &join(track, wildcard, &"*"),
                    );
                    m.insert(k, v);
                }
                Value::Object(m)
            }
            Shape::Record(fields) => self.record(fields, path, wildcard),
            Shape::TimestampMillis => Value::from(self.now_ms - self.rng.random_range(0..5_000)),
            Shape::TimestampMicros => {
                Value::from((self.now_ms - self.rng.random_range(0..5_000)) * 1_000)
            }
            Shape::Int { min, max } => Value::from(self.int(&n, *min, *max)),
            Shape::Float { min, max } => num(self.float(&n, *min, *max)),
            Shape::Text(kind) => Value::String(self.text(&n, *kind)),
        }
    }

    fn record(&mut self, fields: &[Field], path: &str, wildcard: &str) -> Value {
        let mut m = Map::new();
        let track = !self.spec.fields.is_empty();
        for f in fields {
            let (p, w) = (join(track, path, &f.name), join(track, wildcard, &f.name));
            if !f.required {
                let rate = self
                    .spec
                    .get(&p, &w)
                    .and_then(|s| s.null_rate)
                    .unwrap_or(0.1);
                if self.rng.random_bool(rate) {
                    continue;
                }
            }
            let v = self.value(&f.shape, &f.name, &p, &w);
            m.insert(f.name.clone(), v);
        }
        Value::Object(m)
    }

    fn overridden(&mut self, s: &FieldSpec, shape: &Shape) -> Option<Value> {
        if let Some(c) = &s.constant {
            return Some(c.clone());
        }
        if let Some(choices) = &s.choices {
            return Some(choices[self.rng.random_range(0..choices.len())].clone());
        }
        if let Some(start) = s.sequence {
            let n = start + self.seq as i64;
            return Some(match shape {
                Shape::Text(_) => Value::String(n.to_string()),
                _ => Value::from(n),
            });
        }
        if s.min.is_some() || s.max.is_some() {
            let (lo, hi) = (
                s.min.unwrap_or(0.0),
                s.max.unwrap_or(s.min.unwrap_or(0.0) + 1000.0),
            );
            let x = if hi > lo {
                self.rng.random_range(lo..=hi)
            } else {
                lo
            };
            return Some(match (shape, s.decimals) {
                (Shape::Int { .. }, _) | (_, Some(0)) => Value::from(x.round() as i64),
                (_, d) => num(round(x, d.unwrap_or(2))),
            });
        }
        None
    }

    fn int(&mut self, n: &str, min: i64, max: i64) -> i64 {
        let (lo, hi) = if is_id(n) {
            let id = 1 + self.seq as i64;
            (id, id)
        } else if n.contains("qty") || n.contains("quantity") || n.contains("count") {
            (1, 10)
        } else if n.contains("age") {
            (18, 90)
        } else if n.contains("year") {
            (1990, 2026)
        } else if n.contains("price") || n.contains("amount") || n.contains("cents") {
            (100, 50_000)
        } else {
            (0, 1_000)
        };
        let (lo, hi) = (lo.clamp(min, max), hi.clamp(min, max));
        if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        }
    }

    fn float(&mut self, n: &str, min: f64, max: f64) -> f64 {
        let (lo, hi, decimals): (f64, f64, u32) =
            if n.contains("rating") || n.contains("score") || n.contains("stars") {
                (1.0, 5.0, 1)
            } else if n.contains("price")
                || n.contains("amount")
                || n.contains("total")
                || n.contains("cost")
            {
                (5.0, 500.0, 2)
            } else if n.starts_with("lat") {
                (-90.0, 90.0, 5)
            } else if n.starts_with("lon") || n.starts_with("lng") {
                (-180.0, 180.0, 5)
            } else {
                (0.0, 1_000.0, 2)
            };
        let (lo, hi) = (lo.clamp(min, max), hi.clamp(min, max));
        let x = if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        };
        round(x, decimals).clamp(min, max)
    }

    fn text(&mut self, n: &str, kind: Text) -> String {
        let time = |ms: i64| {
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
            )
            .to_string()
        };
        match kind {
            Text::Email => return self.email(),
            Text::DateTime => return time(self.now_ms - self.rng.random_range(0..5_000)),
            Text::Uuid => return self.uuid(),
            Text::Plain => {}
        }
        if n.contains("email") {
            self.email()
        } else if n.ends_with("_at")
            || n.contains("time")
            || n.contains("date")
            || n.contains("timestamp")
        {
            time(self.now_ms - self.rng.random_range(0..5_000))
        } else if n.contains("uuid") || n == "ingestion_id" {
            self.uuid()
        } else if is_id(n) {
            format!("{}-{:06}", id_prefix(n), 1 + self.seq)
        } else if n.contains("brand") || n.contains("company") || n.contains("vendor") {
            pick(self.rng, BRANDS).to_owned()
        } else if n == "name" || n.contains("product") || n.contains("title") || n.contains("model")
        {
            format!("{} {}", pick(self.rng, ADJECTIVES), pick(self.rng, NOUNS))
        } else if n.contains("first") {
            pick(self.rng, FIRST).to_owned()
        } else if n.contains("last") || n.contains("surname") {
            pick(self.rng, LAST).to_owned()
        } else if n.contains("currency") {
            pick(self.rng, CURRENCIES).to_owned()
        } else if n.contains("country") {
            pick(self.rng, COUNTRIES).to_owned()
        } else if n.contains("city") {
            pick(self.rng, CITIES).to_owned()
        } else if n.contains("sku") {
            format!("SKU-{:05}", self.rng.random_range(0..100_000))
        } else if n.contains("phone") {
            format!("+31 6 {:08}", self.rng.random_range(0..100_000_000))
        } else if n.contains("url") {
            format!(
                "https://shop.example/{}/{}",
                pick(self.rng, WORDS),
                self.rng.random_range(0..10_000)
            )
        } else {
            format!("{} {}", pick(self.rng, WORDS), pick(self.rng, WORDS))
        }
    }

    fn email(&mut self) -> String {
        format!(
            "{}.{}{}@example.com",
            pick(self.rng, FIRST),
            pick(self.rng, LAST),
            self.rng.random_range(1..1_000)
        )
    }

    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}
