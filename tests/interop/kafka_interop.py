"""Independent Kafka client (confluent-kafka) used by StreamLake's interoperability tests.

produce: reads JSON lines {"key": str|null, "value": str, "headers": [[k, v], ...]} on stdin and
         produces them to the topic, then prints {"delivered": n} and exits non-zero on any error.
produce-transactions: like produce, in transactions under the transactional id given after the
         topic; a line {"end": "commit"} or {"end": "abort"} ends the open transaction that way.
consume: reads the topic from the beginning (read_committed, librdkafka's default) until `count`
         records arrived, printing one JSON object per record with key, value, headers,
         partition and offset; with a 5th argument, goes on reading for that many seconds and
         fails if any more arrive.
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


def produce_transactions(bootstrap, topic, transactional_id):
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5})
    producer.init_transactions(30)
    ended = {"commit": 0, "abort": 0}
    open_txn = False
    for line in sys.stdin:
        if not line.strip():
            continue
        rec = json.loads(line)
        if "end" in rec:
            if rec["end"] == "commit":
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)
            ended[rec["end"]] += 1
            open_txn = False
            continue
        if not open_txn:
            producer.begin_transaction()
            open_txn = True
        key = rec["key"].encode() if rec.get("key") is not None else None
        producer.produce(topic, value=rec["value"].encode(), key=key)
        producer.poll(0)
    if open_txn:
        raise SystemExit("the input ended inside a transaction")
    print(json.dumps({"committed": ended["commit"], "aborted": ended["abort"]}))
    return 0


def poll_n(consumer, count, handle, timeout_s=60.0, linger_s=0.0):
    """Polls until `count` records were handed to `handle`, then for `linger_s` more seconds
    (records arriving then are handed over too); returns how many were."""
    got, deadline = 0, time.time() + timeout_s
    lingering = False
    while True:
        if got >= count and not lingering:
            if linger_s <= 0:
                break
            lingering, deadline = True, time.time() + linger_s
        left = deadline - time.time()
        if left <= 0:
            break
        msg = consumer.poll(min(1.0, left))
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


def consume(bootstrap, topic, count, linger_s=0.0):
    def show(msg):
        print(json.dumps({
            "key": msg.key().decode() if msg.key() is not None else None,
            "value": msg.value().decode() if msg.value() is not None else None,
            "headers": [[k, v.decode() if v is not None else None] for k, v in (msg.headers() or [])],
            "partition": msg.partition(),
            "offset": msg.offset(),
        }), flush=True)

    got = poll_n(group_consumer(bootstrap, topic, "interop-"), count, show, linger_s=linger_s)
    return 0 if got == count else 1


if __name__ == "__main__":
    cmd, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "produce":
        sys.exit(produce(bootstrap, topic))
    if cmd == "produce-transactions":
        sys.exit(produce_transactions(bootstrap, topic, sys.argv[4]))
    linger = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    sys.exit(consume(bootstrap, topic, int(sys.argv[4]), linger))
