/* Worker threads, listeners and the coordinator thread (see runtime.h).
 * Control plane: locks here are off the data path. */
#include "net/runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "net/uring_compat.h"
#include "net/worker_int.h"
#include "pool/mag.h"
#include "onionring_build.h"

void runtime_config_defaults(struct runtime_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nworkers = ONIONRING_DEFAULT_WORKERS;
	cfg->max_conns = 16384;
	/* 8 MiB per worker either way; 64 KiB pieces halve the receives, the
	 * loop iterations and the sends of SENDMEs (one send carries those of
	 * a whole receive) against 16 KiB ones: net/README.md. */
	cfg->recv_buf_size = 65536;
	cfg->recv_bufs = 128;
	cfg->pin_cpus = true;
	cfg->coordinator_tick_ms = 1000;
}

int runtime_probe(char *why, size_t whylen)
{
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_probe *probe;
	int r;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	r = io_uring_queue_init_params(8, &ring, &p);
	if (r < 0) {
		snprintf(why, whylen, "io_uring with SINGLE_ISSUER|DEFER_TASKRUN refused by the kernel: %s%s",
			 strerror(-r), r == -EPERM ? " (io_uring disabled by sysctl or seccomp?)" : "");
		return r;
	}
	probe = io_uring_get_probe_ring(&ring);
	r = 0;
	if (!probe) {
		snprintf(why, whylen, "io_uring probe failed");
		r = -ENOSYS;
	} else {
		static const struct { int op; const char *name; } need[] = {
			{ IORING_OP_MSG_RING, "MSG_RING" },
			{ IORING_OP_SOCKET, "SOCKET" },
			{ IORING_OP_ACCEPT, "ACCEPT" },
			{ IORING_OP_SEND, "SEND" },
			{ IORING_OP_RECV, "RECV" },
		};
		for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
			if (!io_uring_opcode_supported(probe, need[i].op)) {
				snprintf(why, whylen, "this kernel's io_uring lacks IORING_OP_%s", need[i].name);
				r = -EOPNOTSUPP;
				break;
			}
		}
		io_uring_free_probe(probe);
	}
	if (r == 0) {
		int err;
		struct io_uring_buf_ring *br = uring_setup_buf_ring(&ring, 8, 0, &err);
		if (!br) {
			snprintf(why, whylen, "io_uring provided buffer rings unsupported: %s", strerror(-err));
			r = err;
		} else {
			uring_free_buf_ring(&ring, br, 8, 0);
		}
	}
	io_uring_queue_exit(&ring);
	return r;
}

/* The send-chunk pool: one shard per worker. The cap is the configured
 * bytes, but at least four magazines per shard (pool/README.md: idle
 * shards' caches hold up to two each, and the rest must stay usable).
 * Returns owned, or NULL with a logged reason. */
static struct buf_pool *chunk_pool_new(const struct runtime_config *cfg, unsigned nworkers)
{
	size_t obj = sizeof(struct out_chunk) + OUT_CHUNK_SIZE;
	size_t stride = (obj + 63) & ~(size_t)63;
	size_t floor = (size_t)nworkers * 4 * ONIONRING_MAGAZINE_SIZE * stride;
	size_t bytes = cfg->chunk_pool_bytes ? cfg->chunk_pool_bytes : RUNTIME_CHUNK_POOL_DEFAULT;
	struct buf_pool *p;

	if (bytes < floor) {
		log_info("runtime: send-chunk pool raised from %zu to %zu bytes (4 magazines per worker)", bytes,
			 floor);
		bytes = floor;
	}
	p = buf_pool_new(obj, nworkers, bytes);
	if (!p)
		log_err("runtime: cannot create the send-chunk pool (%zu bytes for %u workers)", bytes, nworkers);
	return p;
}

unsigned runtime_usable_cpus(int *cpus, unsigned cap)
{
	cpu_set_t set;
	unsigned n = 0;
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	/* The calling thread's mask is what taskset, a cgroup cpuset or a
	 * container gave the process. Pinning to online CPU i instead put
	 * worker 0 on CPU 0 under "taskset -c 1", next to whatever the
	 * operator had moved away from the gateway (perf/README.md, "Where
	 * the time goes"). */
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int c = 0; c < CPU_SETSIZE && n < cap; c++)
			if (CPU_ISSET(c, &set))
				cpus[n++] = c;
	}
	if (n > 0)
		return n;
	if (online < 1)
		online = 1;
	for (long c = 0; c < online && n < cap; c++)
		cpus[n++] = (int)c;
	return n;
}

