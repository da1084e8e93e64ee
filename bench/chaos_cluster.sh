#!/usr/bin/env bash
# The chaos run on the three-broker cluster (not a test), `bench/chaos.sh --cluster [SECONDS [RATE]]`:
# `streamlake produce --spool-dir` with its production defaults (idempotence on, acks=all) under
# steady keyed load into a topic with replication factor 3 and min.insync.replicas 2, while one
# broker at a time is killed (SIGKILL), stopped cleanly, or frozen (SIGSTOP) at random and
# brought back; then a reconciliation of what was sent, what each side reported, and what is in
# the topic. The report goes to docs/reliability.md. Default 600 s at 1000 records/s.
#
# The cluster is scripts/cluster.sh's, in a folder of its own on 127.0.0.21-23 (so a cluster
# started by hand on the default addresses is left alone). The logs of the last run are kept in
# target/chaos-cluster-last/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL="${1:-600}"
RATE="${2:-1000}"
SEED="${CHAOS_SEED:-$RANDOM}"
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# STREAMLAKE_BIN: a streamlake binary to use instead of building the release one.
if [ -z "${STREAMLAKE_BIN:-}" ]; then cargo build --release -q -p streamlake-cli; fi
SL=${STREAMLAKE_BIN:-$PWD/target/release/streamlake}
PY=$PWD/.venv/bin/python
WORK=$(mktemp -d)
KEEP=$PWD/target/chaos-cluster-last
export STREAMLAKE_CLUSTER_DIR="$WORK/cluster" STREAMLAKE_CLUSTER_HOSTS="127.0.0.21 127.0.0.22 127.0.0.23"
cleanup() {
  scripts/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$KEEP"; mkdir -p "$KEEP"
  cp "$WORK"/*.log "$WORK"/cluster/*.log "$KEEP"/ 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

B=$(scripts/cluster.sh up | sed -n 's/^bootstrap_servers=//p')
[ -n "$B" ] || { echo "chaos: the cluster did not come up" >&2; exit 1; }
scripts/cluster.sh topic chaos 6 >/dev/null
echo "chaos: cluster $B; ${SECONDS_TOTAL}s at ${RATE}/s, seed $SEED" >&2

# A reader follows the topic for the whole run, noting when each record arrived. crabka answers
# an empty fetch with a null record set, so a reader never sees the end of a partition: after
# the run it stops once nothing new came for 15 s.
$PY - "$B" "$WORK/done" >"$WORK/topic.jsonl" 2>"$WORK/reader.log" <<'PYEOF' &
import json, os, sys, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "chaos-check", "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
md = c.list_topics("chaos", timeout=30)
c.assign([TopicPartition("chaos", p, 0) for p in md.topics["chaos"].partitions])
last = time.monotonic()
while not (os.path.exists(sys.argv[2]) and time.monotonic() - last > 15):
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    last = time.monotonic()
    print(json.dumps({"partition": m.partition(), "offset": m.offset(), "arrived": int(time.time() * 1000),
                      "value": m.value().decode()}), flush=True)
c.close()
PYEOF
READER=$!

# Keyed records {"k":"kN","seq":S,"t":MS}: 20 keys, seq counting per key, t the generator's
# clock, at a steady rate, through a pipe into the producer.
mkfifo "$WORK/in"
$SL produce -b "$B" -t chaos --key-field /k --spool-dir "$WORK/spool" <"$WORK/in" 2>"$WORK/produce.log" &
PROD=$!
python3 - "$SECONDS_TOTAL" "$RATE" "$WORK/sent.count" >"$WORK/in" <<'PYEOF' &
import sys, time
seconds, rate, count_file = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n, start = 0, time.monotonic()
while time.monotonic() - start < seconds:
    due = int((time.monotonic() - start) * rate)
    while n < due:
        sys.stdout.write('{"k":"k%d","seq":%d,"t":%d}\n' % (n % 20, n // 20, time.time() * 1000))
        n += 1
    sys.stdout.flush()
    time.sleep(0.01)
open(count_file, "w").write(str(n))
PYEOF
GEN=$!

# One broker at a time: killed, stopped or frozen, then brought back.
RANDOM=$SEED
EVENTS=()
while kill -0 $GEN 2>/dev/null; do
  sleep $((15 + RANDOM % 25))
  kill -0 $GEN 2>/dev/null || break
  n=$((1 + RANDOM % 3))
  down=$((3 + RANDOM % 15))
  case $((RANDOM % 3)) in
    0) action=kill; scripts/cluster.sh kill "$n" >/dev/null ;;
    1) action=stop; scripts/cluster.sh stop "$n" >/dev/null ;;
    2) action=freeze; scripts/cluster.sh freeze "$n" >/dev/null ;;
  esac
  echo "chaos: broker $n: $action, ${down}s" >&2
  EVENTS+=("$action")
  sleep "$down"
  if [ "$action" = freeze ]; then
    scripts/cluster.sh resume "$n" >/dev/null
  else
    scripts/cluster.sh start "$n" >>"$WORK/restarts.log" 2>&1 || echo "chaos: broker $n did not come back" >&2
  fi
done
wait $GEN || true
RC=0; wait $PROD || RC=$?
echo "$RC" >"$WORK/produce.rc"
echo "chaos: load done; replaying what is left in the spool" >&2
$SL spool replay -b "$B" "$WORK/spool" --timeout 5m 2>"$WORK/replay.log" || true
touch "$WORK/done"
wait $READER || true

KILLS=$(printf '%s\n' "${EVENTS[@]:-}" | grep -c '^kill$' || true)
STOPS=$(printf '%s\n' "${EVENTS[@]:-}" | grep -c '^stop$' || true)
FREEZES=$(printf '%s\n' "${EVENTS[@]:-}" | grep -c '^freeze$' || true)
python3 - "$WORK" "$SECONDS_TOTAL" "$RATE" "$SEED" "$KILLS" "$STOPS" "$FREEZES" "$(python3 bench/report.py --machine)" <<'PYEOF' | python3 bench/report.py "## Chaos run on the three-broker cluster" docs/reliability.md
import sys
work, seconds, rate, seed, kills, stops, freezes, machine = sys.argv[1:9]
sys.path.insert(0, "bench")
from chaos_tally import tally
t = tally(work)
sent, direct, failed, spooled, replayed_live, left = (t[k] for k in ("sent", "direct", "failed", "spooled", "replayed_live", "left"))
replayed_after, left_after, total, missing, disorder, longest = (t[k] for k in ("replayed_after", "left_after", "total", "missing", "disorder", "longest"))
rc, reasons, distinct = t["rc"], t["reasons"], t["distinct"]
print(f"""## Chaos run on the three-broker cluster

Machine: {machine}; three crabka-broker 0.3.0 processes on loopback (`scripts/cluster.sh`),
topic `chaos` with 6 partitions, replication factor 3, min.insync.replicas 2. Command:
`bench/chaos.sh --cluster {seconds} {rate}` (seed {seed}). `streamlake produce --spool-dir`
with its production defaults (idempotence, acks=all, 30 s delivery timeout) reads {rate} keyed
records/s (20 keys) for {seconds} s while, every 15 to 40 s, one broker at a time is killed
(SIGKILL), stopped cleanly or frozen (SIGSTOP) for 3 to 18 s and brought back; afterwards
`streamlake spool replay` drains what is left, and the whole topic is read back
(read_committed).

| | records |
| --- | ---: |
| sent by the generator | {sent:,} |
| delivered directly | {direct:,} |
| spooled | {spooled:,} |
| replayed while running | {replayed_live:,} |
| left in the spool at exit / replayed afterwards / left after | {left:,} / {replayed_after:,} / {left_after:,} |
| failed (returned as errors) | {failed:,} |
| in the topic (all copies) | {total:,} |
| distinct records in the topic | {distinct:,} |
| **missing** | **{missing:,}** |
| **duplicates** | **{total - distinct:,}** |
| **records behind a later one of their key** | **{disorder:,}** |
| longest wait from the generator until a reader of the topic had the record | {longest:,} ms |

Broker faults: {kills} kill(s), {stops} clean stop(s), {freezes} freeze(s). `produce` exit
code: {rc}. Errors returned: {reasons}.

Expected: 0 missing, 0 duplicates, 0 out of order. Duplicates here would be records the
cluster wrote but could not acknowledge in time (timed out, spooled, replayed: at least once).""")
PYEOF
sed -n '/## Chaos run on the three-broker cluster/,$p' docs/reliability.md
