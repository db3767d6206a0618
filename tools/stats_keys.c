/* stats_keys.c: prints the keys of hakmem's stats JSON, one dotted path per line, expanded from
 * the list that declares them (core/stats.h), for the e2e test that checks every one is there. */
#include <stdio.h>
#include <string.h>

#include "stats.h"

int main(void)
{
#define HAK__X(group, key, src, help) \
	printf("%s%s%s\n", strcmp(#group, "top") ? #group : "", strcmp(#group, "top") ? "." : "", #key);
	HAK_STATS_FIELDS(HAK__X)
#undef HAK__X
	return 0;
}
