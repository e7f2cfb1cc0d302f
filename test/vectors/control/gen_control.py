#!/usr/bin/python3
"""Known answers for test/unit/test_control.c, computed independently of
onionring's C code with Python's hashlib/hmac.

- tor's hashed control password (control-spec 5.1, RFC 2440 iterated and
  salted S2K with SHA-1): "16:" + hex(salt8 + indicator + digest).
- SAFECOOKIE (control-spec 3.24): HMAC-SHA256 over cookie|client|server
  nonces with the two constant keys.

Run: /usr/bin/python3 test/vectors/control/gen_control.py
"""
import hashlib
import hmac


def s2k(password: bytes, salt: bytes, c: int) -> str:
    count = (16 + (c & 15)) << ((c >> 4) + 6)
    data = salt + password
    h = hashlib.sha1()
    while count > 0:
        take = min(count, len(data))
        h.update(data[:take])
        count -= take
    return "16:" + (salt + bytes([c]) + h.digest()).hex().upper()


def main():
    print("s2k foo salt=0001020304050607 c=0x60:", s2k(b"foo", bytes(range(8)), 0x60))
    print("s2k '' salt=a0a1a2a3a4a5a6a7 c=0x00:", s2k(b"", bytes(range(0xa0, 0xa8)), 0x00))
    print("s2k long salt=ffeeddccbbaa9988 c=0x96:", s2k(b"x" * 100, bytes.fromhex("ffeeddccbbaa9988"), 0x96))
    cookie = bytes(range(32))
    client = bytes(range(100, 132))
    server = bytes(range(200, 232))
    msg = cookie + client + server
    s2c = hmac.new(b"Tor safe cookie authentication server-to-controller hash", msg, hashlib.sha256).hexdigest()
    c2s = hmac.new(b"Tor safe cookie authentication controller-to-server hash", msg, hashlib.sha256).hexdigest()
    print("safecookie server-to-controller:", s2c.upper())
    print("safecookie controller-to-server:", c2s.upper())


if __name__ == "__main__":
    main()
