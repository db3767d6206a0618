/* config_doc.c: prints the configuration reference generated from the one table that declares
 * the settings (HAK_CORE_SETTINGS in core/config.h). `make docs` puts it into the README. */
#include <stdio.h>

#include "config.h"

int main(void)
{
	hak__config_doc(stdout);
	return 0;
}
