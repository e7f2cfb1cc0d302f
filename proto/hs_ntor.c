/* hs-ntor client side and INTRODUCE1 encoding (see hs_ntor.h). */
#include "proto/hs_ntor.h"

#include <string.h>

#include "core/bytes.h"
#include "core/crypto.h"

#define PROTOID_LEN (sizeof(HS_NTOR_PROTOID) - 1)
#define T_HSENC HS_NTOR_PROTOID ":hs_key_extract"
#define T_HSVERIFY HS_NTOR_PROTOID ":hs_verify"
#define T_HSMAC HS_NTOR_PROTOID ":hs_mac"
#define M_HSEXPAND HS_NTOR_PROTOID ":hs_key_expand"
#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)
/* Largest relay message body (tor-spec 6.1). */
#define HS_RELAY_BODY_MAX 498
#define HS_INTRO1_HEAD_LEN (20 + 1 + 2 + 32 + 1)

void hs_ntor_mac(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *msg,
		 size_t msglen)
{
	uint8_t klen[8];
	struct wr w = wr_init(klen, sizeof(klen));
	struct crypto_sha3 h;

	wr_u64(&w, keylen);
	crypto_sha3_256_init(&h);
	crypto_sha3_256_update(&h, klen, sizeof(klen));
	crypto_sha3_256_update(&h, key, keylen);
	crypto_sha3_256_update(&h, msg, msglen);
	crypto_sha3_256_final(&h, out);
}

void hs_ntor_intro_keys(uint8_t out[64], const uint8_t dh[32], const uint8_t auth_key[32],
			const uint8_t X[32], const uint8_t B[32], const uint8_t subcred[32])
{
	uint8_t in[32 * 4 + PROTOID_LEN + sizeof(T_HSENC) - 1 + sizeof(M_HSEXPAND) - 1 + 32];
	struct wr w = wr_init(in, sizeof(in));

	/* KDF(intro_secret_hs_input | t_hsenc | info), info = m_hsexpand | subcred. */
	memcpy(in, dh, 32);
	memcpy(in + 32, auth_key, 32);
	memcpy(in + 64, X, 32);
	memcpy(in + 96, B, 32);
	w.len = 128;
	memcpy(in + w.len, HS_NTOR_PROTOID, PROTOID_LEN);
	w.len += PROTOID_LEN;
	memcpy(in + w.len, T_HSENC, sizeof(T_HSENC) - 1);
	w.len += sizeof(T_HSENC) - 1;
	memcpy(in + w.len, M_HSEXPAND, sizeof(M_HSEXPAND) - 1);
	w.len += sizeof(M_HSEXPAND) - 1;
	memcpy(in + w.len, subcred, 32);
	w.len += 32;
	crypto_shake256(in, w.len, out, 64);
	crypto_wipe(in, sizeof(in));
}

void hs_ntor_rend_seed(uint8_t seed[32], uint8_t auth_mac[32], const uint8_t dh_xy[32],
		       const uint8_t dh_xb[32], const uint8_t auth_key[32], const uint8_t B[32],
		       const uint8_t X[32], const uint8_t Y[32])
{
	uint8_t in[32 * 6 + PROTOID_LEN], verify[32];
	uint8_t ai[32 * 5 + PROTOID_LEN + 6];

	/* rend_secret_hs_input = EXP(X,y) | EXP(X,b) | AUTH_KEY | B | X | Y | PROTOID */
	memcpy(in, dh_xy, 32);
	memcpy(in + 32, dh_xb, 32);
	memcpy(in + 64, auth_key, 32);
	memcpy(in + 96, B, 32);
	memcpy(in + 128, X, 32);
	memcpy(in + 160, Y, 32);
	memcpy(in + 192, HS_NTOR_PROTOID, PROTOID_LEN);
	/* MAC(rend_secret_hs_input, t): the secret input is the MAC key. */
	hs_ntor_mac(seed, in, sizeof(in), LIT(T_HSENC));
	hs_ntor_mac(verify, in, sizeof(in), LIT(T_HSVERIFY));
	/* auth_input = verify | AUTH_KEY | B | Y | X | PROTOID | "Server" */
	memcpy(ai, verify, 32);
	memcpy(ai + 32, auth_key, 32);
	memcpy(ai + 64, B, 32);
	memcpy(ai + 96, Y, 32);
	memcpy(ai + 128, X, 32);
	memcpy(ai + 160, HS_NTOR_PROTOID, PROTOID_LEN);
	memcpy(ai + 160 + PROTOID_LEN, "Server", 6);
	hs_ntor_mac(auth_mac, ai, sizeof(ai), LIT(T_HSMAC));
	crypto_wipe(in, sizeof(in));
	crypto_wipe(verify, sizeof(verify));
	crypto_wipe(ai, sizeof(ai));
}

void hs_ntor_expand(uint8_t out[HS_NTOR_EXPANDED_LEN], const uint8_t seed[32])
{
	uint8_t in[32 + sizeof(M_HSEXPAND) - 1];

	memcpy(in, seed, 32);
	memcpy(in + 32, M_HSEXPAND, sizeof(M_HSEXPAND) - 1);
	crypto_shake256(in, sizeof(in), out, HS_NTOR_EXPANDED_LEN);
	crypto_wipe(in, sizeof(in));
}

