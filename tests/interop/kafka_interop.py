"""Independent Kafka client (confluent-kafka) used by StreamLake's interoperability tests.

produce: reads JSON lines {"key": str|null, "value": str, "headers": [[k, v], ...]} on stdin and
         produces them to the topic, then prints {"delivered": n} and exits non-zero on any error.
consume: reads the topic from the beginning until `count` records arrived, printing one JSON
         object per record with key, value, headers, partition and offset.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer


def produce(bootstrap, topic):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    errors = []
    delivered = [0]

    def report(err, _msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered[0] += 1

    for line in sys.stdin:
        if not line.strip():
            continue
        rec = json.loads(line)
        key = rec["key"].encode() if rec.get("key") is not None else None
        headers = [(k, v.encode()) for k, v in rec.get("headers", [])]
        producer.produce(topic, value=rec["value"].encode(), key=key, headers=headers, on_delivery=report)
        producer.poll(0)
    remaining = producer.flush(30)
    print(json.dumps({"delivered": delivered[0], "errors": errors, "remaining": remaining}))
    return 0 if not errors and remaining == 0 else 1


def poll_n(consumer, count, handle, timeout_s=60.0):
    """Polls until `count` records were handed to `handle`; returns how many were."""
    got, deadline = 0, time.time() + timeout_s
    while got < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        handle(msg)
        got += 1
    consumer.close()
    return got


def group_consumer(bootstrap, topic, prefix):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": prefix + topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    return consumer


def consume(bootstrap, topic, count):
    def show(msg):
        print(json.dumps({
            "key": msg.key().decode() if msg.key() is not None else None,
            "value": msg.value().decode() if msg.value() is not None else None,
            "headers": [[k, v.decode() if v is not None else None] for k, v in (msg.headers() or [])],
            "partition": msg.partition(),
            "offset": msg.offset(),
        }), flush=True)

    return 0 if poll_n(group_consumer(bootstrap, topic, "interop-"), count, show) == count else 1


if __name__ == "__main__":
    cmd, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "produce":
        sys.exit(produce(bootstrap, topic))
    sys.exit(consume(bootstrap, topic, int(sys.argv[4])))
