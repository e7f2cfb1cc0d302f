#!/usr/bin/python3
"""socks_client.py: probing and misbehaving SOCKS clients for the
integration tests (stdlib only; every wait has a timeout).

For: test_tor_resolve.sh (exact reply codes of RESOLVE/RESOLVE_PTR),
test_socks_bad_input.sh (one malformed handshake per case, checked against
the reply tor gives and a close), and test_idle_10k.sh / the stallers
(many connections held open at a chosen handshake stage).
Not for: moving payload (curl does that) or speed.

  socks_client.py request PORT CMD ADDR [DPORT [USER]]   CMD: connect|resolve|ptr
      prints "reply 0xNN ADDRTEXT"; exit 0 iff a reply came; with USER,
      RFC 1929 username USER, password "x" (a stream isolation key)
  socks_client.py bad PORT CASE [HTTP_PORT]       exit 0 iff CASE behaved
  socks_client.py bad PORT list                   the case names
  socks_client.py early PORT HOST HTTP_PORT PATH OUT
      greeting, CONNECT to HOST:HTTP_PORT and "GET PATH" in ONE send (the
      GET is optimistic data); writes the HTTP body to OUT; prints "reply
      0xNN"; exit 0 iff the reply is 0 and the answer is HTTP 200
  socks_client.py hold PORT N STAGE SECONDS [--stop FILE] [--ready FILE]
      STAGE: silent (TCP only) | partial (half a greeting) | greeting
      (greeting answered) | connected:PORT (CONNECT to 127.0.0.1:PORT,
      where this script runs a listener that keeps every connection);
      opens N, writes "ready OK FAILED" to --ready, holds until --stop
      exists or SECONDS pass, then prints "held OK closed_by_peer C
      first_close_s X last_close_s Y"
"""
import os
import selectors
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"


def connect(port, timeout=10):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n, timeout):
    """Read n bytes (fewer if the peer closes); bounded by timeout."""
    s.settimeout(timeout)
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        try:
            chunk = s.recv(n - len(out))
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return out


