#!/usr/bin/python3
"""Reads the Authentication-Results fields of a delivered message with Python's `email`
parser (RFC 8601 syntax, simply: authserv-id, then `;`-separated `method=result ...`).

Usage: auth_results.py < message

Prints one line per field: `id=AUTHSERV-ID method=result method=result ...`, in the order
of the fields in the message.
"""

import email
import email.policy
import re
import sys


def main():
    msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
    for value in msg.get_all("Authentication-Results") or []:
        # Unfold, then drop comments (not nested in what we write).
        value = re.sub(r"\r?\n[ \t]+", " ", value)
        value = re.sub(r"\([^()]*\)", "", value)
        parts = [p.strip() for p in value.split(";")]
        out = ["id=" + parts[0]]
        for p in parts[1:]:
            m = re.match(r"([a-z0-9-]+)\s*=\s*([a-z]+)", p, re.I)
            if m:
                out.append(f"{m.group(1).lower()}={m.group(2).lower()}")
        print(" ".join(out))


main()
