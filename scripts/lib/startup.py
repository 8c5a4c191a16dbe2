#!/usr/bin/env python3
"""startup.py PORT LOG CMD...: run CMD and time how long until 127.0.0.1:PORT greets with 220.

Prints `connect_ms greeting_ms`. CMD's output goes to LOG. If CMD is still running afterwards
(a server in the foreground) it is stopped with SIGTERM; a CMD that daemonizes (postfix start)
is left alone. Exits 1 if nothing listens within 30 s.
"""
import signal
import socket
import subprocess
import sys
import time


def main():
    port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        connect_ms = None
        try:
            while time.perf_counter() - t0 < 30:
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError:
                    if p.poll() not in (None, 0):
                        sys.exit(f"{cmd[0]} exited with {p.returncode} before listening")
                    time.sleep(0.001)
                    continue
                connect_ms = (time.perf_counter() - t0) * 1000
                s.settimeout(10)
                greeting = s.recv(512)
                greeting_ms = (time.perf_counter() - t0) * 1000
                if greeting.startswith(b"220"):
                    try:
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    except OSError:
                        pass
                    s.close()
                    print(f"{connect_ms:.1f} {greeting_ms:.1f}")
                    return
                s.close()
                time.sleep(0.001)
            sys.exit("nothing listened within 30 s")
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


main()