void hs_ntor_client_init(struct hs_ntor_client *c, const struct hs_intro1_params *p,
			 const uint8_t *x)
{
	if (x) {
		memcpy(c->x, x, 32);
		crypto_x25519_public(c->X, c->x);
	} else {
		crypto_x25519_keypair(c->X, c->x);
	}
	memcpy(c->B, p->enc_key, 32);
	memcpy(c->auth_key, p->auth_key, 32);
	memcpy(c->subcred, p->subcred, 32);
}

/* The plaintext of 3.3 into w: cookie, extensions, onion key, link
 * specifiers, then zero PAD up to HS_INTRO_PLAINTEXT_MIN. */
static void intro_plaintext(struct wr *w, const struct hs_intro1_params *p)
{
	size_t start = w->len;

	if (wr_room(w, HS_REND_COOKIE_LEN)) {
		memcpy(w->p + w->len, p->rend_cookie, HS_REND_COOKIE_LEN);
		w->len += HS_REND_COOKIE_LEN;
	}
	if (p->request_cc) {
		wr_u8(w, 1);
		wr_u8(w, HS_INTRO_EXT_CC_REQUEST);
		wr_u8(w, 0);
	} else {
		wr_u8(w, 0);
	}
	wr_u8(w, HS_ONION_KEY_TYPE_NTOR);
	wr_u16(w, 32);
	if (wr_room(w, 32 + p->rend_link_specs_len)) {
		memcpy(w->p + w->len, p->rend_onion_key, 32);
		memcpy(w->p + w->len + 32, p->rend_link_specs, p->rend_link_specs_len);
		w->len += 32 + p->rend_link_specs_len;
	}
	while (!w->err && w->len - start < HS_INTRO_PLAINTEXT_MIN)
		wr_u8(w, 0);
}

int hs_intro1_encode(uint8_t *out, size_t cap, const struct hs_ntor_client *c,
		     const struct hs_intro1_params *p)
{
	struct wr w = wr_init(out, cap < HS_RELAY_BODY_MAX ? cap : HS_RELAY_BODY_MAX);
	uint8_t dh[32], keys[64];
	struct crypto_aes256_ctr aes;
	static const uint8_t zero_iv[16];
	size_t pt_start;
	bool ok;

	/* LEGACY_KEY_ID (zero: not legacy), AUTH_KEY, no cell extensions. */
	if (!wr_room(&w, HS_INTRO1_HEAD_LEN + 32))
		return -1;
	memset(out, 0, 20);
	w.len = 20;
	wr_u8(&w, HS_AUTH_KEY_TYPE_ED25519);
	wr_u16(&w, 32);
	memcpy(out + w.len, c->auth_key, 32);
	w.len += 32;
	wr_u8(&w, 0);
	memcpy(out + w.len, c->X, 32);
	w.len += 32;
	pt_start = w.len;
	intro_plaintext(&w, p);
	if (w.err || !wr_room(&w, 32))
		return -1;
	ok = crypto_x25519(dh, c->x, c->B);
	hs_ntor_intro_keys(keys, dh, c->auth_key, c->X, c->B, c->subcred);
	crypto_aes256_ctr_init(&aes, keys, zero_iv);
	crypto_aes256_ctr_xor(&aes, out + pt_start, w.len - pt_start);
	crypto_aes256_ctr_clear(&aes);
	/* tor MACs the whole cell from LEGACY_KEY_ID up to the MAC field
	 * (hs_cell.c compute_introduce_mac), not only from AUTH_KEY as 3.3.2's
	 * prose says; the service checks it that way. */
	hs_ntor_mac(out + w.len, keys + 32, 32, out, w.len);
	w.len += 32;
	crypto_wipe(dh, sizeof(dh));
	crypto_wipe(keys, sizeof(keys));
	return ok ? (int)w.len : -1;
}

bool hs_ntor_client_rend2(const struct hs_ntor_client *c, const uint8_t *body, size_t len,
			  uint8_t keys[HS_NTOR_EXPANDED_LEN])
{
	uint8_t dh_xy[32], dh_xb[32], seed[32], mac[32];
	bool ok;

	if (len < HS_REND2_HANDSHAKE_LEN)
		return false;
	ok = crypto_x25519(dh_xy, c->x, body);
	ok &= crypto_x25519(dh_xb, c->x, c->B);
	hs_ntor_rend_seed(seed, mac, dh_xy, dh_xb, c->auth_key, c->B, c->X, body);
	ok &= crypto_memeq(mac, body + 32, 32);
	if (ok)
		hs_ntor_expand(keys, seed);
	crypto_wipe(dh_xy, sizeof(dh_xy));
	crypto_wipe(dh_xb, sizeof(dh_xb));
	crypto_wipe(seed, sizeof(seed));
	return ok;
}

void hs_ntor_client_clear(struct hs_ntor_client *c)
{
	crypto_wipe(c, sizeof(*c));
}
