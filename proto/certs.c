/* CERTS cell splitting and the initiator's checks of a responder's
 * certificates (tor-spec.txt 4.2). Not for the responder-side checks of an
 * initiator, nor for TLS (net/ does TLS and hands us the peer cert DER). */
#include "proto/certs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/base64.h"
#include "core/bug.h"
#include "core/compiler.h"
#include "core/crypto.h"
#include "proto/ed25519_cert.h"
#include "proto/rsa_crosscert.h"

/* The certificates of one cell by type; NULL where absent. */
struct certs_by_type {
	const struct cell_cert_entry *e[8];
};

PRINTF_LIKE(3, 4)
static bool certs_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return false;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* Index entries by type, rejecting a second cert of any known type
 * (tor-spec 4.2: "no more than one certificate of each CertType"). Types
 * we do not know are skipped, as tor does. */
static bool certs_index(const struct cell_cert_entry *entries, size_t n, struct certs_by_type *by,
			char *err, size_t errlen)
{
	memset(by, 0, sizeof(*by));
	for (size_t i = 0; i < n; i++) {
		uint8_t t = entries[i].type;

		if (t == 0 || t >= ARRAY_LEN(by->e))
			continue;
		if (by->e[t])
			return certs_fail(err, errlen, "CERTS cell has two certificates of type %u", t);
		by->e[t] = &entries[i];
	}
	if (!by->e[CELL_CERT_ED_ID_SIGNING])
		return certs_fail(err, errlen, "CERTS cell has no Ed25519 identity certificate "
				  "(type 4); RSA-only responders are not supported");
	static const uint8_t needed[] = { CELL_CERT_RSA_ID, CELL_CERT_ED_SIGNING_LINK,
					  CELL_CERT_RSA_ED_CROSS };
	for (size_t i = 0; i < sizeof(needed); i++) {
		if (!by->e[needed[i]])
			return certs_fail(err, errlen, "CERTS cell lacks a certificate of type %u",
					  needed[i]);
	}
	return true;
}

/* tor-spec 4.2: the ID cert must have validAfter and validUntil dates and
 * be current (with tor's clock-skew allowances). */
static bool certs_x509_is_current(const struct crypto_x509 *x, time_t now, char *err,
				  size_t errlen)
{
	time_t not_before, not_after;

	if (!crypto_x509_validity(x, &not_before, &not_after))
		return certs_fail(err, errlen, "RSA identity certificate (type 2) lacks validity dates");
	if (not_after < now - CERTS_X509_PAST_SLOP)
		return certs_fail(err, errlen, "RSA identity certificate (type 2) expired at %lld",
				  (long long)not_after);
	if (not_before > now + CERTS_X509_FUTURE_SLOP)
		return certs_fail(err, errlen, "RSA identity certificate (type 2) not valid until %lld",
				  (long long)not_before);
	return true;
}

/* Check the type 2 RSA identity cert: current, a 1024-bit RSA key, self-
 * signed. On success *key_out is the identity key (owned by the caller). */
static bool certs_check_rsa_id(const struct cell_cert_entry *e, time_t now,
			       struct crypto_rsa **key_out, char *err, size_t errlen)
{
	struct crypto_x509 *x = crypto_x509_from_der(e->body, e->len);
	struct crypto_rsa *key = NULL;
	bool ok = false;

	*key_out = NULL;
	if (!x)
		return certs_fail(err, errlen, "cannot parse the RSA identity certificate (type 2)");
	if (!certs_x509_is_current(x, now, err, errlen))
		goto out;
	key = crypto_x509_rsa_key(x);
	if (!key) {
		certs_fail(err, errlen, "RSA identity certificate (type 2) has no RSA key");
		goto out;
	}
	if (crypto_rsa_bits(key) != 1024) {
		certs_fail(err, errlen, "RSA identity key has %u bits, not 1024", crypto_rsa_bits(key));
		goto out;
	}
	if (!crypto_x509_signed_by(x, key)) {
		certs_fail(err, errlen, "RSA identity certificate (type 2) is not self-signed");
		goto out;
	}
	ok = true;
	*key_out = key;
	key = NULL;
out:
	crypto_rsa_free(key);
	crypto_x509_free(x);
	return ok;
}

