#!/usr/bin/env bash
# Long run of the property tests over hostile input (gateway bodies, content types and
# encodings, compressed bytes; config files and environment variables, input lines, damaged
# spool segments and wire-format payloads, in crates/streamlake/tests/properties.rs): the same
# tests the suite runs with 3000 cases, with CASES cases each (default 1,000,000; the spool and
# wire properties run a tenth and a third of that). Writes the duration and the result to
# docs/reliability.md. The wire property starts a schema registry (rivven-schema).
#   bench/properties.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-1000000}"
log=$(mktemp)
start=$(date +%s)
status=passed
STREAMLAKE_PROPERTY_CASES="$cases" cargo test -p streamlake --lib --locked property_ >"$log" 2>&1 || status=failed
STREAMLAKE_PROPERTY_CASES="$cases" cargo test -p streamlake --test properties --locked property_ >>"$log" 2>&1 || status=failed
seconds=$(( $(date +%s) - start ))
summary=$(grep -E '^test result:' "$log" | paste -sd '|' - | sed 's/|/ | /g')
tests=$(grep -E '^test .*property_.* \.\.\. ' "$log" | sed -E 's/^test (.*) \.\.\. (.*)$/- `\1`: \2/')
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(rustc --version)"
python3 - "$cases" "$seconds" "$status" "$summary" "$tests" "$machine" <<'PY'
import sys, pathlib, datetime
cases, seconds, status, summary, tests, machine = sys.argv[1:]
doc = pathlib.Path("docs/reliability.md")
text = doc.read_text() if doc.exists() else "# Reliability\n"
begin, end = "<!-- properties:begin -->", "<!-- properties:end -->"
section = f"""{begin}
## Property runs over hostile input

`bench/properties.sh {cases}` on {datetime.date.today().isoformat()} ({machine}): every
property {status}, with STREAMLAKE_PROPERTY_CASES={int(cases):,} (the test suite runs 3,000; the config-file and wire-payload properties run a third of that, the spool one a tenth), in {seconds} s.

{tests}

`{summary}`

What the properties hold, for bodies made from valid ones by cutting them, flipping and
inserting bytes, nesting them hundreds deep and repeating keys: splitting a body and parsing its
events never panics; an event the strict parser takes is exactly what plain JSON parsing makes
of it (a repeated key or nesting past the parser's limit makes the event invalid, never
accepted); random content types and encodings are refused or understood, never a crash; cut or
corrupted gzip and zstd bodies are refused, and what inflates is never past the body limit.
Config files (YAML, TOML, JSON, client.properties) and `STREAMLAKE_` variables, damaged the same
way, load or fail with every problem named by key path or line, and no problem about a secret
key quotes its value; input lines (invalid UTF-8, huge, nested past the parser's limit) become
the record they hold or an error naming their line; a spool whose segments are cut, flipped,
zeroed or extended reopens with exactly a prefix of each segment's records, in order and as
written, the rest reported and kept in `.corrupt` files; Avro, Protobuf and JSON Schema
payloads with a wrong magic byte or schema id, cut short, or holding huge lengths, endless
varints or deep nesting give an error, never a crash or an allocation out of proportion to
them, and what decodes fits its schema.
{end}"""
if begin in text:
    head, rest = text.split(begin, 1)
    text = head + section + rest.split(end, 1)[1]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
doc.write_text(text)
PY
rm -f "$log"
echo "properties: $status ($cases cases each, ${seconds}s); docs/reliability.md updated"
[ "$status" = passed ]
