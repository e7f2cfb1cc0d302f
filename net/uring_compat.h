/* What liburing 2.3's header lacks and this project needs, prepared by hand
 * (the kernel here is much newer; see ../shared/PLATFORM.md section 3).
 * Owner shard only: every function touches one worker's ring. */
#ifndef ONIONRING_NET_URING_COMPAT_H
#define ONIONRING_NET_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#ifndef IORING_ASYNC_CANCEL_FD_FIXED
#define IORING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#endif

/* IORING_OP_URING_CMD on a socket (kernel >= 6.7 for setsockopt): the
 * value of the kernel's SOCKET_URING_OP_SETSOCKOPT (enum
 * io_uring_socket_op). Neither liburing 2.3 nor the 6.1 uapi header has
 * it; our own name, since newer headers define it as an enum constant that
 * a macro must not shadow. */
#define URING_SOCK_OP_SETSOCKOPT 3

/* Turn a direct descriptor into a normal fd of the process (kernel >= 6.8);
 * liburing 2.3's enum stops before it. Tests use it to inspect a socket
 * that has no fd. */
#define URING_OP_FIXED_FD_INSTALL 54

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

/* setsockopt(level, optname, optval, optlen) on the socket in direct
 * descriptor `slot`, as IORING_OP_URING_CMD / URING_SOCK_OP_SETSOCKOPT.
 * Replaces io_uring_prep_cmd_sock (liburing >= 2.5). optval is read when
 * the request runs, which with a link can be after this returns: it must
 * stay valid until the completion. In the kernel's SQE layout level and
 * optname share the 64-bit addr field (level first), optlen is the 32-bit
 * word of file_index and optval is addr3; the 2.3 struct lacks those
 * names, so they are written through the old ones. */
static inline void uring_prep_setsockopt_fixed(struct io_uring_sqe *sqe, unsigned slot, int level, int optname,
					       const void *optval, unsigned optlen)
{
	uint32_t lvl_name[2] = { (uint32_t)level, (uint32_t)optname };

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, (int)slot, NULL, 0, 0);
	sqe->cmd_op = URING_SOCK_OP_SETSOCKOPT;
	memcpy(&sqe->addr, lvl_name, sizeof(lvl_name));
	sqe->file_index = optlen;
	sqe->addr3 = (uint64_t)(uintptr_t)optval;
	sqe->flags |= IOSQE_FIXED_FILE;
}

/* Install direct descriptor `slot` as a normal fd (O_CLOEXEC); the
 * completion's res is the new fd or -errno. */
static inline void uring_prep_fixed_fd_install(struct io_uring_sqe *sqe, unsigned slot)
{
	io_uring_prep_rw(URING_OP_FIXED_FD_INSTALL, sqe, (int)slot, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
}

/* Pass the direct descriptor in our slot src_slot to the ring whose fd is
 * target_ring_fd, into a slot that the target's kernel allocates from its
 * file-alloc range (IORING_OP_MSG_RING with IORING_MSG_SEND_FD and
 * IORING_FILE_INDEX_ALLOC, kernel >= 6.0). On success the target gets a
 * CQE whose user_data is target_ud and res its new slot, and ours has res
 * = that slot; ours has -errno otherwise (-ENFILE: no free slot there) and
 * the target gets nothing. Our slot keeps its descriptor either way:
 * closing it is the caller's job. Replaces io_uring_prep_msg_ring_fd_alloc
 * (liburing >= 2.4): the kernel reads the source slot from addr3, the
 * target slot + 1 (or ALLOC) from file_index and the target's user_data
 * from off (io_uring/msg_ring.c, io_msg_ring_prep). */
static inline void uring_prep_msg_ring_fd_alloc(struct io_uring_sqe *sqe, int target_ring_fd, unsigned src_slot,
						uint64_t target_ud)
{
	io_uring_prep_rw(IORING_OP_MSG_RING, sqe, target_ring_fd, (void *)(uintptr_t)IORING_MSG_SEND_FD, 0,
			 target_ud);
	sqe->addr3 = src_slot;
	sqe->file_index = IORING_FILE_INDEX_ALLOC;
}

/* Cancel every request on fixed file `slot`. */
static inline void uring_prep_cancel_fixed(struct io_uring_sqe *sqe, unsigned slot)
{
	io_uring_prep_cancel_fd(sqe, (int)slot, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
}

#endif
