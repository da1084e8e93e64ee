//! Schema Registry formats against a real registry (rivven-schema) and a real broker (tansu).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use streamlake::config::{Config, SchemaRegistryConfig, SubjectNameStrategy};
use streamlake::registry::{Registry, Role, SchemaType};
use streamlake::serdes::{wire, Deserializer, Format, LocalSchema, Serializer};
use streamlake::{Consumer, ConsumerOptions, Producer, Received, Record, StartFrom};
use streamlake_test_support::{broker, create_topic, registry, start_registry, unique_topic};

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"order_id","type":"string"},{"name":"amount","type":"double"}]}"#;
const ORDER_V2_COMPATIBLE: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"order_id","type":"string"},{"name":"amount","type":"double"},
    {"name":"currency","type":"string","default":"EUR"}]}"#;
const ORDER_V3_INCOMPATIBLE: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"order_id","type":"string"},{"name":"amount","type":"string"},
    {"name":"currency","type":"string","default":"EUR"}]}"#;
const ORDER_JSON_SCHEMA: &str = r#"{"title":"shop.Order","type":"object","required":["order_id","amount"],
    "properties":{"order_id":{"type":"string"},"amount":{"type":"number","minimum":0}},"additionalProperties":false}"#;

fn settings(url: &str) -> SchemaRegistryConfig {
    SchemaRegistryConfig {
        url: Some(url.to_owned()),
        ..Default::default()
    }
}

fn client(url: &str) -> Arc<Registry> {
    Arc::new(Registry::new(&settings(url)).unwrap())
}

