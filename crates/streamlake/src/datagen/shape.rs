//! Avro, Protobuf and JSON Schema turned into one shape tree that the generator walks.

use crate::serdes::avro::AvroCodec;
use crate::serdes::json_schema::JsonSchemaCodec;
use crate::serdes::protobuf::ProtobufCodec;
use apache_avro::schema::Schema;
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::Value;
use std::collections::HashMap;

/// Text formats the generator knows to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    Plain,
    Email,
    DateTime,
    Uuid,
}

/// What a value must look like.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Null,
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Text(Text),
    Enum(Vec<String>),
    Array(Box<Shape>),
    Map(Box<Shape>),
    Record(Vec<Field>),
    /// A union with null: sometimes null.
    Optional(Box<Shape>),
    /// Any one of these.
    OneOf(Vec<Shape>),
    /// Exactly this JSON value.
    Const(Value),
    /// Milliseconds since the epoch.
    TimestampMillis,
    /// Microseconds since the epoch.
    TimestampMicros,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub shape: Shape,
    /// JSON Schema properties not listed in `required` may be left out.
    pub required: bool,
}

const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);

/// Avro schema → shape. Named types are resolved through `names`; recursion stops after a few
/// levels (a recursive field becomes null or an empty list).
pub(crate) fn from_avro(codec: &AvroCodec) -> Shape {
    avro(&codec.schema, &codec.names, 0)
}

fn avro(s: &Schema, names: &HashMap<String, Schema>, depth: usize) -> Shape {
    if depth > 8 {
        return Shape::Null;
    }
    match s {
        Schema::Null => Shape::Null,
        Schema::Boolean => Shape::Bool,
        Schema::Int | Schema::Date | Schema::TimeMillis => Shape::Int {
            min: I32.0,
            max: I32.1,
        },
        Schema::Long | Schema::TimeMicros => Shape::Int {
            min: i64::MIN,
            max: i64::MAX,
        },
        Schema::Float | Schema::Double => Shape::Float {
            min: f64::MIN,
            max: f64::MAX,
        },
        Schema::Bytes
        | Schema::String
        | Schema::Fixed(_)
        | Schema::Decimal(_)
        | Schema::BigDecimal
        | Schema::Duration => Shape::Text(Text::Plain),
        Schema::Uuid => Shape::Text(Text::Uuid),
        Schema::TimestampMillis | Schema::LocalTimestampMillis => Shape::TimestampMillis,
        Schema::TimestampMicros
        | Schema::LocalTimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampNanos => Shape::TimestampMicros,
        Schema::Enum(e) => Shape::Enum(e.symbols.clone()),
        Schema::Array(a) => Shape::Array(Box::new(avro(&a.items, names, depth + 1))),
        Schema::Map(m) => Shape::Map(Box::new(avro(&m.types, names, depth + 1))),
        Schema::Record(r) => Shape::Record(
            r.fields
                .iter()
                .map(|f| Field {
                    name: f.name.clone(),
                    shape: avro(&f.schema, names, depth + 1),
                    required: true,
                })
                .collect(),
        ),
        Schema::Union(u) => {
            let branches: Vec<Shape> = u
                .variants()
                .iter()
                .filter(|v| !matches!(v, Schema::Null))
                .map(|v| avro(v, names, depth + 1))
                .collect();
            let inner = if branches.len() == 1 {
                branches.into_iter().next().unwrap_or(Shape::Null)
            } else {
                Shape::OneOf(branches)
            };
            if u.variants().iter().any(|v| matches!(v, Schema::Null)) {
                Shape::Optional(Box::new(inner))
            } else {
                inner
            }
        }
        Schema::Ref { name } => names
            .get(&name.fullname(None))
            .map_or(Shape::Null, |t| avro(t, names, depth + 1)),
    }
}

/// Protobuf message → shape (proto3 JSON mapping: field names as in the `.proto`).
pub(crate) fn from_protobuf(codec: &ProtobufCodec) -> Shape {
    message(&codec.message, 0)
}

