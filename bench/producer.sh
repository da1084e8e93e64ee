# Sourced by bench/run.sh (needs SL, B, COUNT, PY): producer throughput and latency of
# `streamlake perf` (every production feature on) against a minimal raw rust-rdkafka loop
# (bench/raw-producer) and Python confluent-kafka (bench/python_producer.py), the same records
# with the same settings, on tansu and on the embedded cluster (`streamlake dev`, librdkafka's
# mock cluster), then `streamlake perf --throughput` at half of StreamLake's rate.
ROUNDS="${PRODUCER_ROUNDS:-5}"
HALF_ROUNDS="${PRODUCER_HALF_ROUNDS:-3}"
RAW=target/release/streamlake-bench-raw
PR_DIR=$(mktemp -d)
# Metrics served over HTTP while perf runs, when this build of perf can.
PERF_METRICS=()
if $SL perf --help | grep -q -- '--metrics-addr'; then PERF_METRICS=(--metrics-addr 127.0.0.1:0); fi
# The baselines use StreamLake's effective producer settings, passed explicitly.
mapfile -t PROPS < <(producer_props)
RAW_PROPS=(); for kv in "${PROPS[@]}"; do RAW_PROPS+=(-X "$kv"); done
# Context row (PRODUCER_JEMALLOC=0 leaves it out): the raw loop with jemalloc preloaded, the
# allocator the streamlake binary uses, for a like-for-like ceiling.
JEMALLOC=""
if [ "${PRODUCER_JEMALLOC:-1}" = 1 ]; then
  JEMALLOC=$(ldconfig -p 2>/dev/null | awk '/libjemalloc\.so\.2 / {print $NF; exit}')
fi
CONTENDERS=(streamlake raw python)
SL_ALLOC="the system allocator"
SL_SYMS=$(nm "$SL" 2>/dev/null || true)
if grep -q 'je_arena' <<<"$SL_SYMS"; then
  SL_ALLOC="jemalloc"
  grep -qE ' T malloc$' <<<"$SL_SYMS" && SL_ALLOC="jemalloc (librdkafka's allocations too)"
fi
unset SL_SYMS
[ -n "$JEMALLOC" ] && CONTENDERS+=(raw-jemalloc)

# prod_run CLUSTER NAME COMMAND...: runs one producer, appends its JSON (tagged) to results.
prod_run() {
  local cluster=$1 name=$2 out; shift 2
  echo "producer: $name on $cluster" >&2
  if ! out=$("$@" 2>"$PR_DIR/last.log"); then
    echo "producer: $name on $cluster failed:" >&2; tail -20 "$PR_DIR/last.log" >&2; exit 1
  fi
  python3 -c 'import json,sys; d=json.loads(sys.argv[3].strip().splitlines()[-1]); d.update(cluster=sys.argv[1], producer=sys.argv[2]); print(json.dumps(d))' \
    "$cluster" "$name" "$out" >>"$PR_DIR/results.jsonl"
}

# producer_rounds CLUSTER BOOTSTRAP: ROUNDS rounds of every contender (the order rotates from
# round to round), then StreamLake at half its median rate, HALF_ROUNDS times.
producer_rounds() {
  local cluster=$1 bs=$2 r i n=${#CONTENDERS[@]}
  for r in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      case "${CONTENDERS[$(((i + r) % n))]}" in
        streamlake) prod_run "$cluster" streamlake $SL perf -b "$bs" -t bench-prod-sl -n "$COUNT" \
          --acks all --compression lz4 "${PERF_METRICS[@]}" --json ;;
        raw) prod_run "$cluster" raw "$RAW" -b "$bs" -t bench-prod-raw -n "$COUNT" "${RAW_PROPS[@]}" ;;
        python) prod_run "$cluster" python "$PY" bench/python_producer.py "$bs" bench-prod-py "$COUNT" 120 "${PROPS[@]}" ;;
        raw-jemalloc) prod_run "$cluster" raw-jemalloc env LD_PRELOAD="$JEMALLOC" \
          "$RAW" -b "$bs" -t bench-prod-je -n "$COUNT" "${RAW_PROPS[@]}" ;;
      esac
    done
  done
  local half
  half=$(python3 -c 'import json,statistics,sys; print(round(statistics.median(d["records_per_sec"] for d in map(json.loads, open(sys.argv[1])) if d["cluster"] == sys.argv[2] and d["producer"] == "streamlake") / 2))' \
    "$PR_DIR/results.jsonl" "$cluster")
  for r in $(seq "$HALF_ROUNDS"); do
    prod_run "$cluster" streamlake-half $SL perf -b "$bs" -t bench-prod-half -n "$COUNT" --throughput "$half" \
      --acks all --compression lz4 "${PERF_METRICS[@]}" --json
  done
}

