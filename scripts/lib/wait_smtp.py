#!/usr/bin/env python3
"""wait_smtp.py PORT TIMEOUT_S [PID]: wait until 127.0.0.1:PORT greets with 220.

Prints the milliseconds it took. Exits 1 on timeout, or as soon as PID (if not 0) has exited.
"""
import os
import socket
import sys
import time


def alive(pid):
    if pid == 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of the calling shell still "exists"; look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    port, timeout = int(sys.argv[1]), float(sys.argv[2])
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not alive(pid):
            sys.exit(1)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b"220"):
                    print(round((time.monotonic() - start) * 1000, 1))
                    try:
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    except OSError:
                        pass
                    return
        except OSError:
            pass
        time.sleep(0.01)
    sys.exit(1)


main()
