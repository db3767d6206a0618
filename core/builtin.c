/* builtin.c: the built-in default policy of each kind, compiled into the core from the same
 * sources as their plugins (-DHAK_BUILTIN). Shared by start-up and the `hakmem check` tool. */
#include "hakmem_internal.h"

const struct hak_policy_desc *hak__builtin_desc(uint32_t kind)
{
	switch (kind) {
	case HAK_POLICY_TRIM:
		return &hak__builtin_trim_idle;
	case HAK_POLICY_SUPERSLAB:
		return &hak__builtin_superslab_fixed;
	default:
		return &hak__builtin_ownership_tls;
	}
}
