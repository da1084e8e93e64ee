#!/usr/bin/env python3
"""Checks StreamLake's operations material against its metrics documentation.

Run from anywhere: python3 deploy/check.py [--require-promtool]

What it checks:
  * docs/metrics.md documents exactly the metrics in CONTRACT below (the reference table's
    names, types and labels) and the endpoints; its PromQL blocks and every metric name in
    it are valid; every alert has a row in its alerts table (same `for` and severity) and a
    runbook section.
  * deploy/grafana/streamlake.json is a dashboard Grafana can import: unique panel ids,
    a complete gridPos on every panel inside the 24-column grid without overlaps, the
    `datasource`, `job` and `instance` variables, every query on `${datasource}`.
  * Every PromQL expression (dashboard panels and variables, alert rules) and every series of
    the rule tests uses only documented metrics, with labels those metrics have and known
    values for the labels that take a fixed set of words; legends and annotations only name
    labels the expression can return. Every documented metric appears on the dashboard.
  * deploy/prometheus/alerts.yml: group `streamlake` with the required alerts, each with a
    severity label and summary/description/runbook annotations, the runbook pointing at an
    existing section of docs/metrics.md; alerts_test.yml makes every alert fire and has
    cases where none does; prometheus.yml loads alerts.yml and names its jobs streamlake*.
  * With promtool on PATH (or required by --require-promtool): promtool check rules,
    promtool test rules and promtool check config.

Python 3 standard library only. Exits 1 on any failure, listing every problem found.
"""

import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = "docs/metrics.md"
DASHBOARD = "deploy/grafana/streamlake.json"
ALERTS = "deploy/prometheus/alerts.yml"
ALERT_TESTS = "deploy/prometheus/alerts_test.yml"
PROM_CONFIG = "deploy/prometheus/prometheus.yml"

# The metrics StreamLake exposes: name -> (type, labels). docs/metrics.md documents exactly
# these in its reference table.
CONTRACT = {
    "streamlake_producer_records_total": ("counter", ["topic"]),
    "streamlake_producer_bytes_total": ("counter", ["topic"]),
    "streamlake_producer_outcomes_total": ("counter", ["outcome", "reason"]),
    "streamlake_producer_delivery_latency_seconds": ("histogram", []),
    "streamlake_producer_in_flight": ("gauge", []),
    "streamlake_producer_queue_records": ("gauge", []),
    "streamlake_producer_queue_bytes": ("gauge", []),
    "streamlake_producer_batch_size_bytes": ("gauge", ["topic"]),
    "streamlake_producer_batch_records": ("gauge", ["topic"]),
    "streamlake_producer_compression_ratio": ("gauge", []),
    "streamlake_producer_recreated_total": ("counter", []),
    "streamlake_spool_records_pending": ("gauge", []),
    "streamlake_spool_bytes": ("gauge", []),
    "streamlake_circuit_open": ("gauge", []),
    "streamlake_broker_up": ("gauge", ["broker"]),
    "streamlake_broker_rtt_avg_seconds": ("gauge", ["broker"]),
    "streamlake_broker_rtt_p99_seconds": ("gauge", ["broker"]),
    "streamlake_consumer_records_total": ("counter", ["topic"]),
    "streamlake_consumer_bytes_total": ("counter", ["topic"]),
    "streamlake_consumer_lag_records": ("gauge", ["topic", "partition"]),
    "streamlake_consumer_commits_total": ("counter", ["result"]),
    "streamlake_gateway_requests_total": ("counter", ["dataset", "status"]),
    "streamlake_gateway_events_total": ("counter", ["dataset", "outcome"]),
    "streamlake_gateway_event_bytes_total": ("counter", ["dataset"]),
    "streamlake_gateway_request_duration_seconds": ("histogram", ["dataset"]),
    "streamlake_gateway_requests_in_flight": ("gauge", []),
    "streamlake_cluster_reachable": ("gauge", []),
    "streamlake_cluster_healthy": ("gauge", []),
    "streamlake_cluster_controller": ("gauge", []),
    "streamlake_cluster_broker_up": ("gauge", ["broker"]),
    "streamlake_cluster_partitions": ("gauge", ["topic", "state"]),
    "streamlake_cluster_checks_total": ("counter", ["result"]),
    "streamlake_cluster_check_duration_seconds": ("gauge", []),
}

