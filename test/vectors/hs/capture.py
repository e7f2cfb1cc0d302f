#!/usr/bin/python3
"""Capture real v3 onion-service descriptors from a running private network
(test/testnet/testnet) for test_hs_desc.c. Not a generator: every byte saved
here was made by tor itself.

Usage: capture.py TESTNET_DIR OUTDIR

Saves, from the service's own control port (GETINFO hs/service/desc/id/...):
  noauth.desc      the descriptor of the network's onion service (no client auth)
  noauth.meta      its address and the consensus valid-after at capture time
  auth.desc        the descriptor of a second service added with ADD_ONION
                   ClientAuthV3 for a client key made here
  auth.meta        its address, the client's x25519 secret key (base64) and
                   the consensus valid-after
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
        self.f = self.s.makefile("rb")
        self.cmd("AUTHENTICATE " + open(cookie, "rb").read().hex())

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        lines = []
        while True:
            l = self.f.readline().decode().rstrip("\r\n")
            if not l:
                raise RuntimeError("control port closed")
            lines.append(l)
            if l[3:4] == "+":
                while True:
                    d = self.f.readline().decode().rstrip("\r\n")
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


def main():
    d, outdir = sys.argv[1], sys.argv[2]
    e = env(d)
    hs_cookie = os.path.join(d, "nodes", "hs", "control_auth_cookie")
    c = Ctl(int(e["TESTNET_HS_CONTROL_PORT"]), hs_cookie)
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
