/* test_trace_format.c: the trace file (core/trace_format.[ch]) without the allocator: what the
 * recorder's encoders write, the reader and the event decoder read back exactly; and a truncated
 * file (cut at every byte), another format version, huge sizes, unknown operations and record
 * types, references to blocks that do not exist and overlong varints each give one clear error,
 * never a crash or a read out of bounds (make test-asan runs this under ASan). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "trace_format.h"

/* ---- a trace in memory -------------------------------------------------------------------- */

struct mem {
	const unsigned char *p;
	size_t len, pos, step; /* step: most bytes one read returns (0: all) */
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t left = m->len - m->pos;
	if (n > left)
		n = left;
	if (m->step && n > m->step)
		n = m->step;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

struct fixture {
	struct hak_trace_reader r;
	unsigned char buf[HAK_TRACE_READ_BUF];
};

static int setup(void **state)
{
	*state = malloc(sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static unsigned char *put_record(unsigned char *w, unsigned type, const unsigned char *payload, size_t len)
{
	*w++ = (unsigned char)type;
	w = hak__trace_put_varint(w, len);
	memcpy(w, payload, len);
	return w + len;
}

#define PKEY 0x1234567890abcdefULL

/* The events of thread 2: every operation, a long pause, a block of thread 1. */
static size_t thread2_events(unsigned char *out)
{
	unsigned char *w = out;
	uint64_t seq = 0;
	w = hak__trace_put_varint(hak__trace_put_op(w, HAK_TOP_MALLOC, 3), 100); /* block (2,1) */
	seq++;
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(w, HAK_TOP_CALLOC, 0), 10), 24);
	seq++; /* (2,2) */
	w = hak__trace_put_ref(hak__trace_put_op(w, HAK_TOP_FREE, 1000000000), 2, seq, HAK_TRACE_ID(2, 1));
	w = hak__trace_put_varint(hak__trace_put_ref(hak__trace_put_op(w, HAK_TOP_REALLOC, 0), 2, seq,
						      HAK_TRACE_ID(2, 2)), 200);
	seq++; /* (2,3) */
	w = hak__trace_put_varint(hak__trace_put_ref(hak__trace_put_op(w, HAK_TOP_REALLOC_MOVED, 1), 2, seq, 0), 7);
	seq++; /* (2,4): realloc(NULL, 7) */
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(w, HAK_TOP_MEMALIGN, 2),
							HAK_TALIGN_POSIX_MEMALIGN | 12 << 3), 5000);
	seq++; /* (2,5) */
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_ref(hak__trace_put_op(w, HAK_TOP_FREE_SIZED, 0), 2,
										 seq, HAK_TRACE_ID(1, 77)), 48), 6);
	w = hak__trace_put_varint(hak__trace_put_op(w, HAK_TOP_TRIM, 14), 0);
	w = hak__trace_put_varint(hak__trace_put_op(w, HAK_TOP_FORK, 15), 1);
	w = hak__trace_put_op(w, HAK_TOP_THREAD_END, 0);
	return (size_t)(w - out);
}

