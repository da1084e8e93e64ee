//! Security against a broker that enforces it: SASL/SCRAM on crabka-broker 0.3.0 (the shared
//! test rig's `scram_broker`, users made when it starts). Each mechanism writes and reads a
//! record end to end; a wrong password or an unknown user fails within seconds, with an error
//! that says authentication failed and names the broker, and never contains the password.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use streamlake::config::{SaslMechanism, Secret, SecurityProtocol};
use streamlake::{Config, Consumer, ConsumerOptions, Producer, Received, Record, StartFrom};
use streamlake_test_support::{scram_broker, unique_topic, SCRAM_USERS};

fn scram_config(mechanism: &str, user: &str, password: &str) -> Config {
    let mut c = Config::with_bootstrap(&scram_broker().bootstrap);
    c.security.protocol = SecurityProtocol::SaslPlaintext;
    c.security.sasl_mechanism = Some(match mechanism {
        "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
        "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
        other => panic!("no such mechanism in the tests: {other}"),
    });
    c.security.sasl_username = Some(user.into());
    c.security.sasl_password = Some(Secret::new(password));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scram_mechanism_writes_and_reads_a_record_end_to_end() {
    for u in &SCRAM_USERS {
        let config = scram_config(u.mechanism, u.name, u.password);
        let topic = unique_topic("scram");
        let admin = streamlake::admin::Admin::new(&config, Duration::from_secs(20)).unwrap();
        admin.create_topic(&topic, 1, 1, &[]).await.unwrap();
        let producer = Producer::new(&config).unwrap();
        let value = format!("written by {} over {}", u.name, u.mechanism);
        let delivered = tokio::time::timeout(
            Duration::from_secs(30),
            producer.send(Record::new(&topic, value.clone()).key(u.name)),
        )
        .await
        .expect("no hang")
        .unwrap_or_else(|e| panic!("{} over {}: {}", u.name, u.mechanism, e.error));
        assert_eq!((delivered.partition, delivered.offset), (0, 0));
        let consumer = Consumer::new(&config, ConsumerOptions::default()).unwrap();
        consumer
            .assign(&topic, Some(&[0]), StartFrom::Offset(0))
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the record is read back within 30 s")
            .unwrap();
        let Received::Record(r) = got else {
            panic!("expected a record, got {got:?}")
        };
        assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
        assert_eq!(r.key.as_deref(), Some(u.name.as_bytes()));
        assert_eq!(r.offset, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_unknown_user_fails_within_seconds_and_never_shows_the_password() {
    let alice = &SCRAM_USERS[0];
    let cases = [
        (alice.name, "not-alices-pw-Q7"),
        ("mallory-unknown", "mallorys-pw-W2"),
    ];
    for (user, password) in cases {
        let mut config = scram_config(alice.mechanism, user, password);
        config.producer.delivery_timeout_ms = 5_000;
        config.producer.request_timeout_ms = 4_000;
        let producer = Producer::new(&config).unwrap();
        let started = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(20),
            producer.send(Record::new("never-written", "v")),
        )
        .await
        .expect("no hang")
        .unwrap_err();
        let took = started.elapsed();
        let text = err.error.to_string();
        assert!(
            took < Duration::from_secs(15),
            "{user}: took {took:?}: {text}"
        );
        assert!(
            text.contains("SASL authentication error") && text.contains(&scram_broker().bootstrap),
            "{user}: the error names neither the cause nor the broker: {text}"
        );
        assert!(
            !text.contains(password),
            "{user}: the password is in: {text}"
        );
        assert!(
            !format!("{err:?}").contains(password),
            "{user}: the password is in the Debug form"
        );
    }
}
