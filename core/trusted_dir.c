/* trusted_dir.c: the walk from / down to the folder of a file hakmem trusts, checking each folder
 * on the descriptor the next step looks up in (the rule and why: trusted_dir.h). */
#include "trusted_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static const char *errno_text(int e)
{
	const char *s = strerrordesc_np(e);
	return s ? s : "unknown error";
}

struct walk {
	char rest[PATH_MAX + PATH_MAX / 2]; /* components still to walk, from `pos` */
	size_t pos;
	char shown[PATH_MAX]; /* the absolute path of the folder the walk is in, for messages */
	size_t shown_len;
	int links; /* symbolic links followed so far */
	bool secure;
	uid_t me;
	int *err;
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 3, 4))) static int refuse(struct walk *w, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->why, w->whylen, fmt, ap);
	va_end(ap);
	*w->err = e;
	return -1;
}

static const char *shown(struct walk *w, char *buf, size_t size)
{
	return hak__log_quote(buf, size, w->shown, true);
}

/* The rule for one folder, on its descriptor. 0, or -1 with the reason. */
static int check_folder(struct walk *w, int fd)
{
	struct stat st;
	char q[100];
	if (fstat(fd, &st) != 0) {
		int e = errno;
		return refuse(w, e, "folder %s: cannot fstat: %s", shown(w, q, sizeof q), errno_text(e));
	}
	if (!S_ISDIR(st.st_mode))
		return refuse(w, ENOTDIR, "%s is not a folder", shown(w, q, sizeof q));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return refuse(w, EPERM, "folder %s is %s-writable (mode %04o), expected no write bit for group and "
			      "others on every folder up to /", shown(w, q, sizeof q),
			      (st.st_mode & S_IWOTH) ? "world" : "group", (unsigned)(st.st_mode & 07777));
	if (st.st_uid != 0 && (w->secure || st.st_uid != w->me)) {
		if (w->secure)
			return refuse(w, EPERM, "folder %s is owned by uid %u, expected root (secure-execution mode)",
				      shown(w, q, sizeof q), (unsigned)st.st_uid);
		return refuse(w, EPERM, "folder %s is owned by uid %u, expected root or uid %u", shown(w, q, sizeof q),
			      (unsigned)st.st_uid, (unsigned)w->me);
	}
	return 0;
}

static int open_root(struct walk *w)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return refuse(w, e, "folder /: cannot open: %s", errno_text(e));
	}
	w->shown[0] = '/';
	w->shown[1] = '\0';
	w->shown_len = 1;
	if (check_folder(w, fd) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Puts `s` (n bytes) in front of what is left to walk, with a '/' between. */
static int push_front(struct walk *w, const char *s, size_t n)
{
	size_t left = strlen(w->rest + w->pos);
	if (n + 1 + left + 1 > sizeof w->rest)
		return refuse(w, ENAMETOOLONG, "path longer than %zu bytes after following its links", sizeof w->rest - 1);
	memmove(w->rest + n + 1, w->rest + w->pos, left + 1);
	memcpy(w->rest, s, n);
	w->rest[n] = '/';
	w->pos = 0;
	return 0;
}

static int shown_append(struct walk *w, const char *comp, size_t n)
{
	size_t sep = w->shown_len > 1;
	if (w->shown_len + sep + n + 1 > sizeof w->shown)
		return refuse(w, ENAMETOOLONG, "path longer than %zu bytes", sizeof w->shown - 1);
	if (sep)
		w->shown[w->shown_len++] = '/';
	memcpy(w->shown + w->shown_len, comp, n);
	w->shown_len += n;
	w->shown[w->shown_len] = '\0';
	return 0;
}

static void shown_up(struct walk *w)
{
	while (w->shown_len > 1 && w->shown[w->shown_len - 1] != '/')
		w->shown_len--;
	if (w->shown_len > 1)
		w->shown_len--; /* the '/' before the last component */
	w->shown[w->shown_len] = '\0';
}

/* Walks w->rest from "/"; returns the O_PATH descriptor of the last folder, or -1. */
static int walk(struct walk *w)
{
	int fd = open_root(w);
	char q[100];
	while (fd >= 0) {
		while (w->rest[w->pos] == '/')
			w->pos++;
		if (!w->rest[w->pos])
			return fd;
		char *comp = w->rest + w->pos;
		size_t n = strcspn(comp, "/");
		char saved = comp[n];
		comp[n] = '\0';
		w->pos += n + (saved ? 1 : 0);
		if (n == 1 && comp[0] == '.')
			continue;
		if (n == 2 && comp[0] == '.' && comp[1] == '.') {
			/* The parent of a folder reached by name from its parent: already checked, checked again. */
			int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			int e = errno;
			close(fd);
			if (up < 0)
				return refuse(w, e, "folder %s/..: cannot open: %s", shown(w, q, sizeof q), errno_text(e));
			shown_up(w);
			if (check_folder(w, up) != 0) {
				close(up);
				return -1;
			}
			fd = up;
			continue;
		}
		int next = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			close(fd);
			shown_append(w, comp, n);
			return refuse(w, e, "cannot open: %s (%s)", errno_text(e), shown(w, q, sizeof q));
		}
		struct stat st;
		if (fstat(next, &st) != 0) {
			int e = errno;
			close(next);
			close(fd);
			return refuse(w, e, "cannot fstat %s: %s", comp, errno_text(e));
		}
		if (S_ISLNK(st.st_mode)) {
			/* In a folder found safe: only its owner (or root) can have put it there. */
			char target[PATH_MAX];
			ssize_t len = readlinkat(next, "", target, sizeof target);
			int e = errno;
			close(next);
			if (len < 0 || (size_t)len >= sizeof target || len == 0) {
				close(fd);
				return refuse(w, len < 0 ? e : ENAMETOOLONG, "cannot read the symbolic link %s in %s",
					      comp, shown(w, q, sizeof q));
			}
			if (++w->links > HAK_TRUSTED_LINKS_MAX) {
				close(fd);
				return refuse(w, ELOOP, "more than %d symbolic links in the path", HAK_TRUSTED_LINKS_MAX);
			}
			if (push_front(w, target, (size_t)len) != 0) {
				close(fd);
				return -1;
			}
			if (target[0] == '/') {
				close(fd);
				fd = open_root(w);
			}
			continue;
		}
		close(fd);
		fd = next;
		if (shown_append(w, comp, n) != 0 || check_folder(w, fd) != 0) {
			close(fd);
			return -1;
		}
	}
	return -1;
}