/* A whole file: header, PROCESS, THREAD, EVENTS (in two records), CLOCK, EXITED, STOPPED, END. */
static size_t sample_trace(unsigned char *out)
{
	static const char text[] = "format=1\nprogram=unit\nhakmem=0.1.0\n";
	unsigned char *w = out + hak__trace_header(out, text, sizeof text - 1);
	unsigned char p[512], *q = p;
	q = hak__trace_put_varint(q, PKEY);
	q = hak__trace_put_varint(q, 4242);
	q = hak__trace_put_varint(q, 0);
	q = hak__trace_put_varint(q, HAK_TPROC_FORKED);
	q = hak__trace_put_varint(q, 1700000000000000000ull);
	q = hak__trace_put_varint(q, 3);
	q = hak__trace_put_varint(q, 9);
	q = hak__trace_put_string(q, "unit", 4);
	q = hak__trace_put_string(q, "unit\0-x", 7);
	w = put_record(w, HAK_TREC_PROCESS, p, (size_t)(q - p));
	q = hak__trace_put_varint(p, PKEY);
	q = hak__trace_put_varint(q, 2);
	q = hak__trace_put_varint(q, 99);
	q = hak__trace_put_varint(q, 3);
	q = hak__trace_put_varint(q, 5000);
	w = put_record(w, HAK_TREC_THREAD, p, (size_t)(q - p));
	unsigned char ev[256];
	size_t n = thread2_events(ev), half = 0;
	/* split at an event boundary: after the calloc (the first two events) */
	{
		struct hak_trace_decoder d = {.idx = 2};
		const unsigned char *s = ev;
		struct hak_trace_event e;
		char err[200];
		for (int i = 0; i < 2; i++)
			assert_int_equal(hak__trace_decode(&d, &s, ev + n, &e, err, sizeof err), 0);
		half = (size_t)(s - ev);
	}
	unsigned char rec[600];
	q = hak__trace_put_varint(hak__trace_put_varint(rec, PKEY), 2);
	memcpy(q, ev, half);
	w = put_record(w, HAK_TREC_EVENTS, rec, (size_t)(q - rec) + half);
	q = hak__trace_put_varint(hak__trace_put_varint(rec, PKEY), 2);
	memcpy(q, ev + half, n - half);
	w = put_record(w, HAK_TREC_EVENTS, rec, (size_t)(q - rec) + n - half);
	q = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_varint(p, PKEY), 5001), 123456789);
	w = put_record(w, HAK_TREC_CLOCK, p, (size_t)(q - p));
	q = hak__trace_put_varint(hak__trace_put_varint(p, PKEY), 2);
	w = put_record(w, HAK_TREC_EXITED, p, (size_t)(q - p));
	q = hak__trace_put_string(hak__trace_put_varint(p, PKEY), "disk full", 9);
	w = put_record(w, HAK_TREC_STOPPED, p, (size_t)(q - p));
	q = hak__trace_put_varint(hak__trace_put_varint(p, PKEY), HAK_TRACE_COUNT_N + 2);
	for (unsigned i = 0; i < HAK_TRACE_COUNT_N + 2; i++)
		q = hak__trace_put_varint(q, 1000 + i);
	w = put_record(w, HAK_TREC_END, p, (size_t)(q - p));
	return (size_t)(w - out);
}