struct runtime *runtime_new(const struct runtime_config *cfg)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	int cpus[CPU_SETSIZE];
	unsigned ncpu = runtime_usable_cpus(cpus, CPU_SETSIZE);
	struct io_uring_params p;
	int r;

	if (!rt)
		return NULL;
	rt->cfg = *cfg;
	if (ncpu < 1) {
		cpus[0] = 0;
		ncpu = 1;
	}
	rt->nworkers = cfg->nworkers ? cfg->nworkers : ncpu;
	if (rt->cfg.recv_bufs & (rt->cfg.recv_bufs - 1) || rt->cfg.recv_bufs == 0 || rt->cfg.recv_bufs > 32768) {
		log_err("runtime: recv_bufs must be a power of two up to 32768 (got %u)", rt->cfg.recv_bufs);
		free(rt);
		return NULL;
	}
	if (rt->cfg.max_conns < 64)
		rt->cfg.max_conns = 64;
	rt->chunk_pool = chunk_pool_new(&rt->cfg, rt->nworkers);
	if (!rt->chunk_pool) {
		free(rt);
		return NULL;
	}
	rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
	if (!rt->workers) {
		buf_pool_free(rt->chunk_pool);
		free(rt);
		return NULL;
	}
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	pthread_mutex_init(&rt->post_lock, NULL);
	memset(&p, 0, sizeof(p));
	r = io_uring_queue_init_params(16, &rt->post_ring, &p);
	if (r < 0) {
		log_err("runtime: cannot create io_uring: %s", strerror(-r));
		buf_pool_free(rt->chunk_pool);
		free(rt->workers);
		free(rt);
		return NULL;
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		w->rt = rt;
		w->id = i;
		w->cpu = cpus[i % ncpu];
		w->max_conns = rt->cfg.max_conns;
		w->out_slots = rt->cfg.max_conns / 8;
		w->nbufs = rt->cfg.recv_bufs;
		w->buf_size = rt->cfg.recv_buf_size;
		atomic_init(&w->ring_fd, -1);
		atomic_init(&w->dead, false);
		atomic_init(&w->handoffs_in, 0);
		atomic_init(&w->handoffs_closed, false);
		atomic_init(&w->posts_closed, false);
		w->conns = calloc(w->max_conns, sizeof(*w->conns));
		w->free_out = calloc(w->out_slots, sizeof(*w->free_out));
		w->ack_owed = calloc(w->out_slots, sizeof(*w->ack_owed));
		w->ack_due_ns = UINT64_MAX;
		w->send_wanted = calloc(w->max_conns, sizeof(*w->send_wanted));
		if (!w->conns || !w->free_out || !w->ack_owed || !w->send_wanted) {
			log_err("runtime: out of memory for %u connection slots", w->max_conns);
			runtime_free(rt);
			return NULL;
		}
		/* Hand out low slots first. */
		for (unsigned s = 0; s < w->out_slots; s++)
			w->free_out[s] = w->out_slots - 1 - s;
		w->nfree_out = w->out_slots;
	}
	return rt;
}

static int listen_socket(const struct sockaddr *addr, socklen_t len)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 || bind(fd, addr, len) < 0 ||
	    listen(fd, 4096) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux
	 * (test_uring_compat checks it, also for multishot accept into
	 * direct descriptors, which have no fd to set it on later). Why
	 * client sockets want it: net/README.md. Not fatal: the connections
	 * still work, with Nagle. */
	if ((addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("runtime: cannot set TCP_NODELAY on a listener: %s", strerror(errno));
	return fd;
}

/* Worker i takes part in a listener of mask workers (bit i; workers above
 * 63 follow bit 63). */
static bool listener_wanted(uint64_t workers, unsigned i)
{
	return (workers >> (i < 64 ? i : 63)) & 1;
}

int runtime_add_listener(struct runtime *rt, const struct sockaddr *addr, socklen_t len,
			 conn_accept_fn fn, void *arg, uint16_t *bound_port)
{
	return runtime_add_listener_on(rt, addr, len, fn, arg, bound_port, UINT64_MAX);
}

int runtime_add_listener_on(struct runtime *rt, const struct sockaddr *addr, socklen_t len,
			    conn_accept_fn fn, void *arg, uint16_t *bound_port, uint64_t workers)
{
	struct sockaddr_storage ss;
	socklen_t sslen = len;
	bool first = true;

	if (len > sizeof(ss))
		return -EINVAL;
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (listener_wanted(workers, i) && rt->workers[i].nlisteners >= RUNTIME_MAX_LISTENERS)
			return -EINVAL;
	if (!(rt->nworkers >= 64 ? workers : workers & ((UINT64_C(1) << rt->nworkers) - 1)))
		return -EINVAL; /* no worker of this runtime would listen */
	memcpy(&ss, addr, len);
	/* One SO_REUSEPORT socket per worker: the kernel spreads connections
	 * over them, and no accept is shared between threads. Measured
	 * against one listener shared by every worker's multishot accept
	 * (perf/bench_accept, net/README.md): the shared one gave 100% of the
	 * connections to a single worker in every run; this gave 50/50.
	 * Handing them over from a shared listener was fair too, but slower
	 * (a message and a second close per connection). */
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		int fd;

		if (!listener_wanted(workers, i))
			continue;
		fd = listen_socket((struct sockaddr *)&ss, sslen);
		if (fd < 0) {
			for (unsigned j = 0; j < i; j++)
				if (listener_wanted(workers, j))
					close(rt->workers[j].listeners[--rt->workers[j].nlisteners].fd);
			return fd;
		}
		if (first) {
			first = false;
			/* Port 0: learn the port the kernel chose; the others bind it. */
			socklen_t l = sizeof(ss);
			getsockname(fd, (struct sockaddr *)&ss, &l);
			sslen = l;
			if (bound_port)
				*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
									: ((struct sockaddr_in *)&ss)->sin_port);
		}
		w->listeners[w->nlisteners].fd = fd;
		w->listeners[w->nlisteners].fn = fn;
		w->listeners[w->nlisteners].arg = arg;
		w->nlisteners++;
	}
	return 0;
}