static int start(struct walk *w, const char *dir, size_t n, int *err, char *why, size_t whylen)
{
	w->rest[0] = '\0';
	w->pos = 0;
	w->links = 0;
	w->secure = hak__secure_mode();
	w->me = getuid();
	w->err = err;
	w->why = why;
	w->whylen = whylen;
	if (dir[0] != '/') {
		/* A relative path: the current folder's own folders are above it. */
		if (!getcwd(w->rest, sizeof w->rest)) {
			int e = errno;
			return refuse(w, e, "cannot find the current folder: %s", errno_text(e));
		}
		size_t c = strlen(w->rest);
		if (c + 1 + n + 1 > sizeof w->rest)
			return refuse(w, ENAMETOOLONG, "path longer than %zu bytes", sizeof w->rest - 1);
		w->rest[c] = '/';
		memcpy(w->rest + c + 1, dir, n);
		w->rest[c + 1 + n] = '\0';
	} else {
		if (n + 1 > sizeof w->rest)
			return refuse(w, ENAMETOOLONG, "path longer than %zu bytes", sizeof w->rest - 1);
		memcpy(w->rest, dir, n);
		w->rest[n] = '\0';
	}
	return 0;
}

int hak__trusted_dir_open(const char *dir, int *err, char *why, size_t whylen)
{
	struct walk w;
	if (start(&w, dir, strlen(dir), err, why, whylen) != 0)
		return -1;
	int fd = walk(&w);
	if (fd >= 0)
		*err = 0;
	return fd;
}

int hak__trusted_parent_open(const char *path, const char **base, int *err, char *why, size_t whylen)
{
	size_t len = strlen(path);
	const char *slash = memrchr(path, '/', len);
	struct walk w;
	int rc;
	if (len && path[len - 1] == '/') {
		*base = "."; /* "dir/": the folder itself is what is opened */
		rc = start(&w, path, len, err, why, whylen);
	} else if (!slash) {
		*base = path;
		rc = start(&w, ".", 1, err, why, whylen);
	} else {
		*base = slash + 1;
		rc = start(&w, slash == path ? "/" : path, slash == path ? 1 : (size_t)(slash - path), err, why, whylen);
	}
	if (rc != 0)
		return -1;
	int fd = walk(&w);
	if (fd >= 0)
		*err = 0;
	return fd;
}
