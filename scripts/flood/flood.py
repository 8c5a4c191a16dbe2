#!/usr/bin/env python3
"""Floods and slow clients against a running `postern serve` (started by scripts/flood.sh).

Everything goes to loopback addresses (127.0.0.0/8 only); every loop is bounded in count and
time. Phases, while two well-behaved clients deliver a mail every second throughout:

  A1  per-IP flood:   --per-ip-flood connections at once from one address; the first
                      max_connections_per_ip get 220, the rest must get 421.
  A2  per-port flood: --port-flood connections at once, spread over many source addresses
                      (each under the per-IP limit); past max_connections_per_port they get 421.
  B   slow clients:   one byte every few seconds in a command line and in DATA.
  C   deaf clients:   pipeline NOOPs as fast as possible and never read a reply.
  D   fast client:    a flood of NOOPs from one client that does read its replies (runs
                      after A2, before B and C).

The server's open file descriptors (/proc/PID/fd) and resident memory are sampled all along.
Prints a summary; exits 1 on a failure (server died, a well-behaved client failed, a limit not
enforced, descriptors not bounded, a mail answered 250 missing from the mailbox). What slow and
deaf clients manage, and the memory and log growth they cause, are reported as FINDING lines
(failures only with --strict).
"""

import argparse
import asyncio
import os
import random
import sys
import time

LOOP = "127.0.0"  # every address used is in 127.0.0.0/8


def now():
    return time.monotonic()


