/* Status code names (see status.h). */
#include "core/status.h"

const char *parse_result_name(enum parse_result r)
{
	switch (r) {
	case PARSE_OK:
		return "ok";
	case PARSE_NEED_MORE:
		return "need-more";
	case PARSE_INVALID:
		return "invalid";
	}
	return "?";
}
