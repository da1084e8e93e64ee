# Sourced by bench/run.sh (needs SL, B, COUNT): resident memory of `streamlake serve` idle after
# start-up and under wrk load (VmRSS / VmHWM from /proc), and the peak resident memory of
# `streamlake perf` flat out with its throughput, against the raw rust-rdkafka loop.
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
MEM_SECONDS="${MEMORY_SECONDS:-15}"
MEM_DIR=$(mktemp -d)
build streamlake-bench-raw
for t in bench-mem-gw bench-mem-sl bench-mem-raw; do $SL topics create -b "$B" "$t" -p 6 -r 1 >/dev/null; done
$SL topics create -b "$B" bench-mem-dlq -p 1 -r 1 >/dev/null

# KiB of a /proc/PID/status field (VmRSS: resident now; VmHWM: the peak so far).
proc_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

MPORT=$(free_port)
cat >"$MEM_DIR/gateway.yaml" <<YAML
listen: 127.0.0.1:$MPORT
producer_service: bench
datasets:
  orders:
    topic: bench-mem-gw
    dlq_topic: bench-mem-dlq
    key: /order_id
    schema: $PWD/schemas/order.schema.json
YAML
$SL serve --config "$MEM_DIR/gateway.yaml" -b "$B" 2>"$MEM_DIR/serve.log" &
MSERVE=$!
trap 'kill $TANSU $REGISTRY $MSERVE 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$MPORT) 2>/dev/null && break; sleep 0.1; done
# One request so the producer has its connections and metadata, then let it settle.
curl -fsS -o /dev/null -H 'content-type: application/json' \
  -d '{"order_id":"ORD-warm","customer_id":"C-1","amount":1.95,"currency":"EUR","event_time":"2026-11-22T10:00:00Z"}' \
  "http://127.0.0.1:$MPORT/v1/datasets/orders/events"
sleep 5
IDLE="$(proc_kb $MSERVE VmRSS) $(proc_kb $MSERVE VmHWM)"
MURL="http://127.0.0.1:$MPORT/v1/datasets/orders/events"
mem_wrk() { # events-per-request connections: wrk's RESULT line, then VmRSS and VmHWM at its end
  local r
  r=$(EVENTS=$1 wrk -t2 -c"$2" -d"${MEM_SECONDS}s" --timeout 30s -s bench/gateway_post.lua "$MURL" | grep '^RESULT')
  echo "$r rss_kb=$(proc_kb $MSERVE VmRSS) hwm_kb=$(proc_kb $MSERVE VmHWM)"
}
echo "memory: serve under single events, ${MEM_SECONDS}s" >&2
MEM_SINGLE=$(mem_wrk 1 32)
echo "memory: serve under 100-event batches, ${MEM_SECONDS}s" >&2
MEM_BATCH=$(mem_wrk 100 8)
sleep 5
AFTER="$(proc_kb $MSERVE VmRSS) $(proc_kb $MSERVE VmHWM)"
kill -TERM $MSERVE; wait $MSERVE || true

MEM_ROUNDS="${MEMORY_ROUNDS:-3}"
echo "memory: streamlake perf and the raw loop, $COUNT records each, $MEM_ROUNDS rounds" >&2
# peak_run NAME COMMAND...: one flat-out run; appends NAME, its peak KiB and its JSON to runs.
peak_run() {
  local name=$1 out; shift
  out=$(python3 bench/peak_rss.py "$MEM_DIR/peak" "$@" 2>"$MEM_DIR/last.log") || { tail "$MEM_DIR/last.log" >&2; exit 1; }
  echo "$name $(cat "$MEM_DIR/peak") $(echo "$out" | tail -1)" >>"$MEM_DIR/runs"
}
# The raw loop with StreamLake's effective settings; perf also with another client queue size.
RAW_PROPS=(); while read -r kv; do RAW_PROPS+=(-X "$kv"); done < <(producer_props)
DEFAULT_QUEUE=$(producer_props | sed -n 's/^queue\.buffering\.max\.messages=//p')
MEM_ALT_QUEUE="${MEMORY_ALT_QUEUE:-100000}"
for _ in $(seq "$MEM_ROUNDS"); do
  peak_run streamlake $SL perf -b "$B" -t bench-mem-sl -n "$COUNT" --acks all --compression lz4 --json
  peak_run raw target/release/streamlake-bench-raw -b "$B" -t bench-mem-raw -n "$COUNT" "${RAW_PROPS[@]}"
  peak_run streamlake-alt env STREAMLAKE_PRODUCER__QUEUE_MAX_MESSAGES="$MEM_ALT_QUEUE" \
    $SL perf -b "$B" -t bench-mem-sl -n "$COUNT" --acks all --compression lz4 --json
