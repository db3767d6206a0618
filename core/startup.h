/* startup.h: what the library constructor does after the core is up: read the configuration,
 * load and install the policies, size the mapping budget. */
#ifndef HAK_STARTUP_H
#define HAK_STARTUP_H

#include "config.h"

HAK_HIDDEN extern enum hak_stats_mode hak__stats_mode;
HAK_HIDDEN void hak__startup(void);

#endif
