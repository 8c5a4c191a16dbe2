#!/usr/bin/env python3
"""idle.py PORT COUNT STATUSFILE: open COUNT SMTP sessions to 127.0.0.1:PORT and keep them idle.

Each session reads its 220 greeting and then says nothing. When all are open (or the attempt
failed), writes `ready OPENED REFUSED` to STATUSFILE, then sleeps until killed.
"""
import os
import resource
import signal
import socket
import sys
import time


def main():
    port, count, status = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks, refused = [], 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            greeting = s.recv(512)
            if greeting.startswith(b"220"):
                socks.append(s)
            else:
                refused += 1
                s.close()
        except OSError:
            refused += 1
    tmp = status + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"ready {len(socks)} {refused}\n")
    os.rename(tmp, status)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


main()
