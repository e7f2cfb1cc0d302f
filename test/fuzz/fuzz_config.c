/* libFuzzer target: the configuration reader on arbitrary text. It must
 * either load or fail with a "NAME:LINE: ..." message, never crash, leak or
 * read past the input. Not for checking values (test_config does that). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *defaults;
	/* an exact-size copy so ASan sees any read past the end */
	char *text = malloc(size ? size : 1);
	char err[CONFIG_ERR_MAX];
	struct config *cfg = NULL;
	int r;

	if (!defaults) {
		log_set_level(LOG_ERR); /* "last value wins" warnings are expected */
		defaults = config_new_defaults();
	}
	memcpy(text, data, size);
	r = config_load_string(text, size, "f.conf", &cfg, err, sizeof(err));
	BUG_ON((r == 0) != (cfg != NULL));
	BUG_ON(r != 0 && strncmp(err, "f.conf:", 7) != 0);
	if (cfg) {
		const struct config_key *changed[8];

		(void)config_diff(defaults, cfg, changed, 8);
	}
	config_free(cfg);
	free(text);
	return 0;
}