# Labels that take a fixed set of words: (metric, label) -> allowed values.
LABEL_VALUES = {
    ("streamlake_producer_outcomes_total", "outcome"): {
        "delivered", "failed", "spooled", "replayed", "dead_lettered"},
    ("streamlake_producer_outcomes_total", "reason"): {
        "none", "timeout", "too_large", "unknown_topic", "unauthorized", "fatal", "purged",
        "queue_full", "circuit_open", "spool", "transaction", "kafka"},
    ("streamlake_consumer_commits_total", "result"): {"ok", "error"},
    ("streamlake_gateway_events_total", "outcome"): {"accepted", "invalid", "failed", "rejected"},
    ("streamlake_cluster_partitions", "state"): {
        "all", "under_replicated", "under_min_isr", "offline"},
    ("streamlake_cluster_checks_total", "result"): {"healthy", "unhealthy", "unreachable"},
}

# Series Prometheus itself adds for every target.
PROMETHEUS_SERIES = {"up": []}
TARGET_LABELS = {"job", "instance"}

REQUIRED_ALERTS = [
    "StreamLakeDeliveryFailures", "StreamLakeSpoolGrowing", "StreamLakeCircuitOpen",
    "StreamLakeConsumerLagHigh", "StreamLakeBrokerDown", "StreamLakeGatewayErrors",
    "StreamLakeDeliveryLatencyHigh", "StreamLakeTargetDown", "StreamLakeClusterUnreachable",
    "StreamLakeClusterBrokerDown", "StreamLakePartitionsUnderMinIsr", "StreamLakePartitionsOffline",
    "StreamLakePartitionsUnderReplicated",
]
SEVERITIES = {"critical", "warning", "info"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, msg):
        self.items.append(f"{where}: {msg}")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------- YAML subset

class YamlError(ValueError):
    pass


