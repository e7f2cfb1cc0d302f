/* ntor v3 client handshake (proposal 332) and the congestion-control
 * extension (proposal 324 §10). See ntor3.h. Not for the relay side. */
#include "proto/ntor3.h"

#include <string.h>

#include "core/bytes.h"
#include "core/crypto.h"

#define PROTOID "ntor3-curve25519-sha3_256-1"
#define PROTOID_LEN (sizeof(PROTOID) - 1)
#define TWEAK(s) PROTOID s

static const char t_msgkdf[] = TWEAK(":kdf_phase1");
static const char t_msgmac[] = TWEAK(":msg_mac");
static const char t_key_seed[] = TWEAK(":key_seed");
static const char t_verify[] = TWEAK(":verify");
static const char t_final[] = TWEAK(":kdf_final");
static const char t_auth[] = TWEAK(":auth_final");

/* ENCAP(s) = htonll(len(s)) | s (332 "Notation"), fed to a SHA3 context. */
static void sha3_encap(struct crypto_sha3 *h, const void *s, size_t len)
{
	uint8_t n[8];

	be32_store(n, (uint32_t)((uint64_t)len >> 32));
	be32_store(n + 4, (uint32_t)len);
	crypto_sha3_256_update(h, n, sizeof(n));
	crypto_sha3_256_update(h, s, len);
}

static void wr_encap(struct wr *w, const void *s, size_t len)
{
	wr_u64(w, len);
	wr_bytes(w, s, len);
}

/* H(s, t) = SHA3_256(ENCAP(t) | s) (A.1). */
static void ntor3_hash(const char *t, const uint8_t *s, size_t len, uint8_t out[32])
{
	struct crypto_sha3 h;

	crypto_sha3_256_init(&h);
	sha3_encap(&h, t, strlen(t));
	crypto_sha3_256_update(&h, s, len);
	crypto_sha3_256_final(&h, out);
}

int ntor3_client_start_with_key(struct ntor3_client *st, const uint8_t id[NTOR3_ID_LEN],
				const uint8_t B[NTOR3_KEY_LEN], const uint8_t x[NTOR3_KEY_LEN],
				const uint8_t *ver, size_t ver_len, const uint8_t *cm,
				size_t cm_len, uint8_t *out, size_t cap)
{
	uint8_t buf[8 + sizeof(t_msgkdf) + 4 * 32 + PROTOID_LEN + 8 + NTOR3_MAX_VER_LEN];
	uint8_t keys[64], *msg;
	struct crypto_aes256_ctr aes;
	struct crypto_sha3 h;
	struct wr w = wr_init(buf, sizeof(buf));
	static const uint8_t zero_iv[16];

	if (ver_len > NTOR3_MAX_VER_LEN || cap < NTOR3_CLIENT_OVERHEAD || cap - NTOR3_CLIENT_OVERHEAD < cm_len)
		return -1;
	memset(st, 0, sizeof(*st));
	memcpy(st->id, id, NTOR3_ID_LEN);
	memcpy(st->B, B, NTOR3_KEY_LEN);
	memcpy(st->x, x, NTOR3_KEY_LEN);
	memcpy(st->ver, ver, ver_len);
	st->ver_len = ver_len;
	crypto_x25519_public(st->X, st->x);
	if (!crypto_x25519(st->Bx, st->x, st->B)) {
		crypto_wipe(st, sizeof(*st));
		return -1;
	}
	/* phase1_keys = KDF_msgkdf(Bx | ID | X | B | PROTOID | ENCAP(VER)). */
	wr_encap(&w, t_msgkdf, sizeof(t_msgkdf) - 1);
	wr_bytes(&w, st->Bx, 32);
	wr_bytes(&w, st->id, NTOR3_ID_LEN);
	wr_bytes(&w, st->X, 32);
	wr_bytes(&w, st->B, 32);
	wr_bytes(&w, PROTOID, PROTOID_LEN);
	wr_encap(&w, ver, ver_len);
	crypto_shake256(buf, w.len, keys, sizeof(keys));

	/* HDATA: NODEID | KEYID | CLIENT_PK | MSG | MAC. */
	memcpy(out, id, NTOR3_ID_LEN);
	memcpy(out + 32, B, 32);
	memcpy(out + 64, st->X, 32);
	msg = out + 96;
	if (cm_len)
		memcpy(msg, cm, cm_len);
	crypto_aes256_ctr_init(&aes, keys, zero_iv);
	crypto_aes256_ctr_xor(&aes, msg, cm_len);
	crypto_aes256_ctr_clear(&aes);
	/* msg_mac = MAC_msgmac(MAC_K1, ID | B | X | encrypted_msg), where
	 * MAC(k, msg, t) = SHA3_256(ENCAP(t) | ENCAP(k) | msg) (A.1). */
	crypto_sha3_256_init(&h);
	sha3_encap(&h, t_msgmac, sizeof(t_msgmac) - 1);
	sha3_encap(&h, keys + 32, 32);
	crypto_sha3_256_update(&h, out, 96 + cm_len);
	crypto_sha3_256_final(&h, st->msg_mac);
	memcpy(msg + cm_len, st->msg_mac, NTOR3_MAC_LEN);
	crypto_wipe(buf, sizeof(buf));
	crypto_wipe(keys, sizeof(keys));
	return (int)(NTOR3_CLIENT_OVERHEAD + cm_len);
}

