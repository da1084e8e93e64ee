//! JSON Schema: validation with every violation named by its JSON pointer.

use super::SerdeError;
use serde_json::Value;

pub(crate) struct JsonSchemaCodec {
    pub(crate) schema: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for JsonSchemaCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchemaCodec")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl JsonSchemaCodec {
    pub(crate) fn new(text: &str) -> Result<Self, SerdeError> {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| SerdeError::Schema(format!("JSON Schema is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| SerdeError::Schema(format!("invalid JSON Schema: {e}")))?;
        Ok(Self { schema, validator })
    }

    /// The schema's `title`, used as its record name.
    pub(crate) fn title(&self) -> Option<String> {
        self.schema["title"].as_str().map(str::to_owned)
    }

    /// Checks a document; the error names the first failing field and lists every violation.
    pub(crate) fn validate(&self, doc: &Value) -> Result<(), SerdeError> {
        let errors: Vec<(String, String)> = self
            .validator
            .iter_errors(doc)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect();
        let Some((first_path, _)) = errors.first() else {
            return Ok(());
        };
        let message = errors
            .iter()
            .map(|(p, m)| {
                if p == first_path {
                    m.clone()
                } else {
                    format!("{}: {m}", if p.is_empty() { "(document)" } else { p })
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(SerdeError::field(first_path, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"title":"Order","type":"object","required":["order_id","amount"],
        "properties":{"order_id":{"type":"string"},"amount":{"type":"number","minimum":0},
                      "items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"}}}}},
        "additionalProperties":false}"#;

    #[test]
    fn valid_documents_pass_and_title_is_the_record_name() {
        let c = JsonSchemaCodec::new(SCHEMA).unwrap();
        c.validate(&json!({"order_id":"O-1","amount":3,"items":[{"sku":"A"}]}))
            .unwrap();
        assert_eq!(c.title().as_deref(), Some("Order"));
    }

    #[test]
    fn violations_are_named_by_pointer() {
        let c = JsonSchemaCodec::new(SCHEMA).unwrap();
        let e = c
            .validate(&json!({"order_id":"O-1","amount":-2}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("field /amount: -2 is less than the minimum of 0"),
            "{e}"
        );
        let e = c
            .validate(&json!({"order_id":"O","amount":1,"items":[{"sku":5}]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("field /items/0/sku: 5 is not of type \"string\""),
            "{e}"
        );
        let e = c.validate(&json!({"amount":"x"})).unwrap_err().to_string();
        assert!(
            e.contains("\"order_id\" is a required property") && e.contains("/amount"),
            "{e}"
        );
    }

    #[test]
    fn invalid_schema_is_reported() {
        assert!(JsonSchemaCodec::new(r#"{"type": 12}"#)
            .unwrap_err()
            .to_string()
            .starts_with("schema: invalid JSON Schema"));
    }
}
