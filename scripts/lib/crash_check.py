#!/usr/bin/env python3
"""crash_check.py ACKFILE SINKDIR [--quiet]: compare what got a 250 with what reached the sink.

Prints `acked delivered_unique missing duplicates unacked_delivered torn`:
  acked              messages that got a 250 (ACKFILE lines)
  delivered_unique   distinct X-Crash-Id values found at the sink
  missing            acked but never delivered (a loss)
  duplicates         extra copies beyond the first
  unacked_delivered  delivered though the client never saw the 250 (allowed)
  torn               sink files that are not a complete mail (transfers cut off mid-DATA,
                     which smtp-sink dumps too); not counted as deliveries
With --missing, lists the missing ids on stderr.
"""
import collections
import os
import re
import sys

ackfile, sinkdir = sys.argv[1], sys.argv[2]
acked = set()
with open(ackfile) as f:
    for line in f:
        line = line.strip()
        if line:
            acked.add(int(line))

seen = collections.Counter()
torn = 0
idre = re.compile(rb"^X-Crash-Id: (\d+)\s*$", re.M)
for name in os.listdir(sinkdir):
    with open(os.path.join(sinkdir, name), "rb") as f:
        data = f.read()
    m = idre.search(data)
    if not m:
        torn += 1
        continue
    n = int(m.group(1))
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    want = [f"crash test message {n} line {k:02d} ".encode() + b"z" * 40 for k in range(20)] + [f"END {n}".encode()]
    start = lines.index(want[0]) if want[0] in lines else -1
    if start < 0 or lines[start:start + len(want)] != want:
        torn += 1  # an aborted transfer the sink dumped anyway: not a delivery
        continue
    seen[n] += 1

missing = sorted(acked - set(seen))
dups = sum(c - 1 for c in seen.values() if c > 1)
unacked = len(set(seen) - acked)
print(f"{len(acked)} {len(seen)} {len(missing)} {dups} {unacked} {torn}")
if "--missing" in sys.argv and missing:
    print("missing ids: " + " ".join(map(str, missing[:200])), file=sys.stderr)