static void *coord_main(void *arg)
{
	struct runtime *rt = arg;

	log_set_thread_name("coord");
	pthread_setname_np(pthread_self(), "coord");
	if (rt->cfg.coord_tick)
		rt->cfg.coord_tick(rt, rt->cfg.arg);
	pthread_mutex_lock(&rt->lock);
	while (!atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(rt->cfg.coordinator_tick_ms / 1000);
		ts.tv_nsec += (long)(rt->cfg.coordinator_tick_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
		if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
			break;
		pthread_mutex_unlock(&rt->lock);
		if (rt->cfg.coord_tick)
			rt->cfg.coord_tick(rt, rt->cfg.arg);
		pthread_mutex_lock(&rt->lock);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

int runtime_start(struct runtime *rt)
{
	pthread_condattr_t ca;
	int r;

	/* The coordinator waits on rt->cond with CLOCK_MONOTONIC deadlines. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&rt->cond);
	pthread_cond_init(&rt->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		if (rt->cfg.pin_cpus) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(w->cpu, &set);
			pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		r = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_attr_destroy(&attr);
		if (r == 0) {
			pthread_mutex_lock(&rt->lock);
			rt->threads++;
			pthread_mutex_unlock(&rt->lock);
		} else {
			log_err("runtime: cannot start worker %u: %s", i, strerror(r));
			atomic_store(&w->dead, true);
			pthread_mutex_lock(&rt->lock);
			rt->started++;
			rt->start_err = -r;
			pthread_mutex_unlock(&rt->lock);
			w->thread = 0;
		}
	}
	/* Wait (bounded) until every worker has its ring up, or failed. */
	pthread_mutex_lock(&rt->lock);
	rt->threads_final = true; /* the shutdown barrier now knows how many to wait for */
	pthread_cond_broadcast(&rt->cond);
	{
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 10;
		while (rt->started < rt->nworkers) {
			if (pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) == ETIMEDOUT) {
				rt->start_err = rt->start_err ? rt->start_err : -ETIMEDOUT;
				break;
			}
		}
	}
	r = rt->start_err;
	pthread_mutex_unlock(&rt->lock);
	if (r == 0) {
		r = -pthread_create(&rt->coord_thread, NULL, coord_main, rt);
		rt->coord_started = r == 0;
	}
	if (r < 0)
		runtime_stop(rt);
	else
		log_info("runtime: %u workers and the coordinator are running", rt->nworkers);
	return r;
}

void runtime_stop(struct runtime *rt)
{
	bool was = atomic_exchange_explicit(&rt->stopping, true, memory_order_acq_rel);

	if (was)
		return;
	pthread_mutex_lock(&rt->lock);
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		if (!atomic_load_explicit(&w->dead, memory_order_acquire))
			worker_post(w, worker_begin_stop, NULL);
	}
}

void runtime_stop_accepting(struct runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		if (!atomic_load_explicit(&w->dead, memory_order_acquire))
			worker_post(w, worker_stop_accepting, NULL);
	}
}

void runtime_join(struct runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		if (rt->workers[i].thread) {
			pthread_join(rt->workers[i].thread, NULL);
			rt->workers[i].thread = 0;
		}
	}
	if (rt->coord_started) {
		pthread_join(rt->coord_thread, NULL);
		rt->coord_started = false;
	}
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		for (unsigned j = 0; j < w->nlisteners; j++)
			if (w->listeners[j].fd >= 0)
				close(w->listeners[j].fd);
		free(w->conns);
		free(w->free_out);
		free(w->ack_owed);
		free(w->send_wanted);
	}
	io_uring_queue_exit(&rt->post_ring);
	/* After the workers' teardown: their connections gave every chunk back. */
	buf_pool_free(rt->chunk_pool);
	pthread_mutex_destroy(&rt->lock);
	pthread_mutex_destroy(&rt->post_lock);
	pthread_cond_destroy(&rt->cond);
	free(rt->workers);
	free(rt);
}

unsigned runtime_nworkers(const struct runtime *rt) { return rt->nworkers; }
struct worker *runtime_worker(struct runtime *rt, unsigned i) { return i < rt->nworkers ? &rt->workers[i] : NULL; }
bool runtime_stopping(const struct runtime *rt) { return atomic_load_explicit(&rt->stopping, memory_order_acquire); }
const struct buf_pool *runtime_chunk_pool(const struct runtime *rt) { return rt->chunk_pool; }
