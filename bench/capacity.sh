#!/usr/bin/env bash
# The figures docs/capacity.md rests on (not a test): `bench/capacity.sh [SECONDS]` runs
# `streamlake perf` (release build, production defaults: idempotence, acks=all) on the
# three-broker cluster of scripts/cluster.sh, replication factor 3 and min.insync.replicas 2,
# with 1 KB JSON events, and measures side by side in one run:
#   - throughput by partition count (1, 3, 6, 12; no compression);
#   - the cost and gain of each compression codec (none, lz4, snappy, zstd, gzip; 6 partitions):
#     records/s, latency, and bytes on the brokers' disks per record (all three replicas);
#   - acks=all against acks=leader (idempotence off), and one producer against two.
# Each run is SECONDS long (default 20) after a 2 s warm-up. The tables replace the section
# "## Measured on the three-broker cluster" of docs/capacity.md.
#
# The cluster is its own, in a temporary folder on 127.0.0.31-33.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# STREAMLAKE_BIN: a streamlake binary to use instead of building the release one.
if [ -z "${STREAMLAKE_BIN:-}" ]; then cargo build --release -q -p streamlake-cli; fi
SL=${STREAMLAKE_BIN:-$PWD/target/release/streamlake}
WORK=$(mktemp -d)
export STREAMLAKE_CLUSTER_DIR="$WORK/cluster" STREAMLAKE_CLUSTER_HOSTS="127.0.0.31 127.0.0.32 127.0.0.33"
cleanup() { scripts/cluster.sh down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

B=$(scripts/cluster.sh up | sed -n 's/^bootstrap_servers=//p')
[ -n "$B" ] || { echo "capacity: the cluster did not come up" >&2; exit 1; }
echo "capacity: cluster $B; ${SECS}s per run" >&2

# 1000 distinct order events of exactly 1 KB as JSON (seeded): nested items, an address, a
# status history, free text, the way service events look, so the codecs compress what they would compress in production.
python3 - "$WORK/events.jsonl" <<'PYEOF'
import json, random, sys
random.seed(7)
words = ("fast delivery gift wrap leave at door call on arrival fragile handle with care back "
         "entrance ring twice office hours weekend please no plastic").split()
cities = ["Lisbon", "Porto", "Madrid", "Berlin", "Lyon", "Milan", "Krakow", "Ghent"]
with open(sys.argv[1], "w") as out:
    for i in range(1000):
        e = {"event": "order_placed", "order_id": f"ord-{random.randrange(10**9):09d}",
             "customer": {"id": f"cust-{random.randrange(10**6):06d}", "tier": random.choice(["basic", "plus", "gold"]),
                          "email": f"user{random.randrange(10**6)}@example.com"},
             "items": [{"sku": f"SKU-{random.randrange(10**5):05d}", "qty": random.randint(1, 5),
                        "price": round(random.uniform(1, 250), 2), "currency": "EUR"}
                       for _ in range(random.randint(1, 6))],
             "shipping": {"street": f"{random.randint(1, 300)} {random.choice(words).title()} Street",
                          "city": random.choice(cities), "postcode": f"{random.randrange(10**5):05d}",
                          "country": random.choice(["PT", "ES", "DE", "FR", "IT", "PL", "BE"])},
             "note": " ".join(random.choice(words) for _ in range(random.randint(30, 40))),
             "placed_at": f"2026-11-{random.randint(1, 30):02d}T{random.randint(0, 23):02d}:{random.randint(0, 59):02d}:{random.randint(0, 59):02d}Z",
             "trace_id": "%032x" % random.getrandbits(128), "history": []}
        size = lambda: len(json.dumps(e, separators=(",", ":")))
        while size() < 1024:
            e["history"].append({"status": random.choice(["created", "paid", "picked", "packed", "shipped"]),
                                 "at": f"2026-11-{random.randint(1, 30):02d}T{random.randint(0, 23):02d}:{random.randint(0, 59):02d}Z",
                                 "by": random.choice(["web", "app", "warehouse-3", "carrier"])})
        e["note"] = e["note"][: len(e["note"]) - (size() - 1024)]
        line = json.dumps(e, separators=(",", ":"))
        assert len(line) == 1024, len(line)
        out.write(line + "\n")
PYEOF

# run NAME PARTITIONS PERF-FLAGS…: one perf run on a fresh topic; its JSON, tagged, with the
# bytes the topic takes on the brokers' disks (all replicas), goes to results.jsonl.
n=0
run() {
  local name=$1 parts=$2 topic out disk; shift 2
  n=$((n + 1)); topic="capacity-$n"
  scripts/cluster.sh topic "$topic" "$parts" >/dev/null
  # Every broker must know the topic before the run: metadata reaches them one by one.
  local host tries
  for host in ${B//,/ }; do
    for tries in $(seq 60); do
      "$SL" topics describe -b "$host" "$topic" >/dev/null 2>&1 && break
      [ "$tries" = 60 ] && { echo "capacity: $host does not know $topic" >&2; exit 1; }
      sleep 0.5
    done
  done
  echo "capacity: $name ($parts partitions)" >&2
  if ! out=$("$SL" perf -b "$B" -t "$topic" --duration "${SECS}s" --warmup 2s \
      --payload-file "$WORK/events.jsonl" --json "$@" 2>"$WORK/last.log"); then
    # A codec the brokers do not take is a finding, not a broken run: it is reported as such.
    if [ "$name" = codec ] && [ -n "$out" ]; then
      echo "capacity: $name $* failed: $(grep -v '^\[' "$WORK/last.log" | tail -1)" >&2
    else
      echo "capacity: $name failed:" >&2; tail -20 "$WORK/last.log" >&2; exit 1
    fi
  fi
  sleep 3 # the followers catch up before the disk is measured
  disk=$(find "$STREAMLAKE_CLUSTER_DIR" -type d -name "$topic-*" -exec du -sb {} + | awk '{s += $1} END {print s + 0}')
  python3 -c 'import json,sys; d=json.loads(sys.argv[1].strip().splitlines()[-1]); d.update(name=sys.argv[2], partitions=int(sys.argv[3]), disk_bytes=int(sys.argv[4])); print(json.dumps(d))' \
    "$out" "$name" "$parts" "$disk" >>"$WORK/results.jsonl"
}

for p in 1 3 6 12; do run "partitions" "$p" --compression none; done
for c in lz4 snappy zstd gzip; do run "codec" 6 --compression "$c"; done
# acks=leader needs idempotence off (StreamLake refuses the combination otherwise).
STREAMLAKE_PRODUCER__ENABLE_IDEMPOTENCE=false run "acks" 6 --compression lz4 --acks leader
run "acks" 6 --compression lz4 --acks all
run "producers" 6 --compression lz4 --producers 2

python3 - "$WORK/results.jsonl" "$SECS" "$(python3 bench/report.py --machine)" <<'PYEOF' | python3 bench/report.py "## Measured on the three-broker cluster" docs/capacity.md
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
secs, machine = sys.argv[2], sys.argv[3]
for r in rows:
    assert r["errors"] == 0 or r["name"] == "codec", r
def fmt(x): return f"{x:,.0f}"
def per_record_disk(r):
    # Every record of the topic, warm-up included, is on disk: bytes per record over all replicas.
    total = r["delivered"] + r["warmup_records"]
    return r["disk_bytes"] / total if total and r["disk_bytes"] else float("nan")
print("## Measured on the three-broker cluster")
print()
print(f"Measured by `bench/capacity.sh {secs}` on {machine}: three crabka-broker 0.3.0 processes "
      "and the producer on the same machine, on loopback, data on the same disk. Every run is "
      f"`streamlake perf` (release build; idempotence on) for {secs} s after a 2 s warm-up, "
      "sending 1 KB JSON order events (1000 distinct ones, cycled) as fast as the cluster takes "
      "them, to a new topic with replication factor 3 and min.insync.replicas 2.")
print()
print("### Throughput by partition count (acks=all, no compression)")
print()
print("| partitions | records/s | MiB/s | p50 ms | p99 ms | vs 1 partition |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
parts = [r for r in rows if r["name"] == "partitions"]
base = parts[0]["records_per_sec"]
for r in parts:
    print(f"| {r['partitions']} | {fmt(r['records_per_sec'])} | {r['mb_per_sec']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['records_per_sec'] / base:.2f}x |")
print()
print("### Compression codecs (6 partitions, acks=all)")
print()
print("Disk is what the topic takes on the three brokers together (three replicas), per record; "
      "without compression a record takes about 3 × (1 KB + its headers and batch overhead).")
print()
print("| codec | records/s | vs none | p99 ms | disk per record, 3 replicas | vs none |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
none = next(r for r in parts if r["partitions"] == 6)
codecs = [("none", none)] + [(c, r) for c, r in zip(["lz4", "snappy", "zstd", "gzip"], [r for r in rows if r["name"] == "codec"])]
for c, r in codecs:
    if r["errors"]:
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(r["errors_by_kind"].items()))
        print(f"| {c} | none acknowledged: {r['errors']:,} records failed ({kinds}) | | | | |")
        continue
    print(f"| {c} | {fmt(r['records_per_sec'])} | {r['records_per_sec'] / none['records_per_sec']:.2f}x | {r['p99_ms']:.1f} | {fmt(per_record_disk(r))} B | {per_record_disk(r) / per_record_disk(none):.2f}x |")
if any(r["errors"] for _, r in codecs):
    print()
    print("A codec without figures: the brokers acknowledged none of its records in this run, and "
          "every one came back to the producer as failed, counted as above.")
print()
print("### Acknowledgements and producers (6 partitions, lz4)")
print()
print("| run | records/s | MiB/s | p50 ms | p99 ms | vs acks=all, 1 producer |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
acks = [r for r in rows if r["name"] == "acks"]
prods = [r for r in rows if r["name"] == "producers"]
ref = acks[1]
for label, r in [("acks=leader (idempotence off), 1 producer", acks[0]), ("acks=all, 1 producer", acks[1]), ("acks=all, 2 producers", prods[0])]:
    print(f"| {label} | {fmt(r['records_per_sec'])} | {r['mb_per_sec']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['records_per_sec'] / ref['records_per_sec']:.2f}x |")

# Worked examples from these figures (the formulas are above in docs/capacity.md).
import math
S, T, RF, G, H = 1024, 7 * 86400, 3, 2, 2
DISK_TB, NET_MBS = 8, 1250  # assumed broker: 8 TB of data disk, 10 Gbit/s network
lz4 = dict(codecs)["lz4"]
d = per_record_disk(lz4)               # bytes on disk per record, 3 replicas, measured
c = 3 * S / d                          # the compression ratio that disk figure implies (overhead included)
r_p = parts[0]["records_per_sec"]      # one partition, measured here (a floor)
r_c = ref["records_per_sec"]           # one producer process, measured here (a floor)
print()
print("### Worked examples: 1 KB events, 7 days, lz4, replication factor 3, two consumer groups")
print()
print(f"From the figures above: lz4 events take {d:,.0f} B of disk per record over three replicas "
      f"(an effective ratio of {c:.1f} against 3 × 1 KB); one partition took {fmt(r_p)} records/s "
      f"and one producer process {fmt(r_c)} records/s on this machine (floors: see \"What the "
      f"figures are worth\"). Assumed broker: {DISK_TB} TB of data disk kept under 70% full, and "
      f"10 Gbit/s ({NET_MBS} MB/s) of which half is used, in and out together. Headroom 2 on "
      "rates; one broker more than the load needs, so that the cluster carries it with one down.")
print()
print("| events/s | in, raw | in, lz4 | disk, 7 days, 3 replicas | cluster network in + out | brokers | partitions (at this machine's per-partition rate) | producer processes (at this machine's rate) |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for R in (10_000, 100_000, 1_000_000):
    raw = R * S / 1e6
    comp = raw / c
    disk_tb = R * T * d / 1e12
    net = comp * (2 * RF - 1 + G)
    n_disk = math.ceil(disk_tb / (0.7 * DISK_TB))
    n_net = math.ceil(net / (0.5 * NET_MBS))
    n = max(RF, max(n_disk, n_net) + 1)
    p = max(math.ceil(R * H / r_p), 6)
    p = math.ceil(p / n) * n
    prod = math.ceil(R * H / r_c)
    print(f"| {R:,} | {raw:,.0f} MB/s | {comp:,.0f} MB/s | {disk_tb:,.1f} TB | {net:,.0f} MB/s | {n} | {p:,} | {prod:,} |")
zstd = dict(codecs)["zstd"]
if not zstd["errors"]:
    print()
    print(f"With zstd instead of lz4, the disk and network columns scale by "
          f"{per_record_disk(zstd) / d:.2f} ({fmt(per_record_disk(zstd))} B per record against "
          f"{fmt(d)} B), for {1 - zstd['records_per_sec'] / lz4['records_per_sec']:.0%} fewer records/s "
          "per producer here.")
print()
print("Partitions (at least one per broker, in multiples of the broker count) and producer processes are upper bounds here: on brokers and clients of their "
      "own, one partition and one producer take several times what they took on this machine; "
      "measure `r_p` and `r_c` on yours and divide. The disk and network columns hold wherever "
      "the events compress like these.")
PYEOF
echo "capacity: docs/capacity.md updated" >&2
