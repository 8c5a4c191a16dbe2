#!/usr/bin/env python3
"""Third-party reading of a Postern delivery status notification (Python's email package).

Usage:
  dsn_check.py FILE

Parses FILE (a whole message, as it sits in a Maildir or as Postern built it) with
email.parser.BytesParser and prints one JSON object: the top-level content type and its
report-type, the parts' content types, the human-readable part's declared charset and its
decoded text, the message/delivery-status fields (per-message, then one object per
recipient, values unfolded), the parser's defects, and the numbers of lines longer than
998 octets (RFC 5322 2.1.1). Exits non-zero if the file cannot be parsed at all.
"""
import json
import re
import sys
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

MAX_LINE = 998


def unfold(value):
    """RFC 5322 2.2.3: a CRLF followed by white space is removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def fields(block):
    out = {}
    for name, value in block.items():
        out[name] = unfold(value).strip()
    return out


def main(path):
    raw = open(path, "rb").read()
    long_lines = [
        n for n, line in enumerate(raw.split(b"\n"), 1) if len(line.rstrip(b"\r")) > MAX_LINE
    ]
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    defects = [type(d).__name__ for d in msg.defects]
    parts = msg.get_payload() if msg.is_multipart() else []
    out = {
        "content_type": msg.get_content_type(),
        "report_type": msg.get_param("report-type"),
        "parts": [p.get_content_type() for p in parts],
        "long_lines": long_lines,
        "charset": None,
        "text": None,
        "per_message": {},
        "recipients": [],
    }
    for p in parts:
        defects += [type(d).__name__ for d in p.defects]
        ctype = p.get_content_type()
        if ctype == "text/plain":
            out["charset"] = p.get_content_charset()
            out["text"] = p.get_payload(decode=True).decode(out["charset"])
        elif ctype == "message/delivery-status":
            blocks = p.get_payload()
            out["per_message"] = fields(blocks[0])
            for b in blocks[1:]:
                defects += [type(d).__name__ for d in b.defects]
                r = fields(b)
                out["recipients"].append(r)
            for f in [out["per_message"]] + out["recipients"]:
                for date in ("Arrival-Date", "Last-Attempt-Date", "Will-Retry-Until"):
                    if date in f:
                        f[date + " (parsed)"] = parsedate_to_datetime(f[date]).isoformat()
    out["defects"] = defects
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
