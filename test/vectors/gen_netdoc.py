#!/usr/bin/python3
"""Generate the directory-document test vectors in test/vectors/netdoc/.

Independent of onionring's C code: authority key certificates come from
Debian's tor-gencert (tor's own code, so they are real documents); the
microdescriptor consensus and the microdescriptors are written here in the
dir-spec.txt format and signed with the tor-gencert signing keys using
python3-cryptography's RSA private key (raw PKCS#1 v1.5 type 1 padding over
the digest, no DigestInfo, as tor does). Run with /usr/bin/python3.

Outputs (rerunning gives new keys and random content, all consistent):
  keys-all            3 trusted + 1 rogue authority certificate, concatenated
  authorities         hex fingerprints of the 3 trusted authorities
  consensus-microdesc 300 routers, signed by the 3 trusted authorities
  consensus-small     3 routers, signed by the 3 trusted authorities
  consensus-rogue     3 routers, signed by trusted authority 0 and the rogue
  microdescs          the 300 microdescriptors the big consensus lists
  microdescs-small    the 3 microdescriptors of consensus-small
  cert-bad-crosscert  authority 0's certificate with authority 1's signing key
                      in its dir-key-crosscert, re-certified by identity key 0
  cert-no-id-prefix   authority 0's certificate with its crosscert object
                      typed "SIGNATURE" (3.1 allows omitting "ID "), re-certified
"""
import base64
import calendar
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netdoc")
rng = random.Random(20261127)


def b64(data, pad=False):
    s = base64.b64encode(data).decode()
    return s if pad else s.rstrip("=")


def pem_body(der):
    s = base64.b64encode(der).decode()
    return "\n".join(s[i:i + 64] for i in range(0, len(s), 64))


def tstr(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def gencert(d, port):
    os.makedirs(d)
    subprocess.run(["tor-gencert", "--create-identity-key", "-m", "12",
                    "-a", "127.0.0.1:%d" % port, "--passphrase-fd", "0"],
                   cwd=d, input=b"\n", check=True, capture_output=True)
    cert = open(os.path.join(d, "authority_certificate")).read()
    sk = serialization.load_pem_private_key(
        open(os.path.join(d, "authority_signing_key"), "rb").read(), None)
    fp = [l.split()[1] for l in cert.splitlines() if l.startswith("fingerprint ")][0]
    skder = sk.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.PKCS1)
    ik = serialization.load_pem_private_key(
        open(os.path.join(d, "authority_identity_key"), "rb").read(), None)
    return {"cert": cert, "sk": sk, "ik": ik, "fp": fp,
            "skd": hashlib.sha1(skder).hexdigest().upper(), "port": port}


def raw_sign(key, digest):
    """RSA PKCS#1 v1.5 type-1 signature of the bare digest (tor's style)."""
    n = key.private_numbers().public_numbers.n
    d = key.private_numbers().d
    k = (n.bit_length() + 7) // 8
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


ONION_KEYS = [rsa.generate_private_key(public_exponent=65537, key_size=1024)
              .public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.PKCS1)
              for _ in range(4)]
PROTOS = ("Conflux=1 Cons=1-2 Desc=1-4 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 "
          "HSRend=1-2 Link=3-5 LinkAuth=3 Microdesc=1-3 Padding=2 Relay=2-6")


def microdesc(i, ident):
    out = []
    if i % 3 == 2:
        out.append("onion-key\n")   # newer tors may omit the TAP key object
    else:
        out.append("onion-key\n-----BEGIN RSA PUBLIC KEY-----\n%s\n"
                   "-----END RSA PUBLIC KEY-----\n" % pem_body(ONION_KEYS[i % 4]))
    out.append("ntor-onion-key %s\n" % b64(rng.randbytes(32), pad=(i % 2 == 0)))
    if i % 5 == 0:
        out.append("family $%s $%s\n" % (ident.hex().upper(), rng.randbytes(20).hex().upper()))
    if i % 4 == 0:
        out.append("p accept 80,443,1000-2000\n")
    else:
        out.append("p reject 1-65535\n")
    if i % 7 == 0:
        out.append("p6 accept 443\n")
    out.append("id ed25519 %s\n" % b64(rng.randbytes(32)))
    out.append("pr %s\n" % PROTOS)
    return "".join(out)


def router_entry(i, ident, md):
    nick = "relay%03d" % i
    ip = "10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256 or 1)
    flags = ["Fast", "Running", "V2Dir", "Valid"]
    if i % 2 == 0:
        flags.insert(1, "Guard")
    if i % 3 == 0:
        flags.insert(0, "Exit")
    if i % 4 == 0:
        flags.append("Stable")
    if i % 6 == 0:
        flags.insert(flags.index("Running"), "HSDir")
    s = "r %s %s 2026-11-27 12:%02d:00 %s %d 0\n" % (nick, b64(ident), i % 60, ip, 9001 + i % 7)
    if i % 10 == 0:
        s += "a [fd00::%x]:%d\n" % (i + 1, 9001 + i % 7)
    s += "m %s\n" % b64(hashlib.sha256(md.encode()).digest())
    s += "s %s\n" % " ".join(sorted(flags))
    s += "v Tor 0.4.9.%d\n" % (i % 12)
    s += "pr %s\n" % PROTOS
    s += "w Bandwidth=%d%s\n" % (100 + i * 10, " Unmeasured=1" if i % 9 == 0 else "")
    return s


