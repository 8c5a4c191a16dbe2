#!/usr/bin/python3
"""A scripted IMAP client over Python's imaplib, for tests/imap.rs.

usage: imap_peer.py PORT MODE USER PASSWORD < ACTIONS.json
MODE: plain | starttls | implicit (TLS without certificate checks: the server's is
self-signed)
ACTIONS: a JSON list; each action is [METHOD, ARG...], called as imaplib's
IMAP4.METHOD(*ARGS) (APPEND's message a string, sent as its UTF-8 octets; "login" alone logs in as USER with PASSWORD; "caps" lists the
capabilities imaplib saw; "raw" sends one line as is and reads to the tagged reply).
Every action prints one JSON line: {"action", "ok", "typ", "data", "untagged", "error"}:
`data` the command's data with bytes decoded, `untagged` the untagged responses it brought.
"""
import imaplib
import json
import ssl
import sys


def dec(x):
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, (list, tuple)):
        return [dec(i) for i in x]
    return x


def main():
    port, mode, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    actions = json.load(sys.stdin)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "implicit":
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
    else:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        if mode == "starttls":
            m.starttls(ssl_context=ctx)
    for a in actions:
        name, args = a[0], a[1:]
        m.untagged_responses.clear()
        rec = {"action": name, "ok": True, "typ": None, "data": None, "untagged": None, "error": None}
        try:
            if name == "login":
                typ, data = m.login(user, password)
            elif name == "caps":
                typ, data = "OK", list(m.capabilities)
            elif name == "raw":
                tag = m._new_tag().decode()
                m.send(f"{tag} {args[0]}\r\n".encode())
                lines = []
                while True:
                    line = m._get_line().decode("utf-8", "replace")
                    lines.append(line)
                    if line.startswith(tag + " ") or line.startswith("* BYE"):
                        break
                typ, data = lines[-1].split(" ")[1], lines
            elif name == "append":
                typ, data = m.append(args[0], args[1], args[2], args[3].encode())
            else:
                typ, data = getattr(m, name)(*args)
            rec["typ"], rec["data"] = dec(typ), dec(data)
            rec["ok"] = typ == "OK"
        except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as e:
            rec["ok"], rec["error"] = False, str(e)
        rec["untagged"] = {k: dec(v) for k, v in m.untagged_responses.items()}
        print(json.dumps(rec), flush=True)
        if rec["error"] and "abort" in type(rec["error"]).__name__:
            break


if __name__ == "__main__":
    main()
