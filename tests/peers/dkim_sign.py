#!/usr/bin/python3
"""Signs a message with dkimpy (Debian's python3-dkim), as a sender's server would.

Usage: dkim_sign.py KEY.pem DOMAIN SELECTOR < message > signed message

relaxed/relaxed, the From, To, Subject, Date and Message-ID fields; the DKIM-Signature is
put in front of the message, which is otherwise written unchanged.
"""

import sys

import dkim


def main():
    key = open(sys.argv[1], "rb").read()
    domain, selector = sys.argv[2].encode(), sys.argv[3].encode()
    msg = sys.stdin.buffer.read()
    sig = dkim.sign(
        msg,
        selector,
        domain,
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    sys.stdout.buffer.write(sig + msg)


main()
