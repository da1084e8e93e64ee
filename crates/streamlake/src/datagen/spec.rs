//! Per-field overrides, from a small YAML or JSON spec file:
//!
//! ```yaml
//! fields:
//!   /brand: { choices: [Acme, Globex, Initech] }
//!   /sale_price: { min: 20, max: 300, decimals: 2 }
//!   /id: { sequence: 1000 }
//!   /currency: { constant: EUR }
//!   /note: { null_rate: 0.5 }
//! ```
//! Keys are JSON pointers into the generated record (`/lines/*/sku` for every list item).

use super::DatagenError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// How one field is generated instead of the default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Pick one of these values.
    pub choices: Option<Vec<Value>>,
    /// Lowest number.
    pub min: Option<f64>,
    /// Highest number.
    pub max: Option<f64>,
    /// Decimals kept (0 makes integers).
    pub decimals: Option<u32>,
    /// Count up from this number, one per record.
    pub sequence: Option<i64>,
    /// Always this value.
    pub constant: Option<Value>,
    /// Chance (0 to 1) that an optional field is null or left out.
    pub null_rate: Option<f64>,
}

/// The whole spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Overrides by JSON pointer.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
}

impl Spec {
    /// Reads and checks a spec file (YAML or JSON).
    pub fn from_file(path: &Path) -> Result<Self, DatagenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DatagenError::Spec(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| DatagenError::Spec(format!("{}: {e}", path.display())))
    }

    /// Parses and checks spec text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let spec: Spec = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        for (pointer, f) in &spec.fields {
            if !pointer.starts_with('/') {
                return Err(format!(
                    "`{pointer}`: field keys are JSON pointers, like /price"
                ));
            }
            let kinds = [
                f.choices.is_some(),
                f.min.is_some() || f.max.is_some(),
                f.sequence.is_some(),
                f.constant.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() > 1 {
                return Err(format!(
                    "{pointer}: choose one of choices, min/max, sequence or constant"
                ));
            }
            if let (Some(lo), Some(hi)) = (f.min, f.max) {
                if lo > hi {
                    return Err(format!("{pointer}: min {lo} is above max {hi}"));
                }
            }
            if f.null_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(format!("{pointer}: null_rate must be between 0 and 1"));
            }
            if f.choices.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!("{pointer}: choices is empty"));
            }
        }
        Ok(spec)
    }

    /// The override for a field path (`/lines/0/sku` also matches `/lines/*/sku`).
    pub(crate) fn get(&self, path: &str, wildcard: &str) -> Option<&FieldSpec> {
        self.fields.get(path).or_else(|| self.fields.get(wildcard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_conflicts() {
        let s = Spec::parse(
            "fields:\n  /brand: { choices: [A, B] }\n  /price: { min: 1, max: 2, decimals: 2 }\n",
        )
        .unwrap();
        assert_eq!(s.fields.len(), 2);
        assert!(
            Spec::parse("fields:\n  /x: { choices: [A], constant: B }\n")
                .unwrap_err()
                .contains("choose one")
        );
        assert!(Spec::parse("fields:\n  x: { constant: 1 }\n")
            .unwrap_err()
            .contains("JSON pointers"));
        assert!(Spec::parse("fields:\n  /x: { min: 5, max: 1 }\n")
            .unwrap_err()
            .contains("above max"));
        assert!(Spec::parse("fields:\n  /x: { colour: red }\n")
            .unwrap_err()
            .contains("unknown field"));
    }
}