/* Parse entry e as an Ed25519 cert of CERT_TYPE e->type that fills the
 * entry exactly. */
static bool certs_parse_ed(const struct cell_cert_entry *e, struct ed25519_cert *c, char *err,
			   size_t errlen)
{
	const char *why;
	enum parse_result r = ed25519_cert_parse(e->body, e->len, c, &why);

	if (r != PARSE_OK)
		return certs_fail(err, errlen, "type %u certificate: %s", e->type, why);
	if (c->len != e->len)
		return certs_fail(err, errlen, "type %u certificate has trailing bytes", e->type);
	if (c->cert_type != e->type)
		return certs_fail(err, errlen, "type %u entry holds an Ed25519 cert of type %u",
				  e->type, c->cert_type);
	return true;
}

/* Check the Ed25519 identity->signing (4) and signing->link (5) certs.
 * On success ed_id points to the identity key (borrowed from the cell). */
static bool certs_check_ed(const struct certs_by_type *by, const uint8_t *tls_der,
			   size_t tls_len, time_t now, const uint8_t **ed_id, char *err,
			   size_t errlen)
{
	struct ed25519_cert id_sign, sign_link;
	uint8_t tls_digest[SHA256_LEN];
	const char *why;

	if (!certs_parse_ed(by->e[CELL_CERT_ED_ID_SIGNING], &id_sign, err, errlen) ||
	    !certs_parse_ed(by->e[CELL_CERT_ED_SIGNING_LINK], &sign_link, err, errlen))
		return false;
	if (id_sign.key_type != ED25519_CERT_KEY_ED25519)
		return certs_fail(err, errlen, "type 4 certificate certifies a non-Ed25519 key");
	/* tor-spec 4.2: the identity key listed in the ID->Signing cert signed it. */
	if (!id_sign.signing_key)
		return certs_fail(err, errlen, "type 4 certificate does not name the identity key");
	why = ed25519_cert_check(&id_sign, NULL, now);
	if (why)
		return certs_fail(err, errlen, "type 4 certificate: %s", why);
	/* cert-spec A.4: type 5 certifies a SHA256 of X.509 (key type 3), but
	 * tor before 0.4.5.1-alpha wrote 1; accept both. */
	if (sign_link.key_type != ED25519_CERT_KEY_SHA256_X509 &&
	    sign_link.key_type != ED25519_CERT_KEY_ED25519)
		return certs_fail(err, errlen, "type 5 certificate has key type %u", sign_link.key_type);
	crypto_sha256(tls_der, tls_len, tls_digest);
	if (!crypto_memeq(tls_digest, sign_link.certified_key, SHA256_LEN))
		return certs_fail(err, errlen, "type 5 certificate does not certify the TLS certificate");
	why = ed25519_cert_check(&sign_link, id_sign.certified_key, now);
	if (why)
		return certs_fail(err, errlen, "type 5 certificate: %s", why);
	*ed_id = id_sign.signing_key;
	return true;
}

/* Check the type 7 cross-cert: it certifies ed_id and rsa_id signed it. */
static bool certs_check_crosscert(const struct cell_cert_entry *e, const struct crypto_rsa *rsa_id,
				  const uint8_t *ed_id, time_t now, char *err, size_t errlen)
{
	struct rsa_crosscert cc;
	const char *why;

	if (rsa_crosscert_parse(e->body, e->len, &cc, &why) != PARSE_OK)
		return certs_fail(err, errlen, "type 7 certificate: %s", why);
	if (cc.len != e->len)
		return certs_fail(err, errlen, "type 7 certificate has trailing bytes");
	why = rsa_crosscert_check(&cc, rsa_id, ed_id, now);
	if (why)
		return certs_fail(err, errlen, "type 7 certificate: %s", why);
	return true;
}

