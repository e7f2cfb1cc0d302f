/* Unit tests for app/onion_auth: reading ClientOnionAuthDir into a
 * snapshot (good files load, bad ones are named and skipped, other names
 * ignored), lookup, and publishing a new snapshot while others hold the
 * old one (also from threads: this runs in the TSan `threads` suite).
 * Not for: the file format (test_hs_auth.c) or its use (test_onion.sh). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/onion_auth.h"
#include "core/base64.h"
#include "core/crypto.h"
#include "core/log.h"
#include "proto/onion_addr.h"

static char dir[] = "/tmp/onionring-test-onion-auth.XXXXXX";
static char warnings[4096];

static void hook(enum log_level level, const char *line, void *arg)
{
	(void)arg;
	if (level >= LOG_WARN && strlen(warnings) + strlen(line) < sizeof(warnings))
		strcat(warnings, line);
}

struct key {
	uint8_t id[32], sk[32];
};

/* Write name in dir with a fresh key for a fresh service into *k (or
 * raw text when text is not NULL). */
static void put(const char *name, struct key *k, const char *text)
{
	char path[512], addr[ONION_ADDR_STR_LEN + 1], b32[64];
	uint8_t seed[32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	if (text) {
		fputs(text, f);
	} else {
		crypto_rand(seed, sizeof(seed));
		crypto_ed25519_public_from_seed(k->id, seed);
		onion_addr_encode(addr, k->id);
		crypto_rand(k->sk, sizeof(k->sk));
		assert_int_equal(base32_encode(b32, sizeof(b32), k->sk, 32), 52);
		fprintf(f, "%.56s:descriptor:x25519:%s\n", addr, b32);
	}
	fclose(f);
}

static void rm(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void test_onion_auth_loads_good_files_and_names_the_bad_ones(void **state)
{
	struct key a, b, other;
	struct onion_auth_keys *k;
	uint8_t sk[32], unknown[32] = { 1 };

	(void)state;
	put("a.auth_private", &a, NULL);
	put("b.auth_private", &b, NULL);
	put("junk.auth_private", NULL, "garbage\n");
	put("notakey.txt", &other, NULL); /* not "*.auth_private": not read */
	warnings[0] = '\0';
	k = onion_auth_load(dir);
	assert_int_equal(onion_auth_count(k), 2);
	assert_true(onion_auth_find(k, a.id, sk));
	assert_memory_equal(sk, a.sk, 32);
	assert_true(onion_auth_find(k, b.id, sk));
	assert_memory_equal(sk, b.sk, 32);
	assert_false(onion_auth_find(k, other.id, sk));
	assert_false(onion_auth_find(k, unknown, sk));
	assert_non_null(strstr(warnings, "junk.auth_private is not a client authorization key"));
	assert_null(strstr(warnings, "a.auth_private"));
	assert_null(strstr(warnings, "notakey"));
	onion_auth_release(k);
	rm("a.auth_private");
	rm("b.auth_private");
	rm("junk.auth_private");
	rm("notakey.txt");
}

static void test_onion_auth_without_a_directory_is_empty(void **state)
{
	struct onion_auth_keys *k;
	uint8_t id[32] = { 0 }, sk[32];

	(void)state;
	k = onion_auth_load(NULL);
	assert_int_equal(onion_auth_count(k), 0);
	onion_auth_release(k);
	warnings[0] = '\0';
	k = onion_auth_load("/nonexistent-onionring-auth-dir");
	assert_int_equal(onion_auth_count(k), 0);
	assert_false(onion_auth_find(k, id, sk));
	assert_non_null(strstr(warnings, "/nonexistent-onionring-auth-dir"));
	onion_auth_release(k);
	assert_false(onion_auth_find(NULL, id, sk));
	assert_int_equal(onion_auth_count(NULL), 0);
}

static void test_onion_auth_held_snapshot_survives_a_new_one(void **state)
{
	struct key a, b;
	struct onion_auth_keys *old, *cur;
	uint8_t sk[32];

	(void)state;
	assert_null(onion_auth_acquire()); /* nothing published yet */
	put("a.auth_private", &a, NULL);
	onion_auth_publish(onion_auth_load(dir));
	old = onion_auth_acquire();
	assert_int_equal(onion_auth_count(old), 1);
	/* A key added, then a reload: the next connection sees it, one that
	 * started before keeps the snapshot it took. */
	put("b.auth_private", &b, NULL);
	onion_auth_publish(onion_auth_load(dir));
	cur = onion_auth_acquire();
	assert_true(onion_auth_find(cur, b.id, sk));
	assert_false(onion_auth_find(old, b.id, sk));
	assert_true(onion_auth_find(old, a.id, sk));
	onion_auth_release(old);
	onion_auth_release(cur);
	onion_auth_shutdown();
	assert_null(onion_auth_acquire());
	rm("a.auth_private");
	rm("b.auth_private");
}

#define READERS 2
#define ROUNDS 2000

static atomic_bool stop_readers, reader_wrong;
static struct key shared_key;

static void *reader(void *arg)
{
	unsigned long found = 0;
	uint8_t sk[32];

	(void)arg;
	while (!atomic_load_explicit(&stop_readers, memory_order_relaxed)) {
		struct onion_auth_keys *k = onion_auth_acquire();

		/* cmocka's asserts are not for other threads: count, check after. */
		if (onion_auth_find(k, shared_key.id, sk) && memcmp(sk, shared_key.sk, 32) == 0)
			found++;
		else
			atomic_store(&reader_wrong, true);
		onion_auth_release(k);
	}
	return (void *)found;
}

static void test_onion_auth_publish_while_threads_acquire(void **state)
{
	pthread_t t[READERS];

	(void)state;
	put("s.auth_private", &shared_key, NULL);
	struct onion_auth_keys *loaded = onion_auth_load(dir);
	assert_int_equal(onion_auth_count(loaded), 1);
	onion_auth_release(loaded);
	onion_auth_publish(onion_auth_load(dir));
	atomic_store(&stop_readers, false);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
	for (int r = 0; r < ROUNDS; r++) /* bounded; every snapshot has the key */
		onion_auth_publish(onion_auth_load(dir));
	atomic_store(&stop_readers, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	/* Every snapshot a reader took held the key: none saw a freed or
	 * half-built one. */
	assert_false(atomic_load(&reader_wrong));
	onion_auth_shutdown();
	rm("s.auth_private");
}

static int teardown(void **state)
{
	(void)state;
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_onion_auth_loads_good_files_and_names_the_bad_ones),
		cmocka_unit_test(test_onion_auth_without_a_directory_is_empty),
		cmocka_unit_test(test_onion_auth_held_snapshot_survives_a_new_one),
		cmocka_unit_test(test_onion_auth_publish_while_threads_acquire),
	};

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	log_set_hook(hook, NULL);
	return cmocka_run_group_tests(tests, NULL, teardown);
}
