"""The Python side of the producer benchmark: confluent-kafka's Producer sending the same records
as `streamlake perf` (a JSON order padded to exactly RECORD_SIZE bytes, a key from 1,000
distinct keys, the five metadata headers and the send-time header) with StreamLake's producer
defaults (acks=all, idempotence, lz4, 5 ms linger, 1 MiB batches, a 10,000-record / 32 MiB
queue; KEY=VALUE arguments override any librdkafka property). Latency runs from each record's send time (waiting for room in a full queue included)
to its delivery callback. A tenth of the run is sent first as a warm-up and not measured;
measuring starts once every warm-up record has its outcome.

Prints one JSON object with the fields of `streamlake perf --json`.

Usage: python_producer.py BOOTSTRAP TOPIC RECORDS [RECORD_SIZE] [KEY=VALUE...]
"""

import json
import random
import sys
import time
import uuid

from confluent_kafka import Producer

SETTINGS = {
    "acks": "all",
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.size": 1048576,
    "queue.buffering.max.messages": 10000,
    "queue.buffering.max.kbytes": 32768,
    "message.timeout.ms": 30000,
    "request.timeout.ms": 10000,
    "retry.backoff.ms": 100,
    "retry.backoff.max.ms": 1000,
    "max.in.flight.requests.per.connection": 5,
    "partitioner": "murmur2_random",
}
KEYS = 1000
SOURCE = b"streamlake-bench-python"
SCHEMA = b"streamlake.perf.Order"
CONTENT_TYPE = b"application/json"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, max(0, int(q * len(sorted_ms) + 0.5) - 1))]


def main(bootstrap, topic, records, size, overrides):
    warmup = records // 10
    total = warmup + records
    producer = Producer({"bootstrap.servers": bootstrap, **SETTINGS, **overrides})
    rnd = random.Random(7)
    pad = "".join(rnd.choice(ALPHABET) for _ in range(max(65536, size * 2)))
    salt = rnd.getrandbits(64)
    epoch_us = time.time_ns() // 1000
    t0 = time.perf_counter()
    state = {"measure_from": float("inf") if warmup else 0.0, "settled": 0, "errors": 0,
             "delivered": 0, "measured_errors": 0, "last": None}
    latencies = []
    perf_counter = time.perf_counter

    def on_delivery(sent):
        def report(err, _msg):
            now = perf_counter()
            state["settled"] += 1
            measured = sent >= state["measure_from"]
            if err is None:
                if measured:
                    latencies.append(now - sent)
                    state["delivered"] += 1
                    state["last"] = now
            else:
                state["errors"] += 1
                if measured:
                    state["measured_errors"] += 1
                    state["last"] = now
        return report

    measure_start = t0
    measured_bytes = 0
    for seq in range(total):
        if seq == warmup and warmup:
            while state["settled"] < warmup:
                producer.poll(0.001)
            measure_start = perf_counter()
            state["measure_from"] = measure_start
        sent = perf_counter()
        h = hash((salt, seq)) & 0xFFFFFFFFFFFFFFFF
        key = "cust-%06d" % (h % KEYS)
        cents = 10_000 + (h >> 8) % 90_000
        value = '{"order_id":"ord-%08d","customer":"%s","sku":"SKU-%04d","qty":%d,"price":%d.%02d,"currency":"%s"' % (
            seq, key, (h >> 20) % 10_000, (h >> 40) % 9 + 1, cents // 100, cents % 100, ("EUR", "USD", "GBP")[h % 3])
        left = size - len(value) - 1
        if left < 0:
            sys.exit(f"record size {size} is too small for an order")
        if left >= 9:
            start = h % (len(pad) - (left - 9) + 1)
            value += ',"pad":"' + pad[start:start + left - 9] + '"'
        else:
            value += " " * left
        value += "}"
        headers = [
            ("ingestion_id", str(uuid.uuid4()).encode()),
            ("source", SOURCE),
            ("schema", SCHEMA),
            ("traceparent", ("00-%032x-%016x-01" % ((salt ^ seq) * 0x9E3779B97F4A7C15 & (2**128 - 1), h | 1)).encode()),
            ("content_type", CONTENT_TYPE),
            ("perf_sent_us", str(epoch_us + int((sent - t0) * 1e6)).encode()),
        ]
        if seq >= warmup:
            measured_bytes += len(key) + len(value) + sum(len(k) + len(v) for k, v in headers)
        while True:
            try:
                producer.produce(topic, value=value.encode(), key=key.encode(), headers=headers,
                                 on_delivery=on_delivery(sent))
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    deadline = perf_counter() + 60
    while state["settled"] < total and perf_counter() < deadline:
        producer.flush(0.1)
    secs = (state["last"] - measure_start) if state["last"] else 0.0
    delivered = state["delivered"]
    latencies_ms = sorted(x * 1000 for x in latencies)
    delivered_bytes = measured_bytes * delivered // records
    errors = state["errors"] + (total - state["settled"])
    rate = (lambda n: n / secs) if secs > 0 else (lambda n: 0.0)
    print(json.dumps({
        "topic": topic,
        "records": delivered + state["measured_errors"],
        "delivered": delivered,
        "errors": errors,
        "bytes": delivered_bytes,
        "duration_secs": secs,
        "records_per_sec": rate(delivered),
        "mb_per_sec": rate(delivered_bytes / (1024 * 1024)),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p95_ms": percentile(latencies_ms, 0.95),
        "p99_ms": percentile(latencies_ms, 0.99),
        "p999_ms": percentile(latencies_ms, 0.999),
        "max_ms": latencies_ms[-1] if latencies_ms else 0.0,
        "warmup_records": warmup,
        "avg_value_bytes": size,
    }))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    args = sys.argv[1:]
    size = int(args[3]) if len(args) > 3 and "=" not in args[3] else 120
    overrides = dict(a.split("=", 1) for a in args[3:] if "=" in a)
    main(args[0], args[1], int(args[2]), size, overrides)
