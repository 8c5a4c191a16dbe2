"""POP3 timing client for scripts/bench-pop3.sh (plaintext on loopback, no TLS).

usage: pop3_retr.py PORT USER PASSWORD
Logs in, lists (STAT, UIDL), retrieves every message (RETR 1..N) and quits without deleting.
Prints one JSON line: messages, octets received, seconds for login+STAT+UIDL and for the RETRs.
"""
import json
import poplib
import sys
import time

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
p = poplib.POP3("127.0.0.1", port, timeout=60)
p.user(user)
p.pass_(password)
count, _size = p.stat()
p.uidl()
t1 = time.perf_counter()
octets = 0
for i in range(1, count + 1):
    _resp, lines, n = p.retr(i)
    octets += n
t2 = time.perf_counter()
p.quit()
print(json.dumps({"messages": count, "octets": octets, "open_s": t1 - t0, "retr_s": t2 - t1}))
