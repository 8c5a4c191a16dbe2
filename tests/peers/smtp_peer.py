#!/usr/bin/env python3
"""Third-party SMTP peer for Postern's integration tests (Python's smtplib/ssl).

Usage:
  smtp_peer.py starttls-login PORT USER PASSWORD RCPT SUBJECT [MECH]
  smtp_peer.py implicit-tls   PORT USER PASSWORD RCPT SUBJECT
  smtp_peer.py starttls-injection PORT RCPT

Prints one line per observed step (`STEP CODE text`) and exits non-zero
(with a traceback or an `ASSERTION` line) if the server misbehaves.
"""
import smtplib
import socket
import ssl
import sys
from email.message import EmailMessage

TIMEOUT = 20


def no_verify_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(sender, rcpt, subject):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg.set_content("Sent by Python smtplib for the Postern test suite.\n")
    return msg


def check(cond, what):
    if not cond:
        print("ASSERTION " + what, flush=True)
        sys.exit(1)


def starttls_login(port, user, password, rcpt, subject, mech=None):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=TIMEOUT) as s:
        code, _ = s.ehlo()
        print(f"EHLO1 {code} auth={s.has_extn('auth')} starttls={s.has_extn('starttls')}", flush=True)
        check(s.has_extn("starttls"), "STARTTLS advertised before TLS")
        code, text = s.starttls(context=no_verify_context())
        print(f"STARTTLS {code} {text.decode(errors='replace')}", flush=True)
        code, _ = s.ehlo()
        auth = s.esmtp_features.get("auth", "")
        print(f"EHLO2 {code} auth={auth!r} starttls={s.has_extn('starttls')}", flush=True)
        check(not s.has_extn("starttls"), "no STARTTLS inside TLS")
        if mech is None:
            code, text = s.login(user, password)
        else:
            s.user, s.password = user, password
            fn = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mech]
            code, text = s.auth(mech, fn, initial_response_ok=(mech == "PLAIN"))
        print(f"AUTH {code} {text.decode(errors='replace')}", flush=True)
        refused = s.send_message(message("bob@remote.test", rcpt, subject), to_addrs=[rcpt])
        check(not refused, f"recipients refused: {refused}")
        print("SENT", flush=True)


def implicit_tls(port, user, password, rcpt, subject):
    with smtplib.SMTP_SSL(
        "127.0.0.1", port, local_hostname="client.test", timeout=TIMEOUT,
        context=no_verify_context(),
    ) as s:
        code, _ = s.ehlo()
        print(f"EHLO {code} auth={s.esmtp_features.get('auth', '')!r} starttls={s.has_extn('starttls')}", flush=True)
        check(not s.has_extn("starttls"), "no STARTTLS on the implicit TLS port")
        code, text = s.login(user, password)
        print(f"AUTH {code} {text.decode(errors='replace')}", flush=True)
        refused = s.send_message(message("bob@remote.test", rcpt, subject), to_addrs=[rcpt])
        check(not refused, f"recipients refused: {refused}")
        print("SENT", flush=True)


def read_reply_plain(sock):
    """Read one reply byte by byte, so no byte after it is consumed."""
    lines = []
    while True:
        line = b""
        while not line.endswith(b"\n"):
            b = sock.recv(1)
            if not b:
                raise EOFError(f"connection closed after {lines!r} {line!r}")
            line += b
        line = line.rstrip(b"\r\n").decode(errors="replace")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return int(line[:3]), lines


def read_reply_file(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError(f"connection closed after {lines!r}")
        line = line.rstrip(b"\r\n").decode(errors="replace")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return int(line[:3]), lines


def starttls_injection(port, rcpt):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    code, lines = read_reply_plain(sock)
    print(f"GREETING {code} {lines[0]}", flush=True)
    check(code == 220, "greeting")
    # One single write: the MAIL after STARTTLS must be thrown away.
    sock.sendall(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n")
    code, lines = read_reply_plain(sock)
    print(f"EHLO1 {code} {len(lines)} lines", flush=True)
    check(code == 250, "EHLO before TLS")
    code, lines = read_reply_plain(sock)
    print(f"STARTTLS {code} {lines[0]}", flush=True)
    check(code == 220 and lines[0][4:].startswith("2.0.0"), "STARTTLS -> 220 2.0.0")

    tls = no_verify_context().wrap_socket(sock, server_hostname="mail.test")
    print(f"TLS {tls.version()}", flush=True)
    f = tls.makefile("rb")

    def cmd(name, line):
        tls.sendall(line.encode() + b"\r\n")
        code, lines = read_reply_file(f)
        print(f"{name} {code} {' | '.join(lines)}", flush=True)
        return code, lines

    code, lines = cmd("EHLO2", "EHLO y")
    check(code == 250 and len(lines) > 1, "first reply inside TLS is EHLO's multi-line 250")
    check(any(l[4:].upper().startswith("AUTH") for l in lines), "AUTH offered inside TLS")
    check(not any(l[4:].upper() == "STARTTLS" for l in lines), "no STARTTLS inside TLS")
    code, _ = cmd("RCPT", f"RCPT TO:<{rcpt}>")
    check(code == 503, "RCPT without MAIL -> 503 (the injected MAIL was discarded)")
    code, _ = cmd("STARTTLS2", "STARTTLS")
    check(code == 503, "STARTTLS inside TLS -> 503")
    code, _ = cmd("NOOP", "NOOP")
    check(code == 250, "NOOP")
    code, _ = cmd("QUIT", "QUIT")
    check(code == 221, "QUIT")
    tls.close()


def main(argv):
    mode = argv[1]
    if mode == "starttls-login":
        port, user, pw, rcpt, subject = int(argv[2]), argv[3], argv[4], argv[5], argv[6]
        mech = argv[7] if len(argv) > 7 else None
        starttls_login(port, user, pw, rcpt, subject, mech)
    elif mode == "implicit-tls":
        implicit_tls(int(argv[2]), argv[3], argv[4], argv[5], argv[6])
    elif mode == "starttls-injection":
        starttls_injection(int(argv[2]), argv[3])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