fn message(m: &MessageDescriptor, depth: usize) -> Shape {
    if depth > 8 {
        return Shape::Record(Vec::new());
    }
    Shape::Record(
        m.fields()
            .map(|f| {
                let one = |kind: &Kind| -> Shape {
                    match kind {
                        Kind::Double | Kind::Float => Shape::Float {
                            min: f64::MIN,
                            max: f64::MAX,
                        },
                        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Shape::Int {
                            min: I32.0,
                            max: I32.1,
                        },
                        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Shape::Int {
                            min: i64::MIN,
                            max: i64::MAX,
                        },
                        Kind::Uint32 | Kind::Fixed32 => Shape::Int {
                            min: 0,
                            max: i64::from(u32::MAX),
                        },
                        Kind::Uint64 | Kind::Fixed64 => Shape::Int {
                            min: 0,
                            max: i64::MAX,
                        },
                        Kind::Bool => Shape::Bool,
                        Kind::String => Shape::Text(Text::Plain),
                        Kind::Bytes => Shape::Text(Text::Uuid),
                        Kind::Message(inner)
                            if inner.full_name() == "google.protobuf.Timestamp" =>
                        {
                            Shape::Text(Text::DateTime)
                        }
                        Kind::Message(inner) => message(inner, depth + 1),
                        Kind::Enum(e) => {
                            Shape::Enum(e.values().map(|v| v.name().to_owned()).collect())
                        }
                    }
                };
                let shape = if f.is_map() {
                    match f.kind() {
                        Kind::Message(entry) => {
                            Shape::Map(Box::new(one(&entry.map_entry_value_field().kind())))
                        }
                        other => one(&other),
                    }
                } else if f.is_list() {
                    Shape::Array(Box::new(one(&f.kind())))
                } else {
                    one(&f.kind())
                };
                Field {
                    name: f.name().to_owned(),
                    shape,
                    required: true,
                }
            })
            .collect(),
    )
}

/// JSON Schema → shape: `type`, `properties`/`required`, `items`, `enum`, `const`,
/// `minimum`/`maximum`, `format` (email, date-time, uuid), local `$ref`s and `oneOf`/`anyOf`.
pub(crate) fn from_json_schema(codec: &JsonSchemaCodec) -> Shape {
    json(&codec.schema, &codec.schema, 0)
}

fn json(s: &Value, root: &Value, depth: usize) -> Shape {
    if depth > 8 {
        return Shape::Null;
    }
    if let Some(r) = s["$ref"].as_str() {
        let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
        return target.map_or(Shape::Null, |t| json(t, root, depth + 1));
    }
    if let Some(c) = s.get("const") {
        return Shape::Const(c.clone());
    }
    if let Some(e) = s["enum"].as_array() {
        return match e
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
        {
            Some(symbols) => Shape::Enum(symbols),
            None => Shape::OneOf(e.iter().cloned().map(Shape::Const).collect()),
        };
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = s[key].as_array() {
            return Shape::OneOf(options.iter().map(|o| json(o, root, depth + 1)).collect());
        }
    }
    let ty = match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => {
            let non_null: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            let inner = json(
                &with_type(s, non_null.first().copied().unwrap_or("null")),
                root,
                depth,
            );
            return if ts.iter().any(|t| t == "null") {
                Shape::Optional(Box::new(inner))
            } else {
                inner
            };
        }
        _ if s.get("properties").is_some() => "object".to_owned(),
        _ => "string".to_owned(),
    };
    match ty.as_str() {
        "null" => Shape::Null,
        "boolean" => Shape::Bool,
        "integer" => Shape::Int {
            min: s["minimum"].as_f64().map_or(i64::MIN, |m| m.ceil() as i64),
            max: s["maximum"].as_f64().map_or(i64::MAX, |m| m.floor() as i64),
        },
        "number" => Shape::Float {
            min: s["minimum"].as_f64().unwrap_or(f64::MIN),
            max: s["maximum"].as_f64().unwrap_or(f64::MAX),
        },
        "array" => Shape::Array(Box::new(json(&s["items"], root, depth + 1))),
        "object" => {
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match s["properties"].as_object() {
                Some(props) => Shape::Record(
                    props
                        .iter()
                        .map(|(name, p)| Field {
                            name: name.clone(),
                            shape: json(p, root, depth + 1),
                            required: required.contains(&name.as_str()),
                        })
                        .collect(),
                ),
                None => Shape::Map(Box::new(Shape::Text(Text::Plain))),
            }
        }
        _ => Shape::Text(match s["format"].as_str() {
            Some("email") => Text::Email,
            Some("date-time") => Text::DateTime,
            Some("uuid") => Text::Uuid,
            _ => Text::Plain,
        }),
    }
}

fn with_type(s: &Value, ty: &str) -> Value {
    let mut copy = s.clone();
    copy["type"] = Value::String(ty.to_owned());
    copy
}