class MiniYaml:
    """A reader for the YAML these files use: block mappings and sequences, plain and
    quoted scalars, literal and folded block scalars, one-line flow collections, comments.
    Scalars stay strings. Anything else is an error (promtool reads the files for real)."""

    def __init__(self, text, name):
        self.lines = text.split("\n")
        self.i = 0
        self.name = name

    def err(self, msg, line=None):
        n = (self.i if line is None else line) + 1
        raise YamlError(f"{self.name}:{n}: {msg}")

    @staticmethod
    def indent_of(line):
        return len(line) - len(line.lstrip(" "))

    def skip(self):
        while self.i < len(self.lines):
            line = self.lines[self.i]
            s = line.strip()
            if s and not s.startswith("#"):
                if "\t" in line[: len(line) - len(line.lstrip(" \t"))]:
                    self.err("tab in indentation")
                return
            self.i += 1

    def cur_indent(self):
        self.skip()
        if self.i >= len(self.lines):
            return -1
        return self.indent_of(self.lines[self.i])

    def parse(self):
        self.skip()
        if self.i < len(self.lines) and self.lines[self.i].strip() in ("---",):
            self.i += 1
        if self.cur_indent() < 0:
            return None
        node = self.node(self.cur_indent())
        if self.cur_indent() >= 0:
            self.err("unexpected content")
        return node

    @staticmethod
    def is_item(content):
        return content == "-" or content.startswith("- ")

    def node(self, indent):
        content = self.lines[self.i].strip()
        if self.is_item(content):
            return self.seq(indent)
        if self.split_key(content) is not None:
            return self.mapping(indent)
        value = self.scalar(content)
        self.i += 1
        return value

    def seq(self, indent):
        items = []
        while self.cur_indent() == indent and self.is_item(self.lines[self.i].strip()):
            line = self.lines[self.i]
            rest = line.strip()[1:]
            col = indent + 1 + (len(rest) - len(rest.lstrip(" ")))
            rest = rest.strip()
            if not rest or rest.startswith("#"):
                self.i += 1
                child = self.cur_indent()
                items.append(self.node(child) if child > indent else None)
            else:
                self.lines[self.i] = " " * col + rest
                items.append(self.node(col))
        if self.cur_indent() > indent:
            self.err("bad indentation in a sequence")
        return items

    def split_key(self, content):
        """(key, rest) when `content` is `key: rest` or `key:`, else None."""
        if content[0] in "\"'":
            q = content[0]
            j = 1
            while j < len(content):
                if content[j] == "\\" and q == '"':
                    j += 2
                    continue
                if content[j] == q:
                    if q == "'" and content[j + 1:j + 2] == "'":
                        j += 2
                        continue
                    break
                j += 1
            after = content[j + 1:]
            if after.startswith(":") and (len(after) == 1 or after[1] == " "):
                return self.scalar(content[: j + 1]), after[1:].strip()
            return None
        if content[0] in "[{":
            return None
        m = re.match(r"([^#][^:]*?)\s*:(?:\s+(.*)|$)", content)
        if not m:
            return None
        return m.group(1), (m.group(2) or "").strip()

    def mapping(self, indent):
        result = {}
        while self.cur_indent() == indent:
            content = self.lines[self.i].strip()
            if self.is_item(content):
                break
            kv = self.split_key(content)
            if kv is None:
                self.err(f"expected `key: value`, got {content!r}")
            key, rest = kv
            if key in result:
                self.err(f"duplicate key {key!r}")
            start = self.i
            self.i += 1
            if rest == "" or rest.startswith("#"):
                child = self.cur_indent()
                if child > indent:
                    result[key] = self.node(child)
                elif child == indent and self.is_item(self.lines[self.i].strip()):
                    result[key] = self.seq(indent)
                else:
                    result[key] = None
            elif rest[0] in "|>":
                result[key] = self.block_scalar(rest, indent, start)
            else:
                self.i = start
                result[key] = self.scalar(rest)
                self.i = start + 1
        if self.cur_indent() > indent:
            self.err("bad indentation in a mapping")
        return result

    def block_scalar(self, header, indent, start):
        m = re.match(r"([|>])([+-]?)\s*(#.*)?$", header)
        if not m:
            self.err(f"unsupported block scalar header {header!r}", start)
        style, chomp = m.group(1), m.group(2)
        body = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and self.indent_of(line) <= indent:
                break
            body.append(line)
            self.i += 1
        trailing = 0
        while body and not body[-1].strip():
            body.pop()
            trailing += 1
        if not body:
            return ""
        block = min(self.indent_of(b) for b in body if b.strip())
        texts = [b[block:] if b.strip() else "" for b in body]
        if style == "|":
            text = "\n".join(texts)
        else:
            text = ""
            for t in texts:
                if not t:
                    text += "\n"
                elif text and not text.endswith("\n"):
                    text += " " + t
                else:
                    text += t
        if chomp == "-":
            return text
        return text + "\n" * (1 + trailing if chomp == "+" else 1)

    def scalar(self, text):
        text = text.strip()
        if not text:
            return None
        if text[0] in "[{":
            value, rest = self.flow(text, 0)
            rest_text = text[rest:].strip()
            if rest_text and not rest_text.startswith("#"):
                self.err(f"unexpected {rest_text!r} after a flow collection")
            return value
        if text[0] in "\"'":
            value, end = self.quoted(text, 0)
            rest_text = text[end:].strip()
            if rest_text and not rest_text.startswith("#"):
                self.err(f"unexpected {rest_text!r} after a quoted scalar")
            return value
        if text[0] in "&*!|>%@`":
            self.err(f"unsupported YAML construct {text!r}")
        text = re.split(r"\s+#", text, maxsplit=1)[0].strip()
        return None if text in ("~", "null") else text

    def quoted(self, text, j):
        q = text[j]
        out = []
        j += 1
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "0": "\0"}
        while j < len(text):
            c = text[j]
            if q == '"' and c == "\\":
                nxt = text[j + 1:j + 2]
                if nxt not in escapes:
                    self.err(f"unsupported escape \\{nxt}")
                out.append(escapes[nxt])
                j += 2
                continue
            if c == q:
                if q == "'" and text[j + 1:j + 2] == "'":
                    out.append("'")
                    j += 2
                    continue
                return "".join(out), j + 1
            out.append(c)
            j += 1
        self.err("unterminated quoted scalar (multi-line quoted scalars are not supported)")

    def flow(self, text, j):
        """A one-line flow sequence or mapping starting at text[j]; returns (value, end)."""
        close = "]" if text[j] == "[" else "}"
        seq = close == "]"
        result = [] if seq else {}
        j += 1
        while True:
            while j < len(text) and text[j] == " ":
                j += 1
            if j >= len(text):
                self.err("unterminated flow collection")
            if text[j] == close:
                return result, j + 1
            if not seq:
                key, j = self.flow_scalar(text, j, ":")
                if j >= len(text) or text[j] != ":":
                    self.err("expected `:` in a flow mapping")
                j += 1
                while j < len(text) and text[j] == " ":
                    j += 1
            if text[j] in "[{":
                value, j = self.flow(text, j)
            else:
                value, j = self.flow_scalar(text, j, ",]}")
            if seq:
                result.append(value)
            else:
                result[key] = value
            while j < len(text) and text[j] == " ":
                j += 1
            if j < len(text) and text[j] == ",":
                j += 1
            elif j >= len(text) or text[j] != close:
                self.err("expected `,` or the end of a flow collection")

    def flow_scalar(self, text, j, stops):
        if text[j] in "\"'":
            return self.quoted(text, j)
        k = j
        while k < len(text) and text[k] not in stops:
            k += 1
        return text[j:k].strip(), k


