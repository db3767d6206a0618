/* services.h: layer 7, the table of core services plugins receive, and the policies' start-up in
 * the core (services.c). */
#ifndef HAK_SERVICES_H
#define HAK_SERVICES_H

#include "policy.h"

HAK_HIDDEN extern const struct hak_core_api hak__core_api;
HAK_HIDDEN void hak__policies_boot(void);                  /* built-in defaults, no I/O */
HAK_HIDDEN void hak__policy_install(struct hak_policy *p); /* p becomes its kind's active policy */
HAK_HIDDEN void hak__policies_stop_all(void);              /* at exit */
/* helper.c: core_api spawn_helper, helper_sleep, helper_wake, and the helper after fork. */
HAK_HIDDEN int hak__helper_spawn(void *(*fn)(void *), void *arg);
HAK_HIDDEN int hak__helper_sleep(uint64_t timeout_ns);
HAK_HIDDEN void hak__helper_wake(void);
HAK_HIDDEN void hak__helper_fork_child(void);

#endif
