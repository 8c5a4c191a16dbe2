#!/usr/bin/env python3
"""crash_sender.py PORT TARGET SESSIONS ACKFILE: send mail until TARGET of them got a 250.

SESSIONS threads each connect to 127.0.0.1:PORT (reconnecting while the server is down), send
up to 10 messages per connection, then QUIT. Every message gets a fresh number N, carried in
`Message-ID: <crash-N@client.test>` and `X-Crash-Id: N`, and a body of numbered lines ending in
`END N`, so a torn copy is recognisable. After each `250` to the final ".", N is appended to
ACKFILE (one line each, flushed at once). A message whose reply never came (the server died)
is not counted as accepted; it may still arrive, which is not a loss. Prints a summary at the end.
"""
import socket
import sys
import threading
import time

PORT, TARGET, SESSIONS, ACKFILE = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
PER_CONNECTION = 10

lock = threading.Lock()
state = {"next": 0, "acked": 0, "attempted": 0, "refused": 0, "broken": 0, "rejected": 0}
ack = open(ACKFILE, "a", buffering=1)


def body(n):
    lines = [f"crash test message {n} line {k:02d} " + "z" * 40 for k in range(20)]
    return "\r\n".join(lines) + f"\r\nEND {n}\r\n"


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
        self.buf = b""

    def reply(self):
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()


def take():
    with lock:
        if state["acked"] >= TARGET:
            return None
        state["next"] += 1
        state["attempted"] += 1
        return state["next"]


def worker(w):
    while True:
        with lock:
            if state["acked"] >= TARGET:
                return
        try:
            c = Conn()
        except OSError:
            with lock:
                state["refused"] += 1
            time.sleep(0.05)
            continue
        try:
            if c.reply() != 220 or c.cmd(f"EHLO crash{w}.client.test") != 250:
                raise ConnectionError("no greeting")
            for _ in range(PER_CONNECTION):
                n = take()
                if n is None:
                    break
                if c.cmd(f"MAIL FROM:<crash{w}@client.test>") != 250 or c.cmd(f"RCPT TO:<sink{n}@far.test>") != 250:
                    with lock:
                        state["rejected"] += 1
                    c.cmd("RSET")
                    continue
                if c.cmd("DATA") != 354:
                    with lock:
                        state["rejected"] += 1
                    continue
                msg = (
                    f"From: <crash{w}@client.test>\r\nTo: <sink{n}@far.test>\r\n"
                    f"Subject: crash test {n}\r\nMessage-ID: <crash-{n}@client.test>\r\nX-Crash-Id: {n}\r\n\r\n"
                    + body(n) + ".\r\n"
                )
                c.s.sendall(msg.encode())
                code = c.reply()
                if code == 250:
                    with lock:
                        ack.write(f"{n}\n")
                        state["acked"] += 1
                else:
                    with lock:
                        state["rejected"] += 1
            c.cmd("QUIT")
        except (OSError, ConnectionError, ValueError):
            with lock:
                state["broken"] += 1
            time.sleep(0.05)
        finally:
            c.s.close()


threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(SESSIONS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ack.close()
print(
    f"sender: {state['acked']} accepted with 250, {state['attempted']} attempted, "
    f"{state['broken']} sessions cut off, {state['refused']} connections refused, {state['rejected']} non-250 replies"
)
