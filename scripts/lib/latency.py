#!/usr/bin/env python3
"""latency.py PORT COUNT SIZE: time from the end of DATA (the final ".") to the 250 reply.

One SMTP session to 127.0.0.1:PORT sends COUNT messages of SIZE body octets, one after another,
and times each `<CRLF>.<CRLF>` -> `250`. Prints `median_ms p99_ms min_ms max_ms count`.
"""
import socket
import sys
import time


class Smtp:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line, want):
        self.s.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if code != want:
            raise RuntimeError(f"{line!r} -> {text}")
        return text


def percentile(sorted_vals, p):
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    c = Smtp(port)
    code, text = c.reply()
    if code != 220:
        raise RuntimeError(text)
    c.cmd("EHLO latency.client.test", 250)
    line = b"x" * 71 + b"\r\n"
    body = line * (size // len(line) + 1)
    body = body[:size].rstrip(b"\r\n") + b"\r\n"
    times = []
    for i in range(count):
        c.cmd("MAIL FROM:<latency@client.test>", 250)
        c.cmd(f"RCPT TO:<rcpt{i}@far.test>", 250)
        c.cmd("DATA", 354)
        head = f"From: <latency@client.test>\r\nTo: <rcpt{i}@far.test>\r\nSubject: latency {i}\r\nMessage-ID: <latency-{i}@client.test>\r\n\r\n".encode()
        c.s.sendall(head + body)
        t0 = time.perf_counter()
        c.s.sendall(b".\r\n")
        code, text = c.reply()
        t1 = time.perf_counter()
        if code != 250:
            raise RuntimeError(f"end of data -> {text}")
        times.append((t1 - t0) * 1000)
    try:
        c.cmd("QUIT", 221)
    except (OSError, RuntimeError, ConnectionError):
        pass
    times.sort()
    med = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
    print(f"{med:.2f} {percentile(times, 99):.2f} {times[0]:.2f} {times[-1]:.2f} {len(times)}")


main()