class Stats:
    """What the server process looks like, sampled every 100 ms."""

    def __init__(self, pid):
        self.pid = pid
        self.samples = []  # (t, phase, fds, rss_kib)
        self.phase = "start"
        self.dead = None

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except FileNotFoundError:
            return False

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except FileNotFoundError:
            return None

    def rss(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except FileNotFoundError:
            return None
        return None

    async def run(self, stop):
        while not stop.is_set():
            if not self.alive():
                self.dead = self.dead or self.phase
            else:
                self.samples.append((now(), self.phase, self.fds(), self.rss()))
            await asyncio.sleep(0.1)

    def peak(self, phase=None, key=2):
        vals = [s[key] for s in self.samples if s[key] is not None and (phase is None or s[1] == phase)]
        return max(vals) if vals else None


async def read_reply(reader, timeout):
    """One SMTP reply (all its lines); returns (code, text) or raises."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by server" + (f" after {lines!r}" if lines else ""))
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), "\n".join(lines)


class WellBehaved:
    """Delivers one small mail per second; on 421 it counts a refusal and tries next second."""

    def __init__(self, name, port, src, rcpt):
        self.name, self.port, self.src, self.rcpt = name, port, src, rcpt
        self.ok = 0
        self.ok_by_phase = {}  # phase -> mails delivered
        self.refused = {}  # phase -> count of 421 answers
        self.failures = []  # (phase, what)
        self.latencies = []
        self.n = 0

    async def one(self, phase):
        self.n += 1
        t0 = now()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port, local_addr=(self.src, 0)), 10)
        try:
            steps = [
                (None, 220),
                ("EHLO wellbehaved.test", 250),
                ("MAIL FROM:<sender@wellbehaved.test>", 250),
                (f"RCPT TO:<{self.rcpt}>", 250),
                ("DATA", 354),
                (f"Subject: flood probe {self.name} {self.n}\r\n\r\nphase {phase}\r\n.", 250),
            ]
            for cmd, want in steps:
                if cmd is not None:
                    writer.write(cmd.encode() + b"\r\n")
                    await writer.drain()
                code, text = await read_reply(reader, 15)
                if code == 421:
                    self.refused[phase] = self.refused.get(phase, 0) + 1
                    return
                if code != want:
                    raise RuntimeError(f"{cmd or 'greeting'}: wanted {want}, got {text!r}")
            self.ok += 1
            self.ok_by_phase[phase] = self.ok_by_phase.get(phase, 0) + 1
            self.latencies.append(now() - t0)
            writer.write(b"QUIT\r\n")
            await writer.drain()
            await read_reply(reader, 5)
        finally:
            writer.close()

    async def run(self, stats, stop):
        while not stop.is_set():
            t0 = now()
            phase = stats.phase
            try:
                await self.one(phase)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                self.failures.append((phase, f"{type(e).__name__}: {e}"))
            await asyncio.sleep(max(0.0, 1.0 - (now() - t0)))


async def open_and_greet(src, port, results, hold, release):
    """Connects from `src`, records the greeting's code (or the error), holds until `release`."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 30)
    except Exception as e:  # noqa: BLE001
        results.append(f"connect: {type(e).__name__}")
        return
    try:
        code, text = await read_reply(reader, 30)
        if code == 421:
            # The per-IP refusal names the address; the per-port one does not.
            results.append("421 per-IP" if "connections from" in text else "421 per-port")
        else:
            results.append(code)
        if code == 220:
            await release.wait()
    except Exception as e:  # noqa: BLE001
        results.append(f"greeting: {type(e).__name__}")
    finally:
        writer.close()


async def flood(port, sources, total, hold):
    """`total` connections at once, round-robin over `sources`; returns counts by outcome."""
    results = []
    release = asyncio.Event()
    tasks = [asyncio.create_task(open_and_greet(sources[i % len(sources)], port, results, hold, release))
             for i in range(total)]
    t0 = now()
    while len(results) < total and now() - t0 < 40:
        await asyncio.sleep(0.1)
    await asyncio.sleep(hold)
    release.set()
    await asyncio.gather(*tasks)
    counts = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    return counts, now() - t0


async def slow_client(src, port, mode, interval, cap):
    """Sends one byte every `interval` s; returns (seconds until the server cut it off or None,
    bytes sent, what the server said last)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 10)
    last = ""
    t0 = now()
    sent = 0
    try:
        code, last = await read_reply(reader, 10)
        if mode == "data":
            for cmd, want in [("EHLO slow.test", 250), ("MAIL FROM:<slow@slow.test>", 250),
                              ("RCPT TO:<bob@flood.test>", 250), ("DATA", 354)]:
                writer.write(cmd.encode() + b"\r\n")
                await writer.drain()
                code, last = await read_reply(reader, 10)
                if code != want:
                    return (now() - t0, sent, last)
            payload = b"Subject: slow\r\n\r\n" + b"x" * 200 + b"\r\n"
        else:
            payload = b"NOOP\r\n" * 100
        t0 = now()  # the trickle starts here
        while now() - t0 < cap:
            writer.write(payload[sent % len(payload):sent % len(payload) + 1])
            sent += 1
            try:
                await writer.drain()
            except ConnectionError:
                return (now() - t0, sent, last + " (reset)")
            # Wait `interval`, but notice at once when the server speaks or hangs up.
            deadline = now() + interval
            while now() < deadline:
                try:
                    line = await asyncio.wait_for(reader.readline(), deadline - now())
                except asyncio.TimeoutError:
                    break
                except ConnectionError:
                    return (now() - t0, sent, last + " (reset)")
                if not line:
                    return (now() - t0, sent, last)
                last = line.decode("latin-1").strip()
        return (None, sent, last)
    finally:
        writer.close()


async def deaf_client(src, port, cap_bytes, hold):
    """Pipelines NOOPs without ever reading. Returns (bytes sent before the send side blocked,
    whether the server still held the connection after `hold` seconds, replies then read)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 10)
    chunk = b"NOOP\r\n" * 1000
    sent = 0
    t0 = now()
    try:
        # Write until the transport's buffer stops draining for 2 s (both kernels' buffers full).
        while sent < cap_bytes and now() - t0 < 20:
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except asyncio.TimeoutError:
                break
            sent += len(chunk)
        blocked_at = sent
        await asyncio.sleep(hold)
        # Now read: a server that gave up has closed (EOF or reset soon after the buffered
        # replies); one that waited goes on answering the backlog and keeps the session.
        replies = 0
        closed = False
        t1 = now()
        while now() - t1 < 20:
            try:
                line = await asyncio.wait_for(reader.readline(), 3)
            except asyncio.TimeoutError:
                break
            except ConnectionError:
                closed = True
                break
            if not line:
                closed = True
                break
            replies += 1
        return (blocked_at, not closed, replies)
    finally:
        writer.close()


