"""The Python side of the datagen benchmark: random Shoe events, Confluent's ProtobufSerializer,
confluent-kafka's Producer with StreamLake's production defaults (acks=all, idempotence, lz4,
5 ms linger). Prints one JSON object with the count and the seconds taken.

Usage: python_shoes.py BOOTSTRAP TOPIC COUNT PROTO_FILE
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from schema_interop import proto_class  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

BRANDS = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay"]
ADJ = ["Air", "Cloud", "Trail", "Urban", "Swift", "Classic", "Ultra", "Retro", "Summit", "Storm"]
NOUN = ["Runner", "Walker", "Glide", "Boost", "Court", "Trek", "Sprint", "Flex", "Pulse", "Drift"]


def main(bootstrap, topic, count, proto):
    Shoe = proto_class(proto, "Shoe")
    # The schema id is resolved once and cached by Confluent's serializer; an in-memory registry
    # client keeps the test registry's Protobuf limits out of the measurement.
    ser = ProtobufSerializer(Shoe, MockSchemaRegistryClient({"url": "mock://"}),
                             conf={"auto.register.schemas": True, "use.deprecated.format": False})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "compression.type": "lz4", "linger.ms": 5, "queue.buffering.max.messages": 100000})
    ctx = SerializationContext(topic, MessageField.VALUE)
    failed = [0]

    def report(err, _msg):
        if err is not None:
            failed[0] += 1

    rnd = random.Random(42)
    start = time.perf_counter()
    for i in range(1, count + 1):
        shoe = Shoe(id=i, brand=rnd.choice(BRANDS), name=f"{rnd.choice(ADJ)} {rnd.choice(NOUN)}",
                    sale_price=round(rnd.uniform(5, 500), 2), rating=round(rnd.uniform(1, 5), 1))
        while True:
            try:
                producer.produce(topic, key=str(i), value=ser(shoe, ctx), on_delivery=report)
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush(60)
    seconds = time.perf_counter() - start
    print(json.dumps({"count": count, "seconds": seconds, "failed": failed[0]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
