/* Logging (see log.h). */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_NOTICE;
static int log_fd = 2;
static log_hook_fn log_hook;
static void *log_hook_arg;
static _Thread_local const char *log_thread_name;
/* SafeLogging: set by the configuration (main thread, SIGHUP, SETCONF),
 * read by every logging thread; relaxed, nothing else is ordered by it. */
static _Atomic bool log_safe = true;

static const char *const level_names[] = { "debug", "info", "notice", "warn", "err" };

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Open path for appending, or dup stderr for NULL; the descriptor is >= 3. */
static int log_open(const char *path)
{
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : fcntl(2, F_DUPFD_CLOEXEC, 3);

	return fd < 0 ? -errno : fd;
}

int log_set_file(const char *path)
{
	int fd = log_open(path);

	if (fd < 0)
		return fd;
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int log_target_open(const char *path)
{
	return log_open(path);
}

int log_redirect_fd(int fd)
{
	if (fd < 0)
		return -EBADF;
	if (log_fd <= 2) {
		close(fd);
		return -EBUSY; /* stderr itself: not ours to replace */
	}
	/* log_fd keeps its number and dup3 swaps the file behind it in one
	 * step: a write on another thread reaches the old file or the new one,
	 * never a closed or reused descriptor (closing and reassigning log_fd
	 * could do both). */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	close(fd);
	return 0;
}

int log_redirect(const char *path)
{
	int fd;

	if (log_fd <= 2)
		return -EBUSY; /* stderr itself: not ours to replace */
	fd = log_open(path);
	if (fd < 0)
		return fd;
	return log_redirect_fd(fd);
}

void log_set_safe_logging(bool on)
{
	atomic_store_explicit(&log_safe, on, memory_order_relaxed); /* pairs with log_safe_logging's load */
}

bool log_safe_logging(void)
{
	return atomic_load_explicit(&log_safe, memory_order_relaxed); /* pairs with log_set_safe_logging */
}

const char *log_scrub(const char *s)
{
	if (log_safe_logging())
		return LOG_SCRUBBED;
	return s ? s : "?";
}

char *log_scrub_dest(char *buf, size_t len, const char *host, unsigned port)
{
	if (!len)
		return buf;
	if (log_safe_logging()) {
		snprintf(buf, len, "%s", LOG_SCRUBBED);
		return buf;
	}
	if (!host)
		host = "?";
	if (strchr(host, ':') && host[0] != '[')
		snprintf(buf, len, "[%s]:%u", host, port);
	else
		snprintf(buf, len, "%s:%u", host, port);
	return buf;
}

void log_set_thread_name(const char *name)
{
	log_thread_name = name;
}

void log_set_hook(log_hook_fn fn, void *arg)
{
	log_hook_arg = arg;
	log_hook = fn;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(name, "warning") == 0)
		return LOG_WARN;
	if (strcasecmp(name, "error") == 0)
		return LOG_ERR;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= ARRAY_LEN(level_names))
		return "?";
	return level_names[level];
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%b %d %H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ld [%s] ", (long)(tv.tv_usec / 1000),
		     log_level_name(level));
	n += (size_t)r;
	if (log_thread_name) {
		r = snprintf(line + n, sizeof(line) - n, "{%s} ", log_thread_name);
		n += (size_t)r;
	}
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	line[n] = '\0';
	if (log_hook)
		log_hook(level, line, log_hook_arg);
	/* One write per line keeps lines whole across threads. */
	for (size_t off = 0; off < n;) {
		ssize_t w = write(log_fd, line + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
}