async def fast_client(src, port, seconds):
    """Pipelines NOOPs as fast as it can for `seconds`, reading every reply. Returns how many
    commands it sent and how many replies it read."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 10)
    chunk = b"NOOP\r\n" * 1000
    sent = 0
    replies = 0

    async def drain_replies():
        nonlocal replies
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            replies += data.count(b"\n")

    reading = asyncio.create_task(drain_replies())
    t0 = now()
    try:
        while now() - t0 < seconds:
            writer.write(chunk)
            await writer.drain()
            sent += 1000
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await asyncio.wait_for(reading, 60)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        reading.cancel()
        writer.close()
    return sent, replies


async def big_client(src, port, rcpt, size, ready, go):
    """Sends one message of `size` octets as fast as it can, after every big client is at DATA
    (`ready` counts them, `go` starts them). Returns the reply to the end of data."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 30)
    try:
        steps = [(None, 220), ("EHLO big.test", 250), ("MAIL FROM:<big@big.test>", 250),
                 (f"RCPT TO:<{rcpt}>", 250), ("DATA", 354)]
        for cmd, want in steps:
            if cmd is not None:
                writer.write(cmd.encode() + b"\r\n")
                await writer.drain()
            code, text = await read_reply(reader, 30)
            if code != want:
                return f"{cmd or 'greeting'}: {text}"
        ready.append(src)
        await go.wait()
        line = b"x" * 76 + b"\r\n"
        block = b"Subject: big\r\n\r\n" + line * (65536 // len(line))
        sent = 0
        while sent < size:
            writer.write(block)
            sent += len(block)
            await writer.drain()
        writer.write(b".\r\n")
        await writer.drain()
        code, text = await read_reply(reader, 120)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return text
    finally:
        writer.close()


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def count_delivered(mailroot):
    n = 0
    for dirpath, _, files in os.walk(mailroot):
        if os.path.basename(dirpath) == "new":
            n += len(files)
    return n


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True, help="the flooded listener")
    ap.add_argument("--other-port", type=int, required=True, help="a second listener")
    ap.add_argument("--per-port", type=int, required=True, help="smtp.max_connections_per_port")
    ap.add_argument("--per-ip", type=int, required=True, help="abuse.max_connections_per_ip")
    ap.add_argument("--command-timeout", type=float, required=True)
    ap.add_argument("--data-timeout", type=float, required=True)
    ap.add_argument("--min-data-rate", type=int, required=True)
    ap.add_argument("--mailroot", required=True)
    ap.add_argument("--logdir", required=True, help="the server's daily log files")
    ap.add_argument("--rcpt", default="bob@flood.test")
    ap.add_argument("--per-ip-flood", type=int, default=200)
    ap.add_argument("--port-flood", type=int, default=3000)
    ap.add_argument("--slow", type=int, default=10, help="slow clients of each kind")
    ap.add_argument("--slow-cap", type=float, default=40, help="longest a slow client is watched")
    ap.add_argument("--deaf", type=int, default=5)
    ap.add_argument("--deaf-hold", type=float, default=30)
    ap.add_argument("--big", type=int, default=20, help="big messages sent at once")
    ap.add_argument("--big-mib", type=int, default=10, help="size of each big message")
    ap.add_argument("--strict", action="store_true", help="FINDINGs fail the run too")
    a = ap.parse_args()

    stats = Stats(a.pid)
    stop = asyncio.Event()
    sampler = asyncio.create_task(stats.run(stop))
    same = WellBehaved("same-port", a.port, f"{LOOP}.2", a.rcpt)
    other = WellBehaved("other-port", a.other_port, f"{LOOP}.3", a.rcpt)
    clients = [asyncio.create_task(c.run(stats, stop)) for c in (same, other)]
    report = []  # (kind, text): kind in PASS, FAIL, FINDING, INFO

    def say(kind, text):
        report.append((kind, text))
        print(f"[{time.strftime('%H:%M:%S')}] {kind}: {text}", flush=True)

    stats.phase = "baseline"
    await asyncio.sleep(4)
    base_fds = stats.peak("baseline")
    say("INFO", f"baseline: server has {base_fds} open descriptors, RSS {stats.peak('baseline', 3)} KiB")

    # A1: per-IP limit.
    stats.phase = "A1 per-IP flood"
    counts, took = await flood(a.port, [f"{LOOP}.10"], a.per_ip_flood, hold=2)
    ok, refused = counts.get(220, 0), counts.get("421 per-IP", 0)
    other_outcomes = {k: v for k, v in counts.items() if k not in (220, "421 per-IP")}
    text = (f"{a.per_ip_flood} connections at once from {LOOP}.10 (max_connections_per_ip "
            f"{a.per_ip}): {ok} greeted 220, {refused} refused with 421 'Too many connections from'"
            + (f", other outcomes {other_outcomes}" if other_outcomes else "") + f" ({took:.1f} s); "
            + f"peak descriptors {stats.peak(stats.phase)}")
    say("PASS" if ok == a.per_ip and refused == a.per_ip_flood - a.per_ip else "FAIL", text)

    stats.phase = "settle 1"
    await asyncio.sleep(3)

    # A2: per-port limit, over sources each below the per-IP limit.
    stats.phase = "A2 per-port flood"
    per_src = max(1, a.per_ip // 2)
    nsrc = (a.port_flood + per_src - 1) // per_src
    sources = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(nsrc)]
    counts, took = await flood(a.port, sources, a.port_flood, hold=2)
    ok, refused = counts.get(220, 0), counts.get("421 per-port", 0)
    other_outcomes = {k: v for k, v in counts.items() if k not in (220, "421 per-port")}
    peak = stats.peak(stats.phase)
    bound = base_fds + a.per_port + 200
    text = (f"{a.port_flood} connections at once from {nsrc} addresses ({per_src} each): {ok} "
            f"greeted 220 (max_connections_per_port {a.per_port}), {refused} refused with 421 "
            f"'Too many connections'" + (f", other outcomes {other_outcomes}" if other_outcomes else "")
            + f" ({took:.1f} s)")
    say("PASS" if 0 < ok <= a.per_port and ok + refused == a.port_flood else "FAIL", text)
    say("PASS" if peak is not None and peak <= bound else "FAIL",
        f"descriptors during the flood: peak {peak} (bound used: baseline {base_fds} + per-port limit "
        f"{a.per_port} + 200 = {bound}); peak RSS {stats.peak(stats.phase, 3)} KiB")

    stats.phase = "settle 2"
    await asyncio.sleep(4)
    after = stats.fds()
    say("PASS" if after is not None and after <= base_fds + 10 else "FAIL",
        f"descriptors after the floods closed: {after} (baseline {base_fds})")

    # D: a flood of NOOPs from a client that reads its replies (before C, so the memory it
    # costs is measured from the baseline).
    log_before = dir_bytes(a.logdir)
    rss_before = stats.rss()
    stats.phase = "D fast pipelining client"
    sent, replies = await fast_client("127.4.0.1", a.port, 10)
    await asyncio.sleep(2)
    peak_rss = stats.peak(stats.phase, 3)
    logged = dir_bytes(a.logdir) - log_before
    text = (f"one client pipelining NOOPs for 10 s and reading the replies: {sent} commands sent, "
            f"{replies} reply lines read; server RSS {rss_before} KiB before, peak {peak_rss} KiB, "
            f"{stats.rss()} KiB after; the daily log grew by {logged / 1e6:.1f} MB "
            f"({logged / max(1, sent * 6):.1f} octets logged per octet sent)")
    grew = peak_rss is not None and rss_before is not None and peak_rss - rss_before > 50 * 1024
    say("FINDING" if grew else "INFO", text)

    # B and C together.
    log_before = dir_bytes(a.logdir)
    rss_before = stats.rss()
    stats.phase = "B/C slow and deaf clients"
    ct = a.command_timeout
    kinds = [
        ("command line, 1 byte every %g s" % (ct * 0.8), "command", ct * 0.8),
        ("command line, 1 byte every %g s" % (ct * 1.2), "command", ct * 1.2),
        ("DATA, 1 byte every %g s" % (ct * 0.8), "data", ct * 0.8),
    ]
    slow_tasks = []
    for k, (label, mode, interval) in enumerate(kinds):
        for i in range(a.slow):
            slow_tasks.append((label, asyncio.create_task(
                slow_client(f"127.2.{k}.{i + 1}", a.port, mode, interval, a.slow_cap))))
    deaf_tasks = [asyncio.create_task(deaf_client(f"127.3.0.{i + 1}", a.port, 64 << 20, a.deaf_hold))
                  for i in range(a.deaf)]
    by_kind = {}
    for label, t in slow_tasks:
        try:
            by_kind.setdefault(label, []).append(await t)
        except Exception as e:  # noqa: BLE001
            by_kind.setdefault(label, []).append(("error", 0, f"{type(e).__name__}: {e}"))
    for label, results in by_kind.items():
        cut = [r for r in results if r[0] not in (None, "error")]
        held = [r for r in results if r[0] is None]
        errs = [r for r in results if r[0] == "error"]
        desc = f"slow clients ({label}, watched up to {a.slow_cap:.0f} s): "
        if cut:
            times = sorted(r[0] for r in cut)
            desc += (f"{len(cut)} cut off after {times[0]:.1f}-{times[-1]:.1f} s "
                     f"(sent {min(r[1] for r in cut)}-{max(r[1] for r in cut)} bytes; last reply {cut[0][2]!r})")
        if held:
            desc += ("; " if cut else "") + (f"{len(held)} NOT cut off: still connected after "
                                             f"{a.slow_cap:.0f} s, {held[0][1]} bytes sent, last reply {held[0][2]!r}")
        if errs:
            desc += f"; {len(errs)} errors: {errs[0][2]}"
        say("FINDING" if held or errs else "PASS", desc)
    deaf = []
    for t in deaf_tasks:
        try:
            deaf.append(await t)
        except Exception as e:  # noqa: BLE001
            deaf.append(("error", False, f"{type(e).__name__}: {e}"))
    held = [d for d in deaf if d[1]]
    sent = [d[0] for d in deaf if d[0] != "error"]
    desc = (f"deaf clients ({a.deaf}, pipelining NOOPs, never reading): send side blocked after "
            f"{min(sent) if sent else '?'}-{max(sent) if sent else '?'} bytes; ")
    if held:
        desc += (f"{len(held)} still held by the server {a.deaf_hold:.0f} s later "
                 f"({a.deaf_hold / ct:.0f}x the command timeout; on reading, it answered "
                 f"{held[0][2]} more replies and kept the session)")
    else:
        desc += f"all cut off by the server within {a.deaf_hold:.0f} s"
    say("FINDING" if held else "PASS", desc)
    peak_rss = stats.peak(stats.phase, 3)
    logged = dir_bytes(a.logdir) - log_before
    sent_total = sum(sent)
    text = (f"during B/C: peak descriptors {stats.peak(stats.phase)}; server RSS {rss_before} KiB before, "
            f"peak {peak_rss} KiB, {stats.rss()} KiB after; the daily log grew by {logged / 1e6:.1f} MB "
            f"while the deaf clients sent {sent_total / 1e6:.1f} MB of NOOPs")
    grew = peak_rss is not None and rss_before is not None and peak_rss - rss_before > 50 * 1024
    say("FINDING" if grew else "INFO", text)

    # E: big messages in flight at once; the server's memory must not grow with them.
    await asyncio.sleep(2)
    rss_before = stats.rss()
    stats.phase = "E big messages"
    ready, go = [], asyncio.Event()
    tasks = [asyncio.create_task(big_client(f"127.5.0.{i + 1}", a.port, a.rcpt, a.big_mib << 20, ready, go))
             for i in range(a.big)]
    t0 = now()
    while len(ready) < a.big and now() - t0 < 30 and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    go.set()
    replies = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1)
    took = now() - t0
    ok = sum(1 for r in replies if isinstance(r, str) and r.startswith("250"))
    peak_rss = stats.peak(stats.phase, 3)
    growth = (peak_rss or 0) - (rss_before or 0)
    in_flight = a.big * a.big_mib * 1024
    text = (f"{a.big} messages of {a.big_mib} MiB sent at once ({in_flight // 1024} MiB in flight): "
            f"{ok} answered 250 in {took:.1f} s; server RSS {rss_before} KiB before, peak {peak_rss} KiB, "
            f"growth {growth} KiB ({growth / max(1, a.big):.0f} KiB per message in flight, "
            f"{100 * growth / max(1, in_flight):.1f}% of the data)")
    others = [r for r in replies if not (isinstance(r, str) and r.startswith("250"))]
    if others:
        text += f"; other outcomes: {others[:3]!r}"
    say("PASS" if ok == a.big and growth < in_flight // 4 else "FAIL", text)

    stats.phase = "end"
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*clients, sampler)

    # Well-behaved clients and the mailbox.
    failed = False
    for c in (same, other):
        lat = sorted(c.latencies)
        med = lat[len(lat) // 2] * 1000 if lat else float("nan")
        worst = lat[-1] * 1000 if lat else float("nan")
        refused = sum(c.refused.values())
        where = ", ".join(f"{k}: {v}" for k, v in c.refused.items())
        per_phase = ", ".join(f"{k}: {v}" for k, v in c.ok_by_phase.items())
        desc = (f"well-behaved client on the {c.name} ({c.port}): {c.ok} mails delivered "
                f"({per_phase}), {refused} refused with 421" + (f" ({where})" if where else "")
                + f", {len(c.failures)} failures; transaction median {med:.0f} ms, worst {worst:.0f} ms")
        bad = bool(c.failures) or c.ok == 0
        if c is other and refused:
            bad = True  # nothing floods the other port
        for phase, what in c.failures[:5]:
            desc += f"\n      failure in {phase}: {what}"
        say("FAIL" if bad else "PASS", desc)
        failed |= bad
    on_disk = count_delivered(a.mailroot)
    expected = same.ok + other.ok
    say("PASS" if on_disk >= expected else "FAIL",
        f"mailbox holds {on_disk} messages; {expected} were answered 250 (slow DATA clients never finish)")
    if stats.dead or not stats.alive():
        say("FAIL", f"the server died (during {stats.dead or 'the end'})")
    else:
        say("PASS", f"the server is alive; {stats.fds()} descriptors open at the end")

    print("\n==== flood summary ====")
    for kind, text in report:
        print(f"{kind:8} {text}")
    fails = [r for r in report if r[0] == "FAIL"]
    findings = [r for r in report if r[0] == "FINDING"]
    print(f"{len(fails)} failed, {len(findings)} findings, "
          f"{sum(1 for r in report if r[0] == 'PASS')} passed")
    return 1 if fails or (a.strict and findings) else 0


if __name__ == "__main__":
    random.seed(1)
    sys.exit(asyncio.run(main()))
