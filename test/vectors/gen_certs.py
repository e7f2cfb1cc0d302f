#!/usr/bin/python3
"""Generate CERTS-cell test vectors for test/unit/test_certs.c and friends.

This is an independent computation of the formats in cert-spec.txt (Ed25519
certificates, section 2.1; RSA->Ed25519 cross-certificate, section 2.3) and
tor-spec.txt section 4.2 (CERTS cells), written from the spec with
python3-cryptography, without using any onionring code. It writes
test/vectors/certs/certs_vectors.h (C arrays) and seed files for the fuzzer
in test/fuzz/corpus/certs/.

Run with Debian's Python (it has python3-cryptography):
    /usr/bin/python3 test/vectors/gen_certs.py
Keys are fresh on every run (RSA key generation is random); the Ed25519 keys
come from fixed seeds so the C encoder can be checked byte for byte.
"""
import base64
import datetime
import hashlib
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_H = os.path.join(HERE, "certs", "certs_vectors.h")
CORPUS = os.path.join(ROOT, "test", "fuzz", "corpus", "certs")

NOW = 1767225600  # 2026-01-01T00:00:00Z: the "current time" of every test
HOUR = 3600
DAY = 86400

CROSSCERT_PREFIX = b"Tor TLS RSA/Ed25519 cross-certificate"


def utc(t):
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).replace(tzinfo=None)


def rsa_pkcs1_der(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.PKCS1)


def x509_cert(subject_cn, subject_key, issuer_cn, issuer_key, not_before, not_after):
    b = x509.CertificateBuilder()
    b = b.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
    b = b.issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
    b = b.public_key(subject_key.public_key())
    b = b.serial_number(x509.random_serial_number())
    b = b.not_valid_before(utc(not_before)).not_valid_after(utc(not_after))
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def ed_pub(sk):
    return sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed_cert(cert_type, exp_hours, key_type, certified, signer, exts):
    """cert-spec 2.1: signature by signer over everything before it."""
    body = struct.pack(">BBIB", 1, cert_type, exp_hours, key_type) + certified
    body += struct.pack(">B", len(exts))
    for ext_type, flags, data in exts:
        body += struct.pack(">HBB", len(data), ext_type, flags) + data
    return body + signer.sign(body)


def signed_with(sk):
    return (4, 0, ed_pub(sk))


def rsa_sign_raw_digest(key, digest):
    """PKCS#1 v1.5 type-1 padding around the bare digest (no DigestInfo),
    then the private-key operation: what tor calls crypto_pk_private_sign."""
    pn = key.private_numbers()
    n, d = pn.public_numbers.n, pn.d
    k = (n.bit_length() + 7) // 8
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def crosscert(ed_key, exp_hours, rsa_key):
    """cert-spec 2.3: SHA256(prefix || ED25519_KEY || EXPIRATION), RSA-signed."""
    signed = ed_key + struct.pack(">I", exp_hours)
    sig = rsa_sign_raw_digest(rsa_key, hashlib.sha256(CROSSCERT_PREFIX + signed).digest())
    return signed + struct.pack(">B", len(sig)) + sig


def certs_body(entries):
    body = struct.pack(">B", len(entries))
    for t, data in entries:
        body += struct.pack(">BH", t, len(data)) + data
    return body


def c_array(name, data):
    lines = ["static const unsigned char %s[%d] __attribute__((unused)) = {" % (name, len(data))]
    for i in range(0, len(data), 12):
        lines.append("\t" + " ".join("0x%02x," % b for b in data[i:i + 12]))
    lines.append("};")
    return "\n".join(lines)


