"""Shared helpers of the Python checks that drive a running onionring:
circpool_check.py, rebalance_keys_check.py and control_stem.py.

For: the verdict helpers (fail, check, wait_for: "FAIL: ..." on stderr
and exit 1, "ok: ..." on stdout, every wait bounded), skipping (exit 77)
when python3-stem is missing, and a stem Controller on a loopback control
port. Not for: test logic, or anything the scripts do not all share.

The scripts are run as `python3 DIR/script.py` (test_*.sh pass
"$here/script.py"), so Python puts DIR first on sys.path and `import
checks` finds this file whatever the working directory is.
"""
import sys
import time
import urllib.request


def fail(msg):
    """Print msg as the reason of the failure and exit 1."""
    print("FAIL: %s" % msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    """Fail with msg unless cond holds; print "ok: msg" when it does."""
    if not cond:
        fail(msg)
    print("ok: %s" % msg)


def wait_for(what, fn, timeout=20.0, interval=0.2):
    """Poll fn() every interval seconds until it returns something true and
    return that; fail naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(interval)
    fail("timed out after %.0f s waiting for %s" % (timeout, what))


def need_stem():
    """Exit 77 (skipped) when python3-stem cannot be imported. Call it
    before importing stem modules."""
    try:
        import stem.control  # noqa: F401
    except ImportError:
        print("skipped: python3-stem is not installed (scripts/packages.txt lists it)")
        sys.exit(77)


def connect(port):
    """A stem Controller on 127.0.0.1:port, not authenticated yet."""
    import stem.control
    return stem.control.Controller.from_port(address="127.0.0.1", port=port)


def controller(port):
    """A stem Controller on 127.0.0.1:port, authenticated by whatever
    method PROTOCOLINFO offers (cookie, or none)."""
    c = connect(port)
    try:
        c.authenticate()
    except BaseException:
        c.close()
        raise
    return c


def metrics_text(port):
    """The body of http://127.0.0.1:port/metrics (10 s bound)."""
    url = "http://127.0.0.1:%d/metrics" % port
    return urllib.request.urlopen(url, timeout=10).read().decode()


def is_exit_circuit(ci):
    """True for a stem CircuitStatus of a GENERAL circuit that is not a
    one-hop (directory) tunnel."""
    return ci.purpose == "GENERAL" and "ONEHOP_TUNNEL" not in (ci.build_flags or [])
