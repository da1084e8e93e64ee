#!/usr/bin/env bash
# A real three-broker Kafka-compatible cluster on this machine, for trying StreamLake against
# replication and failover: three crabka-broker 0.3.0 processes (installed with crabka-cli by
# `scripts/setup.sh --test`), each on a loopback address of its own, every one a controller
# and a broker (a three-voter metadata quorum), data on disk.
#
#   scripts/cluster.sh up            format once, start the brokers that are not running, wait
#                                    until the cluster takes a replicated write, then print
#                                    bootstrap_servers=HOST:PORT,HOST:PORT,HOST:PORT
#   scripts/cluster.sh status        each broker: running/frozen/stopped, pid, address
#   scripts/cluster.sh kill N        SIGKILL broker N (1-3, its broker id) and wait until it is gone
#   scripts/cluster.sh stop N        stop broker N cleanly (SIGINT, see below) and wait
#   scripts/cluster.sh start N       start broker N again, on its data, and wait until it listens
#   scripts/cluster.sh freeze N      SIGSTOP broker N (alive but silent); resume N: SIGCONT
#   scripts/cluster.sh down [--purge] stop every broker; --purge also removes all the data
#   scripts/cluster.sh topic NAME [PARTITIONS]   create a topic with replication factor 3 and
#                                    min.insync.replicas 2 (crabka has no broker-side defaults)
#
# Settings (read by the first `up`, which formats the cluster, and kept in its folder after):
#   STREAMLAKE_CLUSTER_DIR    state folder (default .cluster in the repository, gitignored)
#   STREAMLAKE_CLUSTER_HOSTS  the three loopback addresses (default 127.0.0.11 127.0.0.12 127.0.0.13)
#   STREAMLAKE_CLUSTER_PORT   the client port on each address (default 9092; not 9093, which
#                             crabka-broker always takes for its controller on the same address)
#   STREAMLAKE_CRABKA, STREAMLAKE_CRABKA_CLI   the crabka-broker and crabka binaries
#   STREAMLAKE_CLUSTER_LOG    the brokers' RUST_LOG (default info, but warn for the per-request
#                             lines); logs go to DIR/broker-N.log
#
# crabka-broker stops cleanly on SIGINT only: it installs no SIGTERM handler, so SIGTERM ends
# it at once, like a crash. `stop` sends SIGINT.
#
# The test rig (crates/streamlake-test-support, `cluster()`) runs the same `format` and
# `exec N` steps of this script for the clusters of the tests.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
script="$root/scripts/cluster.sh"
dir=${STREAMLAKE_CLUSTER_DIR:-$root/.cluster}
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"

die() { echo "cluster: $*" >&2; exit 1; }

bin() { # bin ENV-VALUE NAME: the binary to run
  if [ -n "$1" ]; then echo "$1"
  elif [ -x "$cargo_bin/$2" ]; then echo "$cargo_bin/$2"
  elif command -v "$2" >/dev/null; then command -v "$2"
  else die "$2 not found; run scripts/setup.sh --test"
  fi
}

# The cluster's settings, fixed when it is formatted.
load() {
  [ -f "$dir/cluster.env" ] || die "no cluster in $dir; run scripts/cluster.sh up"
  # shellcheck source=/dev/null
  . "$dir/cluster.env"
  read -r -a hosts <<<"$HOSTS"
}

node() { # node N: checks N and sets host, addr, data, log, pidfile
  [[ "${1:-}" =~ ^[123]$ ]] || die "broker number must be 1, 2 or 3 (got '${1:-}')"
  host=${hosts[$(($1 - 1))]}
  addr="$host:$PORT"
  data="$dir/broker-$1"
  log="$dir/broker-$1.log"
  pidfile="$dir/broker-$1.pid"
}