def main():
    id_seed = hashlib.sha256(b"onionring test ed25519 identity").digest()
    sign_seed = hashlib.sha256(b"onionring test ed25519 signing").digest()
    other_seed = hashlib.sha256(b"onionring test ed25519 other").digest()
    ed_id = ed25519.Ed25519PrivateKey.from_private_bytes(id_seed)
    ed_sign = ed25519.Ed25519PrivateKey.from_private_bytes(sign_seed)
    ed_other = ed25519.Ed25519PrivateKey.from_private_bytes(other_seed)

    rsa_id = rsa.generate_private_key(65537, 1024)
    rsa_other = rsa.generate_private_key(65537, 1024)
    rsa_big = rsa.generate_private_key(65537, 2048)
    rsa_link = rsa.generate_private_key(65537, 2048)

    # X.509: the identity cert is self-signed; the link cert (which is also
    # the TLS certificate) is signed by the identity key, as tor does.
    id_cn, link_cn = "www.identity-test.net", "www.link-test.com"
    id_der = x509_cert(id_cn, rsa_id, id_cn, rsa_id, NOW - 2 * DAY, NOW + 365 * DAY)
    link_der = x509_cert(link_cn, rsa_link, id_cn, rsa_id, NOW - DAY, NOW + 365 * DAY)
    other_tls_der = x509_cert(link_cn, rsa_link, id_cn, rsa_id, NOW - 3 * DAY, NOW + 300 * DAY)

    exp_t4 = NOW // HOUR + 30 * 24
    exp_t5 = NOW // HOUR + 2 * 24
    exp_t7 = NOW // HOUR + 60 * 24
    past = NOW // HOUR - 1
    tls_digest = hashlib.sha256(link_der).digest()
    idpub, signpub = ed_pub(ed_id), ed_pub(ed_sign)

    v = {}
    v["now"] = NOW
    v["tls_der"] = link_der
    v["t1"] = link_der
    v["t2"] = id_der
    v["t4"] = ed_cert(4, exp_t4, 1, signpub, ed_id, [signed_with(ed_id)])
    v["t5"] = ed_cert(5, exp_t5, 3, tls_digest, ed_sign, [])
    v["t7"] = crosscert(idpub, exp_t7, rsa_id)
    v["rsa_id"] = hashlib.sha1(rsa_pkcs1_der(rsa_id)).digest()
    v["ed_id"] = idpub
    v["ed_id_seed"] = id_seed
    v["ed_sign_seed"] = sign_seed
    v["ed_sign_pub"] = signpub
    v["rsa_id_pkcs1"] = rsa_pkcs1_der(rsa_id)
    v["exp_t4"] = exp_t4
    v["exp_t5"] = exp_t5
    v["exp_t7"] = exp_t7

    # One defect each.
    v["t4_expired"] = ed_cert(4, past, 1, signpub, ed_id, [signed_with(ed_id)])
    v["t5_expired"] = ed_cert(5, past, 3, tls_digest, ed_sign, [])
    v["t7_expired"] = crosscert(idpub, past, rsa_id)
    v["t2_expired"] = x509_cert(id_cn, rsa_id, id_cn, rsa_id, NOW - 400 * DAY, NOW - 3 * DAY)
    v["t2_not_yet_valid"] = x509_cert(id_cn, rsa_id, id_cn, rsa_id, NOW + 60 * DAY, NOW + 400 * DAY)
    v["t2_not_self_signed"] = x509_cert(id_cn, rsa_id, id_cn, rsa_other, NOW - DAY, NOW + 365 * DAY)
    v["t5_wrong_tls"] = ed_cert(5, exp_t5, 3, hashlib.sha256(other_tls_der).digest(), ed_sign, [])
    v["t5_keytype01"] = ed_cert(5, exp_t5, 1, tls_digest, ed_sign, [])
    v["t5_signed_by_id"] = ed_cert(5, exp_t5, 3, tls_digest, ed_id, [])
    v["t7_other_rsa"] = crosscert(idpub, exp_t7, rsa_other)
    v["t7_wrong_ed"] = crosscert(ed_pub(ed_other), exp_t7, rsa_id)
    # SIGLEN is one byte: no RSA-2048 cross-cert can exist; the key size check fails first.
    v["t2_rsa2048"] = x509_cert(id_cn, rsa_big, id_cn, rsa_big, NOW - DAY, NOW + 365 * DAY)
    v["t4_critical_ext"] = ed_cert(4, exp_t4, 1, signpub, ed_id,
                                   [signed_with(ed_id), (0x42, 1, b"\x07\x07")])
    v["t4_noncritical_ext"] = ed_cert(4, exp_t4, 1, signpub, ed_id,
                                      [(0x42, 0, b"\x07\x07"), signed_with(ed_id)])
    v["t4_no_signing_ext"] = ed_cert(4, exp_t4, 1, signpub, ed_id, [])
    v["t4_signed_by_other"] = ed_cert(4, exp_t4, 1, signpub, ed_other, [signed_with(ed_id)])
    v["t4_as_type6"] = ed_cert(6, exp_t4, 1, signpub, ed_id, [signed_with(ed_id)])

    body = certs_body([(1, v["t1"]), (2, v["t2"]), (4, v["t4"]), (5, v["t5"]), (7, v["t7"])])
    v["body"] = body

    out = ["/* Generated by test/vectors/gen_certs.py: an independent computation of",
           " * cert-spec.txt 2.1/2.3 and tor-spec.txt 4.2 with python3-cryptography.",
           " * Do not edit; re-run the generator. */",
           "#ifndef ONIONRING_TEST_CERTS_VECTORS_H",
           "#define ONIONRING_TEST_CERTS_VECTORS_H",
           ""]
    # How tor prints identities: RSA as upper-case hex, Ed25519 as base64
    # without padding.
    out.append('#define CV_RSA_ID_HEX "%s"' % v["rsa_id"].hex().upper())
    out.append('#define CV_ED_ID_B64 "%s"' % base64.b64encode(v["ed_id"]).decode().rstrip("="))
    out.append('#define CV_ED_SIGN_PUB_B64 "%s"' % base64.b64encode(signpub).decode().rstrip("="))
    for name, val in v.items():
        if isinstance(val, int):
            out.append("#define CV_%s %dLL" % (name.upper(), val))
        else:
            out.append(c_array("cv_" + name, val))
    out += ["", "#endif", ""]
    with open(OUT_H, "w") as f:
        f.write("\n".join(out))

    os.makedirs(CORPUS, exist_ok=True)
    # Fuzz seeds: first byte selects the target path (see fuzz_certs.c).
    seeds = {"body_valid": b"\x00" + body,
             "body_defect": b"\x00" + certs_body([(2, v["t2"]), (4, v["t4_critical_ext"]),
                                                  (5, v["t5"]), (7, v["t7_other_rsa"])]),
             "ed_t4": b"\x01" + v["t4"],
             "ed_t5": b"\x01" + v["t5"],
             "ed_ext": b"\x01" + v["t4_noncritical_ext"],
             "crosscert": b"\x02" + v["t7"]}
    for name, data in seeds.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