/* Reads every record and decodes the events; 0 at a clean end, -1 at the first error. */
static int read_all(struct fixture *f, struct mem *m, unsigned *records, unsigned *events, char *err, size_t errlen)
{
	int rc = hak__trace_open(&f->r, mem_read, m, f->buf);
	if (rc) {
		snprintf(err, errlen, "%s", f->r.err);
		return -1;
	}
	struct hak_trace_decoder d = {.idx = 2, .tick = 5000};
	struct hak_trace_record rec;
	*records = *events = 0;
	while ((rc = hak__trace_next(&f->r, &rec)) == 1) {
		(*records)++;
		if (rec.type == HAK_TREC_EVENTS) {
			uint32_t idx;
			const unsigned char *ev, *end;
			size_t len;
			if (hak__trace_parse_events(&rec, &idx, &ev, &len, err, errlen))
				return -1;
			end = ev + len;
			while (ev < end) {
				struct hak_trace_event e;
				if (hak__trace_decode(&d, &ev, end, &e, err, errlen))
					return -1;
				(*events)++;
			}
		}
	}
	if (rc < 0)
		snprintf(err, errlen, "%s", f->r.err);
	return rc;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void round_trip(void **state)
{
	struct fixture *f = *state;
	static unsigned char file[4096];
	size_t len = sample_trace(file);
	for (size_t step = 0; step <= 7; step += 7) { /* one read, and 7 bytes at a time */
		struct mem m = {file, len, 0, step};
		assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), 0);
		assert_int_equal(f->r.version, HAK_TRACE_VERSION);
		char v[64];
		assert_true(hak__trace_header_value(&f->r, "program", v, sizeof v));
		assert_string_equal(v, "unit");
		assert_false(hak__trace_header_value(&f->r, "prog", v, sizeof v));
		struct hak_trace_record rec;
		char err[256];
		/* PROCESS */
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		assert_int_equal(rec.type, HAK_TREC_PROCESS);
		assert_true(rec.pkey == PKEY);
		struct hak_trace_process pr;
		assert_int_equal(hak__trace_parse_process(&rec, &pr, err, sizeof err), 0);
		assert_int_equal(pr.pid, 4242);
		assert_int_equal(pr.flags, HAK_TPROC_FORKED);
		assert_int_equal(pr.fork_thread, 3);
		assert_int_equal(pr.fork_number, 9);
		assert_int_equal(pr.program_len, 4);
		assert_memory_equal(pr.program, "unit", 4);
		assert_int_equal(pr.cmdline_len, 7);
		assert_memory_equal(pr.cmdline, "unit\0-x", 7);
		/* THREAD */
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		struct hak_trace_thread th;
		assert_int_equal(hak__trace_parse_thread(&rec, &th, err, sizeof err), 0);
		assert_int_equal(th.idx, 2);
		assert_int_equal(th.tid, 99);
		assert_int_equal(th.live, 3);
		assert_int_equal(th.tick, 5000);
		/* EVENTS, twice, decoded into what thread2_events wrote */
		struct hak_trace_decoder d = {.idx = 2, .tick = th.tick};
		struct hak_trace_event e[16];
		unsigned n = 0;
		for (int k = 0; k < 2; k++) {
			assert_int_equal(hak__trace_next(&f->r, &rec), 1);
			assert_int_equal(rec.type, HAK_TREC_EVENTS);
			uint32_t idx;
			const unsigned char *ev;
			size_t l;
			assert_int_equal(hak__trace_parse_events(&rec, &idx, &ev, &l, err, sizeof err), 0);
			assert_int_equal(idx, 2);
			const unsigned char *end = ev + l;
			while (ev < end)
				assert_int_equal(hak__trace_decode(&d, &ev, end, &e[n++], err, sizeof err), 0);
		}
		assert_int_equal(n, 10);
		assert_int_equal(e[0].op, HAK_TOP_MALLOC);
		assert_int_equal(e[0].size, 100);
		assert_int_equal(e[0].tick, 5003);
		assert_true(e[0].id == HAK_TRACE_ID(2, 1));
		assert_int_equal(e[1].op, HAK_TOP_CALLOC);
		assert_int_equal(e[1].count, 10);
		assert_int_equal(e[1].size, 24);
		assert_true(e[1].id == HAK_TRACE_ID(2, 2));
		assert_int_equal(e[2].op, HAK_TOP_FREE);
		assert_true(e[2].ref == HAK_TRACE_ID(2, 1));
		assert_int_equal(e[2].tick, 5003 + 1000000000);
		assert_int_equal(e[2].id, 0);
		assert_int_equal(e[3].op, HAK_TOP_REALLOC);
		assert_true(e[3].ref == HAK_TRACE_ID(2, 2));
		assert_true(e[3].id == HAK_TRACE_ID(2, 3));
		assert_int_equal(e[3].size, 200);
		assert_int_equal(e[4].op, HAK_TOP_REALLOC_MOVED);
		assert_int_equal(e[4].ref, 0);
		assert_true(e[4].id == HAK_TRACE_ID(2, 4));
		assert_int_equal(e[5].op, HAK_TOP_MEMALIGN);
		assert_int_equal(e[5].kind, HAK_TALIGN_POSIX_MEMALIGN);
		assert_int_equal(e[5].lg_align, 12);
		assert_int_equal(e[5].size, 5000);
		assert_int_equal(e[6].op, HAK_TOP_FREE_SIZED);
		assert_true(e[6].ref == HAK_TRACE_ID(1, 77));
		assert_int_equal(e[6].size, 48);
		assert_int_equal(e[6].lg_align, 6);
		assert_int_equal(e[7].op, HAK_TOP_TRIM);
		assert_int_equal(e[8].op, HAK_TOP_FORK);
		assert_int_equal(e[8].count, 1);
		assert_int_equal(e[9].op, HAK_TOP_THREAD_END);
		assert_int_equal(d.seq, 5);
		/* CLOCK, EXITED, STOPPED, END (with two fields this reader does not know) */
		uint64_t tick, ns;
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		assert_int_equal(hak__trace_parse_clock(&rec, &tick, &ns, err, sizeof err), 0);
		assert_int_equal(tick, 5001);
		assert_int_equal(ns, 123456789);
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		uint32_t idx;
		assert_int_equal(hak__trace_parse_exited(&rec, &idx, err, sizeof err), 0);
		assert_int_equal(idx, 2);
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		const char *why;
		size_t wl;
		assert_int_equal(hak__trace_parse_stopped(&rec, &why, &wl, err, sizeof err), 0);
		assert_int_equal(wl, 9);
		assert_int_equal(hak__trace_next(&f->r, &rec), 1);
		uint64_t counts[HAK_TRACE_COUNT_N];
		unsigned present;
		assert_int_equal(hak__trace_parse_end(&rec, counts, &present, err, sizeof err), 0);
		assert_int_equal(present, HAK_TRACE_COUNT_N);
		assert_int_equal(counts[HAK_TRACE_COUNT_FAILED], 1000 + HAK_TRACE_COUNT_FAILED);
		assert_int_equal(hak__trace_next(&f->r, &rec), 0);
		assert_int_equal(hak__trace_next(&f->r, &rec), 0);
	}
}

