#!/usr/bin/env python3
"""Prints which parts of oxmalloc's chunks are resident in a running process.

Usage: residency_map.py PID            (as root, or as the process's user
                                        with CAP_SYS_ADMIN: pagemap bits)
       residency_map.py -- COMMAND...  (runs COMMAND, with the caller's
                                        environment: set LD_PRELOAD there,
                                        and maps it after $AFTER seconds,
                                        default 1)

One line per 4 MiB chunk (every 4 MiB-aligned stretch of an anonymous
mapping of 4 MiB or more), one character per 64 KiB slice: how many of its
16 pages are resident, `0`-`f`, `F` for all 16. Slice 0 is the chunk
header (descriptors, free indexes). Used for docs/PERFORMANCE.md E50:
fully resident slices are carved pages, short runs of `0` freed and purged
spans, single digits pages carved one OS page at a time.
"""
import os
import struct
import subprocess
import sys
import time

CHUNK = 4 << 20
SLICE = 64 << 10
PAGE = 4096


def anonymous_ranges(pid):
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if len(fields) < 6 and hi - lo >= CHUNK:
            yield lo, hi


def present(pagemap, addr, pages):
    pagemap.seek(addr // PAGE * 8)
    data = pagemap.read(pages * 8)
    return [(struct.unpack_from("<Q", data, i * 8)[0] >> 63) & 1 for i in range(len(data) // 8)]


def show(pid):
    total = 0
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi in anonymous_ranges(pid):
            chunk = (lo + CHUNK - 1) // CHUNK * CHUNK
            while chunk + CHUNK <= hi:
                bits = present(pagemap, chunk, CHUNK // PAGE)
                row = []
                for s in range(CHUNK // SLICE):
                    n = sum(bits[s * 16:(s + 1) * 16])
                    row.append("F" if n == 16 else "0123456789abcdef"[n])
                total += sum(bits)
                print(f"{chunk:#x} {''.join(row)}")
                chunk += CHUNK
    print(f"resident in chunks: {total * PAGE / 2**20:.1f} MiB")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if args[0] != "--":
        show(int(args[0]))
        return
    after = float(os.environ.get("AFTER", "1"))
    child = subprocess.Popen(args[1:], stdout=subprocess.DEVNULL)
    time.sleep(after)
    if child.poll() is not None:
        sys.exit(f"the command exited before {after} s (set AFTER=seconds)")
    show(child.pid)
    child.wait()


if __name__ == "__main__":
    main()
