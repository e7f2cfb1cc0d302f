/* Figures about a gateway process, read from /proc/<pid>: CPU time
 * (utime and stime of all its threads, /proc/PID/stat) and memory (VmRSS,
 * VmHWM from /proc/PID/status). The parsers take the file's text so they
 * can be tested; the readers open the files. Not for our own process's
 * figures and not for child processes (a gateway is one process). */
#ifndef ONIONRING_PERF_LOADGEN_PROC_H
#define ONIONRING_PERF_LOADGEN_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Parse the text of /proc/PID/stat (borrowed, NUL-terminated); set *utime
 * and *stime (user and kernel time) in clock ticks. Fields are counted after
 * the last ')' so a command name with spaces or parentheses cannot shift
 * them. Return 0 or -1. */
int proc_stat_cpu_parse(const char *text, uint64_t *utime, uint64_t *stime);

/* Find "key:" at the start of a line of /proc/PID/status text (borrowed)
 * and set *kb to its value in kB. Return 0 or -1 if absent or malformed. */
int proc_status_kb_parse(const char *text, const char *key, uint64_t *kb);

/* Read the CPU seconds of pid: *user (utime) and *sys (stime). Return 0
 * or -errno. */
int proc_cpu_seconds(pid_t pid, double *user, double *sys);

/* Read VmRSS and VmHWM of pid in kB. Return 0 or -errno. */
int proc_rss_kb(pid_t pid, uint64_t *rss_kb, uint64_t *hwm_kb);

#endif
