/* ClientOnionAuthDir snapshots (see onion_auth.h). */
#include "app/onion_auth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/log.h"
#include "proto/hs_auth.h"

#define AUTH_FILE_MAX 4096
#define AUTH_SUFFIX ".auth_private"

struct onion_auth_key {
	uint8_t id[32]; /* the service's identity key */
	uint8_t sk[32]; /* our x25519 client-auth secret for it */
};

struct onion_auth_keys {
	_Atomic unsigned refs;
	size_t n, cap;
	struct onion_auth_key *v;
};

/* The published snapshot. A mutex rather than netdir's split count: it is
 * taken once per onion connection start (not per cell), and a reload
 * swaps it at most a few times a minute. */
static pthread_mutex_t published_lock = PTHREAD_MUTEX_INITIALIZER;
static struct onion_auth_keys *published;

static struct onion_auth_keys *keys_new(void)
{
	struct onion_auth_keys *k = calloc(1, sizeof(*k));

	if (!k)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	atomic_init(&k->refs, 1);
	return k;
}

/* Add (id, sk) to k; a second file for the same service replaces the
 * first's key (the later one in directory order wins, and is logged). */
static void keys_add(struct onion_auth_keys *k, const uint8_t id[32], const uint8_t sk[32], const char *path)
{
	for (size_t i = 0; i < k->n; i++) {
		if (memcmp(k->v[i].id, id, 32) == 0) {
			log_warn("ClientOnionAuthDir: %s is a second key for the same service; it replaces the first",
				 path);
			memcpy(k->v[i].sk, sk, 32);
			return;
		}
	}
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		struct onion_auth_key *v = calloc(cap, sizeof(*v));

		if (!v)
			abort(); /* control-plane allocation */
		if (k->n)
			memcpy(v, k->v, k->n * sizeof(*v));
		crypto_wipe(k->v, k->cap * sizeof(*k->v));
		free(k->v);
		k->v = v;
		k->cap = cap;
	}
	memcpy(k->v[k->n].id, id, 32);
	memcpy(k->v[k->n].sk, sk, 32);
	k->n++;
}

/* Read dir/name into k; a bad file is logged (naming it) and skipped. */
static void load_file(struct onion_auth_keys *k, const char *dir, const char *name)
{
	char path[1024], buf[AUTH_FILE_MAX];
	uint8_t id[32], sk[32];
	const char *why = "unreadable";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		log_warn("ClientOnionAuthDir: cannot open %s: %s; ignored", path, strerror(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n == (ssize_t)sizeof(buf))
		log_warn("ClientOnionAuthDir: %s: %s; ignored", path, n < 0 ? strerror(errno) : "larger than 4 KiB");
	else if (hs_auth_parse(buf, (size_t)n, id, sk, &why) != PARSE_OK)
		log_warn("ClientOnionAuthDir: %s is not a client authorization key (%s); ignored", path, why);
	else
		keys_add(k, id, sk, path);
	crypto_wipe(buf, sizeof(buf));
	crypto_wipe(sk, sizeof(sk));
}

struct onion_auth_keys *onion_auth_load(const char *dir)
{
	struct onion_auth_keys *k = keys_new();
	struct dirent *de;
	DIR *d;

	if (!dir || !dir[0])
		return k;
	d = opendir(dir);
	if (!d) {
		log_warn("ClientOnionAuthDir %s: %s; no client authorization keys", dir, strerror(errno));
		return k;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = sizeof(AUTH_SUFFIX) - 1;

		/* tor reads only "*.auth_private"; other files are not keys. */
		if (len <= sl || strcmp(de->d_name + len - sl, AUTH_SUFFIX) != 0)
			continue;
		load_file(k, dir, de->d_name);
	}
	closedir(d);
	return k;
}

size_t onion_auth_count(const struct onion_auth_keys *k)
{
	return k ? k->n : 0;
}

bool onion_auth_find(const struct onion_auth_keys *k, const uint8_t id[32], uint8_t sk[32])
{
	if (!k)
		return false;
	for (size_t i = 0; i < k->n; i++) {
		if (memcmp(k->v[i].id, id, 32) == 0) {
			memcpy(sk, k->v[i].sk, 32);
			return true;
		}
	}
	return false;
}

void onion_auth_release(struct onion_auth_keys *k)
{
	if (!k)
		return;
	/* acq_rel: the last releaser sees every other holder's reads done
	 * (pairs with the other releasers' fetch_sub) before it frees. */
	if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
		return;
	crypto_wipe(k->v, k->cap * sizeof(*k->v));
	free(k->v);
	free(k);
}

struct onion_auth_keys *onion_auth_acquire(void)
{
	struct onion_auth_keys *k;

	pthread_mutex_lock(&published_lock);
	k = published;
	if (k) /* relaxed: the mutex orders it against publish's swap */
		atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&published_lock);
	return k;
}

void onion_auth_publish(struct onion_auth_keys *k)
{
	struct onion_auth_keys *old;

	pthread_mutex_lock(&published_lock);
	old = published;
	published = k;
	pthread_mutex_unlock(&published_lock);
	onion_auth_release(old);
}

void onion_auth_shutdown(void)
{
	onion_auth_publish(NULL);
}
