//! Protobuf: JSON documents to Protobuf binary by a `.proto` schema, and back; Confluent's
//! message-index framing.

use super::SerdeError;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FileDescriptor, MessageDescriptor,
    SerializeOptions,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::Value;

/// The name the schema text is compiled under.
const FILE_NAME: &str = "schema.proto";

/// A compiled `.proto` file and the message written with it.
#[derive(Debug, Clone)]
pub(crate) struct ProtobufCodec {
    file: FileDescriptor,
    pub(crate) message: MessageDescriptor,
    indexes: Vec<i32>,
}

struct InMemory(String);

impl FileResolver for InMemory {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == FILE_NAME {
            File::from_source(name, &self.0)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// A `FileDescriptorProto` in base64, if that is what `text` is.
fn descriptor_from_base64(text: &str) -> Option<prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) || t.contains(';') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    prost_types::FileDescriptorProto::decode(bytes.as_slice())
        .ok()
        .filter(|f| !f.message_type.is_empty())
}

fn compile(text: &str) -> Result<DescriptorPool, SerdeError> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(InMemory(text.to_owned()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(FILE_NAME)
        .map_err(|e| SerdeError::Schema(format!("invalid .proto: {e}")))?;
    Ok(compiler.descriptor_pool())
}

impl ProtobufCodec {
    /// Compiles `text`, `.proto` source or, as Confluent's Python serializer registers it, a
    /// base64-encoded `FileDescriptorProto`; `message` picks the message by full name (default:
    /// the first one).
    pub(crate) fn new(text: &str, message: Option<&str>) -> Result<Self, SerdeError> {
        let (pool, file_name) = match descriptor_from_base64(text) {
            Some(fdp) => {
                let name = fdp.name().to_owned();
                let mut pool = DescriptorPool::new();
                pool.add_file_descriptor_proto(fdp)
                    .map_err(|e| SerdeError::Schema(format!("invalid file descriptor: {e}")))?;
                (pool, name)
            }
            None => (compile(text)?, FILE_NAME.to_owned()),
        };
        let file = pool
            .get_file_by_name(&file_name)
            .ok_or_else(|| SerdeError::Schema("compiled .proto is missing".into()))?;
        let imports: Vec<String> = file
            .dependencies()
            .map(|d| d.name().to_owned())
            .filter(|n| !n.starts_with("google/protobuf/"))
            .collect();
        if !imports.is_empty() {
            return Err(SerdeError::Schema(format!(
                "imports of other files are not supported yet: {}",
                imports.join(", ")
            )));
        }
        let message = match message {
            Some(name) => {
                let full = match file.package_name() {
                    "" => name.to_owned(),
                    pkg if !name.contains('.') => format!("{pkg}.{name}"),
                    _ => name.to_owned(),
                };
                pool.get_message_by_name(&full).ok_or_else(|| {
                    SerdeError::Schema(format!("no message {full} in the .proto file"))
                })?
            }
            None => file
                .messages()
                .next()
                .ok_or_else(|| SerdeError::Schema("the .proto file defines no message".into()))?,
        };
        let indexes = indexes_of(&file, &message);
        Ok(Self {
            file,
            message,
            indexes,
        })
    }

    /// The message's full name (`package.Message`).
    pub(crate) fn record_name(&self) -> String {
        self.message.full_name().to_owned()
    }

    /// Encodes a JSON document (proto3 JSON mapping; field names or JSON names) as the message
    /// indexes followed by the Protobuf binary.
    #[cfg(test)]
    pub(crate) fn encode(&self, doc: &str) -> Result<Vec<u8>, SerdeError> {
        let doc: Value = serde_json::from_str(doc).map_err(|e| SerdeError::Json(e.to_string()))?;
        self.encode_value(&doc)
    }

    /// Like [`ProtobufCodec::encode`], from a parsed document. Decodes without tracking field
    /// paths first (the common, valid case); a document that fails is decoded again with
    /// tracking, to name the field.
    pub(crate) fn encode_value(&self, doc: &Value) -> Result<Vec<u8>, SerdeError> {
        let options = DeserializeOptions::new().deny_unknown_fields(true);
        let message =
            match DynamicMessage::deserialize_with_options(self.message.clone(), doc, &options) {
                Ok(m) => m,
                Err(_) => {
                    let mut track = serde_path_to_error::Track::new();
                    let tracked = serde_path_to_error::Deserializer::new(doc, &mut track);
                    let err = match DynamicMessage::deserialize_with_options(
                        self.message.clone(),
                        tracked,
                        &options,
                    ) {
                        Ok(_) => {
                            return Err(SerdeError::Schema(
                                "document decoded only on the second try".into(),
                            ))
                        }
                        Err(e) => strip_position(&e.to_string()),
                    };
                    return Err(SerdeError::field(&pointer(&track.path()), err));
                }
            };
        let mut out = encode_indexes(&self.indexes);
        message
            .encode(&mut out)
            .map_err(|e| SerdeError::Schema(e.to_string()))?;
        Ok(out)
    }

    /// Decodes message indexes and Protobuf binary into JSON (field names as in the `.proto`,
    /// 64-bit integers as numbers, every field present).
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Value, SerdeError> {
        let (indexes, payload) = decode_indexes(bytes)?;
        let desc = message_at(&self.file, &indexes).ok_or_else(|| {
            SerdeError::Wire(format!("no message at indexes {indexes:?} in the schema"))
        })?;
        let message = DynamicMessage::decode(desc, payload).map_err(|e| {
            SerdeError::Wire(format!("Protobuf payload does not match its schema: {e}"))
        })?;
        let options = SerializeOptions::new()
            .stringify_64_bit_integers(false)
            .use_proto_field_name(true)
            .skip_default_fields(false);
        message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| SerdeError::Wire(e.to_string()))
    }
}

