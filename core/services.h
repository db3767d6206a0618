/* services.h: layer 7, the table of core services plugins receive, and the policies' start-up in
 * the core (services.c). */
#ifndef HAK_SERVICES_H
#define HAK_SERVICES_H

#include "policy.h"

HAK_HIDDEN extern const struct hak_core_api hak__core_api;
HAK_HIDDEN void hak__policies_boot(void);                  /* built-in defaults, no I/O */
HAK_HIDDEN void hak__policy_install(struct hak_policy *p); /* p becomes its kind's active policy */
HAK_HIDDEN void hak__policies_stop_all(void);              /* at exit */

#endif