done

python3 - "$COUNT" "$MEM_SECONDS" "$(python3 bench/report.py --machine)" "$IDLE" "$MEM_SINGLE" "$MEM_BATCH" "$AFTER" \
  "$MEM_DIR/runs" "$MEM_ROUNDS" "$MEM_ALT_QUEUE" "$DEFAULT_QUEUE" <<'PYEOF' | python3 bench/report.py "## Memory: resident set of serve and perf"
import json, sys
count, secs, machine = int(sys.argv[1]), sys.argv[2], sys.argv[3]
idle_rss, idle_hwm = map(int, sys.argv[4].split())
parse = lambda s: {k: float(v) for k, v in (kv.split("=") for kv in s.split()[1:])}
single, batch = parse(sys.argv[5]), parse(sys.argv[6])
after_rss, after_hwm = map(int, sys.argv[7].split())
runs, rounds = [l.split(" ", 2) for l in open(sys.argv[8])], int(sys.argv[9])
alt_queue, default_queue = int(sys.argv[10]), int(sys.argv[11])
def peaks(name):
    rs = [(int(kb), json.loads(j)) for n, kb, j in runs if n == name]
    return max(kb for kb, _ in rs), rs
perf_kb, perf_runs = peaks("streamlake")
raw_kb, raw_runs = peaks("raw")
alt_kb, alt_runs = peaks("streamlake-alt")
import statistics
perf_rate = statistics.median(d["records_per_sec"] for _, d in perf_runs)
raw_rate = statistics.median(d["records_per_sec"] for _, d in raw_runs)
alt_rate = statistics.median(d["records_per_sec"] for _, d in alt_runs)
mb = lambda kb: kb / 1024
ok = lambda cond: "met" if cond else "not met"
each = lambda rs, f: " / ".join(f(kb, d) for kb, d in rs)
rows = []
for name, r, n, conns in (("single events", single, 1, 32), ("100-event batches", batch, 100, 8)):
    eps = r["requests"] / r["seconds"] * n
    rows.append(f"| `streamlake serve`, wrk {name}, {conns} connections | {eps:,.0f} events/s | {mb(r['rss_kb']):.1f} | {mb(r['hwm_kb']):.1f} | {int(r['errors_status'] + r['errors_other'])} non-2xx |")
