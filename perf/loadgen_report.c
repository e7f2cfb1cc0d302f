/* loadgen's output: the final JSON object (stdout), an optional CSV row, and
 * the live progress line (stderr). Every figure is derived here from the
 * counters and samples in struct lg_result; nothing is estimated.
 * Not for: deciding what counts as an error (loadgen_conn.c does). */
#include "perf/loadgen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char *const err_names[LG_E_COUNT] = {
	[LG_E_SOCKS_REFUSED] = "socks_refused",
	[LG_E_SOCKS_PROTOCOL] = "socks_protocol",
	[LG_E_CONNECT] = "connect_failed",
	[LG_E_TIMEOUT] = "timeout",
	[LG_E_SHORT_READ] = "short_read",
	[LG_E_CORRUPT] = "corrupt",
	[LG_E_HTTP_STATUS] = "http_status",
	[LG_E_HTTP_PROTOCOL] = "http_protocol",
	[LG_E_OVERLOAD] = "overload",
	[LG_E_CLOSED_IDLE] = "closed_idle",
};

static const char *const mode_names[] = { "closed", "open", "idle" };

const char *lg_err_name(enum lg_err e)
{
	return e < LG_E_COUNT ? err_names[e] : "?";
}

/* The figures that the JSON and CSV forms share. */
struct lg_figures {
	double secs, mbps, rps, cpu_s, cpu_user_s, cpu_sys_s, cpu_per_gb, self_cpu;
	uint64_t errors;
	double ttfb[4], conn[4], total[4];   /* p50 p90 p99 max, ms */
	double rss_per_stream;
};

static void pct4(struct samples *s, double out[4])
{
	out[0] = (double)samples_percentile(s, 50) / 1e6;
	out[1] = (double)samples_percentile(s, 90) / 1e6;
	out[2] = (double)samples_percentile(s, 99) / 1e6;
	out[3] = (double)samples_max(s) / 1e6;
}

