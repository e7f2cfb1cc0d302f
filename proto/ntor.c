/* ntor client handshake (tor-spec.txt 5.1.4, KDF 5.2.2). See ntor.h.
 * Not for the relay side: onionring is a client. */
#include "proto/ntor.h"

#include <string.h>

#include "core/crypto.h"

#define PROTOID "ntor-curve25519-sha256-1"
#define PROTOID_LEN (sizeof(PROTOID) - 1)
/* secret_input = EXP(Y,x) | EXP(B,x) | ID | B | X | Y | PROTOID */
#define SECRET_INPUT_LEN (32 + 32 + NTOR_NODE_ID_LEN + 32 + 32 + 32 + PROTOID_LEN)
/* auth_input = verify | ID | B | Y | X | PROTOID | "Server" */
#define AUTH_INPUT_LEN (32 + NTOR_NODE_ID_LEN + 32 + 32 + 32 + PROTOID_LEN + 6)

static const char t_mac[] = PROTOID ":mac";
static const char t_key[] = PROTOID ":key_extract";
static const char t_verify[] = PROTOID ":verify";
static const char m_expand[] = PROTOID ":key_expand";

void ntor_client_start_with_key(struct ntor_client *st, const uint8_t node_id[NTOR_NODE_ID_LEN],
				const uint8_t server_onion_key[NTOR_KEY_LEN],
				const uint8_t x[NTOR_KEY_LEN],
				uint8_t onionskin_out[NTOR_ONIONSKIN_LEN])
{
	memcpy(st->node_id, node_id, NTOR_NODE_ID_LEN);
	memcpy(st->onion_key, server_onion_key, NTOR_KEY_LEN);
	memcpy(st->x, x, NTOR_KEY_LEN);
	crypto_x25519_public(st->X, st->x);
	/* KEYID(B) = B (5.1.4). */
	memcpy(onionskin_out, node_id, NTOR_NODE_ID_LEN);
	memcpy(onionskin_out + NTOR_NODE_ID_LEN, server_onion_key, NTOR_KEY_LEN);
	memcpy(onionskin_out + NTOR_NODE_ID_LEN + NTOR_KEY_LEN, st->X, NTOR_KEY_LEN);
}

void ntor_client_start(struct ntor_client *st, const uint8_t node_id[NTOR_NODE_ID_LEN],
		       const uint8_t server_onion_key[NTOR_KEY_LEN],
		       uint8_t onionskin_out[NTOR_ONIONSKIN_LEN])
{
	uint8_t pub[NTOR_KEY_LEN], x[NTOR_KEY_LEN];

	crypto_x25519_keypair(pub, x);
	ntor_client_start_with_key(st, node_id, server_onion_key, x, onionskin_out);
	crypto_wipe(x, sizeof(x));
}

void ntor_client_abandon(struct ntor_client *st)
{
	crypto_wipe(st, sizeof(*st));
}

/* Fill si with secret_input; false if either EXP() is the point at
 * infinity (5.1.4: "Both parties check that none of the EXP() operations
 * produced the point at infinity"; crypto_x25519 reports an all-zero
 * output). */
static bool ntor_secret_input(const struct ntor_client *st, const uint8_t Y[NTOR_KEY_LEN],
			      uint8_t si[SECRET_INPUT_LEN])
{
	uint8_t *p = si;
	bool ok;

	ok = crypto_x25519(p, st->x, Y);
	p += 32;
	ok &= crypto_x25519(p, st->x, st->onion_key);
	p += 32;
	memcpy(p, st->node_id, NTOR_NODE_ID_LEN), p += NTOR_NODE_ID_LEN;
	memcpy(p, st->onion_key, 32), p += 32;
	memcpy(p, st->X, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, PROTOID, PROTOID_LEN);
	return ok;
}

static void ntor_expected_auth(const struct ntor_client *st, const uint8_t Y[NTOR_KEY_LEN],
			       const uint8_t si[SECRET_INPUT_LEN], uint8_t auth[32])
{
	uint8_t ai[AUTH_INPUT_LEN], *p = ai;

	crypto_hmac_sha256(t_verify, sizeof(t_verify) - 1, si, SECRET_INPUT_LEN, p);
	p += 32;
	memcpy(p, st->node_id, NTOR_NODE_ID_LEN), p += NTOR_NODE_ID_LEN;
	memcpy(p, st->onion_key, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, st->X, 32), p += 32;
	memcpy(p, PROTOID, PROTOID_LEN), p += PROTOID_LEN;
	memcpy(p, "Server", 6);
	crypto_hmac_sha256(t_mac, sizeof(t_mac) - 1, ai, sizeof(ai), auth);
	crypto_wipe(ai, sizeof(ai));
}

int ntor_client_finish(struct ntor_client *st, const uint8_t reply[NTOR_REPLY_LEN],
		       uint8_t *key_out, size_t key_len)
{
	uint8_t si[SECRET_INPUT_LEN], auth[32];
	const uint8_t *Y = reply;
	bool ok;

	ok = ntor_secret_input(st, Y, si);
	ntor_expected_auth(st, Y, si, auth);
	ok &= crypto_memeq(auth, reply + 32, 32);
	/* KDF-RFC5869 (5.2.2): HKDF-SHA256, salt t_key, info m_expand,
	 * IKM secret_input; its PRK is KEY_SEED = H(secret_input, t_key). */
	if (!ok || crypto_hkdf_sha256(key_out, key_len, si, sizeof(si), t_key, sizeof(t_key) - 1,
				      m_expand, sizeof(m_expand) - 1) != 0) {
		ok = false;
		memset(key_out, 0, key_len);
	}
	crypto_wipe(si, sizeof(si));
	crypto_wipe(auth, sizeof(auth));
	crypto_wipe(st, sizeof(*st));
	return ok ? 0 : -1;
}