int ntor3_client_start(struct ntor3_client *st, const uint8_t id[NTOR3_ID_LEN],
		       const uint8_t B[NTOR3_KEY_LEN], const uint8_t *ver, size_t ver_len,
		       const uint8_t *cm, size_t cm_len, uint8_t *out, size_t cap)
{
	uint8_t pub[32], x[32];
	int r;

	crypto_x25519_keypair(pub, x);
	r = ntor3_client_start_with_key(st, id, B, x, ver, ver_len, cm, cm_len, out, cap);
	crypto_wipe(x, sizeof(x));
	return r;
}

void ntor3_client_abandon(struct ntor3_client *st)
{
	crypto_wipe(st, sizeof(*st));
}

/* Compute ntor_key_seed and verify from secret_input =
 * Yx | Bx | ID | B | X | Y | PROTOID | ENCAP(VER) ("Client operation,
 * phase 2"). False when EXP(Y,x) is degenerate. */
static bool ntor3_seed_verify(const struct ntor3_client *st, const uint8_t Y[32],
			      uint8_t key_seed[32], uint8_t verify[32])
{
	uint8_t si[6 * 32 + PROTOID_LEN + 8 + NTOR3_MAX_VER_LEN];
	struct wr w = wr_init(si, sizeof(si));
	bool ok = crypto_x25519(si, st->x, Y);

	w.len = 32;
	wr_bytes(&w, st->Bx, 32);
	wr_bytes(&w, st->id, NTOR3_ID_LEN);
	wr_bytes(&w, st->B, 32);
	wr_bytes(&w, st->X, 32);
	wr_bytes(&w, Y, 32);
	wr_bytes(&w, PROTOID, PROTOID_LEN);
	wr_encap(&w, st->ver, st->ver_len);
	ntor3_hash(t_key_seed, si, w.len, key_seed);
	ntor3_hash(t_verify, si, w.len, verify);
	crypto_wipe(si, sizeof(si));
	return ok;
}

/* AUTH = H_auth(verify | ID | B | Y | X | MAC | ENCAP(MSG) | PROTOID | "Server"). */
static void ntor3_auth(const struct ntor3_client *st, const uint8_t verify[32], const uint8_t Y[32],
		       const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	struct crypto_sha3 h;

	crypto_sha3_256_init(&h);
	sha3_encap(&h, t_auth, sizeof(t_auth) - 1);
	crypto_sha3_256_update(&h, verify, 32);
	crypto_sha3_256_update(&h, st->id, NTOR3_ID_LEN);
	crypto_sha3_256_update(&h, st->B, 32);
	crypto_sha3_256_update(&h, Y, 32);
	crypto_sha3_256_update(&h, st->X, 32);
	crypto_sha3_256_update(&h, st->msg_mac, 32);
	sha3_encap(&h, msg, msg_len);
	crypto_sha3_256_update(&h, PROTOID, PROTOID_LEN);
	crypto_sha3_256_update(&h, "Server", 6);
	crypto_sha3_256_final(&h, out);
}

/* RAW_KEYSTREAM = KDF_final(ntor_key_seed) = ENC_KEY(32) | KEYSTREAM:
 * decrypt the server message with ENC_KEY, hand out KEYSTREAM. */