pid_of() { # pid_of N: the pid of broker N if it runs, else nothing
  local p
  node "$1"
  [ -f "$pidfile" ] || return 0
  p=$(cat "$pidfile")
  [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q crabka-broker &&
    echo "$p"
  return 0
}

listening() { # listening HOST PORT
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# format: writes the cluster's settings and formats the three data folders, once. Every node is
# formatted with the same cluster id and the same list of three controllers; `crabka format`
# gives each folder a new directory id, which is then set to the one the list names for it.
format() {
  [ -f "$dir/cluster.env" ] && return 0
  local h=(${STREAMLAKE_CLUSTER_HOSTS:-127.0.0.11 127.0.0.12 127.0.0.13})
  h=(${h[*]//,/ })
  local port=${STREAMLAKE_CLUSTER_PORT:-9092}
  [ "${#h[@]}" -eq 3 ] || die "STREAMLAKE_CLUSTER_HOSTS must name three addresses"
  [ "$port" != 9093 ] || die "port 9093 is taken by each broker's controller; choose another"
  local crabka cluster_id ids=() voters="" n
  crabka=$(bin "${STREAMLAKE_CRABKA_CLI:-}" crabka)
  cluster_id=$(cat /proc/sys/kernel/random/uuid)
  for n in 1 2 3; do
    ids[n]=$(cat /proc/sys/kernel/random/uuid)
    voters+="${voters:+,}$n@${h[n - 1]}:9093:${ids[n]}"
  done
  mkdir -p "$dir"
  for n in 1 2 3; do
    rm -rf "$dir/broker-$n"
    # transaction.version=0: classic transactions, as on a Kafka 3 cluster. crabka's default (2,
    # KIP-890) bumps a producer's epoch at every commit and abort even for clients that sent
    # EndTxn below v5 (librdkafka sends v1), which fences librdkafka's second transaction.
    "$crabka" format --log-dir "$dir/broker-$n" --cluster-id "$cluster_id" \
      --initial-controllers "$voters" --feature transaction.version=0 >/dev/null
    sed -i -E "s/(\"directory_id\": *\")[^\"]*/\1${ids[n]}/" "$dir/broker-$n/meta.properties.json"
    grep -q "${ids[n]}" "$dir/broker-$n/meta.properties.json" ||
      die "could not set the directory id of broker $n"
  done
  printf 'CLUSTER_ID=%s\nHOSTS="%s"\nPORT=%s\n' "$cluster_id" "${h[*]}" "$port" >"$dir/cluster.env.new"
  mv "$dir/cluster.env.new" "$dir/cluster.env"
}

# exec N: runs broker N in the foreground, its log appended to DIR/broker-N.log.
run() {
  load
  node "$1"
  local broker
  broker=$(bin "${STREAMLAKE_CRABKA:-}" crabka-broker)
  # crabka logs every request at info; those two are left at warn.
  local quiet_log=info,crabka_broker::network::dispatch=warn,crabka_broker::handlers::metadata=warn
  echo "$$" >"$pidfile"
  exec >>"$log" 2>&1
  echo "--- broker $1 starting at $(date -Is)"
  NO_COLOR=1 RUST_LOG=${STREAMLAKE_CLUSTER_LOG:-$quiet_log} exec "$broker" \
    --broker-id "$1" --cluster-id "$CLUSTER_ID" \
    --listen-addr "$addr" --advertised-listener "$addr" --log-dir "$data" \
    --metrics-listen-addr none --partition-disk-scan-interval-secs 0
}

launch() { # launch N: starts broker N in the background unless it runs
  local p
  p=$(pid_of "$1")
  if [ -n "$p" ]; then
    echo "cluster: broker $1 is already running (pid $p)" >&2
    return 0
  fi
  setsid bash "$script" exec "$1" </dev/null >/dev/null 2>&1 &
}

# wait_listening N: until broker N takes connections. A broker opens its client port only once
# its controller has joined a quorum, so it needs a second controller running.
wait_listening() {
  local i
  node "$1"
  for ((i = 0; i < 600; i++)); do
    listening "$host" "$PORT" && return 0
    if [ "$i" -gt 10 ] && [ -z "$(pid_of "$1")" ]; then
      tail -n 20 "$log" >&2
      die "broker $1 exited at start; its log: $log"
    fi
    sleep 0.1
  done
  die "broker $1 does not listen on $addr after 60 s (it needs a second broker running to form the controller quorum); its log: $log"
}

# wait_for_new_controller N: while other brokers run, waits until they follow a controller
# other than broker N. crabka 0.3.0 keeps the last controller leader it knew in its quorum state
# file: a controller leader started again before the others have elected a new one (that takes
# them 15-25 s after it died) comes back believing it leads, never calls an election, and the
# others keep following it, so the cluster has no controller and the broker never opens its
# client port. Starting it once they follow another controller is safe.
wait_for_new_controller() {
  local others=() n
  for n in 1 2 3; do
    [ "$n" = "$1" ] || [ -z "$(pid_of "$n")" ] || others+=("${hosts[$((n - 1))]}:$PORT")
  done
  [ "${#others[@]}" -gt 0 ] || return 0
  python - "$1" "$(IFS=,; echo "${others[*]}")" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient
me, bootstrap = int(sys.argv[1]), sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
deadline = time.time() + 60
said = False
while time.time() < deadline:
    try:
        c = admin.list_topics(timeout=3).controller_id
    except Exception:
        c = -1
    if c >= 1 and c != me:
        sys.exit(0)
    if not said:
        print(f"cluster: waiting until the running brokers elect a controller other than broker {me}", file=sys.stderr)
        said = True
    time.sleep(0.5)
sys.exit(f"cluster: the running brokers have no controller other than broker {me} after 60 s")
EOF
}

start() {
  load
  node "$1"
  if [ -z "$(pid_of "$1")" ]; then wait_for_new_controller "$1"; fi
  launch "$1"
  wait_listening "$1"
}

signal_and_wait() { # signal_and_wait N SIGNAL SECONDS: true once broker N is gone
  local p i
  p=$(pid_of "$1")
  [ -n "$p" ] || return 0
  kill "-$2" "$p" 2>/dev/null || true
  [ "$2" = KILL ] || kill -CONT "$p" 2>/dev/null || true # a frozen broker must run to stop
  for ((i = 0; i < $3 * 10; i++)); do
    [ -n "$(pid_of "$1")" ] || return 0
    sleep 0.1
  done
  return 1
}

kill_node() {
  load
  node "$1"
  signal_and_wait "$1" KILL 10 || die "broker $1 still runs after SIGKILL"
}

stop() {
  load
  node "$1"
  signal_and_wait "$1" INT 30 || die "broker $1 did not stop within 30 s of SIGINT (kill $1 ends it)"
}

freeze() {
  load
  local p
  p=$(pid_of "$1")
  [ -n "$p" ] || die "broker $1 is not running"
  kill "-$2" "$p"
}

status() {
  load
  local n p state
  echo "cluster $CLUSTER_ID in $dir"
  for n in 1 2 3; do
    p=$(pid_of "$n")
    node "$n"
    if [ -z "$p" ]; then
      state=stopped
    elif [ "$(awk '{print $3}' "/proc/$p/stat")" = T ]; then
      state=frozen
    else
      state=running
    fi
    printf 'broker %s  %-8s  pid %-7s  %s  (log %s)\n' "$n" "$state" "${p:--}" "$addr" "$log"
  done
}

bootstrap() {
  load
  echo "${hosts[0]}:$PORT,${hosts[1]}:$PORT,${hosts[2]}:$PORT"
}

python() {
  local py=${STREAMLAKE_PYTHON:-$root/.venv/bin/python}
  [ -x "$py" ] || py=python3
  "$py" -c 'import confluent_kafka' 2>/dev/null ||
    die "no Python with confluent_kafka; run scripts/setup.sh --test"
  "$py" "$@"
}

# wait_ready: all three brokers registered, then a probe topic (RF 3) takes a record with
# acks=all and it reads back.
wait_ready() {
  python - "$(bootstrap)" <<'EOF'
import sys, time, uuid
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
deadline = time.time() + 90
quiet = {"bootstrap.servers": bootstrap, "log_level": 0}
admin = AdminClient(quiet)

def until(what, check):
    last = None
    while time.time() < deadline:
        try:
            if check():
                return
        except KafkaException as e:
            last = e
        time.sleep(0.2)
    sys.exit(f"cluster: not ready after 90 s: {what} ({last})")

until("three brokers registered", lambda: len(admin.list_topics(timeout=5).brokers) == 3)
topic = "streamlake-cluster-probe"

def created():
    md = admin.list_topics(timeout=5).topics.get(topic)
    if md is None or md.error is not None:
        f = admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])[topic]
        try:
            f.result(10)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
        return False
    p = md.partitions[0]
    return p.leader >= 0 and len(p.isrs) == 3

until(f"topic {topic} with three in-sync replicas", created)
value = str(uuid.uuid4()).encode()
delivered = []

def produced():
    p = Producer({**quiet, "acks": "all", "message.timeout.ms": 10000})
    p.produce(topic, value, on_delivery=lambda err, m: delivered.append((err, m.offset())))
    p.flush(15)
    err, offset = delivered.pop()
    if err is not None:
        raise KafkaException(err)
    c = Consumer({**quiet, "group.id": "streamlake-cluster-probe", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, offset)])
    end = time.time() + 10
    while time.time() < end:
        m = c.poll(0.5)
        if m is not None and m.error() is None and m.value() == value:
            c.close()
            return True
    c.close()
    return False

until("a record written with acks=all and read back", produced)
EOF
}

topic() {
  load
  [ -n "${1:-}" ] || die "usage: scripts/cluster.sh topic NAME [PARTITIONS]"
  python - "$(bootstrap)" "$1" "${2:-6}" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, name, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})])[name].result(30)
