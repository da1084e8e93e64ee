"""Writes one section of a report: `report.py "## Title" [docs/benchmarks.md] < section.md`.

The section (starting with its title line) replaces the one with the same title, or is appended.
Also prints the machine line used by every section: `report.py --machine`.
"""
import os
import platform
import subprocess
import sys

HEADS = {
    "docs/benchmarks.md": "# Benchmarks\n\nMeasured by `bench/run.sh`, never by the test suite. Re-run it when a change could affect speed.\n\n",
    "docs/reliability.md": "# Reliability\n\nReports of `bench/chaos.sh`: the producer under load while the broker is killed. The behaviour itself is checked by the test suite.\n\n",
}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024} MiB memory; {rustc}"


def main():
    if sys.argv[1] == "--machine":
        print(machine())
        return
    marker = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks.md"
    section = sys.stdin.read().rstrip() + "\n"
    assert section.startswith(marker), "the section must start with its title"
    text = open(path).read() if os.path.exists(path) else HEADS.get(path, "")
    if marker in text:
        before, _, rest = text.partition(marker)
        nxt = rest.find("\n## ")
        text = before + section + ("\n" + rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    open(path, "w").write(text)


main()