def consensus(auths, signers, nrouters, va):
    idents = sorted(rng.randbytes(20) for _ in range(nrouters))
    mds = [microdesc(i, ident) for i, ident in enumerate(idents)]
    h = ["network-status-version 3 microdesc\n", "vote-status consensus\n",
         "consensus-method 34\n",
         "valid-after %s\n" % tstr(va), "fresh-until %s\n" % tstr(va + 3600),
         "valid-until %s\n" % tstr(va + 3 * 3600), "voting-delay 300 300\n",
         "client-versions 0.4.8.1,0.4.9.11\n", "server-versions 0.4.8.1,0.4.9.11\n",
         "known-flags Authority BadExit Exit Fast Guard HSDir MiddleOnly Running Stable "
         "StaleDesc Sybil V2Dir Valid\n",
         "recommended-client-protocols Cons=2 Desc=2 DirCache=2 HSDir=2 HSIntro=4 HSRend=2 "
         "Link=4-5 Microdesc=2 Relay=2\n",
         "recommended-relay-protocols Cons=2 Desc=2 DirCache=2 HSDir=2 HSIntro=4 HSRend=2 "
         "Link=4-5 LinkAuth=3 Microdesc=2 Relay=2\n",
         "required-client-protocols Cons=2 Desc=2 FlowCtrl=1 Link=4 Microdesc=2 Relay=2\n",
         "required-relay-protocols Cons=2 Desc=2 DirCache=2 HSDir=2 HSIntro=4 HSRend=2 "
         "Link=4-5 LinkAuth=3 Microdesc=2 Relay=2\n",
         "params CircuitPriorityHalflifeMsec=30000 bwweightscale=10000 cc_alg=2 "
         "cc_cwnd_min=-5 guard-n-primary-guards=3\n",
         "shared-rand-previous-value 3 %s\n" % b64(rng.randbytes(32), pad=True),
         "shared-rand-current-value 3 %s\n" % b64(rng.randbytes(32), pad=True)]
    for i, a in enumerate(auths):
        h.append("dir-source auth%d %s 127.0.0.1 127.0.0.1 %d %d\n"
                 % (i, a["fp"], a["port"], a["port"] - 2000))
        h.append("contact auth%d <auth%d@example.invalid>\n" % (i, i))
        h.append("vote-digest %s\n" % rng.randbytes(20).hex().upper())
    body = "".join(h) + "".join(router_entry(i, ident, mds[i]) for i, ident in enumerate(idents))
    body += "directory-footer\n"
    body += ("bandwidth-weights Wbd=0 Wbe=0 Wbg=4141 Wbm=10000 Wdb=10000 Web=10000 Wed=10000 "
             "Wee=10000 Weg=10000 Wem=10000 Wgb=10000 Wgd=0 Wgg=5859 Wgm=5859 Wmb=10000 "
             "Wmd=0 Wme=0 Wmg=4141 Wmm=10000\n")
    signed = (body + "directory-signature ").encode()
    digest = hashlib.sha256(signed).digest()
    sigs = ""
    for a in signers:
        sigs += ("directory-signature sha256 %s %s\n-----BEGIN SIGNATURE-----\n%s\n"
                 "-----END SIGNATURE-----\n" % (a["fp"], a["skd"], pem_body(raw_sign(a["sk"], digest))))
    return body + sigs, "".join(mds)


def recertify(a, cert, crosscert_signer, obj_type):
    """Rebuild a's certificate with a new dir-key-crosscert made by
    crosscert_signer's signing key, then sign it again with a's identity key
    (dir-spec 1.3: SHA-1 from the start through the NL after the keyword)."""
    head = cert[:cert.index("dir-key-crosscert\n")]
    idder = a["ik"].public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.PKCS1)
    xsig = raw_sign(crosscert_signer["sk"], hashlib.sha1(idder).digest())
    body = (head + "dir-key-crosscert\n-----BEGIN %s-----\n%s\n-----END %s-----\n"
            "dir-key-certification\n" % (obj_type, pem_body(xsig), obj_type))
    sig = raw_sign(a["ik"], hashlib.sha1(body.encode()).digest())
    return body + "-----BEGIN SIGNATURE-----\n%s\n-----END SIGNATURE-----\n" % pem_body(sig)


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        auths = [gencert(os.path.join(tmp, "a%d" % i), 7000 + i) for i in range(4)]
    trusted, rogue = auths[:3], auths[3]
    published = max(calendar.timegm(time.strptime(l.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S"))
                    for a in auths for l in a["cert"].splitlines()
                    if l.startswith("dir-key-published "))
    va = (published // 3600 + 1) * 3600
    files = {
        "keys-all": "".join(a["cert"] for a in auths),
        "authorities": "".join(a["fp"] + "\n" for a in trusted),
    }
    files["consensus-microdesc"], files["microdescs"] = consensus(trusted, trusted, 300, va)
    files["consensus-small"], files["microdescs-small"] = consensus(trusted, trusted, 3, va)
    files["consensus-rogue"], _ = consensus(trusted, [trusted[0], rogue], 3, va)
    files["cert-bad-crosscert"] = recertify(trusted[0], trusted[0]["cert"], trusted[1], "ID SIGNATURE")
    files["cert-no-id-prefix"] = recertify(trusted[0], trusted[0]["cert"], trusted[0], "SIGNATURE")
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)
    print("wrote", ", ".join(sorted(files)), "to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
