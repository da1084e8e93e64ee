"""Runs a command and writes its peak resident memory (the kernel's max RSS of the child, in KiB,
what GNU time's %M reports) to a file. The command's stdout and stderr pass through; the exit
code is the command's.

Usage: peak_rss.py OUT_FILE COMMAND [ARG...]
"""

import os
import sys


def main():
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write(f"{usage.ru_maxrss}\n")
    sys.exit(os.waitstatus_to_exitcode(status))


main()
