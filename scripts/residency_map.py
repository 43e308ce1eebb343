#!/usr/bin/env python3
"""Prints which parts of oxmalloc's chunks are resident in a running process.

Usage: residency_map.py PID            (as root, or as the process's user
                                        with CAP_SYS_ADMIN: pagemap bits)
       residency_map.py -- COMMAND...  (runs COMMAND, with the caller's
                                        environment: set LD_PRELOAD there,
                                        and maps it after $AFTER seconds,
                                        default 1)

One line per 4 MiB chunk (every 4 MiB-aligned stretch of an anonymous
mapping of 4 MiB or more that starts with a regular chunk's header), one
character per 64 KiB slice: how many of its 16 pages are resident,
`0`-`f`, `F` for all 16. Slice 0 is the chunk
header (descriptors, free indexes). Used for docs/PERFORMANCE.md E50:
fully resident slices are carved pages, short runs of `0` freed and purged
spans, single digits pages carved one OS page at a time.

       residency_map.py --peak [--preload LIB] COMMAND...
                                       (runs COMMAND, LIB preloaded if
                                        given, polls its VmRSS every 2 ms
                                        and maps it at the highest sample)

The peak mode also prints the resident KiB of every mapping, grouped by
file and permissions (glibc's heap is `[heap]`), and sums the chunk rows:
the headers (slice 0) and the other slices by how many of their pages are
resident. Used for docs/PERFORMANCE.md E112. The sampler can miss a peak
shorter than its period; VmHWM, printed beside it, cannot.
"""
import os
import re
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


def looks_like_chunk(mem, chunk):
    """Whether `chunk` starts with a regular chunk header (`chunk.rs`): kind 1,
    two flag bytes of 0 or 1, zero padding to 8, and slice 0 never free.
    A program's own 4 MiB-aligned mappings (gcc's garbage-collected pages)
    are then not counted as oxmalloc's."""
    try:
        mem.seek(chunk)
        head = mem.read(16)
    except OSError:
        return False
    return (len(head) == 16 and head[0] == 1 and head[1] in (0, 1) and head[2] in (0, 1)
            and not any(head[3:8]) and not head[8] & 1)


def chunk_rows(pid):
    """(chunk address, resident pages of each of its slices) for every chunk."""
    rows = []
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap, open(f"/proc/{pid}/mem", "rb") as mem:
        for lo, hi in anonymous_ranges(pid):
            chunk = (lo + CHUNK - 1) // CHUNK * CHUNK
            while chunk + CHUNK <= hi:
                if not looks_like_chunk(mem, chunk):
                    chunk += CHUNK
                    continue
                bits = present(pagemap, chunk, CHUNK // PAGE)
                rows.append((chunk, [sum(bits[s * 16:(s + 1) * 16]) for s in range(CHUNK // SLICE)]))
                chunk += CHUNK
    return rows


def print_rows(rows):
    for chunk, counts in rows:
        print(f"{chunk:#x} {''.join('F' if n == 16 else '0123456789abcdef'[n] for n in counts)}")
    total = sum(sum(counts) for _, counts in rows)
    print(f"resident in chunks: {total * PAGE / 2**20:.1f} MiB")


def show(pid):
    print_rows(chunk_rows(pid))


def mapping_rss(pid):
    """Resident KiB by (file name, permissions), from /proc/PID/smaps."""
    groups = {}
    key = None
    for line in open(f"/proc/{pid}/smaps"):
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            fields = line.split()
            key = (os.path.basename(fields[5]) if len(fields) > 5 else "[anonymous]", fields[1])
        elif line.startswith("Rss:"):
            groups[key] = groups.get(key, 0) + int(line.split()[1])
    return groups


def vm_kib(pid):
    """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return None
    found = [re.search(rf"{name}:\s+(\d+)", status) for name in ("VmRSS", "VmHWM")]
    return tuple(int(m.group(1)) for m in found) if all(found) else None


def peak(args):
    env = dict(os.environ)
    if args[:1] == ["--preload"] and len(args) >= 2:
        env["LD_PRELOAD"] = os.path.abspath(args[1])
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
    best, hwm, snap = 0, 0, None
    while child.poll() is None:
        kib = vm_kib(child.pid)
        if kib is None:
            break
        hwm = max(hwm, kib[1])
        if kib[0] <= best:
            time.sleep(0.002)
            continue
        try:
            snap = (mapping_rss(child.pid), chunk_rows(child.pid))
        except (OSError, ValueError):
            continue
        best = kib[0]
    child.wait()
    if snap is None:
        sys.exit("no sample: the command ended before the first one")
    groups, rows = snap
    print(f"highest VmRSS sampled {best} KiB (VmHWM seen {hwm} KiB), exit status {child.returncode}")
    for (name, perms), rss in sorted(groups.items(), key=lambda kv: -kv[1]):
        if rss:
            print(f"  {rss:8d} KiB  {perms}  {name}")
    print_rows(rows)
    headers = sum(counts[0] for _, counts in rows)
    print(f"  slice 0 of each chunk (headers): {headers * PAGE >> 10} KiB")
    by_count = {}
    for _, counts in rows:
        for n in counts[1:]:
            if n:
                by_count[n] = by_count.get(n, 0) + 1
    for n, slices in sorted(by_count.items(), reverse=True):
        print(f"  slices with {n:2d} of 16 pages resident: {slices:5d} ({slices * n * PAGE >> 10} KiB)")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if args[0] == "--peak":
        peak(args[1:])
        return
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
