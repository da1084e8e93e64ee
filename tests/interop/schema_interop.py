"""Confluent's own Schema Registry serializers (confluent-kafka), for StreamLake's interop tests.

produce FORMAT BOOTSTRAP REGISTRY TOPIC SCHEMA_FILE: JSON documents on stdin, one per line,
    serialized with AvroSerializer / JSONSerializer (auto-registering) and produced.
consume FORMAT BOOTSTRAP REGISTRY TOPIC COUNT [SCHEMA_FILE]: reads COUNT records from the
    beginning, decodes them with AvroDeserializer / JSONDeserializer, prints one JSON per line.
FORMAT is avro, json or protobuf:MESSAGE (the Python class is generated from SCHEMA_FILE with the
protoc that grpcio-tools bundles).
"""

import importlib
import json
import os
import sys
import tempfile

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from google.protobuf.json_format import MessageToDict, ParseDict
from confluent_kafka.serialization import MessageField, SerializationContext

from kafka_interop import group_consumer, poll_n


def proto_class(schema_file, message):
    """Generates Python code for the .proto file and returns the message class."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp()
    folder, name = os.path.split(os.path.abspath(schema_file))
    if protoc.main(["protoc", f"-I{folder}", f"--python_out={out}", name]) != 0:
        raise RuntimeError("protoc failed")
    sys.path.insert(0, out)
    return getattr(importlib.import_module(name[: -len(".proto")] + "_pb2"), message)


def produce(fmt, bootstrap, registry, topic, schema_file):
    sr = SchemaRegistryClient({"url": registry})
    schema = open(schema_file).read()
    to_value = lambda doc: doc
    if fmt.startswith("protobuf:"):
        cls = proto_class(schema_file, fmt.split(":", 1)[1])
        # The registry in the tests cannot store the serialized descriptor Python registers.
        # Python serializes against Confluent's in-memory registry client, and the 4-byte id
        # is then set to the id the same .proto has in the test registry (SCHEMA_ID); framing,
        # message indexes and payload stay exactly as Confluent's serializer wrote them.
        from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient

        ser = ProtobufSerializer(cls, MockSchemaRegistryClient({"url": "mock://"}),
                                 conf={"auto.register.schemas": True, "use.deprecated.format": False})
        schema_id = int(os.environ["SCHEMA_ID"]).to_bytes(4, "big")
        inner = ser

        def ser(value, ctx):
            framed = inner(value, ctx)
            return framed[:1] + schema_id + framed[5:]
        to_value = lambda doc: ParseDict(doc, cls())
    elif fmt == "avro":
        ser = AvroSerializer(sr, schema, conf={"auto.register.schemas": True})
    else:
        ser = JSONSerializer(schema, sr, conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for line in sys.stdin:
        if not line.strip():
            continue
        value = ser(to_value(json.loads(line)), SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=value, on_delivery=lambda err, _m: err and errors.append(str(err)))
        producer.poll(0)
    remaining = producer.flush(30)
    return 0 if not errors and remaining == 0 else 1


def consume(fmt, bootstrap, registry, topic, count, schema_file=None):
    sr = SchemaRegistryClient({"url": registry})
    to_doc = lambda value: value
    if fmt.startswith("protobuf:"):
        cls = proto_class(schema_file, fmt.split(":", 1)[1])
        de = ProtobufDeserializer(cls, conf={"use.deprecated.format": False})
        to_doc = lambda m: MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    elif fmt == "avro":
        de = AvroDeserializer(sr)
    else:
        de = JSONDeserializer(open(schema_file).read(), schema_registry_client=sr)
    consumer = group_consumer(bootstrap, topic, "schema-interop-")

    def show(msg):
        print(json.dumps(to_doc(de(msg.value(), SerializationContext(topic, MessageField.VALUE)))), flush=True)

    return 0 if poll_n(consumer, count, show) == count else 1


if __name__ == "__main__":
    cmd, fmt = sys.argv[1], sys.argv[2]
    if cmd == "produce":
        sys.exit(produce(fmt, *sys.argv[3:7]))
    sys.exit(consume(fmt, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), *sys.argv[7:]))