echo "producer: building bench/raw-producer" >&2
build streamlake-bench-raw
PROD_TOPICS=(bench-prod-sl bench-prod-raw bench-prod-py bench-prod-je bench-prod-half)
for t in "${PROD_TOPICS[@]}"; do $SL topics create -b "$B" "$t" -p 6 -r 1 >/dev/null; done
producer_rounds tansu "$B"

# The embedded cluster: 3 brokers, topics with 6 partitions and replication factor 3.
$SL dev --brokers 3 $(printf -- '--topic %s:6 ' "${PROD_TOPICS[@]}") >"$PR_DIR/dev.out" 2>"$PR_DIR/dev.err" &
DEV=$!
trap 'kill $TANSU $REGISTRY $DEV 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^export ' "$PR_DIR/dev.out" && break; sleep 0.1; done
MOCK_B=$(sed -n 's/^export STREAMLAKE_BOOTSTRAP_SERVERS=//p' "$PR_DIR/dev.out")
[ -n "$MOCK_B" ] || { echo "producer: the embedded cluster did not start" >&2; cat "$PR_DIR/dev.err" >&2; exit 1; }
producer_rounds embedded "$MOCK_B"
kill -TERM $DEV; wait $DEV || true

python3 - "$PR_DIR/results.jsonl" "$COUNT" "$ROUNDS" "$(python3 bench/report.py --machine)" "${#PERF_METRICS[@]}" "$PY" "$HALF_ROUNDS" "${PROPS[*]}" "$SL_ALLOC" <<'PYEOF' | python3 bench/report.py "## Producer: StreamLake against raw rust-rdkafka and Python"
import json, statistics, subprocess, sys, textwrap
path, count, rounds, machine, metrics_served, py = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] != "0", sys.argv[6]
half_rounds = int(sys.argv[7])
props = " ".join(f"`{p}`" for p in sys.argv[8].split())
sl_alloc = sys.argv[9]
runs = [json.loads(l) for l in open(path)]
pyver = subprocess.run([py, "-c", "import confluent_kafka,sys; print(sys.version.split()[0] + ',' + confluent_kafka.__version__ + ',' + confluent_kafka.libversion()[0])"], capture_output=True, text=True).stdout.strip().split(",") + ["?"] * 3
names = {
    "streamlake": "`streamlake perf`",
    "raw": "raw rust-rdkafka loop",
    "python": "Python confluent-kafka",
    "raw-jemalloc": "raw rust-rdkafka loop, jemalloc preloaded",
}
clusters = [("tansu", "tansu 0.6.0, memory storage, 1 broker, 6 partitions"), ("embedded", "embedded (`streamlake dev`: librdkafka mock cluster), 3 brokers, 6 partitions, replication factor 3")]

def pick(cluster, producer):
    return [r for r in runs if r["cluster"] == cluster and r["producer"] == producer]

def med(rs, k):
    return statistics.median(r[k] for r in rs)

rows, ratio_lines, half_rows, verdicts = [], [], [], []
for cluster, desc in clusters:
    rate = {}
    for p, label in names.items():
        rs = pick(cluster, p)
        if not rs:
            continue
        rate[p] = med(rs, "records_per_sec")
        each = " / ".join(f"{r['records_per_sec']:,.0f}" for r in rs)
        rows.append(f"| {cluster} | {label} | **{rate[p]:,.0f}** | {each} | {med(rs, 'mb_per_sec'):.1f} | {med(rs, 'p50_ms'):.1f} | {med(rs, 'p99_ms'):.1f} | {sum(r['errors'] for r in rs)} |")
    vs_raw, vs_py = rate["streamlake"] / rate["raw"], rate["streamlake"] / rate["python"]
    line = (f"- {cluster}: StreamLake / raw = **{vs_raw:.2f}x** (target >= 0.95x: {'met' if vs_raw >= 0.95 else 'not met'}), "
            f"StreamLake / Python = **{vs_py:.2f}x** (target >= 1.5x: {'met' if vs_py >= 1.5 else 'not met'})")
    if "raw-jemalloc" in rate:
        line += f"; against the raw loop with jemalloc, StreamLake's allocator: {rate['streamlake'] / rate['raw-jemalloc']:.2f}x"
    ratio_lines.append(line)
    hs = pick(cluster, "streamlake-half")
    if hs:
        p99s = " / ".join(f"{h['p99_ms']:.1f}" for h in hs)
        p99 = med(hs, "p99_ms")
        half_rows.append(f"| {cluster} | {hs[0]['target_throughput']:,.0f} | {med(hs, 'records_per_sec'):,.0f} | {med(hs, 'p50_ms'):.2f} | **{p99:.2f}** | {p99s} | {med(hs, 'p999_ms'):.2f} | {max(h['max_ms'] for h in hs):.1f} | {statistics.median(h['uncorrected']['p99_ms'] for h in hs):.2f} | {'met' if p99 < 10 else 'not met'} |")
    verdicts.append((cluster, vs_raw, vs_py))