/* Cut after every byte: never a crash; a clean end only at a record boundary, and then with
 * fewer records; otherwise an error that says the file is truncated. */
static void truncated_everywhere(void **state)
{
	struct fixture *f = *state;
	static unsigned char file[4096];
	size_t len = sample_trace(file);
	unsigned all_records, all_events, records, events;
	char err[400];
	struct mem m = {file, len, 0, 0};
	assert_int_equal(read_all(f, &m, &all_records, &all_events, err, sizeof err), 0);
	assert_int_equal(all_records, 8);
	assert_int_equal(all_events, 10);
	unsigned clean = 0;
	for (size_t cut = 0; cut < len; cut++) {
		struct mem c = {file, cut, 0, cut % 5};
		int rc = read_all(f, &c, &records, &events, err, sizeof err);
		if (rc == 0) {
			clean++;
			assert_true(records < all_records);
			continue;
		}
		assert_int_equal(rc, -1);
		assert_true(strstr(err, "truncated") || strstr(err, "not a hakmem trace"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(clean, all_records); /* one clean cut per record boundary, header included */
}

static void another_version_is_refused(void **state)
{
	struct fixture *f = *state;
	static unsigned char file[4096];
	size_t len = sample_trace(file);
	file[8] = 2;
	struct mem m = {file, len, 0, 0};
	assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), EPROTO);
	assert_non_null(strstr(f->r.err, "trace format version 2, this hakmem reads version 1"));
	file[8] = 0;
	file[11] = 1; /* version 2^24 */
	m.pos = 0;
	assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), EPROTO);
	assert_non_null(strstr(f->r.err, "format version 16777216"));
}

static void not_a_trace(void **state)
{
	struct fixture *f = *state;
	static const unsigned char text[] = "[core]\nstats = json\n";
	struct mem m = {text, sizeof text - 1, 0, 0};
	assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), EINVAL);
	assert_non_null(strstr(f->r.err, "not a hakmem trace"));
	struct mem e = {text, 0, 0, 0};
	assert_int_equal(hak__trace_open(&f->r, mem_read, &e, f->buf), EINVAL);
	assert_non_null(strstr(f->r.err, "empty"));
	/* a header text longer than allowed */
	unsigned char h[16];
	memcpy(h, "HAKTRACE\1\0\0\0\377\377\377\0", 16);
	struct mem l = {h, 16, 0, 0};
	assert_int_equal(hak__trace_open(&f->r, mem_read, &l, f->buf), EINVAL);
	assert_non_null(strstr(f->r.err, "header text of"));
}

/* A file with a valid header and one record of the given payload. */
static struct mem one_record(unsigned char *file, unsigned type, const unsigned char *payload, size_t len)
{
	size_t h = hak__trace_header(file, "", 0);
	unsigned char *w = put_record(file + h, type, payload, len);
	return (struct mem){file, (size_t)(w - file), 0, 0};
}

/* Decodes the events (thread 2, no blocks made yet) of a one-record file; the decoder's error. */
static const char *decode_error(struct fixture *f, const unsigned char *ev, size_t n)
{
	static unsigned char file[1024], payload[512];
	static char err[400];
	unsigned char *q = hak__trace_put_varint(hak__trace_put_varint(payload, PKEY), 2);
	memcpy(q, ev, n);
	struct mem m = one_record(file, HAK_TREC_EVENTS, payload, (size_t)(q - payload) + n);
	unsigned records, events;
	if (read_all(f, &m, &records, &events, err, sizeof err) == 0)
		return NULL;
	assert_null(strchr(err, '\n'));
	return err;
}

