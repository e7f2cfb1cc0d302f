#!/usr/bin/python3
"""dns_stub.py: a tiny DNS server on 127.0.0.1:53 (UDP) for test_tor_resolve.sh.

For: giving the private network's exits (whose resolv.conf names only
127.0.0.1) ONE name that resolves, and its PTR record, while a test runs:
  NAME                            A   -> ADDR
  <PTR_ADDR reversed>.in-addr.arpa  PTR -> NAME
(Exits refuse reverse lookups of private addresses before asking DNS, so
PTR_ADDR should be a public one, e.g. 192.0.2.x from TEST-NET-1: only the
question travels, to 127.0.0.1, never a packet to that address.)
Every other question gets NXDOMAIN (the exits would fail it anyway: nothing
else listens on 127.0.0.1:53). Answers echo the question as sent (tor's
exits randomise the case of query names, "0x20" hardening).
Not for: anything but loopback; it binds 127.0.0.1 only and never
forwards a query.

Usage: dns_stub.py NAME ADDR PTR_ADDR SECONDS [--fail-first-ms MS]
(prints "ready" once bound; exits after SECONDS, or 2 if port 53 cannot be
bound). --fail-first-ms: NAME gets NXDOMAIN for MS milliseconds from its
first query, then its answer: the first exit asked fails the name and a
later one resolves it (test_stream_retry.sh: a stream survives an exit that
ends it with RESOLVEFAILED).
"""
import socket
import struct
import sys
import time


def parse_question(msg):
    """Return (qname_lower, qtype, end_offset) of the first question."""
    off, labels = 12, []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0 or off + n > len(msg):
            raise ValueError("compressed or truncated name")
        labels.append(msg[off:off + n].decode("ascii", "replace").lower())
        off += n
    qtype, _qclass = struct.unpack("!HH", msg[off:off + 4])
    return ".".join(labels), qtype, off + 4


def encode_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def answer(msg, name, addr, ptr, fail_name=False):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        raise ValueError("not one question")
    qname, qtype, end = parse_question(msg)
    question = msg[12:end]
    rd = flags & 0x0100
    rr = b""
    rcode = 3  # NXDOMAIN
    if qname == name and fail_name:
        pass  # NXDOMAIN while the --fail-first-ms window lasts
    elif qname == name:
        rcode = 0
        if qtype == 1:  # A
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    elif qname == ptr:
        rcode = 0
        if qtype == 12:  # PTR
            data = encode_name(name)
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, len(data)) + data
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                       1 if rr else 0, 0, 0)
    return head + question + rr


def main():
    name, addr, secs = sys.argv[1].lower(), sys.argv[2], float(sys.argv[4])
    fail_ms = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--fail-first-ms" else 0.0
    first_seen = None
    ptr = ".".join(reversed(sys.argv[3].split("."))) + ".in-addr.arpa"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 53))
    except OSError as e:
        print("cannot bind 127.0.0.1:53: %s" % e, flush=True)
        sys.exit(2)
    print("ready", flush=True)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            msg, peer = s.recvfrom(1500)
        except socket.timeout:
            continue
        try:
            now = time.monotonic()
            if first_seen is None and parse_question(msg)[0] == name:
                first_seen = now
            failing = first_seen is not None and (now - first_seen) * 1000.0 < fail_ms
            reply = answer(msg, name, addr, ptr, failing)
        except (ValueError, IndexError, struct.error) as e:
            print("ignored a query: %s" % e, flush=True)
            continue
        s.sendto(reply, peer)
        print("query %r type %d: rcode %d, %d answer(s)" % (
            parse_question(msg)[0], parse_question(msg)[1], reply[3] & 15, reply[7]), flush=True)


if __name__ == "__main__":
    main()
