/* What liburing 2.3's header lacks and this project needs, prepared by hand
 * (the kernel here is much newer; see ../shared/PLATFORM.md section 3).
 * Owner shard only: every function touches one worker's ring. */
#ifndef ONIONRING_NET_URING_COMPAT_H
#define ONIONRING_NET_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/mman.h>

#ifndef IORING_ASYNC_CANCEL_FD_FIXED
#define IORING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#endif

/* Map and register a provided-buffer ring of `entries` (a power of two)
 * with group id bgid. Return the ring or NULL with *err = -errno.
 * Replaces io_uring_setup_buf_ring (liburing >= 2.4). */
static inline struct io_uring_buf_ring *uring_setup_buf_ring(struct io_uring *ring, unsigned entries,
							      unsigned short bgid, int *err)
{
	struct io_uring_buf_reg reg;
	size_t size = entries * sizeof(struct io_uring_buf);
	void *mem;
	int r;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	io_uring_buf_ring_init(mem);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = entries;
	reg.bgid = bgid;
	r = io_uring_register_buf_ring(ring, &reg, 0);
	if (r < 0) {
		munmap(mem, size);
		*err = r;
		return NULL;
	}
	*err = 0;
	return mem;
}

static inline void uring_free_buf_ring(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned entries,
				       unsigned short bgid)
{
	io_uring_unregister_buf_ring(ring, bgid);
	munmap(br, entries * sizeof(struct io_uring_buf));
}

/* Cancel every request on fixed file `slot`. */
static inline void uring_prep_cancel_fixed(struct io_uring_sqe *sqe, unsigned slot)
{
	io_uring_prep_cancel_fd(sqe, (int)slot, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
}

#endif
