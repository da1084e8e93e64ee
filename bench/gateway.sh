# Sourced by bench/run.sh (needs SL, B, COUNT): the ingestion gateway under HTTP load from wrk,
# single-event requests and 100-event batches, against `streamlake produce` of the same events
# on the same broker in the same run.
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
DURATION="${GATEWAY_SECONDS:-15}"
for t in bench-gw-raw bench-raw; do $SL topics create -b "$B" "$t" -p 6 -r 1 >/dev/null; done
$SL topics create -b "$B" bench-gw-dlq -p 1 -r 1 >/dev/null
GPORT=$(free_port)
GW_DIR=$(mktemp -d)
cat >"$GW_DIR/gateway.yaml" <<YAML
listen: 127.0.0.1:$GPORT
producer_service: bench
datasets:
  orders:
    topic: bench-gw-raw
    dlq_topic: bench-gw-dlq
    key: /order_id
    schema: $PWD/schemas/order.schema.json
YAML
$SL serve --config "$GW_DIR/gateway.yaml" -b "$B" 2>/tmp/streamlake-bench-gateway.log &
GATEWAY=$!
trap 'kill $TANSU $REGISTRY $GATEWAY 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$GPORT) 2>/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$GPORT/v1/datasets/orders/events"

wrk_run() { # events-per-request connections
  EVENTS=$1 wrk -t2 -c"$2" -d"${DURATION}s" --timeout 30s -s bench/gateway_post.lua "$URL" | grep '^RESULT'
}
echo "gateway: single events, ${DURATION}s" >&2
SINGLE=$(wrk_run 1 32)
echo "gateway: 100-event batches, ${DURATION}s" >&2
BATCH=$(wrk_run 100 8)

# The same events through the library producer, with the same key and five headers.
python3 - "$COUNT" >"$GW_DIR/events.ndjson" <<'PYEOF'
import sys
for i in range(int(sys.argv[1])):
    print('{"order_id":"ORD-r-%d","customer_id":"C-%d","amount":%d.95,"currency":"EUR","event_time":"2026-11-22T10:00:00Z"}' % (i, i % 997, i % 500))
PYEOF
echo "gateway: streamlake produce of $COUNT events" >&2
START=$(date +%s.%N)
$SL produce -b "$B" -t bench-raw --key-field /order_id -f "$GW_DIR/events.ndjson" \
  -H dataset=orders -H schema_version=v1 -H producer_service=bench \
  -H ingestion_id=0192f0c4-7d2a-7c1e-9a55-3f1b2c4d5e6f -H ingested_at=2026-11-22T10:00:00.000Z \
  2>/tmp/streamlake-bench-produce.log
END=$(date +%s.%N)
kill -TERM $GATEWAY; wait $GATEWAY || true
GW_STOP=$(grep '^stopped:' /tmp/streamlake-bench-gateway.log || true)

python3 - "$COUNT" "$START" "$END" "$SINGLE" "$BATCH" "$DURATION" "$(python3 bench/report.py --machine)" "$GW_STOP" <<'PYEOF' | python3 bench/report.py "## Gateway: HTTP events to Kafka"
import sys
count, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
parse = lambda s: {k: float(v) for k, v in (kv.split("=") for kv in s.split()[1:])}
single, batch, duration, machine, stop = parse(sys.argv[4]), parse(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]
raw_rate = count / (end - start)
rows = []
for name, r, n, conns in (("single events", single, 1, 32), ("100-event batches", batch, 100, 8)):
    rps = r["requests"] / r["seconds"]
    eps = rps * n
    rows.append(f"| {name} | {conns} | {r['requests']:,.0f} | {int(r['errors_status'] + r['errors_other'])} | {rps:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {eps:,.0f} | **{eps / raw_rate:.2f}x** |")
print(f"""## Gateway: HTTP events to Kafka

Machine: {machine}; broker tansu 0.6.0 with memory storage on loopback; load from wrk in a
separate process (2 threads) for {duration} s per row. Command: `bench/run.sh {count}`.

Each request carries order events (about 120 bytes of JSON each, a unique `order_id`) that the
gateway checks against `schemas/order.schema.json`, keys by `/order_id`, stamps with six
metadata headers and a UUIDv7, produces with acks=all, idempotence and lz4, and answers only
once Kafka has acknowledged every event (the response carries each offset). Accepted events are
logged at `info`, which is off by default, as here. The baseline is `streamlake produce` (the library producer with the same defaults) sending
{count:,} of the same events from a file with the same key and five headers: {raw_rate:,.0f} events/s,
timed including process start.

| requests | connections | requests | non-2xx | requests/s | p50 ms | p99 ms | events/s | events/s vs produce |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Gateway shutdown report: `{stop}`.

Reading the figures: a single-event request waits for its own acknowledgement, so its rate is
bound by connections / latency, not by the producer; batches show the gateway's per-event cost.
The broker shares the machine's cores with the gateway and with wrk.""")
PYEOF
rm -rf "$GW_DIR"