def load_yaml(rel, problems):
    try:
        return MiniYaml(read(rel), rel).parse()
    except (OSError, YamlError) as e:
        problems.add(rel, str(e))
        return None


# --------------------------------------------------------------------------- PromQL

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>[0-9][0-9A-Za-z_.]*|\.[0-9][0-9A-Za-z_.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@:])
""", re.VERBOSE)


def tokenize(expr):
    tokens, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup, m.group()))
    return tokens


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


class Expr:
    """What a PromQL expression refers to: metric names with their matchers, grouping
    labels, and the labels the expression may return."""

    def __init__(self, text):
        self.text = text
        self.metrics = []      # metric names, as written
        self.grouping = set()  # labels in by/without/on/ignoring/group_* clauses
        self.matchers = []     # (metric or None, label, op, value)
        tokens = tokenize(text)
        i = 0
        last_metric = None
        while i < len(tokens):
            kind, val = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
            if kind == "op" and val == "[":
                while i < len(tokens) and tokens[i] != ("op", "]"):
                    i += 1
                i += 1
                continue
            if kind == "op" and val == "{":
                i = self.selector(tokens, i + 1, last_metric)
                last_metric = None
                continue
            last_metric = None
            if kind == "ident":
                low = val.lower()
                if low in GROUPING and nxt == ("op", "("):
                    i += 2
                    while i < len(tokens) and tokens[i] != ("op", ")"):
                        if tokens[i][0] == "ident":
                            self.grouping.add(tokens[i][1])
                        i += 1
                    i += 1
                    continue
                if low in KEYWORDS or low in AGGREGATIONS or nxt == ("op", "("):
                    i += 1
                    continue
                self.metrics.append(val)
                last_metric = val
            i += 1

    def selector(self, tokens, i, metric):
        while i < len(tokens) and tokens[i] != ("op", "}"):
            if tokens[i][0] == "ident" and i + 2 < len(tokens) and tokens[i + 1][0] == "op" \
                    and tokens[i + 2][0] == "str":
                label, op, value = tokens[i][1], tokens[i + 1][1], unquote(tokens[i + 2][1])
                if label == "__name__" and op == "=":
                    self.metrics.append(value)
                    metric = value
                self.matchers.append((metric, label, op, value))
                i += 3
            else:
                i += 1
        return i + 1


def base_metric(name):
    """The documented name behind a series name (histogram series have suffixes)."""
    if name in CONTRACT or name in PROMETHEUS_SERIES:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if CONTRACT.get(base, ("",))[0] == "histogram":
                return base
    return None


def labels_of(name):
    base = base_metric(name)
    if base is None:
        return set()
    labels = set(PROMETHEUS_SERIES.get(base, CONTRACT.get(base, ("", []))[1])) | TARGET_LABELS
    if name.endswith("_bucket") and base != name:
        labels.add("le")
    return labels


def check_expr(where, text, problems, used, documented):
    """Checks one PromQL expression; returns the labels it may return."""
    try:
        e = Expr(text)
    except ValueError as err:
        problems.add(where, f"unreadable expression: {err}")
        return None
    available = set()
    known = True
    for name in e.metrics:
        base = base_metric(name)
        if base is None:
            problems.add(where, f"metric {name!r} is not a StreamLake metric (see {DOCS})")
            known = False
            continue
        if base in CONTRACT and base not in documented:
            problems.add(where, f"metric {base!r} is not documented in {DOCS}")
        used.add(base)
        available |= labels_of(name)
    for metric, label, op, value in e.matchers:
        if label == "__name__":
            continue
        if metric is not None and base_metric(metric) is not None:
            if label not in labels_of(metric):
                problems.add(where, f"{metric} has no label {label!r}")
                continue
            allowed = LABEL_VALUES.get((base_metric(metric), label))
            if allowed and "$" not in value:
                words = value.split("|") if op in ("=~", "!~") else [value]
                if op in ("=~", "!~") and not re.fullmatch(r"[a-z_|]+", value):
                    words = []
                for w in words:
                    if w not in allowed:
                        problems.add(where, f"{metric}{{{label}}} has no value {w!r} "
                                            f"(one of {', '.join(sorted(allowed))})")
    if not e.metrics or not known:
        return None
    for label in e.grouping - available:
        problems.add(where, f"groups by {label!r}, which none of its metrics has")
    return available


# --------------------------------------------------------------------------- docs

def slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def check_docs(problems, report):
    text = read(DOCS)
    documented = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(streamlake_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|", line)
        if m:
            labels = re.findall(r"`([a-z_]+)`", m.group(3))
            if m.group(1) in documented:
                problems.add(DOCS, f"{m.group(1)} is in the reference table twice")
            documented[m.group(1)] = (m.group(2), labels)
    for name, (mtype, labels) in CONTRACT.items():
        if name not in documented:
            problems.add(DOCS, f"reference table lacks {name}")
            continue
        dtype, dlabels = documented[name]
        if dtype != mtype:
            problems.add(DOCS, f"{name} is documented as {dtype}, is a {mtype}")
        if sorted(dlabels) != sorted(labels):
            problems.add(DOCS, f"{name} is documented with labels {dlabels}, has {labels}")
    for name in documented:
        if name not in CONTRACT:
            problems.add(DOCS, f"documents {name}, which StreamLake does not expose")
    for needle in ("/metrics", "/healthz", "/readyz", "--metrics-addr"):
        if needle not in text:
            problems.add(DOCS, f"does not mention {needle}")
    queries = 0
    for n, block in enumerate(re.findall(r"```promql\n(.*?)```", text, re.S)):
        queries += 1
        check_expr(f"{DOCS} promql block {n + 1}", block, problems, set(), set(documented))
    for name in sorted(set(re.findall(r"\bstreamlake_\w+", text))):
        if base_metric(name) is None:
            problems.add(DOCS, f"names {name!r}, which StreamLake does not expose")
    anchors, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m and not fenced:
            anchors.add(slug(m.group(1)))
    report.append(f"{DOCS}: {len(documented)} metrics in the reference table match the "
                  f"contract of {len(CONTRACT)}; {queries} PromQL blocks and every metric "
                  f"name in the text are valid; {len(anchors)} section anchors")
    return set(documented), anchors


# --------------------------------------------------------------------------- dashboard

def datasource_uid(obj):
    ds = obj.get("datasource")
    return ds.get("uid") if isinstance(ds, dict) else ds


def check_dashboard(problems, report, documented):
    try:
        dash = json.loads(read(DASHBOARD))
    except (OSError, ValueError) as e:
        problems.add(DASHBOARD, f"not valid JSON: {e}")
        return set()
    used = set()
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problems.add(DASHBOARD, f"lacks {key!r}")
    if not isinstance(dash.get("schemaVersion"), int) or dash.get("schemaVersion", 0) < 36:
        problems.add(DASHBOARD, "schemaVersion should be a number of 36 or more")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.add(DASHBOARD, "needs a `datasource` variable of type datasource for prometheus")
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query":
            problems.add(DASHBOARD, f"needs a `{name}` query variable")
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q or "")
        if not m or m.group(2) != name:
            problems.add(DASHBOARD, f"variable {name}: expected label_values(…, {name})")
        else:
            check_expr(f"{DASHBOARD} variable {name}", m.group(1), problems, used, documented)
        if datasource_uid(v) != "${datasource}":
            problems.add(DASHBOARD, f"variable {name} should query ${{datasource}}")

    all_panels = []
    top_level = {id(p) for p in dash.get("panels", [])}
    for p in dash.get("panels", []):
        all_panels.append(p)
        all_panels.extend(p.get("panels", []))
    ids = [p.get("id") for p in all_panels]
    for i in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.add(DASHBOARD, f"panel id {i} is used more than once")
    cells = {}
    exprs = 0
    for p in all_panels:
        where = f"{DASHBOARD} panel {p.get('id')} ({p.get('title')!r})"
        if not isinstance(p.get("id"), int):
            problems.add(where, "id should be a number")
        if not p.get("title"):
            problems.add(where, "has no title")
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "hwxy"):
            problems.add(where, "gridPos needs numbers h, w, x and y")
        else:
            if g["x"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > 24:
                problems.add(where, f"gridPos {g} leaves the 24-column grid")
            if id(p) in top_level:
                cover = [(x, y) for x in range(g["x"], g["x"] + g["w"])
                         for y in range(g["y"], g["y"] + g["h"])]
                clash = next((cells[c] for c in cover if c in cells), None)
                if clash is not None:
                    problems.add(where, f"overlaps panel {clash}")
                cells.update((c, p.get("id")) for c in cover)
        if p.get("type") == "row":
            continue
        for name in re.findall(r"\bstreamlake_\w+", p.get("description", "")):
            if base_metric(name) is None:
                problems.add(where, f"description names {name!r}, not a StreamLake metric")
        if datasource_uid(p) != "${datasource}":
            problems.add(where, "datasource should be ${datasource}")
        targets = p.get("targets") or []
        if not targets:
            problems.add(where, "has no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.add(where, "refIds must be present and unique")
        for t in targets:
            expr = t.get("expr")
            if not expr:
                problems.add(where, f"query {t.get('refId')} has no expr")
                continue
            exprs += 1
            if "datasource" in t and datasource_uid(t) != "${datasource}":
                problems.add(where, f"query {t.get('refId')} should use ${{datasource}}")
            labels = check_expr(f"{where} query {t.get('refId')}", expr, problems, used,
                                documented)
            for label in re.findall(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}", t.get("legendFormat", "")):
                if labels is not None and label not in labels:
                    problems.add(where, f"legend names label {label!r}, which the query lacks")
    for name in CONTRACT:
        if name not in used:
            problems.add(DASHBOARD, f"no panel shows {name}")
    report.append(f"{DASHBOARD}: {len(all_panels)} panels with unique ids and gridPos, "
                  f"{exprs} queries using {len(used & set(CONTRACT))} documented metrics")
    return used


# --------------------------------------------------------------------------- Prometheus

def check_alerts(problems, report, documented, anchors):
    doc = load_yaml(ALERTS, problems)
    names = {}
    if doc is None:
        return names
    groups = doc.get("groups") if isinstance(doc, dict) else None
    group = next((g for g in groups or [] if g.get("name") == "streamlake"), None)
    if group is None:
        problems.add(ALERTS, "needs a rule group named `streamlake`")
        return names
    used = set()
    for rule in group.get("rules") or []:
        name = rule.get("alert")
        where = f"{ALERTS} {name or rule.get('record')}"
        if not name:
            continue
        if name in names:
            problems.add(where, "alert defined twice")
        labels = check_expr(where, rule.get("expr") or "", problems, used, documented)
        names[name] = rule
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.add(where, f"severity label should be one of {sorted(SEVERITIES)}")
        ann = rule.get("annotations") or {}
        for key in ("summary", "description", "runbook"):
            if not ann.get(key):
                problems.add(where, f"lacks the {key} annotation")
        for key, value in ann.items():
            for label in re.findall(r"\$labels\.([A-Za-z_]\w*)", value or ""):
                if labels is not None and label not in labels:
                    problems.add(where, f"{key} names label {label!r}, which the expr lacks")
        runbook = ann.get("runbook") or ""
        m = re.fullmatch(re.escape(DOCS) + r"#([\w-]+)", runbook)
        if not m:
            problems.add(where, f"runbook should be {DOCS}#section, is {runbook!r}")
        elif m.group(1) not in anchors:
            problems.add(where, f"runbook anchor #{m.group(1)} is not a heading in {DOCS}")
    for name in REQUIRED_ALERTS:
        if name not in names:
            problems.add(ALERTS, f"lacks alert {name}")
    table = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"^\|\s*(StreamLake\w+)\s*\|[^|\n]*\|\s*([^|\n]+?)\s*\|\s*(\w+)\s*\|", read(DOCS), re.M)}
    for name, rule in names.items():
        want = (rule.get("for") or "none", (rule.get("labels") or {}).get("severity"))
        if name not in table:
            problems.add(DOCS, f"the alerts table lacks {name}")
        elif table[name] != want:
            problems.add(DOCS, f"the alerts table gives {name} for/severity {table[name]}, "
                               f"{ALERTS} has {want}")
    for name in table:
        if name not in names:
            problems.add(DOCS, f"the alerts table lists {name}, which {ALERTS} lacks")
    report.append(f"{ALERTS}: {len(names)} alerts with severity, summary, description and a "
                  f"runbook section; metrics used: {len(used)}, all documented")
    return names


def check_alert_tests(problems, report, alerts, documented):
    doc = load_yaml(ALERT_TESTS, problems)
    if not isinstance(doc, dict):
        problems.add(ALERT_TESTS, "expected a mapping with rule_files and tests")
        return
    if "alerts.yml" not in (doc.get("rule_files") or []):
        problems.add(ALERT_TESTS, "rule_files should load alerts.yml")
    fired, quiet = set(), set()
    used = set()
    series = 0
    for n, test in enumerate(doc.get("tests") or []):
        for s in test.get("input_series") or []:
            series += 1
            check_expr(f"{ALERT_TESTS} test {n + 1} series", s.get("series") or "", problems,
                       used, documented)
        for case in test.get("alert_rule_test") or []:
            name = case.get("alertname")
            if alerts and name not in alerts:
                problems.add(ALERT_TESTS, f"test {n + 1} names unknown alert {name!r}")
            (fired if case.get("exp_alerts") else quiet).add(name)
    for name in alerts:
        if name not in fired:
            problems.add(ALERT_TESTS, f"no test makes {name} fire")
    if not quiet:
        problems.add(ALERT_TESTS, "no test checks that an alert does not fire")
    report.append(f"{ALERT_TESTS}: {len(fired)} alerts fire in tests, {len(quiet)} also "
                  f"checked silent; {series} input series use documented metrics")


def check_prometheus_config(problems, report):
    doc = load_yaml(PROM_CONFIG, problems)
    if not isinstance(doc, dict):
        problems.add(PROM_CONFIG, "expected a mapping with rule_files and scrape_configs")
        return
    if "alerts.yml" not in (doc.get("rule_files") or []):
        problems.add(PROM_CONFIG, "rule_files should load alerts.yml")
    jobs = [c.get("job_name") for c in doc.get("scrape_configs") or []]
    for job in jobs:
        if not (job or "").startswith("streamlake"):
            problems.add(PROM_CONFIG, f"job {job!r}: StreamLakeTargetDown only covers "
                                      "jobs named streamlake*")
    if len(jobs) < 2:
        problems.add(PROM_CONFIG, "expected scrape jobs for StreamLake processes and the gateway")
    report.append(f"{PROM_CONFIG}: loads alerts.yml; jobs {', '.join(map(str, jobs))}")


def run_promtool(problems, report, required):
    promtool = shutil.which("promtool")
    if promtool is None:
        if required:
            problems.add("promtool", "not on PATH (Debian package `prometheus`; "
                                     "scripts/setup.sh --test installs it)")
        else:
            report.append("promtool: not on PATH, skipped (Debian package `prometheus`)")
        return
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True)
    report.append(f"promtool: {(version.stdout or version.stderr).splitlines()[0].strip()}")
    for args in (["check", "rules", ALERTS], ["test", "rules", ALERT_TESTS],
                 ["check", "config", PROM_CONFIG]):
        cmd = ["promtool"] + args
        r = subprocess.run([promtool] + args, cwd=ROOT, capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            problems.add(" ".join(cmd), f"exit {r.returncode}\n{out}")
        else:
            report.append(f"{' '.join(cmd)}: ok")


def main(argv):
    required = "--require-promtool" in argv[1:]
    unknown = [a for a in argv[1:] if a != "--require-promtool"]
    if unknown:
        print(f"usage: {argv[0]} [--require-promtool]", file=sys.stderr)
        return 2
    problems, report = Problems(), []
    documented, anchors = check_docs(problems, report)
    check_dashboard(problems, report, documented)
    alerts = check_alerts(problems, report, documented, anchors)
    check_alert_tests(problems, report, alerts, documented)
    check_prometheus_config(problems, report)
    run_promtool(problems, report, required)
    for line in report:
        print(f"checked {line}")
    if problems.items:
        print(f"\n{len(problems.items)} problem(s):")
        for p in problems.items:
            print(f"  - {p}")
        return 1
    print("deploy check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
