#!/usr/bin/env bash
# StreamLake's benchmark suite (not a test): comparisons run side by side, on one broker, in one
# run, reported as ratios and written to docs/benchmarks.md.
#
#   bench/run.sh [COUNT [SECTIONS]]     default COUNT=200000, SECTIONS="datagen gateway producer memory"
#
# 1. datagen: Protobuf Shoe events through the Schema Registry to tansu (memory storage),
#    `streamlake datagen` against a Python confluent-kafka + ProtobufSerializer loop.
# 2. gateway: `streamlake serve` under wrk load (single events and 100-event batches) against
#    `streamlake produce` of the same events (bench/gateway.sh).
# 3. producer: `streamlake perf` with every production feature on against a minimal raw
#    rust-rdkafka loop (bench/raw-producer) and Python confluent-kafka (bench/python_producer.py),
#    the same records and settings, on tansu and on the embedded cluster, then `streamlake perf
#    --throughput` at half of StreamLake's rate (bench/producer.sh; PRODUCER_ROUNDS, default 5).
# 4. memory: resident memory of `streamlake serve` idle and under wrk load, and the peak of
#    `streamlake perf` and of the raw loop flat out (bench/memory.sh; MEMORY_SECONDS, default 15;
#    MEMORY_ROUNDS, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200000}"
SECTIONS="${2:-datagen gateway producer memory}"
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# One cargo build at a time on a shared machine.
build() { flock /tmp/streamlake-build.lock cargo build --release -q -p "$1"; }
build streamlake-cli
SL=target/release/streamlake
PY=.venv/bin/python
# StreamLake's effective producer settings as librdkafka KEY=VALUE lines (what
# `streamlake config show --librdkafka` prints), for baselines that must use the same ones.
producer_props() {
  $SL config show --librdkafka | awk '/^# librdkafka producer/ {on = 1; next} /^#/ {on = 0} on && / = / {print $1 "=" $3}' |
    grep -vE '^(bootstrap\.servers|client\.id|security\.protocol|statistics\.interval\.ms|delivery\.report\.only\.error|transaction\.timeout\.ms)='
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KPORT=$(free_port); RPORT=$(free_port)
tansu broker --listener-url "tcp://127.0.0.1:$KPORT" --advertised-listener-url "tcp://127.0.0.1:$KPORT" \
  --storage-engine memory://tansu/ >/tmp/streamlake-bench-tansu.log 2>&1 &
TANSU=$!
rivven-schema serve --host 127.0.0.1 --port "$RPORT" --log-level warn >/tmp/streamlake-bench-registry.log 2>&1 &
REGISTRY=$!
trap 'kill $TANSU $REGISTRY 2>/dev/null || true' EXIT
for p in "$KPORT" "$RPORT"; do
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
B=127.0.0.1:$KPORT
R=http://127.0.0.1:$RPORT
if [[ " $SECTIONS " == *" datagen "* ]]; then
for t in bench-sl-shoes bench-py-shoes; do $SL topics create -b "$B" "$t" -p 6 -r 1 >/dev/null; done

echo "datagen: $COUNT Protobuf shoe events each" >&2
$SL datagen -b "$B" --schema-registry "$R" -s schemas/shoe.proto -t bench-sl-shoes -n "$COUNT" --key-field /id --seed 42 2>/tmp/streamlake-bench-sl.log
python3 - "$COUNT" /tmp/streamlake-bench-sl.log <<'PYEOF' || { cat /tmp/streamlake-bench-sl.log; exit 1; }
import re, sys
line = [l for l in open(sys.argv[2]) if l.startswith("generated ")][-1]
delivered, failed = re.search(r"([\d,]+) delivered, (\d+) failed", line).groups()
assert int(delivered.replace(",", "")) == int(sys.argv[1]) and failed == "0", line
PYEOF
# Seconds from the first record until every record was acknowledged, as the Python side measures.
SL_SECS=$(python3 -c "import re,sys; l=[l for l in open(sys.argv[1]) if l.startswith('generated ')][-1]; print(re.search(r' in ([0-9.]+)s ', l).group(1))" /tmp/streamlake-bench-sl.log)
PY_JSON=$($PY bench/python_shoes.py "$B" bench-py-shoes "$COUNT" schemas/shoe.proto 2>/dev/null)
PY_SECS=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['failed']==0; print(d['seconds'])" "$PY_JSON")

python3 - "$COUNT" "$SL_SECS" "$PY_SECS" "$(python3 bench/report.py --machine)" <<'PYEOF' | python3 bench/report.py "## datagen: Protobuf shoe events through the registry"
import subprocess, sys
count, sl, py, machine = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sl_rate, py_rate = count / sl, count / py
pyver = subprocess.run([".venv/bin/python", "-c", "import confluent_kafka,sys; print(sys.version.split()[0] + ',' + confluent_kafka.__version__ + ',' + confluent_kafka.libversion()[0])"], capture_output=True, text=True).stdout.strip().split(",")
table = f"""| producer | events | seconds | events/s |
| --- | ---: | ---: | ---: |
| `streamlake datagen` (Protobuf via registry) | {count:,} | {sl:.2f} | {sl_rate:,.0f} |
| Python confluent-kafka + ProtobufSerializer | {count:,} | {py:.2f} | {py_rate:,.0f} |

Ratio: StreamLake / Python = **{sl_rate / py_rate:.2f}x**"""
print(f"""## datagen: Protobuf shoe events through the registry

Machine: {machine}; Python {pyver[0] if pyver else '?'},
confluent-kafka {pyver[1] if len(pyver) > 1 else '?'} (librdkafka {pyver[2] if len(pyver) > 2 else '?'}); broker tansu 0.6.0 with memory storage,
registry rivven-schema 0.0.22, all on loopback. Command: `bench/run.sh {count}`.

Both sides generate random `Shoe` events (`schemas/shoe.proto`: id, brand, name, sale price,
rating), serialize them as Protobuf in Confluent's wire format with a key, and produce them with
acks=all, idempotence, lz4 and 5 ms linger to a 6-partition topic, waiting for every
acknowledgement. Both are timed from the first record until every record is acknowledged
(process start-up and schema registration excluded on both sides). StreamLake runs
`streamlake datagen` (release build), which also builds each record from the schema and
serializes it through its registry serializer; Python runs a loop with `random` and Confluent's
`ProtobufSerializer` (schema id cached after the first call, as in both clients).

Reading the figures: the broker runs on the same machine and shares its cores with the client,
so on a small machine both sides are bound by the broker and the ratio moves from run to run;
compare several runs before drawing conclusions.

{table}""")
PYEOF
fi
if [[ " $SECTIONS " == *" gateway "* ]]; then
  source bench/gateway.sh
fi
if [[ " $SECTIONS " == *" producer "* ]]; then
  source bench/producer.sh
fi
if [[ " $SECTIONS " == *" memory "* ]]; then
  source bench/memory.sh
fi