static void figures(const struct lg_opts *o, struct lg_result *r, struct lg_figures *f)
{
	struct rusage ru;
	unsigned i;

	memset(f, 0, sizeof(*f));
	f->secs = (double)(r->t_end - r->t_begin) / 1e9;
	if (f->secs > 0) {
		f->mbps = (double)r->payload_bytes / 1e6 / f->secs;
		f->rps = (double)r->ok / f->secs;
	}
	for (i = 0; i < LG_E_COUNT; i++)
		f->errors += r->errors[i];
	pct4(&r->ttfb, f->ttfb);
	pct4(&r->connect, f->conn);
	pct4(&r->total, f->total);
	f->cpu_user_s = r->gw.user_end - r->gw.user_start;
	f->cpu_sys_s = r->gw.sys_end - r->gw.sys_start;
	f->cpu_s = f->cpu_user_s + f->cpu_sys_s;
	if (r->payload_bytes)
		f->cpu_per_gb = f->cpu_s / ((double)r->payload_bytes / 1e9);
	if (o->mode == LG_IDLE && r->idle_held && r->gw.rss_held_kb >= r->gw.rss_before_kb)
		f->rss_per_stream = (double)(r->gw.rss_held_kb - r->gw.rss_before_kb) * 1024.0 /
				    (double)r->idle_held;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		f->self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Print s as a JSON string (quotes, backslashes and controls escaped). */
static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void json_pct(FILE *out, const char *name, uint64_t n, const double v[4])
{
	fprintf(out, "  \"%s\": {\"n\": %llu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n",
		name, (unsigned long long)n, v[0], v[1], v[2], v[3]);
}

static void json_errors(FILE *out, const struct lg_result *r, uint64_t total)
{
	unsigned i;
	bool first = true;

	fprintf(out, "  \"errors\": {\"total\": %llu", (unsigned long long)total);
	for (i = 0; i < LG_E_COUNT; i++)
		fprintf(out, ", \"%s\": %llu", err_names[i], (unsigned long long)r->errors[i]);
	fputs(", \"socks_refused_by_code\": {", out);
	for (i = 0; i < LG_SOCKS_CODES; i++) {
		if (!r->socks_codes[i])
			continue;
		if (i < 8)
			fprintf(out, "%s\"%u\": %llu", first ? "" : ", ", i + 1,
				(unsigned long long)r->socks_codes[i]);
		else
			fprintf(out, "%s\"other\": %llu", first ? "" : ", ",
				(unsigned long long)r->socks_codes[i]);
		first = false;
	}
	fputs("}},\n  \"error_examples\": {", out);
	first = true;
	for (i = 0; i < LG_E_COUNT; i++) {
		if (!r->errors[i] || !r->example[i][0])
			continue;
		fprintf(out, "%s\"%s\": ", first ? "" : ", ", err_names[i]);
		json_str(out, r->example[i]);
		first = false;
	}
	fputs("},\n", out);
}

static void json_gateway(FILE *out, const struct lg_opts *o, const struct lg_result *r,
			 const struct lg_figures *f)
{
	if (!r->gw.watched) {
		fputs("  \"gateway_proc\": null,\n", out);
		return;
	}
	fprintf(out, "  \"gateway_proc\": {\"pid\": %d, \"exited\": %s, \"cpu_s\": %.3f, "
		"\"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f, "
		"\"cpu_s_per_gb\": %.3f, \"rss_peak_kb\": %llu, \"rss_max_sampled_kb\": %llu, "
		"\"rss_before_kb\": %llu, \"rss_end_kb\": %llu},\n",
		(int)o->gateway_pid, r->gw.gone ? "true" : "false", f->cpu_s, f->cpu_user_s, f->cpu_sys_s,
		f->cpu_per_gb,
		(unsigned long long)r->gw.hwm_kb, (unsigned long long)r->gw.rss_max_kb,
		(unsigned long long)r->gw.rss_before_kb, (unsigned long long)r->gw.rss_end_kb);
}

static void report_json(FILE *out, const struct lg_opts *o, struct lg_result *r,
			const struct lg_figures *f)
{
	fputs("{\n  \"label\": ", out);
	json_str(out, o->label);
	fprintf(out, ",\n  \"mode\": \"%s\", \"socks_port\": %u, \"target\": ", mode_names[o->mode],
		o->socks_port);
	json_str(out, o->target_host);
	fprintf(out, ", \"target_port\": %u, \"path\": ", o->target_port);
	json_str(out, o->path ? o->path : "/bytes/<size>");
	fprintf(out, ",\n  \"size_min\": %llu, \"size_max\": %llu, \"connections\": %u, "
		"\"iso_keys\": %u, \"rate\": %.3f, \"duration_s\": %.3f, \"requests_limit\": %llu,\n",
		(unsigned long long)o->size_min, (unsigned long long)o->size_max, o->connections,
		o->iso_keys, o->mode == LG_OPEN ? o->rate : 0.0, o->duration,
		(unsigned long long)o->requests);
	fprintf(out, "  \"elapsed_s\": %.3f, \"requests_started\": %llu, \"requests_ok\": %llu, "
		"\"unfinished\": %llu,\n  \"payload_bytes\": %llu, \"payload_mb_per_s\": %.3f, "
		"\"requests_per_s\": %.3f,\n", f->secs, (unsigned long long)r->started,
		(unsigned long long)r->ok, (unsigned long long)r->unfinished,
		(unsigned long long)r->payload_bytes, f->mbps, f->rps);
	json_pct(out, "ttfb_ms", r->ttfb.n, f->ttfb);
	json_pct(out, "connect_ms", r->connect.n, f->conn);
	json_pct(out, "request_ms", r->total.n, f->total);
	json_errors(out, r, f->errors);
	if (o->mode == LG_IDLE)
		fprintf(out, "  \"idle\": {\"held\": %llu, \"rss_held_kb\": %llu, "
			"\"rss_per_stream_bytes\": %.1f},\n", (unsigned long long)r->idle_held,
			(unsigned long long)r->gw.rss_held_kb, f->rss_per_stream);
	json_gateway(out, o, r, f);
	fprintf(out, "  \"loadgen_cpu_s\": %.3f\n}\n", f->self_cpu);
}

static void report_csv_header(FILE *out)
{
	unsigned i;

	fputs("label,mode,connections,iso_keys,size_min,size_max,elapsed_s,requests_started,"
	      "requests_ok,unfinished,errors_total,payload_bytes,payload_mb_per_s,requests_per_s,"
	      "ttfb_p50_ms,ttfb_p90_ms,ttfb_p99_ms,ttfb_max_ms,"
	      "connect_p50_ms,connect_p90_ms,connect_p99_ms,connect_max_ms", out);
	for (i = 0; i < LG_E_COUNT; i++)
		fprintf(out, ",err_%s", err_names[i]);
	fputs(",gw_cpu_s,gw_cpu_user_s,gw_cpu_sys_s,gw_cpu_s_per_gb,gw_rss_peak_kb,gw_rss_max_sampled_kb,gw_rss_end_kb,"
	      "idle_held,rss_per_stream_bytes,loadgen_cpu_s\n", out);
}

/* Append one CSV row (header first when the file is new or empty). Labels
 * with commas or quotes are quoted. Return 0 or -errno. */
static int report_csv(const char *path, const struct lg_opts *o, const struct lg_result *r,
		      const struct lg_figures *f)
{
	struct stat st;
	bool fresh = stat(path, &st) < 0 || st.st_size == 0;
	FILE *out = fopen(path, "a");
	unsigned i;
	const char *q = strpbrk(o->label, ",\"\n") ? "\"" : "";

	if (!out)
		return -errno;
	if (fresh)
		report_csv_header(out);
	fprintf(out, "%s", q);
	for (i = 0; o->label[i]; i++)
		fprintf(out, o->label[i] == '"' ? "\"\"" : "%c", o->label[i]);
	fprintf(out, "%s,%s,%u,%u,%llu,%llu,%.3f,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f", q,
		mode_names[o->mode], o->connections, o->iso_keys, (unsigned long long)o->size_min,
		(unsigned long long)o->size_max, f->secs, (unsigned long long)r->started,
		(unsigned long long)r->ok, (unsigned long long)r->unfinished,
		(unsigned long long)f->errors, (unsigned long long)r->payload_bytes, f->mbps, f->rps);
	for (i = 0; i < 4; i++)
		fprintf(out, ",%.3f", f->ttfb[i]);
	for (i = 0; i < 4; i++)
		fprintf(out, ",%.3f", f->conn[i]);
	for (i = 0; i < LG_E_COUNT; i++)
		fprintf(out, ",%llu", (unsigned long long)r->errors[i]);
	fprintf(out, ",%.3f,%.3f,%.3f,%.3f,%llu,%llu,%llu,%llu,%.1f,%.3f\n", f->cpu_s, f->cpu_user_s, f->cpu_sys_s,
		f->cpu_per_gb,
		(unsigned long long)r->gw.hwm_kb, (unsigned long long)r->gw.rss_max_kb,
		(unsigned long long)r->gw.rss_end_kb, (unsigned long long)r->idle_held,
		f->rss_per_stream, f->self_cpu);
	return fclose(out) == 0 ? 0 : -errno;
}

/* Write every TTFB sample in ms, one per line, in ascending order (the
 * percentiles sorted them). Return 0 or -errno. */
static int report_ttfb(const char *path, const struct lg_result *r)
{
	FILE *out = fopen(path, "w");
	size_t i;

	if (!out)
		return -errno;
	for (i = 0; i < r->ttfb.n; i++)
		fprintf(out, "%.3f\n", (double)r->ttfb.v[i] / 1e6);
	return fclose(out) == 0 ? 0 : -errno;
}

int lg_report(const struct lg_opts *o, struct lg_result *r)
{
	struct lg_figures f;
	int rc = 0;

	figures(o, r, &f);
	report_json(stdout, o, r, &f);
	if (fflush(stdout) != 0)
		rc = -errno;
	if (o->csv_path && report_csv(o->csv_path, o, r, &f) < 0) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", o->csv_path, strerror(errno));
		rc = -EIO;
	}
	if (o->ttfb_path && report_ttfb(o->ttfb_path, r) < 0) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", o->ttfb_path, strerror(errno));
		rc = -EIO;
	}
	return rc;
}

void lg_progress(const struct lg_opts *o, const struct lg_result *r, unsigned open,
		 uint64_t now_ns)
{
	static uint64_t last_ns, last_bytes;
	double dt = last_ns ? (double)(now_ns - last_ns) / 1e9 : (double)(now_ns - r->t_begin) / 1e9;
	double mbps = dt > 0 ? (double)(r->verified_bytes - last_bytes) / 1e6 / dt : 0;
	uint64_t errs = 0;
	unsigned i;

	for (i = 0; i < LG_E_COUNT; i++)
		errs += r->errors[i];
	fprintf(stderr, "\r%s%s%7.1fs  ok %-8llu err %-6llu open %-6u %s %-8llu %8.1f MB/s   ",
		o->label, o->label[0] ? " " : "", (double)(now_ns - r->t_begin) / 1e9,
		(unsigned long long)r->ok, (unsigned long long)errs, open,
		o->mode == LG_IDLE ? "held" : "started", (unsigned long long)(o->mode == LG_IDLE ?
		r->idle_held : r->started), mbps);
	last_ns = now_ns;
	last_bytes = r->verified_bytes;
}
