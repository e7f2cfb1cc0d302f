/* onionring: the program's entry point. Parses the command line; the
 * gateway itself is started from here as the layers below come in. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "onionring_build.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: onionring [-f FILE] [--verify-config] [--help] [--version]\n"
		"  -f, --config FILE   read the torrc-style configuration FILE\n"
		"      --verify-config check the configuration and exit\n"
		"      --help          show this help\n"
		"      --version       show the version and build options\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "verify-config", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	int verify = 0, c;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			config_path = optarg;
			break;
		case 'V':
			verify = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			printf("onionring %s (allocator %s, cell batch %d, magazine %d)\n", ONIONRING_VERSION,
			       ONIONRING_ALLOCATOR, ONIONRING_CELL_BATCH, ONIONRING_MAGAZINE_SIZE);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	(void)config_path;
	(void)verify;
	log_notice("onionring %s starting", ONIONRING_VERSION);
	return 0;
}
