/* fuzz_trace: libFuzzer harness for the trace reader and event decoder (core/trace_format.c),
 * what `hakmem replay` and hakmem-replay run on a file they are given. Besides the sanitizers'
 * checks it holds the reader to its contract (core/trace_format.h): every call returns one of
 * its documented values, an error leaves one line in err (no newline), and a record never
 * points outside the input. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_format.h"

struct mem {
	const uint8_t *p;
	size_t len, pos;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t left = m->len - m->pos;
	if (n > left)
		n = left;
	if (n > 4096)
		n = 4096; /* short reads, as from a pipe */
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void contract_broken(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_trace: contract broken: %s: [%s]\n", what, err ? err : "");
	abort();
}

static void check_err(const char *err)
{
	if (!err[0] || strchr(err, '\n'))
		contract_broken("an error is not one non-empty line", err);
}

static struct hak_trace_reader reader;
static unsigned char buf[HAK_TRACE_READ_BUF];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = {data, size, 0};
	int rc = hak__trace_open(&reader, mem_read, &m, buf);
	if (rc) {
		if (rc != EINVAL && rc != EPROTO)
			contract_broken("hak__trace_open returned an undocumented value", reader.err);
		check_err(reader.err);
		return 0;
	}
	struct hak_trace_decoder dec[16];
	memset(dec, 0, sizeof dec);
	for (unsigned i = 0; i < 16; i++)
		dec[i].idx = i + 1;
	struct hak_trace_record rec;
	char err[400];
	while ((rc = hak__trace_next(&reader, &rec)) == 1) {
		if (rec.payload < buf || rec.payload + rec.len > buf + sizeof buf || rec.rest + rec.rest_len != rec.payload + rec.len)
			contract_broken("a record points outside the buffer", "");
		err[0] = '\0';
		int prc = 0;
		switch (rec.type) {
		case HAK_TREC_PROCESS: {
			struct hak_trace_process p;
			prc = hak__trace_parse_process(&rec, &p, err, sizeof err);
			if (!prc && (p.program + p.program_len > (const char *)rec.payload + rec.len ||
				     p.cmdline + p.cmdline_len > (const char *)rec.payload + rec.len))
				contract_broken("a PROCESS string points past its record", "");
			break;
		}
		case HAK_TREC_THREAD: {
			struct hak_trace_thread t;
			prc = hak__trace_parse_thread(&rec, &t, err, sizeof err);
			break;
		}
		case HAK_TREC_EVENTS: {
			uint32_t idx;
			const unsigned char *ev;
			size_t len;
			prc = hak__trace_parse_events(&rec, &idx, &ev, &len, err, sizeof err);
			if (prc)
				break;
			struct hak_trace_decoder *d = &dec[(idx - 1) % 16];
			d->idx = idx;
			const unsigned char *end = ev + len;
			while (ev < end) {
				struct hak_trace_event e;
				const unsigned char *before = ev;
				if (hak__trace_decode(d, &ev, end, &e, err, sizeof err)) {
					check_err(err);
					if (ev != before)
						contract_broken("a failed decode moved the position", err);
					break;
				}
				if (ev <= before || ev > end)
					contract_broken("a decode did not advance within its bytes", "");
				if (e.op == 0 || e.op >= HAK_TOP_COUNT || e.size >= HAK_TRACE_MAX_SIZE)
					contract_broken("a decoded event is out of range", hak__trace_op_name(e.op));
			}
			break;
		}
		case HAK_TREC_CLOCK: {
			uint64_t a, b;
			prc = hak__trace_parse_clock(&rec, &a, &b, err, sizeof err);
			break;
		}
		case HAK_TREC_END: {
			uint64_t c[HAK_TRACE_COUNT_N];
			unsigned n;
			prc = hak__trace_parse_end(&rec, c, &n, err, sizeof err);
			break;
		}
		case HAK_TREC_STOPPED: {
			const char *s;
			size_t n;
			prc = hak__trace_parse_stopped(&rec, &s, &n, err, sizeof err);
			break;
		}
		case HAK_TREC_EXITED: {
			uint32_t idx;
			prc = hak__trace_parse_exited(&rec, &idx, err, sizeof err);
			break;
		}
		default:
			contract_broken("hak__trace_next returned an unknown record type", "");
		}
		if (prc)
			check_err(err);
	}
	if (rc != 0) {
		if (rc != -1)
			contract_broken("hak__trace_next returned an undocumented value", reader.err);
		check_err(reader.err);
	}
	return 0;
}