static void ntor3_final_keys(const uint8_t key_seed[32], const uint8_t *msg, size_t msg_len,
			     uint8_t *sm_out, uint8_t *key_out, size_t key_len)
{
	uint8_t in[8 + sizeof(t_final) + 32], raw[32 + NTOR3_MAX_KEY_OUT];
	struct wr w = wr_init(in, sizeof(in));
	struct crypto_aes256_ctr aes;
	static const uint8_t zero_iv[16];

	wr_encap(&w, t_final, sizeof(t_final) - 1);
	wr_bytes(&w, key_seed, 32);
	crypto_shake256(in, w.len, raw, 32 + key_len);
	memcpy(sm_out, msg, msg_len);
	crypto_aes256_ctr_init(&aes, raw, zero_iv);
	crypto_aes256_ctr_xor(&aes, sm_out, msg_len);
	crypto_aes256_ctr_clear(&aes);
	memcpy(key_out, raw + 32, key_len);
	crypto_wipe(raw, sizeof(raw));
}

int ntor3_client_finish(struct ntor3_client *st, const uint8_t *reply, size_t reply_len,
			uint8_t *sm_out, size_t sm_cap, size_t *sm_len,
			uint8_t *key_out, size_t key_len)
{
	uint8_t key_seed[32], verify[32], auth[32];
	const uint8_t *Y = reply, *msg = reply + NTOR3_SERVER_OVERHEAD;
	size_t msg_len;
	bool ok;

	*sm_len = 0;
	if (reply_len < NTOR3_SERVER_OVERHEAD || reply_len - NTOR3_SERVER_OVERHEAD > sm_cap ||
	    key_len > NTOR3_MAX_KEY_OUT) {
		memset(key_out, 0, key_len);
		crypto_wipe(st, sizeof(*st));
		return -1;
	}
	msg_len = reply_len - NTOR3_SERVER_OVERHEAD;
	ok = ntor3_seed_verify(st, Y, key_seed, verify);
	ntor3_auth(st, verify, Y, msg, msg_len, auth);
	ok &= crypto_memeq(auth, reply + NTOR3_KEY_LEN, 32);
	if (ok) {
		ntor3_final_keys(key_seed, msg, msg_len, sm_out, key_out, key_len);
		*sm_len = msg_len;
	} else {
		memset(key_out, 0, key_len);
	}
	crypto_wipe(key_seed, sizeof(key_seed));
	crypto_wipe(verify, sizeof(verify));
	crypto_wipe(st, sizeof(*st));
	return ok ? 0 : -1;
}

size_t ntor3_ext_encode_cc_request(uint8_t *out, size_t cap)
{
	struct wr w = wr_init(out, cap);

	/* trn_extension: N_EXTENSIONS, then TYPE LEN BODY; CC_REQUEST has an
	 * empty body (prop 324 §10.3). */
	wr_u8(&w, 1);
	wr_u8(&w, NTOR3_EXT_CC_REQUEST);
	wr_u8(&w, 0);
	return w.err ? 0 : w.len;
}

enum parse_result ntor3_ext_parse_cc_response(const uint8_t *msg, size_t len, bool cc_requested,
					      bool *cc_present, uint8_t *sendme_inc,
					      const char **reason)
{
	struct rd r = rd_init(msg, len);
	unsigned n = rd_u8(&r);

	*cc_present = false;
	*sendme_inc = 0;
	for (unsigned i = 0; i < n && !r.err; i++) {
		uint8_t type = rd_u8(&r), flen = rd_u8(&r);
		const uint8_t *body = rd_bytes(&r, flen);

		if (!body || type != NTOR3_EXT_CC_RESPONSE || *cc_present)
			continue; /* unknown types and repeats are ignored (§10.3) */
		if (flen < 1) {
			*reason = "congestion-control response without sendme_inc";
			return PARSE_INVALID;
		}
		*cc_present = true;
		*sendme_inc = body[0];
	}
	if (r.err || rd_left(&r) != 0) {
		*reason = r.err ? "truncated ntor3 extension list" : "bytes after ntor3 extension list";
		*cc_present = false;
		return PARSE_INVALID;
	}
	if (*cc_present && !cc_requested) {
		/* §10.5: reject a response to a request we did not make. */
		*reason = "unrequested congestion-control response";
		*cc_present = false;
		return PARSE_INVALID;
	}
	return PARSE_OK;
}

bool ntor3_cc_sendme_inc_acceptable(uint8_t got, uint8_t consensus)
{
	unsigned g = got, c = consensus;

	return g != 0 && g * 2 >= c && g <= c * 2;
}
