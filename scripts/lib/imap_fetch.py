"""IMAP timing client for scripts/bench-imap.sh (plaintext on loopback, no TLS).

usage: imap_fetch.py PORT USER PASSWORD WHOLE
Logs in and SELECTs INBOX; FETCHes every message's UID, FLAGS, size and four header fields (a
mail client's first look at a folder); then UID FETCHes the first WHOLE messages whole with
BODY.PEEK[] (so no flag changes: every round sees the same mailbox), in one command, as a
client filling its offline store does. Logs out. Prints one JSON line: messages, octets
received, and seconds for login+SELECT, the header FETCH and the whole-message UID FETCH.
"""
import imaplib
import json
import re
import sys
import time


def uid_set(uids):
    """`1:5,9,12:20`: the sorted UIDs as runs, so the command line stays short."""
    runs = []
    for u in uids:
        if runs and runs[-1][1] + 1 == u:
            runs[-1][1] = u
        else:
            runs.append([u, u])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


port, user, password, whole = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
imaplib._MAXLINE = 1 << 24

t0 = time.perf_counter()
m = imaplib.IMAP4("127.0.0.1", port, timeout=120)
m.login(user, password)
typ, data = m.select("INBOX")
assert typ == "OK", (typ, data)
count = int(data[0])
t1 = time.perf_counter()

typ, data = m.fetch(
    "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
)
t2 = time.perf_counter()
assert typ == "OK", (typ, data[:2])
uids = []
subjects = 0
for item in data:
    # A message's response is a tuple (prefix with the literal's size, the literal) then b")".
    if isinstance(item, tuple):
        uid = re.search(rb"UID (\d+)", item[0])
        assert uid, item[0]
        uids.append(int(uid.group(1)))
        subjects += b"Subject:" in item[1]
assert len(uids) == count, f"header FETCH gave {len(uids)} messages of {count}: {data[:3]}"
assert subjects == count, f"{count - subjects} header fields without a Subject"

wanted = sorted(uids)[:whole]
t3 = time.perf_counter()
typ, data = m.uid("FETCH", uid_set(wanted), "(BODY.PEEK[])")
t4 = time.perf_counter()
assert typ == "OK", (typ, data[:2])
bodies = [item[1] for item in data if isinstance(item, tuple)]
assert len(bodies) == len(wanted), f"UID FETCH gave {len(bodies)} of {len(wanted)} messages"
octets = sum(len(b) for b in bodies)
m.logout()
print(
    json.dumps(
        {
            "messages": count,
            "fetched": len(bodies),
            "octets": octets,
            "open_s": t1 - t0,
            "headers_s": t2 - t1,
            "whole_s": t4 - t3,
        }
    )
)