async fn round_trip(
    format: Format,
    schema_type: SchemaType,
    schema: &str,
    docs: &[Value],
) -> Vec<Value> {
    let topic = unique_topic("schema");
    create_topic(&broker().bootstrap, &topic, 2);
    let reg = client(&registry().url());
    let local = LocalSchema::parse(schema_type, schema.to_owned()).unwrap();
    let ser = Serializer::new(
        format,
        Role::Value,
        Some(local),
        Some(Arc::clone(&reg)),
        &settings(&registry().url()),
    )
    .unwrap();
    let id = ser.prepare(&topic).await.unwrap();
    assert_eq!(
        reg.version(&format!("{topic}-value"), None)
            .await
            .unwrap()
            .id,
        id,
        "registered under <topic>-value"
    );

    let producer = Producer::new(&Config::with_bootstrap(&broker().bootstrap)).unwrap();
    for (i, doc) in docs.iter().enumerate() {
        let bytes = ser.serialize(&topic, doc.to_string().as_bytes()).unwrap();
        assert_eq!(
            wire::unframe(&bytes).unwrap().0,
            id,
            "framed with the schema id"
        );
        producer
            .send(Record::new(&topic, bytes).key(i.to_string()))
            .await
            .unwrap();
    }
    let consumer = Consumer::new(
        &Config::with_bootstrap(&broker().bootstrap),
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(&topic, None, StartFrom::Beginning).unwrap();
    let de = Deserializer::new(format, Some(client(&registry().url()))).unwrap();
    let mut out = vec![Value::Null; docs.len()];
    let mut n = 0;
    while n < docs.len() {
        if let Received::Record(r) = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap()
        {
            let i: usize = std::str::from_utf8(r.key.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            out[i] = de.deserialize(r.value.as_deref().unwrap()).await.unwrap();
            n += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_round_trips_through_registry_and_broker() {
    let docs: Vec<Value> = (0..50)
        .map(|i| json!({"order_id": format!("ORD-{i}"), "amount": i as f64 + 0.5}))
        .collect();
    assert_eq!(
        round_trip(Format::Avro, SchemaType::Avro, ORDER_V1, &docs).await,
        docs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_round_trips_and_rejects_what_does_not_fit() {
    let docs: Vec<Value> = (0..20)
        .map(|i| json!({"order_id": format!("ORD-{i}"), "amount": i}))
        .collect();
    assert_eq!(
        round_trip(
            Format::JsonSchema,
            SchemaType::Json,
            ORDER_JSON_SCHEMA,
            &docs
        )
        .await,
        docs
    );

    let ser = Serializer::new(
        Format::JsonSchema,
        Role::Value,
        Some(LocalSchema::parse(SchemaType::Json, ORDER_JSON_SCHEMA.into()).unwrap()),
        Some(client(&registry().url())),
        &settings(&registry().url()),
    )
    .unwrap();
    let topic = unique_topic("json-bad");
    ser.prepare(&topic).await.unwrap();
    let err = ser
        .serialize(&topic, br#"{"order_id":"x","amount":-1}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("field /amount: -1 is less than the minimum of 0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatible_changes_register_new_versions_and_incompatible_ones_are_refused() {
    let reg = client(&registry().url());
    let subject = unique_topic("evolve") + "-value";
    reg.set_compatibility(Some(&subject), "BACKWARD")
        .await
        .unwrap();
    let v1 = reg
        .register(&subject, SchemaType::Avro, ORDER_V1, &[])
        .await
        .unwrap();
    assert_eq!(
        reg.register(&subject, SchemaType::Avro, ORDER_V1, &[])
            .await
            .unwrap(),
        v1,
        "same schema, same id"
    );

    let ok = reg
        .check_compatibility(&subject, SchemaType::Avro, ORDER_V2_COMPATIBLE)
        .await
        .unwrap();
    assert!(ok.compatible, "{ok:?}");
    let v2 = reg
        .register(&subject, SchemaType::Avro, ORDER_V2_COMPATIBLE, &[])
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let latest = reg.version(&subject, None).await.unwrap();
    assert_eq!(
        (latest.id, latest.version.as_ref().map(|v| v.1)),
        (v2, Some(2))
    );

    let bad = reg
        .check_compatibility(&subject, SchemaType::Avro, ORDER_V3_INCOMPATIBLE)
        .await
        .unwrap();
    assert!(!bad.compatible);
    assert!(
        bad.messages
            .iter()
            .any(|m| m.contains("writer=Double, reader=String")),
        "the registry's reason comes through: {bad:?}"
    );
    let err = reg
        .register(&subject, SchemaType::Avro, ORDER_V3_INCOMPATIBLE, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            streamlake::registry::RegistryError::Refused { status: 409, .. }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("writer=Double, reader=String"),
        "{err}"
    );
    assert!(!err.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_after_warm_up_does_not_stop_serialization() {
    let own = start_registry();
    let ser = Serializer::new(
        Format::Avro,
        Role::Value,
        Some(LocalSchema::parse(SchemaType::Avro, ORDER_V1.into()).unwrap()),
        Some(client(&own.url())),
        &settings(&own.url()),
    )
    .unwrap();
    let de = Deserializer::new(Format::Avro, Some(client(&own.url()))).unwrap();
    let topic = unique_topic("outage");
    ser.prepare(&topic).await.unwrap();
    let doc = json!({"order_id":"ORD-1","amount":2.5});
    let first = ser.serialize(&topic, doc.to_string().as_bytes()).unwrap();
    assert_eq!(de.deserialize(&first).await.unwrap(), doc);

    own.kill();
    let second = ser.serialize(&topic, doc.to_string().as_bytes()).unwrap();
    assert_eq!(second, first, "same bytes without the registry");
    assert_eq!(
        de.deserialize(&second).await.unwrap(),
        doc,
        "writer schema cached by id"
    );
    let cold = Deserializer::new(Format::Avro, Some(client(&own.url()))).unwrap();
    let err = cold.deserialize(&second).await.unwrap_err();
    assert!(
        err.is_retriable(),
        "an unknown id with the registry down is retriable: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_name_strategies_and_use_latest_version() {
    let reg = client(&registry().url());
    let topic = unique_topic("strategy");
    let mut s = settings(&registry().url());
    s.subject_name_strategy = SubjectNameStrategy::TopicRecord;
    let ser = Serializer::new(
        Format::Avro,
        Role::Value,
        Some(LocalSchema::parse(SchemaType::Avro, ORDER_V1.into()).unwrap()),
        Some(Arc::clone(&reg)),
        &s,
    )
    .unwrap();
    let id = ser.prepare(&topic).await.unwrap();
    assert_eq!(
        reg.version(&format!("{topic}-shop.Order"), None)
            .await
            .unwrap()
            .id,
        id
    );

    // No local schema: the latest version of the subject (topic strategy) is used.
    let plain = Serializer::new(
        Format::Avro,
        Role::Value,
        Some(LocalSchema::parse(SchemaType::Avro, ORDER_V1.into()).unwrap()),
        Some(Arc::clone(&reg)),
        &settings(&registry().url()),
    )
    .unwrap();
    let topic_id = plain.prepare(&topic).await.unwrap();
    let latest = SchemaRegistryConfig {
        auto_register: false,
        use_latest_version: true,
        ..settings(&registry().url())
    };
    let by_latest = Serializer::new(
        Format::Avro,
        Role::Value,
        None,
        Some(client(&registry().url())),
        &latest,
    )
    .unwrap();
    assert_eq!(by_latest.prepare(&topic).await.unwrap(), topic_id);
    let bytes = by_latest
        .serialize(&topic, br#"{"order_id":"a","amount":1}"#)
        .unwrap();
    assert_eq!(wire::unframe(&bytes).unwrap().0, topic_id);
    let missing = by_latest
        .prepare(&unique_topic("nothing-registered"))
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("40401") || missing.to_string().contains("404"),
        "{missing}"
    );
}
