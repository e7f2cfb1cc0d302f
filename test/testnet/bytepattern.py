"""The deterministic content served by httpd at /bytes/<N>, and its checker.

For: generating and verifying test payloads without storing them.
Not for: anything secret or random; the pattern is fixed and public.

Byte i of every /bytes/<N> body (i counted from 0) is

    (31*i + (i >> 8) + (i >> 16) + (i >> 24)) mod 256

The 31*i term varies inside each 256-byte row, (i >> 8) shifts each row
against its neighbours (so a lost, duplicated or reordered 256-byte row or
509-byte relay cell is caught), and the higher terms make each 64 KiB block
differ from the previous one.  A C implementation is one line; keep the two
in step if you write one.
"""

BLOCK = 65536

# base[j] for j in one 64 KiB block: 31*j + (j >> 8); the block at index k
# adds the constant (k + (k >> 8)) mod 256, since for i = k*65536 + j the
# term (i >> 8) mod 256 is (j >> 8), (i >> 16) is k, (i >> 24) is k >> 8.
_BASE = bytes((31 * j + (j >> 8)) & 0xFF for j in range(BLOCK))
_SHIFT = [bytes((v + s) & 0xFF for v in range(256)) for s in range(256)]


def byte_at(i):
    """Return the pattern byte at offset i (the reference definition)."""
    return (31 * i + (i >> 8) + (i >> 16) + (i >> 24)) & 0xFF


def block(k):
    """Return the 64 KiB block with index k (offsets k*65536 ...) as bytes."""
    return _BASE.translate(_SHIFT[(k + (k >> 8)) & 0xFF])


def chunks(n, offset=0):
    """Yield the pattern bytes [offset, offset + n) in pieces of <= 64 KiB."""
    end = offset + n
    pos = offset
    while pos < end:
        k, j = divmod(pos, BLOCK)
        take = min(BLOCK - j, end - pos)
        blk = block(k)
        yield blk if (j == 0 and take == BLOCK) else blk[j:j + take]
        pos += take


def verify_stream(f, expect_len=None):
    """Check a binary file object against the pattern from offset 0.

    Returns (ok, message).  Reads f to the end; f stays owned by the caller.
    """
    pos = 0
    for want in chunks(expect_len if expect_len is not None else 1 << 62):
        got = f.read(len(want))
        if got != want[:len(got)]:
            bad = next(i for i in range(len(got)) if got[i] != want[i])
            return False, "mismatch at offset %d: got 0x%02x, want 0x%02x" % (
                pos + bad, got[bad], want[bad])
        pos += len(got)
        if len(got) < len(want):
            if expect_len is None:
                return True, "%d bytes match the pattern" % pos
            return False, "short: %d bytes, want %d" % (pos, expect_len)
    if expect_len is not None and f.read(1):
        return False, "long: more than %d bytes" % expect_len
    return True, "%d bytes match the pattern" % pos