print(f"created {name}: {partitions} partitions, replication factor 3, min.insync.replicas 2")
EOF
}

up() {
  local fresh=""
  [ -f "$dir/cluster.env" ] || fresh=1
  format
  load
  [ -z "$fresh" ] || echo "cluster: formatted $CLUSTER_ID in $dir" >&2
  local n
  if [ -z "$(pid_of 1)$(pid_of 2)$(pid_of 3)" ]; then
    for n in 1 2 3; do launch "$n"; done
    for n in 1 2 3; do wait_listening "$n"; done
  else
    for n in 1 2 3; do start "$n"; done
  fi
  wait_ready
  status >&2
  echo "bootstrap_servers=$(bootstrap)"
}

down() {
  local n
  [ -f "$dir/cluster.env" ] || { echo "cluster: nothing in $dir" >&2; return 0; }
  load
  for n in 1 2 3; do
    node "$n"
    signal_and_wait "$n" INT 30 || signal_and_wait "$n" KILL 10 || die "broker $n still runs"
  done
  if [ "${1:-}" = --purge ]; then
    rm -rf "$dir"
    echo "cluster: stopped, data removed" >&2
  else
    echo "cluster: stopped; data kept in $dir (scripts/cluster.sh up starts it again)" >&2
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up ;;
  down) down "$@" ;;
  status) status ;;
  kill) kill_node "${1:-}" ;;
  stop) stop "${1:-}" ;;
  start) start "${1:-}" ;;
  freeze) freeze "${1:-}" STOP ;;
  resume) freeze "${1:-}" CONT ;;
  topic) topic "$@" ;;
  bootstrap) bootstrap ;;
  # The steps the test rig shares: format the folder once; run broker N in the foreground.
  format) format ;;
  exec) run "${1:-}" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