static void huge_sizes_are_refused(void **state)
{
	struct fixture *f = *state;
	unsigned char ev[64], *w;
	w = hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_MALLOC, 0), (uint64_t)1 << 47);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "past the 47-bit address space"));
	w = hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_MALLOC, 0), UINT64_MAX);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "past the 47-bit"));
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_CALLOC, 0), (uint64_t)1 << 30), (uint64_t)1 << 30);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "calloc of 1073741824 x 1073741824"));
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_MEMALIGN, 0), 60 << 3), 16);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "alignment"));
	/* a varint of 11 bytes */
	w = hak__trace_put_op(ev, HAK_TOP_MALLOC, 0);
	memset(w, 0xff, 10);
	w[10] = 0;
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w + 11 - ev)), "truncated malloc size"));
	/* a malloc just under the limit is fine */
	w = hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_MALLOC, 0), ((uint64_t)1 << 47) - 1);
	assert_null(decode_error(f, ev, (size_t)(w - ev)));
	/* a record longer than the format allows */
	static unsigned char file[64];
	size_t h = hak__trace_header(file, "", 0);
	file[h] = HAK_TREC_EVENTS;
	unsigned char *e = hak__trace_put_varint(file + h + 1, HAK_TRACE_RECORD_MAX);
	struct mem m = {file, (size_t)(e - file), 0, 0};
	struct hak_trace_record rec;
	assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), 0);
	assert_int_equal(hak__trace_next(&f->r, &rec), -1);
	assert_non_null(strstr(f->r.err, "record of 16777216 bytes"));
}

static void unknown_operations_and_records(void **state)
{
	struct fixture *f = *state;
	unsigned char ev[8];
	for (unsigned op = 0; op < 16; op++) {
		if (op >= 1 && op < HAK_TOP_COUNT)
			continue;
		ev[0] = (unsigned char)op;
		char want[40];
		snprintf(want, sizeof want, "unknown operation %u", op);
		assert_non_null(strstr(decode_error(f, ev, 1), want));
	}
	static unsigned char file[64];
	const unsigned char payload[] = {1};
	for (unsigned type = 0; type < 256; type += (type == 0 ? 8 : 41)) {
		struct mem m = one_record(file, type, payload, 1);
		struct hak_trace_record rec;
		assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), 0);
		assert_int_equal(hak__trace_next(&f->r, &rec), -1);
		assert_non_null(strstr(f->r.err, "unknown record type"));
	}
	/* a known record whose fields are damaged */
	struct mem m = one_record(file, HAK_TREC_THREAD, (const unsigned char[]){1, 0}, 2);
	struct hak_trace_record rec;
	struct hak_trace_thread th;
	char err[300];
	assert_int_equal(hak__trace_open(&f->r, mem_read, &m, f->buf), 0);
	assert_int_equal(hak__trace_next(&f->r, &rec), 1);
	assert_int_equal(hak__trace_parse_thread(&rec, &th, err, sizeof err), -1);
	assert_non_null(strstr(err, "THREAD record: damaged"));
}

static void references_to_blocks_that_do_not_exist(void **state)
{
	struct fixture *f = *state;
	unsigned char ev[64], *w;
	/* the thread's own block, before it made any */
	w = hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_FREE, 0), 2);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "before its first"));
	/* free of NULL */
	w = hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_FREE, 0), 0);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "free of NULL"));
	/* thread 0 */
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_FREE, 0), 1), 5);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "refers to thread 0"));
	/* block 0 of another thread */
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_FREE, 0), 3 << 1 | 1), 0);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "refers to block 0 of thread 3"));
	/* its own block, by number, not made yet */
	w = hak__trace_put_varint(hak__trace_put_varint(hak__trace_put_op(ev, HAK_TOP_FREE, 0), 2 << 1 | 1), 1);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "not made yet"));
	/* truncated after the op byte */
	w = hak__trace_put_op(ev, HAK_TOP_REALLOC, 0);
	assert_non_null(strstr(decode_error(f, ev, (size_t)(w - ev)), "truncated block reference"));
	/* a tick varint cut short */
	ev[0] = HAK_TOP_MALLOC | 0xF0;
	ev[1] = 0x80;
	assert_non_null(strstr(decode_error(f, ev, 2), "truncated tick"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(another_version_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(not_a_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(huge_sizes_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_operations_and_records, setup, teardown),
		cmocka_unit_test_setup_teardown(references_to_blocks_that_do_not_exist, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
