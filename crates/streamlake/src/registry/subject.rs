//! Subject naming strategies.

use crate::config::SubjectNameStrategy;

/// Whether a schema is for record keys or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Record keys.
    Key,
    /// Record values.
    Value,
}

/// The registry subject for a schema, as Confluent's serializers name it.
pub fn subject_name(
    strategy: SubjectNameStrategy,
    topic: &str,
    role: Role,
    record_name: Option<&str>,
) -> Result<String, String> {
    let suffix = match role {
        Role::Key => "key",
        Role::Value => "value",
    };
    let record = || {
        record_name.ok_or_else(|| {
            format!("the {strategy:?} subject strategy needs a named record type in the schema")
        })
    };
    Ok(match strategy {
        SubjectNameStrategy::Topic => format!("{topic}-{suffix}"),
        SubjectNameStrategy::Record => record()?.to_owned(),
        SubjectNameStrategy::TopicRecord => format!("{topic}-{}", record()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let s = |st, r| subject_name(st, "orders", r, Some("shop.Order"));
        assert_eq!(
            s(SubjectNameStrategy::Topic, Role::Value).unwrap(),
            "orders-value"
        );
        assert_eq!(
            s(SubjectNameStrategy::Topic, Role::Key).unwrap(),
            "orders-key"
        );
        assert_eq!(
            s(SubjectNameStrategy::Record, Role::Value).unwrap(),
            "shop.Order"
        );
        assert_eq!(
            s(SubjectNameStrategy::TopicRecord, Role::Value).unwrap(),
            "orders-shop.Order"
        );
        assert!(subject_name(SubjectNameStrategy::Record, "t", Role::Value, None).is_err());
    }
}
