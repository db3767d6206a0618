/* startup.h: what the library constructor does after the core is up: read the configuration,
 * load and install the policies, size the mapping budget. */
#ifndef HAK_STARTUP_H
#define HAK_STARTUP_H

#include "config.h"

HAK_HIDDEN extern enum hak_stats_mode hak__stats_mode;
HAK_HIDDEN void hak__startup(void);
HAK_HIDDEN void hak__fork_install(void); /* fork.c: the atfork handlers */
HAK_HIDDEN int hak__fork(void);          /* fork.c: glibc's fork with signals blocked (a pid_t) */
HAK_HIDDEN void hak__stats_keep_stderr(void);
HAK_HIDDEN int hak__stats_exit_fd(void); /* stderr as it was at start-up, if still open */

#endif
