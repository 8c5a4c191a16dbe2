#!/usr/bin/python3
"""Verifies the DKIM signatures of a message with dkimpy (Debian's python3-dkim), a verifier
that is not ours.

Usage: dkim_verify.py DNS_IP:PORT < message

The public keys are looked up at the given DNS server (the test's dnsmasq) through dkimpy's
`dnsfunc` hook, not the system resolver. Line ends are made CRLF first (smtp-sink writes
the mails it takes with LF). Prints one line per DKIM-Signature: `pass d=.. s=.. a=..` or
`fail d=.. s=.. a=..: why`; exits 0 only when there is at least one signature and every one
passes, 1 when one fails, 2 when the message has none.
"""

import re
import sys

import dkim
import dns.resolver


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(name.rstrip("."), "TXT", lifetime=timeout)
        except Exception as e:  # dkimpy treats None as "no key"
            print(f"dns: {name}: {e}", file=sys.stderr)
            return None
        for rr in answer:
            return b"".join(rr.strings)
        return None

    data = sys.stdin.buffer.read()
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    d = dkim.DKIM(data)
    headers = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
    if not headers:
        print("no DKIM-Signature")
        sys.exit(2)
    ok = True
    for idx, value in enumerate(headers):
        tags = dict(
            (t.strip().split(b"=", 1) + [b""])[:2]
            for t in re.sub(rb"\s+", b"", value).split(b";")
            if t.strip()
        )
        label = "d=%s s=%s a=%s" % (
            tags.get(b"d", b"").decode(),
            tags.get(b"s", b"").decode(),
            tags.get(b"a", b"").decode(),
        )
        try:
            good = d.verify(idx=idx, dnsfunc=dnsfunc)
            why = "" if good else "signature does not verify"
        except dkim.DKIMException as e:
            good, why = False, str(e)
        if good:
            print("pass " + label)
        else:
            ok = False
            print("fail " + label + ": " + why)
    sys.exit(0 if ok else 1)


main()