fn strip_position(s: &str) -> String {
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// serde_path_to_error's `a.b[0].c` as a JSON pointer `/a/b/0/c`.
fn pointer(path: &serde_path_to_error::Path) -> String {
    path.iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Map { key } => {
                Some(key.replace('~', "~0").replace('/', "~1"))
            }
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .map(|s| format!("/{s}"))
        .collect()
}

/// Where a message sits in its file: `[i]` for the i-th top-level message, `[i, j]` for the
/// j-th message nested in it, and so on.
fn indexes_of(file: &FileDescriptor, message: &MessageDescriptor) -> Vec<i32> {
    let mut chain = vec![message.clone()];
    while let Some(parent) = chain.last().and_then(MessageDescriptor::parent_message) {
        chain.push(parent);
    }
    chain.reverse();
    let mut out = Vec::with_capacity(chain.len());
    let top = file.messages().position(|m| m == chain[0]).unwrap_or(0);
    out.push(top as i32);
    for pair in chain.windows(2) {
        out.push(
            pair[0]
                .child_messages()
                .position(|m| m == pair[1])
                .unwrap_or(0) as i32,
        );
    }
    out
}

fn message_at(file: &FileDescriptor, indexes: &[i32]) -> Option<MessageDescriptor> {
    let (first, rest) = indexes.split_first()?;
    let mut m = file.messages().nth(usize::try_from(*first).ok()?)?;
    for i in rest {
        let next = m.child_messages().nth(usize::try_from(*i).ok()?)?;
        m = next;
    }
    Some(m)
}

fn zigzag_varint(n: i32, out: &mut Vec<u8>) {
    let mut v = ((n << 1) ^ (n >> 31)) as u32;
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn read_zigzag(bytes: &[u8], pos: &mut usize) -> Result<i32, SerdeError> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| SerdeError::Wire("message indexes are cut short".into()))?;
        *pos += 1;
        v |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(((v >> 1) as i32) ^ -((v & 1) as i32));
        }
    }
    Err(SerdeError::Wire("message index varint is too long".into()))
}

/// Confluent's message-index list: `[0]` (the first message) is the single byte `0`;
/// otherwise the count, then each index, as zigzag varints.
pub(crate) fn encode_indexes(indexes: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    if indexes == [0] {
        out.push(0);
        return out;
    }
    zigzag_varint(indexes.len() as i32, &mut out);
    for i in indexes {
        zigzag_varint(*i, &mut out);
    }
    out
}