short = [c for c, r, p in verdicts if r < 0.95 or p < 1.5]
if short:
    summary = "**StreamLake falls short of its targets** on " + " and ".join(short) + " (see the ratios above)."
else:
    summary = "StreamLake meets both throughput targets on both clusters."
summary = textwrap.fill(summary, 95)
metrics_note = "served over HTTP (`--metrics-addr`) and counted" if metrics_served else "counted (this build of `perf` cannot serve them over HTTP)"
bullets = "\n".join(textwrap.fill(b, 95, subsequent_indent="  ") for b in (
    "- `streamlake perf --acks all --compression lz4 --json` (release build): every production feature "
    f"on: metadata headers, metrics {metrics_note}, every record tracked to its outcome and "
    "handed back on failure, recovery after fatal errors.",
    "- raw rust-rdkafka loop (`bench/raw-producer`): one thread building records and calling "
    "`ThreadedProducer::send`, a delivery callback counting outcomes and recording latency into an "
    "HDR histogram. The ceiling of the client stack StreamLake is built on, with the system "
    "allocator as a plain program has it, and again with jemalloc preloaded (for its "
    f"allocations and librdkafka's). The `streamlake` binary measured allocates with {sl_alloc}."))
records_text = textwrap.fill(
    "All three send the same records: a JSON order value of exactly 120 bytes, a key from 1,000 "
    "distinct keys, five metadata headers (`ingestion_id`, `source`, `schema`, `traceparent`, "
    "`content_type`) and the send-time header `perf_sent_us`, with StreamLake's producer defaults "
    f"as `streamlake config show --librdkafka` prints them, passed to the other two explicitly: {props}; "
    f"a full client queue makes the sender wait, not fail. Each sends {count:,} measured records as fast "
    "as the cluster takes them, after a warm-up of a tenth of that which is not measured; throughput "
    "runs from the start of the measurement to the last acknowledgement, latency from each record's "
    "send time (waiting for room in the queue included) to its delivery callback.", 95)
print(f"""## Producer: StreamLake against raw rust-rdkafka and Python

Machine: {machine}; Python {pyver[0]}, confluent-kafka {pyver[1]} (librdkafka {pyver[2]}); the Rust
side uses rust-rdkafka 0.39 with its bundled librdkafka. Clusters: tansu 0.6.0 with memory
storage, and the embedded cluster of `streamlake dev` (librdkafka's mock cluster, in its own
process), both on loopback, both sharing the machine's cores with the producer.
Command: `bench/run.sh {count} producer` ({rounds} round{'s' if rounds != 1 else ''} per cluster, the order of the
producers rotating from round to round; the table gives the median and every run).

{records_text}

{bullets}
- Python confluent-kafka (`bench/python_producer.py`): `Producer.produce` with an `on_delivery`
  callback per record, `poll(0)` after each.

Reading the figures: flat out, a sender faster than the cluster fills its client queue, and
latency is then mostly time spent waiting in that queue, not what a service sees (a sender
slower than the cluster keeps its queue short and its latency low); the last table shows
latency at half of StreamLake's rate. The broker shares the two cores with the
producer, so figures move from run to run.

| cluster | producer | records/s (median) | each run | MiB/s | p50 ms | p99 ms | errors |
| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

{chr(10).join(ratio_lines)}

{summary}

`streamlake perf --throughput R` at half of StreamLake's median rate above ({count:,} records,
{half_rounds} runs right after the flat-out runs, on the same broker; medians, and the p99 of every
run). Latency runs from each record's scheduled send time, so stalls count; the target is a p99
under 10 ms:

| cluster | target records/s | achieved records/s | p50 ms | p99 ms | p99 of each run | p99.9 ms | max ms | p99 from hand-over ms | p99 < 10 ms |
| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |
{chr(10).join(half_rows)}""")
PYEOF
rm -rf "$PR_DIR"
