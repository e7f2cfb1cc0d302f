#!/usr/bin/python3
"""Rebalancing by isolation key (issue 6), checked on a running onionring
with 2 workers through its control port (stem), its SocksPort (curl) and
/metrics. test_rebalance_keys.sh starts the gateway and runs this.

The kernel spreads SOCKS clients over the workers' SO_REUSEPORT listeners
by a hash of the connection's addresses, so a fixed client source port
always reaches the same worker while the listeners stay. First, for
source ports from --port-base on, a malformed SOCKS greeting (no stream,
no isolation key) shows in the info log which worker ("{w0}"/"{w1}")
took it: one port per worker is kept.
Then, with CircuitPoolMinSize 0 (no clean circuit any key may take):
 1. user "kay" fetches through worker 1: worker B remembers kay's key
    (B = 1, or 0 when worker 0 had a clean circuit and the session moved
    there: the log says which); A is the other worker;
 2. SIGNAL NEWNYM retires kay's circuit; B's pool reserves a clean
    circuit for kay (onionring_circuits_reserved{shard="B"}); A has no
    ready clean circuit;
 3. kay fetches again through A, which has no circuit for kay: the
    session must move to B (onionring_streams_handed_off_keyed_total
    of A goes up by 1, the log names the reserved circuit) and the
    stream must succeed on a circuit already BUILT before it started (no
    build wait), byte-exact, with no stream counted as waiting while a
    circuit was ready elsewhere.
With the keyed hand-off disabled step 3 fails: the stream waits for a new
circuit on A.

Exit status: 0 pass, 1 fail (reason on stderr), 77 skipped. Every wait is
bounded.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

try:
    import stem
    import stem.control
    from stem import Signal
    from stem.control import EventType
except ImportError:
    print("skipped: python3-stem is not installed")
    sys.exit(77)

SIZE = 200000


def fail(msg):
    print("FAIL: %s" % msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: %s" % msg)


def wait_for(what, fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.25)
    fail("timed out (%.0f s) waiting for %s" % (timeout, what))


class Gateway:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.stream_events = []
        self.built_at = {}  # circuit id -> monotonic time of its CIRC BUILT event
        self.c = stem.control.Controller.from_port(address="127.0.0.1", port=a.control)
        self.c.authenticate()
        self.c.add_event_listener(self._on_stream, EventType.STREAM)
        self.c.add_event_listener(self._on_circ, EventType.CIRC)

    def _on_circ(self, e):
        if e.status == "BUILT":
            with self.lock:
                self.built_at[e.id] = time.monotonic()

    def _on_stream(self, e):
        with self.lock:
            self.stream_events.append((time.monotonic(), e))

    def metric(self, name, shard):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.a.metrics, timeout=10).read().decode()
        want = '%s{shard="%d"} ' % (name, shard)
        for line in body.splitlines():
            if line.startswith(want):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def built_exit_circuits(self):
        return {ci.id for ci in self.c.get_circuits()
                if ci.status == "BUILT" and ci.purpose == "GENERAL" and "ONEHOP_TUNNEL" not in (ci.build_flags or [])}

    def succeeded_circs(self, since):
        with self.lock:
            return [e.circ_id for t, e in self.stream_events if t >= since and e.status == "SUCCEEDED"]

    def fetch(self, user, sport, out):
        """Fetch SIZE bytes as user from client source port sport; True on success."""
        cmd = ["curl", "-sS", "--fail", "--max-time", "60", "--local-port", str(sport), "-o", out,
               "-x", "socks5h://%s:pw@127.0.0.1:%d" % (user, self.a.socks), "%s/bytes/%d" % (self.a.web, SIZE)]
        try:
            return subprocess.run(cmd, timeout=70).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def log_size(self):
        return os.path.getsize(self.a.log)

    def log_since(self, off):
        with open(self.a.log, "rb") as f:
            f.seek(off)
            return f.read().decode(errors="replace")


def worker_of_port(g, sport):
    """Which worker takes SOCKS clients from source port sport (None: port busy)."""
    off = g.log_size()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", sport))
        s.connect(("127.0.0.1", g.a.socks))
        s.settimeout(10)
        s.sendall(b"\x09\x01\x00")  # no SOCKS version 9: the worker logs and closes
        s.recv(16)  # the worker closes first: its side keeps TIME_WAIT, ours does not
    except OSError:
        return None
    finally:
        s.close()
    m = wait_for("the bad-request line for port %d" % sport,
                 lambda: re.search(r"\{w(\d+)\} bad SOCKS request", g.log_since(off)), 10)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    for k in ("control", "socks", "metrics", "port-base"):
        ap.add_argument("--" + k, type=int, required=True)
    for k in ("web", "verify", "log", "tmp"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    g = Gateway(a)

    port = {}
    for sport in range(a.port_base, a.port_base + 40):
        w = worker_of_port(g, sport)
        if w is not None and w not in port:
            port[w] = sport
        if len(port) == 2:
            break
    check(sorted(port) == [0, 1], "source ports %s reach workers %s" % (list(port.values()), list(port)))

    out = os.path.join(a.tmp, "kay1")
    off = g.log_size()
    ok = any(g.fetch("kay", port[1], out) or time.sleep(1) for _ in range(3))
    check(ok, "kay's first fetch through worker 1")
    # Worker 0 may have had a clean circuit any key may take: the session
    # then moved there, and worker 0 holds kay's key. B: the worker that
    # remembers kay; A: the other one, through which kay comes back.
    moved = re.search(r"SOCKS session moves from worker 1 to worker 0", g.log_since(off))
    B, A = (0, 1) if moved else (1, 0)
    print("kay's first stream ran on worker %d; kay comes back through worker %d" % (B, A))

    g.c.signal(Signal.NEWNYM)
    t_newnym = time.monotonic()

    def pool_ready():
        if g.metric("onionring_circuits_reserved", B) < 1 or g.metric("onionring_circuits_ready", A) != 0:
            return False
        launched = g.metric("onionring_circuits_launched_total", B)
        done = g.metric("onionring_circuits_built_total", B) + g.metric("onionring_circuits_failed_total", B)
        return launched == done  # nothing in flight on B: every reservation is there
    wait_for("a reserved circuit on worker %d and no ready clean one on worker %d" % (B, A), pool_ready, 60)
    print("after NEWNYM (%.1f s): worker %d reserved %d, worker %d ready %d reserved %d" % (
        time.monotonic() - t_newnym, B, g.metric("onionring_circuits_reserved", B),
        A, g.metric("onionring_circuits_ready", A), g.metric("onionring_circuits_reserved", A)))

    keyed0 = g.metric("onionring_streams_handed_off_keyed_total", A)
    elsewhere = g.metric("onionring_streams_waited_while_ready_elsewhere_total", A)
    built = g.built_exit_circuits()
    off = g.log_size()
    t0 = time.monotonic()
    out = os.path.join(a.tmp, "kay2")
    check(g.fetch("kay", port[A], out), "kay's second fetch through worker %d" % A)
    r = subprocess.run([a.verify, out, "--size", str(SIZE)], capture_output=True)
    check(r.returncode == 0, "kay's second fetch is byte-exact (%d bytes)" % SIZE)
    moves = re.findall(r"SOCKS session moves from worker %d to worker %d \(([^)]*)\)" % (A, B), g.log_since(off))
    print("log: %s" % moves)
    check(g.metric("onionring_streams_handed_off_keyed_total", A) == keyed0 + 1,
          "worker 0 handed the session to the worker holding kay's reserved circuit (keyed hand-off metric +1)")
    check(moves == ["a circuit reserved for its isolation key there"], "the log names the reserved circuit")
    ids = wait_for("kay's STREAM SUCCEEDED event", lambda: g.succeeded_circs(t0), 5)
    check(ids[0] in built, "kay's stream went on circuit %s, BUILT before it started (no build wait)" % ids[0])
    with g.lock:
        built_at = g.built_at.get(ids[0])
    check(built_at is not None and t_newnym <= built_at < t0,
          "circuit %s was built after NEWNYM (the pool's reservation for kay), before the stream" % ids[0])
    check(g.metric("onionring_streams_waited_while_ready_elsewhere_total", A) == elsewhere,
          "no stream waited for a build while another worker had a ready circuit")
    g.c.close()


if __name__ == "__main__":
    main()
