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
        // `format` (date-time, email, uuid, …) is enforced, not only annotated.
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| SerdeError::Schema(format!("invalid JSON Schema: {e}")))?;
        Ok(Self { schema, validator })
    }

    /// The schema's `title`, used as its record name.
    pub(crate) fn title(&self) -> Option<String> {
        self.schema["title"].as_str().map(str::to_owned)
    }

    /// Checks a document; the error names the first failing field and lists every violation.
    pub(crate) fn validate(&self, doc: &Value) -> Result<(), SerdeError> {
        let violations = self.violations(doc);
        match violations.first() {
            None => Ok(()),
            Some(first) => Err(SerdeError::field(&first.path, Self::describe(&violations))),
        }
    }

    /// Every violation of `doc`, in the validator's order.
    pub(crate) fn violations(&self, doc: &Value) -> Vec<Violation> {
        self.validator
            .iter_errors(doc)
            .map(|e| Violation {
                path: e.instance_path().to_string(),
                keyword: e
                    .schema_path()
                    .to_string()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                message: e.to_string(),
            })
            .collect()
    }

    /// The violations as one message (the first one's, then the others with their pointers);
    /// it quotes the values.
    pub(crate) fn describe(violations: &[Violation]) -> String {
        let first_path = violations.first().map_or("", |v| v.path.as_str());
        violations
            .iter()
            .map(|v| {
                if v.path == first_path {
                    v.message.clone()
                } else {
                    format!("{}: {}", v.field(), v.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One broken rule of a JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// JSON pointer of the field (`""` for the whole document).
    pub path: String,
    /// The schema keyword broken (`minimum`, `format`, `required`, …).
    pub keyword: String,
    /// The validator's message, which may quote the value.
    pub message: String,
}

impl Violation {
    fn field(&self) -> &str {
        if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        }
    }

    /// The field and the rule, without the value: `/card: pattern`.
    pub(crate) fn rule(&self) -> String {
        format!("{}: {}", self.field(), self.keyword)
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
