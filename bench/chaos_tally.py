"""What a chaos run's files say, for bench/chaos.sh and bench/chaos_cluster.sh.

`tally(work)` reads, from the run's folder: `sent.count` (records the generator sent),
`produce.log` and `produce.rc` (`streamlake produce`'s summary, failures and exit code),
`replay.log` (`streamlake spool replay`'s summary) and `topic.jsonl` (the topic read back, one
JSON object a line with `value` holding the record `{"k":…,"seq":…}` and, when a reader followed
the topic, `arrived` in ms next to the record's generator time `t`).
"""
import json
import re


def tally(work):
    sent = int(open(f"{work}/sent.count").read().strip())
    produce = open(f"{work}/produce.log").read()
    replay = open(f"{work}/replay.log").read()
    out = {"sent": sent, "rc": open(f"{work}/produce.rc").read().strip()}
    m = re.search(r"(\d+) delivered, (\d+) failed", produce)
    out["direct"], out["failed"] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    m = re.search(r"spooled (\d+) record\(s\): (\d+) replayed to Kafka so far, (\d+) wait", produce)
    out["spooled"], out["replayed_live"], out["left"] = (int(x) for x in m.groups()) if m else (0, 0, 0)
    errors = {}
    for line in produce.splitlines():
        e = re.match(r"failed: line \d+(?: \(ingestion_id [^)]*\))?: (.*)", line)
        if e:
            errors[e.group(1)] = errors.get(e.group(1), 0) + 1
    out["reasons"] = "; ".join(f"{n} x `{r}`" for r, n in sorted(errors.items(), key=lambda x: -x[1])) or "none"
    m = re.search(r"replayed (\d+) record\(s\); (\d+) left", replay)
    out["replayed_after"], out["left_after"] = (int(x) for x in m.groups()) if m else (0, -1)
    seen, total, per_key, disorder, longest = set(), 0, {}, 0, 0
    for line in open(f"{work}/topic.jsonl"):
        r = json.loads(line)
        v = json.loads(r["value"])
        total += 1
        key = (v["k"], v["seq"])
        if key in seen:
            continue
        seen.add(key)
        if "arrived" in r:
            longest = max(longest, r["arrived"] - v["t"])
        last = per_key.get(v["k"], -1)
        if v["seq"] < last:
            disorder += 1
        per_key[v["k"]] = max(last, v["seq"])
    expected = {("k%d" % (n % 20), n // 20) for n in range(sent)}
    out.update(total=total, distinct=len(seen), missing=len(expected - seen),
               duplicates=total - len(seen), disorder=disorder, longest=longest)
    return out