def wait_eof(s, timeout):
    """True if the peer closes (EOF or reset) within timeout; extra bytes are
    drained and ignored."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            if not s.recv(4096):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def addr_field(addr):
    for fam, atyp in ((socket.AF_INET, 1), (socket.AF_INET6, 4)):
        try:
            return bytes([atyp]) + socket.inet_pton(fam, addr)
        except OSError:
            pass
    return b"\x03" + bytes([len(addr)]) + addr.encode()


def read_reply5(s, timeout):
    """Read one SOCKS5 reply; return (code, address text) or None."""
    head = recv_exact(s, 4, timeout)
    if len(head) < 4:
        return None
    atyp = head[3]
    if atyp == 1:
        a = recv_exact(s, 6, timeout)
        return head[1], socket.inet_ntop(socket.AF_INET, a[:4])
    if atyp == 4:
        a = recv_exact(s, 18, timeout)
        return head[1], socket.inet_ntop(socket.AF_INET6, a[:16])
    if atyp == 3:
        n = recv_exact(s, 1, timeout)[0]
        a = recv_exact(s, n + 2, timeout)
        return head[1], a[:n].decode("ascii", "replace")
    return head[1], "atyp-%d" % atyp


def cmd_request(port, cmd, addr, dport=0, user=None):
    code = {"connect": 1, "resolve": 0xF0, "ptr": 0xF1}[cmd]
    s = connect(port)
    if user:
        u = user.encode()
        s.sendall(b"\x05\x01\x02")
        if recv_exact(s, 2, 30) != b"\x05\x02":
            print("no username method reply")
            return 1
        s.sendall(b"\x01" + bytes([len(u)]) + u + b"\x01x")
        if recv_exact(s, 2, 30) != b"\x01\x00":
            print("username refused")
            return 1
    else:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2, 30) != b"\x05\x00":
            print("no method reply")
            return 1
    s.sendall(b"\x05" + bytes([code]) + b"\x00" + addr_field(addr) + struct.pack("!H", dport))
    r = read_reply5(s, 100)  # onion connections are bounded at 90 s
    if r is None:
        print("no reply")
        return 1
    print("reply 0x%02x %s" % r)
    return 0


# --- bad input -------------------------------------------------------------
# Each case: a list of (bytes to send, reply expected after it). The reply is
# matched as a prefix; None means "no bytes, just a close". After the last
# step the gateway must close within CLOSE_TIMEOUT.
CLOSE_TIMEOUT = 10
GREET = (b"\x05\x01\x00", b"\x05\x00")
LOCAL_80 = b"\x01\x7f\x00\x00\x01\x00\x50"


def req5(cmd, rest):
    return b"\x05" + bytes([cmd]) + b"\x00" + rest


CASES = {
    # RFC 1928: only versions 4 and 5 exist; tor closes without a reply.
    "wrong_version": [(b"\x06\x01\x00", None)],
    "version_zero": [(b"\x00\x01\x00\x00", None)],
    "garbage": [(bytes([0x17]) + os.urandom(200), None)],
    # socks-extensions 4: an HTTP request gets a small page, then a close.
    "http_request": [(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.0 501")],
    # A client that gives up half-way (FIN) is closed at once.
    "truncated_greeting_then_eof": [(b"\x05\x02\x00", "shut")],
    "truncated_request_then_eof": [GREET, (b"\x05\x01\x00\x03\x0aabc", "shut")],
    # RFC 1928 section 3: no acceptable method -> X'FF', then close.
    "gssapi_only": [(b"\x05\x01\x01", b"\x05\xff")],
    "zero_methods": [(b"\x05\x00", b"\x05\xff")],
    # RFC 1929 section 2: a bad sub-negotiation version fails with status 1.
    "bad_auth_version": [(b"\x05\x01\x02", b"\x05\x02"), (b"\x02\x01u\x01p", b"\x01\x01")],
    # RFC 1928 section 6 / socks-extensions 1.1: X'07' command not supported.
    "unknown_command": [GREET, (req5(0x09, LOCAL_80), b"\x05\x07")],
    "bind_command": [GREET, (req5(0x02, LOCAL_80), b"\x05\x07")],
    "udp_associate_command": [GREET, (req5(0x03, LOCAL_80), b"\x05\x07")],
    # X'08' address type not supported.
    "unknown_address_type": [GREET, (req5(0x01, b"\x07\x01\x02\x03\x04\x00\x50"), b"\x05\x08")],
    "resolve_ptr_of_hostname": [GREET, (req5(0xF1, b"\x03\x0bexample.com\x00\x00"), b"\x05\x08")],
    # A hostname tor would not accept (space, NUL): general failure.
    "hostname_with_space": [GREET, (req5(0x01, b"\x03\x03a b\x00\x50"), b"\x05\x01")],
    "hostname_with_nul": [GREET, (req5(0x01, b"\x03\x03a\x00b\x00\x50"), b"\x05\x01")],
    "reserved_byte_not_zero": [GREET, (b"\x05\x01\x01" + LOCAL_80, b"\x05\x01")],
    # SOCKS4a: a hostname beyond 255 bytes, and a user id beyond 255: 0x5B.
    "oversized_hostname_socks4a": [(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00" + b"a" * 300 + b"\x00",
                                    b"\x00\x5b")],
    "oversized_userid_socks4": [(b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 300 + b"\x00",
                                 b"\x00\x5b")],
    "socks4_bind": [(b"\x04\x02\x00\x50\x7f\x00\x00\x01\x00", b"\x00\x5b")],
    "socks4_zero_ip": [(b"\x04\x01\x00\x50\x00\x00\x00\x00\x00", b"\x00\x5b")],
}


def run_case(port, name):
    s = connect(port)
    for send, expect in CASES[name]:
        s.sendall(send)
        if expect == "shut":
            s.shutdown(socket.SHUT_WR)
            break
        if expect is None:
            continue
        got = recv_exact(s, len(expect), 10)
        if got != expect:
            return "after %r expected %r, got %r" % (send[:16], expect, got)
    t0 = time.monotonic()
    if not wait_eof(s, CLOSE_TIMEOUT):
        return "not closed within %d s" % CLOSE_TIMEOUT
    return "ok (closed after %.2f s)" % (time.monotonic() - t0)


def run_early_data(port, http_port):
    """Greeting, CONNECT and a 3 KB HTTP request in ONE send: the request
    must go through with the bytes after it as optimistic data
    (socks-extensions 5), not be refused as an oversized request."""
    pad = b"X-Pad: " + b"p" * 3000 + b"\r\n"
    http = b"GET /small.txt HTTP/1.0\r\nHost: x\r\n" + pad + b"\r\n"
    s = connect(port)
    s.sendall(b"\x05\x01\x00" + req5(0x01, b"\x01\x7f\x00\x00\x01" + struct.pack("!H", http_port)) + http)
    if recv_exact(s, 2, 30) != b"\x05\x00":
        return "no method reply"
    r = read_reply5(s, 60)
    if r is None or r[0] != 0:
        return "CONNECT reply %r" % (r,)
    body = b""
    s.settimeout(60)
    while len(body) < 1 << 20:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    if not body.startswith(b"HTTP/1.0 200"):
        return "HTTP answer %r" % body[:40]
    return "ok (%d bytes of response)" % len(body)


def cmd_early(port, host, http_port, path, out):
    """A client that sends its HTTP request together with its CONNECT, as
    tor's optimistic-data users do (tor-spec 6.2)."""
    http = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode()
    name = host.encode()
    s = connect(port)
    s.sendall(b"\x05\x01\x00" + req5(0x01, b"\x03" + bytes([len(name)]) + name +
                                     struct.pack("!H", http_port)) + http)
    if recv_exact(s, 2, 30) != b"\x05\x00":
        print("no method reply")
        return 1
    r = read_reply5(s, 120)
    if r is None:
        print("no reply")
        return 1
    print("reply 0x%02x" % r[0])
    if r[0] != 0:
        return 1
    body = b""
    s.settimeout(60)
    while len(body) < 64 << 20:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    head, _, payload = body.partition(b"\r\n\r\n")
    with open(out, "wb") as f:
        f.write(payload)
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        print("HTTP answer %r" % head[:40])
        return 1
    return 0