/// Splits message indexes from the Protobuf payload.
pub(crate) fn decode_indexes(bytes: &[u8]) -> Result<(Vec<i32>, &[u8]), SerdeError> {
    let mut pos = 0;
    let count = read_zigzag(bytes, &mut pos)?;
    if count == 0 {
        return Ok((vec![0], &bytes[pos..]));
    }
    if !(1..=100).contains(&count) {
        return Err(SerdeError::Wire(format!(
            "implausible message index count {count}"
        )));
    }
    let indexes = (0..count)
        .map(|_| read_zigzag(bytes, &mut pos))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((indexes, &bytes[pos..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHOP: &str = r#"syntax = "proto3";
package shop;
message Shoe { int64 id = 1; string brand = 2; string name = 3; double sale_price = 4; double rating = 5; }
message Order {
  string order_id = 1;
  repeated Line lines = 2;
  Status status = 3;
  message Line { string sku = 1; int32 qty = 2; }
  enum Status { NEW = 0; PAID = 1; }
}
"#;

    #[test]
    fn golden_message_indexes() {
        assert_eq!(encode_indexes(&[0]), [0]);
        assert_eq!(encode_indexes(&[1]), [2, 2]);
        assert_eq!(encode_indexes(&[1, 0]), [4, 2, 0]);
        assert_eq!(decode_indexes(&[0, 9]).unwrap(), (vec![0], &[9u8][..]));
        assert_eq!(
            decode_indexes(&[4, 2, 0, 9]).unwrap(),
            (vec![1, 0], &[9u8][..])
        );
        let first = ProtobufCodec::new(SHOP, None).unwrap();
        assert_eq!(
            (first.record_name().as_str(), first.indexes.as_slice()),
            ("shop.Shoe", &[0][..])
        );
        let second = ProtobufCodec::new(SHOP, Some("Order")).unwrap();
        assert_eq!(second.indexes, [1]);
        let nested = ProtobufCodec::new(SHOP, Some("shop.Order.Line")).unwrap();
        assert_eq!(nested.indexes, [1, 0]);
    }

    #[test]
    fn golden_payload_and_round_trip() {
        let shoe = ProtobufCodec::new(SHOP, None).unwrap();
        let bytes = shoe.encode(r#"{"id": 1, "brand": "Acme"}"#).unwrap();
        // index [0], then field 1 varint 1, field 2 length-delimited "Acme".
        assert_eq!(bytes, [0, 0x08, 1, 0x12, 4, b'A', b'c', b'm', b'e']);
        assert_eq!(
            shoe.decode(&bytes).unwrap(),
            json!({"id": 1, "brand": "Acme", "name": "", "sale_price": 0.0, "rating": 0.0})
        );
        let order = ProtobufCodec::new(SHOP, Some("Order")).unwrap();
        let doc = r#"{"order_id":"O-1","lines":[{"sku":"A","qty":2}],"status":"PAID"}"#;
        assert_eq!(
            order.decode(&order.encode(doc).unwrap()).unwrap(),
            json!({"order_id":"O-1","lines":[{"sku":"A","qty":2}],"status":"PAID"})
        );
    }

    #[test]
    fn errors_name_the_field() {
        let order = ProtobufCodec::new(SHOP, Some("Order")).unwrap();
        let e = order
            .encode(r#"{"order_id":"O","lines":[{"sku":"A","qty":"many"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("field /lines/0/qty: "), "{e}");
        let e = order
            .encode(r#"{"order_id":"O","status":"LOST"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("field /status: ") && e.contains("LOST"),
            "{e}"
        );
        let e = order
            .encode(r#"{"order_id":"O","colour":"red"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn base64_file_descriptors_are_accepted() {
        use base64::Engine as _;
        let fdp = compile(SHOP)
            .unwrap()
            .get_file_by_name(FILE_NAME)
            .unwrap()
            .file_descriptor_proto()
            .clone();
        let text = base64::engine::general_purpose::STANDARD.encode(fdp.encode_to_vec());
        let codec = ProtobufCodec::new(&text, Some("Order")).unwrap();
        assert_eq!(codec.indexes, [1]);
        let bytes = ProtobufCodec::new(SHOP, Some("Order"))
            .unwrap()
            .encode(r#"{"order_id":"x"}"#)
            .unwrap();
        assert_eq!(codec.decode(&bytes).unwrap()["order_id"], "x");
    }

    #[test]
    fn bad_schemas_are_reported() {
        assert!(ProtobufCodec::new("syntax = \"proto3\"; message {", None)
            .unwrap_err()
            .to_string()
            .starts_with("schema: invalid .proto"));
        assert!(ProtobufCodec::new(SHOP, Some("Missing"))
            .unwrap_err()
            .to_string()
            .contains("no message shop.Missing"));
        let imports = "syntax = \"proto3\"; import \"other.proto\"; message A { int32 x = 1; }";
        assert!(ProtobufCodec::new(imports, None).is_err());
    }
}
