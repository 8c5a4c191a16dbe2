#!/usr/bin/python3
"""A scripted POP3 client over Python's poplib, for tests/pop3.rs.

usage: pop3_peer.py PORT MODE USER PASSWORD ACTION...
MODE: plain | stls | implicit (TLS without certificate checks: the server's is self-signed)
ACTION: stat | list | uidl | retr:N | top:N:L | dele:N | rset | noop | capa | quit | drop
        | login (USER/PASS) | auth (AUTH PLAIN with SASL-IR, before any other action)
Every action prints one JSON line: {"action": ..., "ok": ..., "result": ...}; a server
error is {"ok": false, "error": "-ERR ..."}. The login (USER/PASS unless the first action is
`auth`) is the first line.
"""
import base64
import json
import poplib
import ssl
import sys


def out(action, ok, result=None, error=None):
    print(json.dumps({"action": action, "ok": ok, "result": result, "error": error}), flush=True)


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def main():
    port, mode, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    actions = sys.argv[5:]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "implicit":
        p = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=20)
    else:
        p = poplib.POP3("127.0.0.1", port, timeout=20)
        if mode == "stls":
            p.stls(context=ctx)
    if actions and actions[0] == "auth":
        actions = actions[1:]
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        try:
            out("auth", True, text(p._shortcmd(f"AUTH PLAIN {token}")))
        except poplib.error_proto as e:
            out("auth", False, error=text(e.args[0]))
    elif actions and actions[0] == "nologin":
        actions = actions[1:]
    else:
        try:
            p.user(user)
            out("login", True, text(p.pass_(password)))
        except poplib.error_proto as e:
            out("login", False, error=text(e.args[0]))
    for a in actions:
        name, *args = a.split(":")
        try:
            if name == "stat":
                r = list(p.stat())
            elif name == "list":
                r = [text(l) for l in p.list()[1]]
            elif name == "uidl":
                r = [text(l) for l in p.uidl()[1]]
            elif name == "retr":
                resp, lines, octets = p.retr(int(args[0]))
                r = {"lines": [text(l) for l in lines], "octets": octets, "resp": text(resp)}
            elif name == "top":
                resp, lines, octets = p.top(int(args[0]), int(args[1]))
                r = {"lines": [text(l) for l in lines], "octets": octets}
            elif name == "dele":
                r = text(p.dele(int(args[0])))
            elif name == "rset":
                r = text(p.rset())
            elif name == "noop":
                r = text(p.noop())
            elif name == "capa":
                r = sorted(p.capa().keys())
            elif name == "quit":
                r = text(p.quit())
            elif name == "drop":
                p.sock.close()
                r = "dropped"
            else:
                raise SystemExit(f"unknown action {a}")
            out(a, True, r)
        except poplib.error_proto as e:
            out(a, False, error=text(e.args[0]))


main()
