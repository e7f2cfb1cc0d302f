/* onionring: the program's entry point. Parses the command line, loads and
 * checks the configuration (core/config.h) and applies its Log setting; the
 * gateway itself is started from here as the layers below come in. Not for
 * configuration rules (core/config.c owns them) or runtime logic. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/gateway.h"
#include "core/config.h"
#include "core/log.h"
#include "onionring_build.h"

enum { OPT_VERIFY = 256, OPT_VERSION, OPT_LIST_KEYS };

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: onionring [-f FILE] [--verify-config] [--list-config-keys] [--help] [--version]\n"
		"  -f, --config FILE     read the torrc-style configuration FILE (default: none, all defaults)\n"
		"      --verify-config   check the configuration, print \"Configuration was valid\" and exit\n"
		"      --list-config-keys print every configuration key as Markdown (doc/configuration.md)\n"
		"  -h, --help            show this help\n"
		"      --version         show the version and build options\n");
}

/* Send log lines where the first Log line of cfg (borrowed) says. core/log
 * has one destination, so later Log lines are reported, not silently dropped.
 * Main thread, before other threads start. Return 0 or -1 after a message. */
static int apply_log(const struct config *cfg)
{
	const struct config_log *lg = &cfg->log.v[0];
	const char *path = NULL;
	int r;

	log_set_safe_logging(cfg->safe_logging);
	if (cfg->log.n == 0)
		return 0;
	if (lg->sink == CONFIG_LOG_FILE)
		path = lg->path;
	else if (lg->sink == CONFIG_LOG_STDOUT)
		path = "/dev/stdout";
	r = log_set_file(path);
	if (r < 0) {
		fprintf(stderr, "onionring: cannot open log file %s: %s\n", path, strerror(-r));
		return -1;
	}
	log_set_level(lg->min);
	if (cfg->log.n > 1)
		log_warn("only the first Log line is used for now; %zu more ignored", cfg->log.n - 1);
	return 0;
}

/* Load the file at path (borrowed; NULL: defaults) into *out (owned). On a
 * bad configuration print the message on stderr and return -1. */
static int load_config(const char *path, struct config **out)
{
	char err[CONFIG_ERR_MAX];

	if (!path) {
		*out = config_new_defaults();
		return 0;
	}
	if (config_load_file(path, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "onionring: %s\n", err);
		return -1;
	}
	return 0;
}

static int list_config_keys(void)
{
	char *doc = config_doc_markdown();

	fputs(doc, stdout);
	free(doc);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "verify-config", no_argument, NULL, OPT_VERIFY },
		{ "list-config-keys", no_argument, NULL, OPT_LIST_KEYS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	struct config *cfg = NULL;
	struct gateway *gw;
	char err[512];
	int verify = 0, c, rc;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			config_path = optarg;
			break;
		case OPT_VERIFY:
			verify = 1;
			break;
		case OPT_LIST_KEYS:
			return list_config_keys();
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("onionring %s (allocator %s, cell batch %d, magazine %d, default workers %d)\n",
			       ONIONRING_VERSION, ONIONRING_ALLOCATOR, ONIONRING_CELL_BATCH, ONIONRING_MAGAZINE_SIZE,
			       ONIONRING_DEFAULT_WORKERS);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "onionring: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (load_config(config_path, &cfg) < 0)
		return 1;
	if (verify) {
		puts("Configuration was valid"); /* tor's words for --verify-config */
		config_free(cfg);
		return 0;
	}
	if (apply_log(cfg) < 0) {
		config_free(cfg);
		return 1;
	}
	log_notice("onionring %s starting", ONIONRING_VERSION);
	gw = gateway_new(cfg, config_path, err, sizeof(err));
	if (!gw) {
		log_err("cannot start: %s", err);
		return 1;
	}
	rc = gateway_run(gw);
	gateway_free(gw);
	return rc;
}
