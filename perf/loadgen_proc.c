/* /proc readers for the gateway's CPU time and memory (see loadgen_proc.h).
 * proc(5): in /proc/PID/stat, utime and stime are fields 14 and 15, counted
 * from 1 with the state as field 3 (the first after the command name). */
#include "perf/loadgen_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int proc_stat_cpu_parse(const char *text, uint64_t *utime_out, uint64_t *stime_out)
{
	const char *p = strrchr(text, ')');
	uint64_t utime = 0, stime = 0;
	int field = 2;

	if (!p)
		return -1;
	p++;
	while (*p && field < 15) {
		char *end;
		unsigned long long v;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		field++;
		if (field == 14 || field == 15) {
			errno = 0;
			v = strtoull(p, &end, 10);
			if (end == p || errno)
				return -1;
			if (field == 14)
				utime = v;
			else
				stime = v;
			p = end;
		} else {
			p += strcspn(p, " ");
		}
	}
	if (field != 15)
		return -1;
	*utime_out = utime;
	*stime_out = stime;
	return 0;
}

int proc_status_kb_parse(const char *text, const char *key, uint64_t *kb)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(p + kl + 1, &end, 10);
			if (end == p + kl + 1 || errno || strncmp(end, " kB", 3) != 0)
				return -1;
			*kb = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* Read /proc/<pid>/<name> into buf (NUL-terminated). Return 0 or -errno. */
static int proc_read(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return len ? 0 : -EIO;
}

int proc_cpu_seconds(pid_t pid, double *user, double *sys)
{
	char buf[1024];
	uint64_t utime, stime;
	double hz = (double)sysconf(_SC_CLK_TCK);
	int rc = proc_read(pid, "stat", buf, sizeof(buf));

	if (rc < 0)
		return rc;
	if (proc_stat_cpu_parse(buf, &utime, &stime) < 0)
		return -EINVAL;
	*user = (double)utime / hz;
	*sys = (double)stime / hz;
	return 0;
}

int proc_rss_kb(pid_t pid, uint64_t *rss_kb, uint64_t *hwm_kb)
{
	char buf[4096];
	int rc = proc_read(pid, "status", buf, sizeof(buf));

	if (rc < 0)
		return rc;
	if (proc_status_kb_parse(buf, "VmRSS", rss_kb) < 0 ||
	    proc_status_kb_parse(buf, "VmHWM", hwm_kb) < 0)
		return -EINVAL;
	return 0;
}