enum parse_result certs_validate_responder(const struct cell_cert_entry *entries, size_t n,
					   const uint8_t *tls_der, size_t tls_len, time_t now,
					   struct relay_identity *out, char *err, size_t errlen)
{
	struct certs_by_type by;
	struct crypto_rsa *rsa_id = NULL;
	const uint8_t *ed_id = NULL;
	bool ok;

	if (errlen)
		err[0] = '\0';
	ok = certs_index(entries, n, &by, err, errlen) &&
	     certs_check_rsa_id(by.e[CELL_CERT_RSA_ID], now, &rsa_id, err, errlen) &&
	     certs_check_ed(&by, tls_der, tls_len, now, &ed_id, err, errlen) &&
	     certs_check_crosscert(by.e[CELL_CERT_RSA_ED_CROSS], rsa_id, ed_id, now, err,
				   errlen);
	if (ok && !crypto_rsa_fingerprint(rsa_id, out->rsa_id))
		ok = certs_fail(err, errlen, "cannot encode the RSA identity key");
	if (ok)
		memcpy(out->ed_id, ed_id, sizeof(out->ed_id));
	crypto_rsa_free(rsa_id);
	return ok ? PARSE_OK : PARSE_INVALID;
}

enum parse_result certs_validate_responder_cell(const uint8_t *body, size_t len,
						const uint8_t *tls_der, size_t tls_len,
						time_t now, struct relay_identity *out,
						char *err, size_t errlen)
{
	struct cell_certs certs;
	const char *why = NULL;

	if (cell_certs_parse(body, len, &certs, &why) != PARSE_OK) {
		certs_fail(err, errlen, "bad CERTS cell: %s", why ? why : "unparseable");
		return PARSE_INVALID;
	}
	return certs_validate_responder(certs.e, certs.n, tls_der, tls_len, now, out, err, errlen);
}

void relay_identity_rsa_hex(const uint8_t rsa_id[20], char out[41])
{
	ssize_t r = base16_encode(out, 41, rsa_id, 20, true);

	BUG_ON(r != 40);
}

void relay_identity_ed_b64(const uint8_t ed_id[32], char out[44])
{
	ssize_t r = base64_encode(out, 44, ed_id, 32, false);

	BUG_ON(r != 43);
}

bool relay_identity_check_expected(const struct relay_identity *got, const uint8_t *want_rsa,
				   const uint8_t *want_ed, char *err, size_t errlen)
{
	char want_hex[41], got_hex[41], want_b64[44], got_b64[44];
	bool rsa_ok = !want_rsa || crypto_memeq(want_rsa, got->rsa_id, sizeof(got->rsa_id));
	bool ed_ok = !want_ed || crypto_memeq(want_ed, got->ed_id, sizeof(got->ed_id));

	if (rsa_ok && ed_ok)
		return true;
	relay_identity_rsa_hex(got->rsa_id, got_hex);
	relay_identity_ed_b64(got->ed_id, got_b64);
	if (want_rsa)
		relay_identity_rsa_hex(want_rsa, want_hex);
	else
		snprintf(want_hex, sizeof(want_hex), "(any)");
	if (want_ed)
		relay_identity_ed_b64(want_ed, want_b64);
	else
		snprintf(want_b64, sizeof(want_b64), "(any)");
	return certs_fail(err, errlen,
			  "relay identity mismatch (%s%s%s): wanted RSA %s + ed25519 %s but got "
			  "RSA %s + ed25519 %s", rsa_ok ? "" : "RSA", !rsa_ok && !ed_ok ? ", " : "",
			  ed_ok ? "" : "ed25519", want_hex, want_b64, got_hex, got_b64);
}
