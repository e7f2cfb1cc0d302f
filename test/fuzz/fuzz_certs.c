/* libFuzzer target for certificate handling: the first input byte picks
 * the parser, the rest is its input.
 *   0: a CERTS cell body through certs_validate_responder_cell, with the
 *      generated TLS certificate and a fixed time (so the seeds from
 *      test/vectors/gen_certs.py reach the signature checks);
 *   1: an Ed25519 certificate (ed25519_cert_parse + ed25519_cert_check);
 *   2: an RSA->Ed25519 cross-certificate (parse + check).
 * Seeds: test/fuzz/corpus/certs/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"
#include "core/crypto.h"
#include "proto/certs.h"
#include "proto/ed25519_cert.h"
#include "proto/rsa_crosscert.h"
#include "test/vectors/certs/certs_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_ed25519_cert(const uint8_t *p, size_t len)
{
	struct ed25519_cert c;
	const char *why;
	enum parse_result r = ed25519_cert_parse(p, len, &c, &why);

	if (r != PARSE_OK)
		return;
	BUG_ON(c.len > len || c.len < ED25519_CERT_MIN_LEN);
	(void)ed25519_cert_check(&c, NULL, (time_t)CV_NOW);
	(void)ed25519_cert_check(&c, cv_ed_id, (time_t)CV_NOW);
}

static void fuzz_crosscert(const uint8_t *p, size_t len)
{
	static struct crypto_rsa *rsa;
	struct rsa_crosscert cc;
	const char *why;

	if (!rsa)
		rsa = crypto_rsa_from_der(cv_rsa_id_pkcs1, sizeof(cv_rsa_id_pkcs1));
	BUG_ON(!rsa);
	if (rsa_crosscert_parse(p, len, &cc, &why) != PARSE_OK)
		return;
	BUG_ON(cc.len > len);
	(void)rsa_crosscert_check(&cc, rsa, cc.ed_key, (time_t)CV_NOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_identity id;
	char err[256];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (certs_validate_responder_cell(data + 1, size - 1, cv_tls_der, sizeof(cv_tls_der),
						  (time_t)CV_NOW, &id, err, sizeof(err)) == PARSE_OK)
			BUG_ON(!relay_identity_check_expected(&id, id.rsa_id, id.ed_id, err,
							      sizeof(err)));
		else
			BUG_ON(strlen(err) == 0);
		break;
	case 1:
		fuzz_ed25519_cert(data + 1, size - 1);
		break;
	default:
		fuzz_crosscert(data + 1, size - 1);
		break;
	}
	return 0;
}