print(f"""## Memory: resident set of serve and perf

Machine: {machine}; broker tansu 0.6.0 with memory storage on loopback.
Command: `bench/run.sh {count} memory`. Figures in MiB (1 MiB = 1,048,576 bytes).

`streamlake serve` (the gateway of the Gateway section: one JSON Schema dataset, acks=all,
idempotence, lz4) is measured from `/proc/PID/status`: `VmRSS` (resident now) and `VmHWM`
(the highest resident set since start). Idle is 5 s after start-up and one request (so the
producer has its connections and metadata); under load is at the end of {secs} s of wrk
(2 threads) per row, which run one after the other on the same process. `streamlake perf` and
the raw rust-rdkafka loop (`bench/raw-producer`) send {count:,} records (plus a tenth as warm-up)
as fast as the cluster takes them, the same records and settings as in the Producer section
(the client queue holds at most {default_queue:,} records / 32 MiB and fills whenever the cluster
is slower than the sender), {rounds} runs each, alternating; their peak is the kernel's maximum
resident set of the process (what GNU time's `%M` reports).

| process | throughput | resident MiB (VmRSS) | peak MiB (VmHWM / max RSS) | errors |
| --- | ---: | ---: | ---: | ---: |
| `streamlake serve`, idle after start-up | - | {mb(idle_rss):.1f} | {mb(idle_hwm):.1f} | - |
{chr(10).join(rows)}
| `streamlake serve`, idle 5 s after the load | - | {mb(after_rss):.1f} | {mb(after_hwm):.1f} | - |
| `streamlake perf` flat out, {rounds} runs | {each(perf_runs, lambda kb, d: f"{d['records_per_sec']:,.0f}")} records/s | - | **{each(perf_runs, lambda kb, d: f"{mb(kb):.1f}")}** | {sum(d['errors'] for _, d in perf_runs)} |
| `streamlake perf` flat out, `producer.queue_max_messages` {alt_queue:,}, {rounds} runs | {each(alt_runs, lambda kb, d: f"{d['records_per_sec']:,.0f}")} records/s | - | {each(alt_runs, lambda kb, d: f"{mb(kb):.1f}")} | {sum(d['errors'] for _, d in alt_runs)} |
| raw rust-rdkafka loop flat out, {rounds} runs | {each(raw_runs, lambda kb, d: f"{d['records_per_sec']:,.0f}")} records/s | - | {each(raw_runs, lambda kb, d: f"{mb(kb):.1f}")} | {sum(d['errors'] for _, d in raw_runs)} |

Targets (1 MB = 1,000,000 bytes): `serve` idle under 20 MB (19.1 MiB): {mb(idle_rss):.1f} MiB, **{ok(idle_rss * 1024 < 20e6)}**;
`perf` peak under full load at most 64 MB (61.0 MiB) with the defaults: highest of the runs {mb(perf_kb):.1f} MiB,
**{ok(perf_kb * 1024 <= 64e6)}**, at a median {perf_rate:,.0f} records/s ({perf_rate / raw_rate:.2f}x the raw loop's
{raw_rate:,.0f} records/s, whose highest peak is {mb(raw_kb):.1f} MiB). With a client queue of {alt_queue:,} records
instead of {default_queue:,} the highest peak is {mb(alt_kb):.1f} MiB ({ok(alt_kb * 1024 <= 64e6)}) at a median
{alt_rate:,.0f} records/s ({alt_rate / perf_rate:.2f}x the default's rate).

Reading the figures: most of a flat-out producer's memory is the records waiting in its client
queue. `producer.queue_max_kbytes` (32 MiB) bounds librdkafka's copy of them; StreamLake also
keeps each waiting record itself (its topic, key, value, headers and pending state, in many
small allocations) so that a failed record can be handed back, and that part is not counted
against the bound. So the peak grows with the number of records waiting, up to
`producer.queue_max_messages`, and depends on whether the sender outruns the broker in that
run and on how the allocator reuses memory freed on the delivery thread: it moves a lot from
run to run.

Idle, most of `serve`'s resident set is not data: about 9 MiB are pages of the binary's
machine code (the kernel maps code in 64 KiB windows around each page used) and about 4.5 MiB
are heap and thread stacks, mostly librdkafka's. Three things keep it small: the release build
is one code unit with link-time optimisation over the whole program (`lto = "fat"`,
`codegen-units = 1`: 15% less machine code, about 1.3 MiB less resident); jemalloc runs with
two arenas (`narenas:2`, compiled in, overridable with `MALLOC_CONF`; its default of four per
CPU kept about 1 MiB more of partly used pages, and two did not change throughput measurably);
and the gateway runs one librdkafka client where it had three: `/readyz` asks the producer's
own client for metadata, and the same producer writes invalid events to the dead-letter topic
(the admin client cost about 0.8 MiB and three threads; the dead-letter producer about 0.7 MiB,
four threads and a connection to every broker, measured side by side after one valid and one
invalid event: 18.6 against 17.9 MiB, 11 against 7 threads).""")
PYEOF
rm -rf "$MEM_DIR"
