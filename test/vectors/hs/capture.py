#!/usr/bin/python3
"""Capture real v3 onion-service descriptors from a running private network
(test/testnet/testnet) for test_hs_desc.c. Not a generator: every byte saved
here was made by tor itself.

Usage: capture.py TESTNET_DIR OUTDIR [descs|ring]   (default: both)

Saves, from the service's own control port (GETINFO hs/service/desc/id/...):
  noauth.desc      the descriptor of the network's onion service (no client auth)
  noauth.meta      its address and the consensus valid-after at capture time
  auth.desc        the descriptor of a second service added with ADD_ONION
                   ClientAuthV3 for a client key made here
  auth.meta        its address, the client's x25519 secret key (base64) and
                   the consensus valid-after
and for the hash ring ("ring"): a third service is added while listening
to HS_DESC events; tor's UPLOAD events name each HSDir it chose, the
descriptor's blinded key and the HSDir's index (HSDIR_INDEX=):
  ring.events      those "650 HS_DESC UPLOAD" lines
  ring.consensus   the service's microdesc consensus right after the uploads
  ring.microdescs  its microdescriptors (GETINFO md/all), for ed25519 ids
  ring.meta        the service's address
Only talks to 127.0.0.1.
"""
import base64, os, socket, sys, time
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization


def env(d):
    out = {}
    for line in open(os.path.join(d, "testnet.env")):
        k, _, v = line.strip().partition("=")
        out[k] = v
    return out


class Ctl:
    def __init__(self, port, cookie):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.events = []
        self.cmd("AUTHENTICATE " + open(cookie, "rb").read().hex())

    def readline(self, timeout=20):
        """One line; "" when nothing came within timeout seconds."""
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                got = self.s.recv(65536)
            except socket.timeout:
                return ""
            if not got:
                raise RuntimeError("control port closed")
            self.buf += got
        l, _, self.buf = self.buf.partition(b"\n")
        return l.decode().rstrip("\r")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        lines = []
        while True:
            l = self.readline()
            if l.startswith("650"):
                self.events.append(l)
                continue
            lines.append(l)
            if l[3:4] == "+":
                while True:
                    d = self.readline()
                    if d == ".":
                        break
                    lines.append(d[1:] if d.startswith("..") else d)
            elif l[3:4] == " ":
                break
        if not lines[-1].startswith("250"):
            raise RuntimeError("%s -> %s" % (line, lines[-1]))
        return lines


def consensus_valid_after(c):
    for l in c.cmd("GETINFO consensus/valid-after"):
        if l.startswith("250-consensus/valid-after="):
            return l.split("=", 1)[1]
    raise RuntimeError("no valid-after")


def desc_of(c, addr):
    for _ in range(90):
        try:
            lines = c.cmd("GETINFO hs/service/desc/id/" + addr)
            body = lines[1:-1]
            return "\n".join(body)
        except RuntimeError:
            time.sleep(2)
    raise RuntimeError("no descriptor for " + addr)


def getinfo_data(c, key):
    lines = c.cmd("GETINFO " + key)
    return "\n".join(lines[1:-1]) + "\n"


def ring(c, e, outdir):
    c.cmd("SETEVENTS HS_DESC")
    r = c.cmd("ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=80,127.0.0.1:%s" % e["TESTNET_HTTP_PORT"])
    sid = [l.split("=", 1)[1] for l in r if l.startswith("250-ServiceID=")][0]
    deadline = time.time() + 120
    ups = lambda: [l for l in c.events if l.startswith("650 HS_DESC UPLOAD " + sid + " ")]
    while time.time() < deadline:
        l = c.readline(timeout=10)
        if l.startswith("650"):
            c.events.append(l)
        if len(ups()) >= 2 and l == "":
            break
    c.cmd("SETEVENTS")
    open(os.path.join(outdir, "ring.events"), "w").write("\n".join(ups()) + "\n")
    open(os.path.join(outdir, "ring.consensus"), "w").write(
        getinfo_data(c, "dir/status-vote/current/consensus-microdesc"))
    open(os.path.join(outdir, "ring.microdescs"), "w").write(getinfo_data(c, "md/all"))
    open(os.path.join(outdir, "ring.meta"), "w").write("address %s\n" % sid)
    c.cmd("DEL_ONION " + sid)


def main():
    d, outdir = sys.argv[1], sys.argv[2]
    what = sys.argv[3] if len(sys.argv) > 3 else "all"
    e = env(d)
    hs_cookie = os.path.join(d, "nodes", "hs", "control_auth_cookie")
    c = Ctl(int(e["TESTNET_HS_CONTROL_PORT"]), hs_cookie)
    if what in ("ring", "all"):
        ring(c, e, outdir)
    if what == "ring":
        return
    addr = e["TESTNET_ONION"][:-len(".onion")]
    va = consensus_valid_after(c)
    open(os.path.join(outdir, "noauth.desc"), "w").write(desc_of(c, addr))
    open(os.path.join(outdir, "noauth.meta"), "w").write(
        "address %s\nvalid-after %s\n" % (addr, va))
    key = X25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sec = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    r = c.cmd("ADD_ONION NEW:ED25519-V3 Flags=DiscardPK,V3Auth Port=80,127.0.0.1:%s ClientAuthV3=%s" %
              (e["TESTNET_HTTP_PORT"], base64.b32encode(pub).decode().rstrip("=")))
    sid = [l.split("=", 1)[1] for l in r if l.startswith("250-ServiceID=")][0]
    va = consensus_valid_after(c)
    open(os.path.join(outdir, "auth.desc"), "w").write(desc_of(c, sid))
    open(os.path.join(outdir, "auth.meta"), "w").write(
        "address %s\nvalid-after %s\nclient-x25519-secret %s\n" %
        (sid, va, base64.b64encode(sec).decode()))
    c.cmd("DEL_ONION " + sid)


main()
