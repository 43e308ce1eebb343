#!/usr/bin/env python3
"""What a program's memory holds at its peak, mapping by mapping.

Runs COMMAND (optionally with LIB preloaded), polls its VmRSS every
couple of milliseconds, and at each new maximum reads `/proc/PID/smaps`
and, for the largest anonymous mapping (oxmalloc's chunks; glibc's heap is
`[heap]` and shows in the per-mapping lines instead), `/proc/PID/pagemap`.
At the end it prints, for the highest sample:
- the resident KiB of each mapping, grouped by file and permissions;
- for the largest anonymous mapping, its resident OS pages sorted by
  oxmalloc's chunk geometry (4 MiB chunks of 64 KiB slices): slice 0 of
  each chunk (the chunk header), and the other slices by how many of their
  16 OS pages are resident (16: a full page of big blocks; 1-2: the first
  blocks of a small or rare class).

This is how docs/PERFORMANCE.md E112 took sqlite's peak apart. The sampler
can miss a peak shorter than its period; VmHWM (printed too) cannot.
Reading pagemap's present bits needs no privilege.

Usage: peak_pages.py [--preload LIB] COMMAND [ARG...]
Example: peak_pages.py --preload target/release/liboxmalloc.so sqlite3 :memory: '.read load.sql'
"""

import os
import re
import struct
import subprocess
import sys
import time

CHUNK = 4 << 20
SLICE = 64 << 10
OS_PAGE = 4096


def mappings(smaps):
    """(range, perms, path, rss KiB) for each mapping of an smaps text."""
    out = []
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps.strip()):
        head = block.splitlines()[0].split()
        rss = re.search(r"^Rss:\s+(\d+)", block, re.M)
        lo, hi = (int(x, 16) for x in head[0].split("-"))
        out.append(((lo, hi), head[1], head[5] if len(head) > 5 else "", int(rss.group(1)) if rss else 0))
    return out


def largest_anonymous(maps):
    anon = [m for m in maps if m[2] == ""]
    return max(anon, key=lambda m: m[0][1] - m[0][0], default=None)


def present_pages(pid, lo, hi):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(lo // OS_PAGE * 8)
        data = f.read((hi - lo) // OS_PAGE * 8)
    return [(e >> 63) & 1 for e in struct.unpack(f"{len(data) // 8}Q", data)]


def sample(pid):
    """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return None
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    hwm = re.search(r"VmHWM:\s+(\d+)", status)
    return (int(rss.group(1)), int(hwm.group(1))) if rss and hwm else None


def main():
    args = sys.argv[1:]
    env = dict(os.environ)
    if args[:1] == ["--preload"] and len(args) >= 2:
        env["LD_PRELOAD"] = os.path.abspath(args[1])
        args = args[2:]
    if not args:
        raise SystemExit(__doc__)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
    best, snap, hwm = 0, None, 0
    while proc.poll() is None:
        s = sample(proc.pid)
        if s is None:
            break
        hwm = max(hwm, s[1])
        if s[0] <= best:
            time.sleep(0.002)
            continue
        try:
            maps = mappings(open(f"/proc/{proc.pid}/smaps").read())
            big = largest_anonymous(maps)
            pages = present_pages(proc.pid, *big[0]) if big else []
        except (OSError, ValueError):
            continue
        best, snap = s[0], (maps, big, pages)
    proc.wait()
    if snap is None:
        raise SystemExit("no sample: the program ended before the first one")
    maps, big, pages = snap
    print(f"highest VmRSS sampled {best} KiB (VmHWM seen {hwm} KiB), exit status {proc.returncode}")
    groups = {}
    for _, perms, path, rss in maps:
        key = (os.path.basename(path) or "[anonymous]", perms)
        groups[key] = groups.get(key, 0) + rss
    for (name, perms), rss in sorted(groups.items(), key=lambda kv: -kv[1]):
        if rss:
            print(f"  {rss:8d} KiB  {perms}  {name}")
    if not big:
        return
    (lo, hi), _, _, rss = big
    print(f"largest anonymous mapping: {(hi - lo) >> 10} KiB at {lo:#x}, {rss} KiB resident")
    header, by_count = 0, {}
    for chunk in range((lo + CHUNK - 1) // CHUNK * CHUNK, hi, CHUNK):
        for s in range(CHUNK // SLICE):
            first = (chunk - lo + s * SLICE) // OS_PAGE
            if first + SLICE // OS_PAGE > len(pages):
                break
            n = sum(pages[first:first + SLICE // OS_PAGE])
            if s == 0:
                header += n
            elif n:
                by_count[n] = by_count.get(n, 0) + 1
    print(f"  slice 0 of each chunk (headers): {header * OS_PAGE >> 10} KiB")
    for n, slices in sorted(by_count.items(), reverse=True):
        print(f"  slices with {n:2d} of 16 OS pages resident: {slices:5d} ({slices * n * OS_PAGE >> 10} KiB)")


if __name__ == "__main__":
    main()