def cmd_bad(port, name, http_port=None):
    if name == "list":
        print(" ".join(list(CASES) + ["early_data_3k"]))
        return 0
    try:
        res = run_early_data(port, int(http_port)) if name == "early_data_3k" else run_case(port, name)
    except OSError as e:
        res = "socket error: %s" % e
    print("%s: %s" % (name, res))
    return 0 if res.startswith("ok") else 1


# --- holding many connections ---------------------------------------------

def sink(port, stop_at, keep):
    """Accept and keep connections on 127.0.0.1:port until stop_at."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, port))
    ls.listen(4096)
    ls.settimeout(0.5)
    while time.monotonic() < stop_at:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        keep.append(c)
    ls.close()


def open_batch(port, n, hello, reply_len, timeout):
    """Open n connections, send hello on each, wait (together) for
    reply_len bytes on each. Return (ok sockets, failures)."""
    socks, fails = [], 0
    for _ in range(n):
        try:
            s = connect(port)
            if hello:
                s.sendall(hello)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            fails += 1
    if not reply_len:
        return socks, fails
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    done, end = [], time.monotonic() + timeout
    while got and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(reply_len - len(got[s]))
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                sel.unregister(s)
                del got[s]
                s.close()
                fails += 1
                continue
            got[s] += chunk
            if len(got[s]) >= reply_len:
                sel.unregister(s)
                ok = got.pop(s)[1] == 0  # REP (SOCKS5) of the last reply
                if ok:
                    done.append(s)
                else:
                    s.close()
                    fails += 1
    for s in got:
        s.close()
        fails += 1
    sel.close()
    return done, fails


def stage_hello(stage):
    if stage == "silent":
        return b"", 0
    if stage == "partial":
        return b"\x05\x02", 0
    if stage == "greeting":
        return b"\x05\x01\x00", 2
    port = int(stage.split(":")[1])
    # Greeting and CONNECT together; replies: 2 + 10 bytes (IPv4 bound).
    return b"\x05\x01\x00" + req5(0x01, b"\x01\x7f\x00\x00\x01" + struct.pack("!H", port)), 12


def cmd_hold(port, n, stage, secs, stop=None, ready=None):
    t_start = time.monotonic()
    stop_at = t_start + secs
    kept = []
    if stage.startswith("connected:"):
        threading.Thread(target=sink, args=(int(stage.split(":")[1]), stop_at, kept),
                         daemon=True).start()
        time.sleep(0.5)
    hello, rlen = stage_hello(stage)
    if rlen == 12:
        hello_first, rlen_first = hello, 2  # method reply first, then REP
    ok, fails = [], 0
    batch = 200 if rlen == 12 else 500
    while len(ok) + fails < n and time.monotonic() < stop_at:
        k = min(batch, n - len(ok) - fails)
        if rlen == 12:
            got, f = open_batch(port, k, hello_first, rlen_first, 60)
            # The method reply was checked; now wait for the CONNECT reply.
            for s in got:
                s.setblocking(True)
            got2, f2 = wait_replies(got, 10, 120)
            ok += got2
            fails += f + f2
        else:
            got, f = open_batch(port, k, hello, rlen, 60)
            ok += got
            fails += f
    t_ready = time.monotonic() - t_start
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write("ready %d %d %.1f\n" % (len(ok), fails, t_ready))
        os.replace(ready + ".tmp", ready)
    closes = []
    sel = selectors.DefaultSelector()
    for s in ok:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    while time.monotonic() < stop_at and not (stop and os.path.exists(stop)):
        for key, _ in sel.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                closes.append(time.monotonic() - t_start)
    sel.close()
    print("held %d failed %d ready_s %.1f closed_by_peer %d first_close_s %s last_close_s %s sink %d" % (
        len(ok), fails, t_ready, len(closes), "%.1f" % closes[0] if closes else "-",
        "%.1f" % closes[-1] if closes else "-", len(kept)))
    for s in ok:
        s.close()
    for s in kept:
        s.close()
    return 0


def wait_replies(socks, reply_len, timeout):
    """Wait for a reply_len-byte SOCKS5 reply on each socket (together)."""
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    done, fails, end = [], 0, time.monotonic() + timeout
    while got and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(reply_len - len(got[s]))
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                sel.unregister(s)
                del got[s]
                s.close()
                fails += 1
                continue
            got[s] += chunk
            if len(got[s]) >= reply_len:
                sel.unregister(s)
                if got.pop(s)[1] == 0:
                    done.append(s)
                else:
                    s.close()
                    fails += 1
    for s in got:
        s.close()
        fails += 1
    sel.close()
    return done, fails


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    mode, port = argv[1], int(argv[2])
    if mode == "request":
        return cmd_request(port, argv[3], argv[4], int(argv[5]) if len(argv) > 5 else 0,
                           argv[6] if len(argv) > 6 else None)
    if mode == "bad":
        return cmd_bad(port, argv[3], argv[4] if len(argv) > 4 else None)
    if mode == "early":
        return cmd_early(port, argv[3], int(argv[4]), argv[5], argv[6])
    if mode == "hold":
        opts = dict(zip(argv[6::2], argv[7::2]))
        return cmd_hold(port, int(argv[3]), argv[4], float(argv[5]),
                        opts.get("--stop"), opts.get("--ready"))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
