#!/usr/bin/python3
"""Generate test/vectors/dirmgr/: two consecutive microdesc consensuses
for test/unit/test_dirmgr.c's refresh test, signed by three authorities.

Independent of onionring's C code, like gen_netdoc.py (whose helpers it
reuses: tor-gencert for the authority certificates, python3-cryptography
for the raw PKCS#1 signatures, tor's document formats written out here).
Run with /usr/bin/python3. Rerunning gives new keys and content.

Outputs:
  keys-all         the 3 authority certificates
  authorities      their v3 identity fingerprints (hex, one a line)
  consensus-a      40 routers, valid-after VA (fresh 1 h, valid 3 h)
  consensus-b      the same 40 routers one hour later; routers 0..7 have
                   new microdescriptors (a relay that rotated its keys)
  microdescs-a     the 40 microdescriptors consensus-a lists
  microdescs-b-new the 8 microdescriptors only consensus-b lists
"""
import hashlib
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_netdoc as g  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dirmgr")
N = 40
CHANGED = 8


def consensus(auths, idents, mds, va):
    h = ["network-status-version 3 microdesc\n", "vote-status consensus\n",
         "consensus-method 34\n",
         "valid-after %s\n" % g.tstr(va), "fresh-until %s\n" % g.tstr(va + 3600),
         "valid-until %s\n" % g.tstr(va + 3 * 3600), "voting-delay 300 300\n",
         "client-versions 0.4.9.11\n", "server-versions 0.4.9.11\n",
         "known-flags Authority BadExit Exit Fast Guard HSDir MiddleOnly Running Stable "
         "StaleDesc Sybil V2Dir Valid\n",
         "recommended-client-protocols Cons=2 Desc=2 Link=4-5 Microdesc=2 Relay=2\n",
         "recommended-relay-protocols Cons=2 Desc=2 Link=4-5 Microdesc=2 Relay=2\n",
         "required-client-protocols Cons=2 Desc=2 Link=4 Microdesc=2 Relay=2\n",
         "required-relay-protocols Cons=2 Desc=2 Link=4 Microdesc=2 Relay=2\n",
         "params cc_alg=2 min_paths_for_circs_pct=60\n"]
    for i, a in enumerate(auths):
        h.append("dir-source auth%d %s 127.0.0.1 127.0.0.1 %d %d\n"
                 % (i, a["fp"], a["port"], a["port"] - 2000))
        h.append("contact auth%d <auth%d@example.invalid>\n" % (i, i))
        h.append("vote-digest %s\n" % g.rng.randbytes(20).hex().upper())
    body = "".join(h) + "".join(g.router_entry(i, ident, mds[i]) for i, ident in enumerate(idents))
    body += "directory-footer\n"
    digest = hashlib.sha256((body + "directory-signature ").encode()).digest()
    sigs = ""
    for a in auths:
        sigs += ("directory-signature sha256 %s %s\n-----BEGIN SIGNATURE-----\n%s\n"
                 "-----END SIGNATURE-----\n" % (a["fp"], a["skd"], g.pem_body(g.raw_sign(a["sk"], digest))))
    return body + sigs


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        auths = [g.gencert(os.path.join(tmp, "a%d" % i), 7000 + i) for i in range(3)]
    published = max(g.calendar.timegm(g.time.strptime(l.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S"))
                    for a in auths for l in a["cert"].splitlines()
                    if l.startswith("dir-key-published "))
    va = (published // 3600 + 1) * 3600
    idents = sorted(g.rng.randbytes(20) for _ in range(N))
    mds_a = [g.microdesc(i, ident) for i, ident in enumerate(idents)]
    new = [g.microdesc(i, ident) for i, ident in enumerate(idents[:CHANGED])]
    mds_b = new + mds_a[CHANGED:]
    files = {
        "keys-all": "".join(a["cert"] for a in auths),
        "authorities": "".join(a["fp"] + "\n" for a in auths),
        "consensus-a": consensus(auths, idents, mds_a, va),
        "consensus-b": consensus(auths, idents, mds_b, va + 3600),
        "microdescs-a": "".join(mds_a),
        "microdescs-b-new": "".join(new),
    }
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)
    print("wrote", ", ".join(sorted(files)), "to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
