"""Confluent's own Schema Registry serializers (confluent-kafka), for StreamLake's interop tests.

produce FORMAT BOOTSTRAP REGISTRY TOPIC SCHEMA_FILE: JSON documents on stdin, one per line,
    serialized with AvroSerializer / JSONSerializer (auto-registering) and produced.
consume FORMAT BOOTSTRAP REGISTRY TOPIC COUNT [SCHEMA_FILE]: reads COUNT records from the
    beginning, decodes them with AvroDeserializer / JSONDeserializer, prints one JSON per line.
FORMAT is avro or json.
"""

import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kafka_interop import group_consumer, poll_n


def produce(fmt, bootstrap, registry, topic, schema_file):
    sr = SchemaRegistryClient({"url": registry})
    schema = open(schema_file).read()
    if fmt == "avro":
        ser = AvroSerializer(sr, schema, conf={"auto.register.schemas": True})
    else:
        ser = JSONSerializer(schema, sr, conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for line in sys.stdin:
        if not line.strip():
            continue
        value = ser(json.loads(line), SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=value, on_delivery=lambda err, _m: err and errors.append(str(err)))
        producer.poll(0)
    remaining = producer.flush(30)
    return 0 if not errors and remaining == 0 else 1


def consume(fmt, bootstrap, registry, topic, count, schema_file=None):
    sr = SchemaRegistryClient({"url": registry})
    if fmt == "avro":
        de = AvroDeserializer(sr)
    else:
        de = JSONDeserializer(open(schema_file).read(), schema_registry_client=sr)
    consumer = group_consumer(bootstrap, topic, "schema-interop-")

    def show(msg):
        print(json.dumps(de(msg.value(), SerializationContext(topic, MessageField.VALUE))), flush=True)

    return 0 if poll_n(consumer, count, show) == count else 1


if __name__ == "__main__":
    cmd, fmt = sys.argv[1], sys.argv[2]
    if cmd == "produce":
        sys.exit(produce(fmt, *sys.argv[3:7]))
    sys.exit(consume(fmt, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), *sys.argv[7:]))
