#!/usr/bin/env python3
"""A small scripted SMTP server (an MX host) for Postern's delivery tests.

Usage:
  mx_peer.py IP PORT DIR [--legacy-tls CERT KEY] [--no-8bitmime] [--reply PREFIX=REPLY]...

Listens on IP:PORT (one thread per session) and prints `LISTENING` once it does.
`--reply PREFIX=REPLY`: a command line starting with PREFIX (case-insensitive)
is answered with REPLY (e.g. `RCPT TO:<busy@=452 4.2.2 mailbox full`); the
first matching rule wins, other commands get the usual answers.
`--legacy-tls CERT KEY`: STARTTLS is offered, and the handshake after its 220
speaks TLS 1.0 only (OpenSSL at security level 0), which rustls refuses.
`--no-8bitmime`: EHLO does not offer 8BITMIME (an RFC 6152 7-bit server).

Writes what happened to DIR/log (one line per event: `CONNECT`, `TLS v`,
`TLS-FAILED why`, each command) and each mail it accepts to DIR/mail-N.eml:
`X-Peer-TLS: none|TLSv1`, `X-Mail-From:`, one `X-Rcpt-To:` per recipient, an
empty line, then the message as received (dot-unstuffed, CRLF kept).
"""
import itertools
import os
import socket
import socketserver
import ssl
import sys
import threading
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

LOCK = threading.Lock()
COUNTER = itertools.count(1)


class Config:
    dir = "."
    rules = []
    tls = None  # ssl.SSLContext when STARTTLS is offered
    eight_bit_mime = True


def log(line):
    with LOCK, open(os.path.join(Config.dir, "log"), "a") as f:
        f.write(line + "\n")


def legacy_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(cert, key)
    return ctx


class Session(socketserver.BaseRequestHandler):
    def setup(self):
        self.sock = self.request
        self.rfile = self.sock.makefile("rb")
        self.tls_version = None
        self.reset()

    def reset(self):
        self.sender = None
        self.rcpts = []

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def readline(self):
        line = self.rfile.readline(4096)
        if not line:
            raise EOFError
        return line

    def handle(self):
        log("CONNECT")
        try:
            self.send("220 legacy.test ESMTP mx_peer")
            while self.command():
                pass
        except (EOFError, OSError) as e:
            log(f"CLOSED {e!r}")

    def ehlo_lines(self):
        lines = ["legacy.test", "SIZE 10000000"]
        if Config.eight_bit_mime:
            lines.insert(1, "8BITMIME")
        if Config.tls is not None and self.tls_version is None:
            lines.append("STARTTLS")
        return lines

    def command(self):
        line = self.readline().rstrip(b"\r\n").decode("utf-8", "replace")
        log(line)
        upper = line.upper()
        for prefix, reply in Config.rules:
            if upper.startswith(prefix.upper()):
                self.send(reply)
                return True
        verb = upper.split(" ", 1)[0]
        if verb in ("EHLO", "HELO"):
            lines = self.ehlo_lines() if verb == "EHLO" else ["legacy.test"]
            for l in lines[:-1]:
                self.send("250-" + l)
            self.send("250 " + lines[-1])
        elif verb == "STARTTLS" and Config.tls is not None and self.tls_version is None:
            self.send("220 2.0.0 ready to start TLS")
            return self.starttls()
        elif upper.startswith("MAIL FROM:"):
            self.reset()
            self.sender = line[10:]
            self.send("250 2.1.0 ok")
        elif upper.startswith("RCPT TO:"):
            if self.sender is None:
                self.send("503 5.5.1 MAIL first")
            else:
                self.rcpts.append(line[8:])
                self.send("250 2.1.5 ok")
        elif verb == "DATA":
            if not self.rcpts:
                self.send("554 5.5.1 no valid recipients")
            else:
                self.send("354 go ahead")
                self.data()
        elif verb == "RSET":
            self.reset()
            self.send("250 2.0.0 ok")
        elif verb == "NOOP":
            self.send("250 2.0.0 ok")
        elif verb == "QUIT":
            self.send("221 2.0.0 bye")
            return False
        else:
            self.send("502 5.5.2 not implemented")
        return True

    def starttls(self):
        try:
            tls = Config.tls.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"TLS-FAILED {e}")
            return False
        self.sock = tls
        self.rfile = tls.makefile("rb")
        self.tls_version = tls.version()
        log(f"TLS {self.tls_version}")
        self.reset()
        return True

    def data(self):
        body = []
        while True:
            line = self.readline()
            if line == b".\r\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            body.append(line)
        n = next(COUNTER)
        head = [f"X-Peer-TLS: {self.tls_version or 'none'}", f"X-Mail-From: {self.sender}"]
        head += [f"X-Rcpt-To: {r}" for r in self.rcpts]
        text = ("\n".join(head) + "\n\n").encode() + b"".join(body)
        path = os.path.join(Config.dir, f"mail-{n}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        self.send(f"250 2.0.0 queued as {n}")
        self.reset()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(argv):
    ip, port, Config.dir = argv[1], int(argv[2]), argv[3]
    args = argv[4:]
    while args:
        opt = args.pop(0)
        if opt == "--legacy-tls":
            cert, key = args.pop(0), args.pop(0)
            Config.tls = legacy_context(cert, key)
        elif opt == "--no-8bitmime":
            Config.eight_bit_mime = False
        elif opt == "--reply":
            prefix, _, reply = args.pop(0).partition("=")
            Config.rules.append((prefix, reply))
        else:
            sys.exit(f"unknown option {opt}")
    with Server((ip, port), Session) as server:
        print("LISTENING", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
