/* fork_stdio: fork() while other threads read through stdio and flush every stream: the lock
 * cycle between the allocator's fork handler and glibc's stdio. Readers open a file of long
 * lines, rewind it (which allocates its buffer), set its buffering (which allocates too) and
 * read it with getline, each call allocating a new line (lines up to 300 KB: the allocator's
 * locked paths), all while holding the FILE's lock; a flusher calls fflush(NULL), which holds
 * glibc's list lock while it takes every FILE's lock in turn; forkers fork. glibc's fork() takes
 * the list lock after the atfork prepare handlers: an allocator whose prepare handler holds its
 * locks by then waits for the flusher, the flusher for a reader, the reader (in malloc) for the
 * allocator's lock. Each child allocates, reads the file with stdio, writes through stdio and
 * _exits 0. A deadlock shows as the runner's timeout.
 *   fork_stdio [FORKS]    default 100 forks (FORKERS threads forking in turn) */
#include "rel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define READERS 3
#define FORKERS 2

static atomic_int stop, forks;
static char path[64];

static void read_file(FILE *fp, unsigned lines)
{
	for (unsigned i = 0; i < lines; i++) {
		char *line = NULL; /* a new line buffer each time: getdelim allocates under the FILE lock */
		size_t n = 0;
		ssize_t got = getline(&line, &n, fp);
		free(line);
		if (got < 0) {
			rewind(fp);
			return;
		}
	}
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		FILE *fp = fopen(path, "r");
		REL_CHECK(fp, "reader: fopen %s: %s", path, strerror(errno));
		seed = seed * 1103515245 + 12345;
		if (seed >> 31) {
			REL_CHECK(setvbuf(fp, NULL, _IOFBF, 0) == 0, "setvbuf failed"); /* allocates the buffer */
		} else {
			rewind(fp); /* no buffer yet: the seek allocates it */
		}
		read_file(fp, 4 + (seed >> 8) % 8);
		rewind(fp);
		read_file(fp, 3);
		fclose(fp);
	}
	return NULL;
}

static void *flusher(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		fflush(NULL); /* the list lock, then every FILE's lock */
	return NULL;
}

static void child(void)
{
	void *v[64];
	for (int i = 0; i < 64; i++)
		REL_CHECK((v[i] = malloc((size_t)i * 61 + 1)) != NULL, "child: malloc failed");
	FILE *fp = fopen(path, "r");
	REL_CHECK(fp, "child: fopen failed");
	read_file(fp, 5);
	fclose(fp);
	FILE *out = fopen("/dev/null", "w");
	REL_CHECK(out, "child: fopen /dev/null failed");
	for (int i = 0; i < 64; i++) {
		fprintf(out, "%d %p\n", i, v[i]);
		free(v[i]);
	}
	fclose(out);
	fflush(NULL);
	_exit(0);
}

static int want = 100;

static void *forker(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&forks, 1) < want) {
		pid_t pid = fork();
		REL_CHECK(pid >= 0, "fork failed: %s", strerror(errno));
		if (pid == 0)
			child();
		int st;
		REL_CHECK(waitpid(pid, &st, 0) == pid, "waitpid failed");
		REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child ended with status 0x%x", (unsigned)st);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		want = atoi(argv[1]);
	/* The file: 40 lines from 10 B to 300 KB. */
	snprintf(path, sizeof path, "/tmp/fork_stdio.%d", (int)getpid());
	FILE *fp = fopen(path, "w");
	REL_CHECK(fp, "cannot create %s", path);
	unsigned seed = 99;
	for (int i = 0; i < 40; i++) {
		seed = seed * 1103515245 + 12345;
		size_t len = i % 4 == 3 ? 140000 + (seed >> 8) % 160000 : 10 + (seed >> 8) % 4000;
		for (size_t k = 0; k < len; k++)
			fputc('a' + (int)(k % 26), fp);
		fputc('\n', fp);
	}
	REL_CHECK(fclose(fp) == 0, "cannot write %s", path);

	pthread_t r[READERS], fl, fk[FORKERS];
	for (int i = 0; i < READERS; i++)
		REL_CHECK(pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create failed");
	REL_CHECK(pthread_create(&fl, NULL, flusher, NULL) == 0, "pthread_create failed");
	for (int i = 0; i < FORKERS; i++)
		REL_CHECK(pthread_create(&fk[i], NULL, forker, NULL) == 0, "pthread_create failed");
	for (int i = 0; i < FORKERS; i++)
		pthread_join(fk[i], NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	pthread_join(fl, NULL);
	unlink(path);
	printf("fork_stdio: %d forks while %d threads read with getline/rewind/setvbuf and one calls fflush(NULL): "
	       "ok\n",
	       want, READERS);
	return 0;
}
