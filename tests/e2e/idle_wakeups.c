/* An idle program costs nothing: once the heap has been quiet for the trim helper's last passes,
 * the helper does not wake at all (it used to wake every idle_ms for ever). 16 MB of small blocks
 * come and go, the program sleeps 1 s (the helper's passes after the last activity run then),
 * finds the thread named "hakmem-helper", sleeps 1 s more, reads the helper's voluntary context
 * switches (/proc/self/task/TID/status, without allocating), sleeps 1 s and reads them again:
 * no new one. Under a trim policy
 * without a helper (eager, none) there is nothing to count.
 * Usage: idle_wakeups; prints what it saw. */
#include "e2e.h"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

/* The id of the thread named hakmem-helper, or 0 (opendir and stdio allocate: this is done once,
 * and the program then waits for the helper to settle again). */
static long find_helper(void)
{
    DIR *d = opendir("/proc/self/task");
    CHECK(d, "cannot open /proc/self/task");
    long tid = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        if (strncmp(comm, "hakmem-helper", 13) == 0)
            tid = atol(e->d_name);
    }
    closedir(d);
    return tid;
}

/* Its voluntary context switches, read without allocating (open/read into the stack). */
static long switches(long tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "cannot open %s", path);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0, "cannot read %s", path);
    buf[n] = '\0';
    const char *p = strstr(buf, "voluntary_ctxt_switches:");
    CHECK(p, "no voluntary_ctxt_switches in %s", path);
    return atol(p + strlen("voluntary_ctxt_switches:"));
}

int main(void)
{
    enum { N = 262144 };
    static void *v[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            CHECK((v[i] = malloc(64)) != NULL, "malloc failed");
        for (int i = 0; i < N; i++)
            free(v[i]);
    }
    struct timespec second = {1, 0};
    nanosleep(&second, NULL); /* the helper's passes after the last activity */
    long tid = find_helper();
    if (!tid) {
        printf("idle_wakeups: no helper thread (a trim policy without one, or not hakmem): ok\n");
        return 0;
    }
    nanosleep(&second, NULL); /* and after find_helper's own allocations */
    long a = switches(tid);
    nanosleep(&second, NULL);
    long b = switches(tid);
    CHECK(b == a, "the idle program's trim helper woke %ld times in 1 s with nothing to do", b - a);
    printf("idle_wakeups: the helper did not wake in 1 s of an idle program (%ld switches in all): ok\n", b);
    return 0;
}
