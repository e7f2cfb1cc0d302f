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
Then, with CircuitPoolMinSize 0 and CircuitPoolMaxSize 1 (after NEWNYM
each worker's one clean circuit is reserved for its most recent key;
users warm0 and warm1 make sure each worker has one):
 1. user kay0 fetches through worker 1 (B); its stream must run there,
    so that only B remembers kay's key (a session that moved to a worker
    with a clean circuit is noted by both: then kay1 tries through worker
    0, and so on, 4 tries); A is the other worker;
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
import threading
import time

from checks import check, controller, is_exit_circuit, metrics_text, need_stem, wait_for

need_stem()
from stem import Signal  # noqa: E402 (after the skip)
from stem.control import EventType  # noqa: E402

SIZE = 200000


class Gateway:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.stream_events = []
        self.built_at = {}  # circuit id -> monotonic time of its CIRC BUILT event
        self.c = controller(a.control)
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
        want = '%s{shard="%d"} ' % (name, shard)
        for line in metrics_text(self.a.metrics).splitlines():
            if line.startswith(want):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def built_exit_circuits(self):
        return {ci.id for ci in self.c.get_circuits()
                if ci.status == "BUILT" and is_exit_circuit(ci)}

    def succeeded_circs(self, since):
        with self.lock:
            return [e.circ_id for t, e in self.stream_events if t >= since and e.status == "SUCCEEDED"]

    def fetch(self, user, sport, out):
        """Fetch SIZE bytes as user from client source port sport; True on success."""
        cmd = ["curl", "-sS", "--fail", "--max-time", "60", "--local-port", str(sport), "-o", out,
               "-x", "socks5h://%s:pw@127.0.0.1:%d" % (user, self.a.socks), "%s/bytes/%d" % (self.a.web, SIZE)]
        for attempt in range(3):
            try:
                rc = subprocess.run(cmd, timeout=70).returncode
            except subprocess.TimeoutExpired:
                print("curl as %s from port %d: no answer in 70 s" % (user, sport))
                return False
            if rc != 45 or not port_free(sport):
                break
            # 45: curl could not bind its local port (see port_free).
            print("curl as %s could not bind port %d: again" % (user, sport))
        if rc:
            print("curl as %s from port %d exited %d" % (user, sport, rc))
        return rc == 0

    def log_size(self):
        return os.path.getsize(self.a.log)

    def log_since(self, off):
        with open(self.a.log, "rb") as f:
            f.seek(off)
            return f.read().decode(errors="replace")


def port_free(sport, timeout=2.0):
    """Wait until a socket without SO_REUSEADDR can bind sport, as curl's
    --local-port does: our side of the probe passes through LAST_ACK until
    the gateway's kernel acknowledges our FIN, and on a loaded machine
    that can outlast close() (bind then fails with EADDRINUSE). True when
    it could bind within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", sport))
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        finally:
            t.close()


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
    if not port_free(sport):
        return None
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

    # 4 source ports per worker: a port curl used stays in TIME_WAIT on
    # our side for a minute, so every fetch takes a fresh one.
    ports = {0: [], 1: []}
    for sport in range(a.port_base, a.port_base + 60):
        w = worker_of_port(g, sport)
        if w in ports and len(ports[w]) < 4:
            ports[w].append(sport)
        if min(len(p) for p in ports.values()) == 4:
            break
    check(min(len(p) for p in ports.values()) == 4, "source ports %s reach workers 0 and 1" % ports)

    class Next:
        def __getitem__(self, w):
            return ports[w].pop()
    port = Next()

    # The user's first stream must run on the worker it reached (B), so
    # that only B remembers its key: a worker that keeps a clean circuit
    # any key may take (its predicted ports) draws the session away, and
    # then both workers remember the key. Such a try is abandoned and a new
    # user comes through the other worker (bounded: 4 tries).
    # Each worker first sees a key of its own: with CircuitPoolMaxSize 1,
    # after NEWNYM its one clean circuit is then reserved for its most
    # recent key, and none is left that any key may take.
    for w in (0, 1):
        u = "warm%d" % w
        check(g.fetch(u, port[w], os.path.join(a.tmp, u)), "%s's fetch through worker %d" % (u, w))
    user = None
    for i in range(4):
        u, entry = "kay%d" % i, 1 - i % 2
        off = g.log_size()
        ok = g.fetch(u, port[entry], os.path.join(a.tmp, u))
        check(ok, "%s's first fetch through worker %d" % (u, entry))
        if not re.search(r"SOCKS session moves from worker %d" % entry, g.log_since(off)):
            user, B, A = u, entry, 1 - entry
            break
        print("%s's session moved away from worker %d (a clean circuit elsewhere): next user" % (u, entry))
    check(user is not None, "a user's first stream stayed on the worker it reached")
    print("%s's first stream ran on worker %d; %s comes back through worker %d" % (user, B, user, A))

    g.c.signal(Signal.NEWNYM)
    t_newnym = time.monotonic()

    def pool_ready():
        for w in (A, B):
            if g.metric("onionring_circuits_reserved", w) < 1 or g.metric("onionring_circuits_ready", w) != 0:
                return False
            launched = g.metric("onionring_circuits_launched_total", w)
            done = g.metric("onionring_circuits_built_total", w) + g.metric("onionring_circuits_failed_total", w)
            if launched != done:
                return False  # still building: wait until the pools settle
        return True
    wait_for("a reserved circuit on worker %d and no ready clean one on worker %d" % (B, A), pool_ready, 60)
    print("after NEWNYM (%.1f s): worker %d reserved %d, worker %d ready %d reserved %d" % (
        time.monotonic() - t_newnym, B, g.metric("onionring_circuits_reserved", B),
        A, g.metric("onionring_circuits_ready", A), g.metric("onionring_circuits_reserved", A)))

    keyed0 = g.metric("onionring_streams_handed_off_keyed_total", A)
    elsewhere = g.metric("onionring_streams_waited_while_ready_elsewhere_total", A)
    built = g.built_exit_circuits()
    off = g.log_size()
    t0 = time.monotonic()
    out = os.path.join(a.tmp, user + "-again")
    check(g.fetch(user, port[A], out), "%s's second fetch through worker %d" % (user, A))
    r = subprocess.run([a.verify, out, "--size", str(SIZE)], capture_output=True)
    check(r.returncode == 0, "%s's second fetch is byte-exact (%d bytes)" % (user, SIZE))
    moves = re.findall(r"SOCKS session moves from worker %d to worker %d \(([^)]*)\)" % (A, B), g.log_since(off))
    print("log: %s" % moves)
    check(g.metric("onionring_streams_handed_off_keyed_total", A) == keyed0 + 1,
          "worker %d handed the session to the worker holding %s's reserved circuit (keyed hand-off metric +1)" % (A, user))
    check(moves == ["a circuit reserved for its isolation key there"], "the log names the reserved circuit")
    ids = wait_for("the STREAM SUCCEEDED event", lambda: g.succeeded_circs(t0), 5)
    check(ids[0] in built, "%s's stream went on circuit %s, BUILT before it started (no build wait)" % (user, ids[0]))
    with g.lock:
        built_at = g.built_at.get(ids[0])
    check(built_at is not None and t_newnym <= built_at < t0,
          "circuit %s was built after NEWNYM (the pool's reservation for %s), before the stream" % (ids[0], user))
    check(g.metric("onionring_streams_waited_while_ready_elsewhere_total", A) == elsewhere,
          "no stream waited for a build while another worker had a ready circuit")
    g.c.close()


if __name__ == "__main__":
    main()
