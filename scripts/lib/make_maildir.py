"""Writes N messages of about SIZE octets (CRLF lines, some starting with '.') into DIR/new,
for scripts/bench-pop3.sh. usage: make_maildir.py DIR N SIZE"""
import os
import sys

d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for sub in ("new", "cur", "tmp"):
    os.makedirs(os.path.join(d, sub), exist_ok=True)
line = ("The quick brown fox jumps over the lazy dog, " * 2)[:76]
for i in range(n):
    head = (
        f"Return-Path: <bob@remote.test>\r\nFrom: Bob <bob@remote.test>\r\n"
        f"To: alice@example.test\r\nSubject: message {i}\r\n"
        f"Message-ID: <{i}@bench.test>\r\nDate: Wed, 02 Dec 2026 19:00:00 +0000\r\n\r\n"
    )
    body = []
    total = len(head)
    k = 0
    while total < size:
        l = ("." + line) if k % 40 == 0 else line
        body.append(l)
        total += len(l) + 2
        k += 1
    name = f"{1700000000 + i}.M{i}P1Q{i}.bench"
    with open(os.path.join(d, "new", name), "w", newline="") as f:
        f.write(head + "\r\n".join(body) + "\r\n")
