/* trusted_dir.h: the folders above a file hakmem trusts (a plugin, the INI file). A file that is
 * safe itself is not safe in a folder others may write to: they can replace it between two
 * starts. So, as sudo does for its plugins, every folder from / down to the one holding the file
 * must be owned by root or by the real user (only root in secure-execution mode) and writable by
 * neither group nor others; a world-writable folder with the sticky bit (/tmp) is refused too.
 *
 * The walk opens each folder with O_PATH | O_NOFOLLOW relative to the one above it, starting at
 * "/" (a relative path starts with the current folder's own path, from getcwd), and checks it
 * with fstat on that descriptor: what is checked is what the next step looks up in, so a folder
 * swapped for a symbolic link after its check cannot redirect the walk. A symbolic link met on
 * the way (/lib -> usr/lib) lies in a folder already found safe; the walk goes on through its
 * target, whose folders are checked the same way (at most 40 links). The file itself is then
 * opened relative to the last folder's descriptor (never through a link: hak__open_trusted). */
#ifndef HAK_TRUSTED_DIR_H
#define HAK_TRUSTED_DIR_H

#include <stddef.h>

#include "log.h"

#define HAK_TRUSTED_LINKS_MAX 40 /* symbolic links followed in one walk, as the kernel allows */

/* Splits `path` into its folder and last component, walks and checks the folder as above.
 * Returns an O_PATH descriptor of the folder with *base pointing at the last component inside
 * `path` ("." when path ends with '/'), or -1 with *err an errno value and `why` the reason
 * ("folder /tmp/x is world-writable (mode 0777), expected ..."). */
HAK_HIDDEN int hak__trusted_parent_open(const char *path, const char **base, int *err, char *why, size_t whylen);

/* The walk alone, for a folder: an O_PATH descriptor of `dir` checked with every folder above it,
 * or -1 as above. */
HAK_HIDDEN int hak__trusted_dir_open(const char *dir, int *err, char *why, size_t whylen);

#endif
