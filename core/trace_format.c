/* trace_format.c: reading the allocation trace file, for the replayer, the `hakmem` command,
 * the unit tests and the fuzzer (layout in trace_format.h). Every length and every number is
 * checked before use: a damaged, truncated or hostile file gives one error line, never a read
 * out of bounds. No malloc: the caller hands in the buffers. */
#include "trace_format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const op_names[HAK_TOP_COUNT] = {
	"?", "malloc", "free", "calloc", "realloc", "realloc_moved", "memalign", "free_sized", "trim",
	"thread_end", "fork",
};

const char *hak__trace_op_name(unsigned op)
{
	return op < HAK_TOP_COUNT ? op_names[op] : "?";
}

size_t hak__trace_header(unsigned char *out, const char *text, size_t len)
{
	if (len > HAK_TRACE_HEADER_MAX)
		len = HAK_TRACE_HEADER_MAX;
	memcpy(out, HAK_TRACE_MAGIC, 8);
	uint32_t v = HAK_TRACE_VERSION, l = (uint32_t)len;
	for (int i = 0; i < 4; i++) {
		out[8 + i] = (unsigned char)(v >> (8 * i));
		out[12 + i] = (unsigned char)(l >> (8 * i));
	}
	memcpy(out + 16, text, len);
	return 16 + len;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- Varints within a bounded buffer ------------------------------------------------------ */

/* 0 and *v, or -1: truncated, or longer than 10 bytes / more than 64 bits. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	const unsigned char *s = *p;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (s >= end)
			return -1;
		unsigned char b = *s++;
		if (shift == 63 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*p = s;
			*v = x;
			return 0;
		}
	}
	return -1;
}

static int get_string(const unsigned char **p, const unsigned char *end, const char **s, size_t *len)
{
	uint64_t n;
	if (get_varint(p, end, &n) || n > (uint64_t)(end - *p))
		return -1;
	*s = (const char *)*p;
	*len = (size_t)n;
	*p += n;
	return 0;
}

/* ---- The file ---------------------------------------------------------------------------- */

ssize_t hak__trace_read_fd(void *ctx, void *buf, size_t n)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t r = read(fd, buf, n);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Makes at least `need` bytes available at r->buf + r->pos (fewer only at the end of the
 * file). 0, or -1 with errno when the source failed. */
static int fill(struct hak_trace_reader *r, size_t need)
{
	if (r->end - r->pos >= need)
		return 0;
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	while (!r->eof && r->end < need) {
		/* Read what is needed, in 256 KB steps at least: the buffer's untouched pages stay so. */
		size_t want = need - r->end > (256u << 10) ? need - r->end : (256u << 10);
		if (want > r->cap - r->end)
			want = r->cap - r->end;
		ssize_t n = r->read(r->ctx, r->buf + r->end, want);
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
	return 0;
}

static uint32_t le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int hak__trace_open(struct hak_trace_reader *r, hak_trace_read_fn read, void *ctx, void *buf)
{
	memset(r, 0, offsetof(struct hak_trace_reader, header));
	r->header[0] = r->err[0] = '\0';
	r->read = read;
	r->ctx = ctx;
	r->buf = buf;
	r->cap = HAK_TRACE_READ_BUF;
	if (fill(r, 16) != 0) {
		int e = errno;
		fail(r->err, sizeof r->err, "cannot read: %s", strerror(e));
		return e ? e : EIO;
	}
	if (r->end < 8 || memcmp(r->buf, HAK_TRACE_MAGIC, 8) != 0) {
		fail(r->err, sizeof r->err, "not a hakmem trace (no HAKTRACE header%s)",
		     r->end == 0 ? ": the file is empty" : "");
		return EINVAL;
	}
	if (r->end < 16) {
		fail(r->err, sizeof r->err, "truncated header (%zu bytes)", r->end);
		return EINVAL;
	}
	r->version = le32(r->buf + 8);
	if (r->version != HAK_TRACE_VERSION) {
		fail(r->err, sizeof r->err,
		     "trace format version %u, this hakmem reads version %u only (record the program again "
		     "with this hakmem, or replay with the hakmem that recorded it)",
		     r->version, HAK_TRACE_VERSION);
		return EPROTO;
	}
	uint32_t len = le32(r->buf + 12);
	if (len > HAK_TRACE_HEADER_MAX) {
		fail(r->err, sizeof r->err, "header text of %u bytes (at most %u): damaged file", len,
		     HAK_TRACE_HEADER_MAX);
		return EINVAL;
	}
	if (fill(r, 16 + (size_t)len) != 0 || r->end < 16 + (size_t)len) {
		fail(r->err, sizeof r->err, "truncated header (%zu of %u bytes of text)", r->end - 16, len);
		return EINVAL;
	}
	memcpy(r->header, r->buf + 16, len);
	r->header[len] = '\0';
	r->pos = 16 + len;
	r->offset = r->pos;
	return 0;
}

int hak__trace_next(struct hak_trace_reader *r, struct hak_trace_record *rec)
{
	if (fill(r, 11) != 0)
		return fail(r->err, sizeof r->err, "offset %llu: cannot read: %s", (unsigned long long)r->offset,
			    strerror(errno));
	if (r->pos == r->end)
		return 0;
	const unsigned char *p = r->buf + r->pos, *end = r->buf + r->end;
	unsigned type = *p++;
	uint64_t len;
	if (type < HAK_TREC_PROCESS || type > HAK_TREC_EXITED)
		return fail(r->err, sizeof r->err, "offset %llu: unknown record type %u: damaged file",
			    (unsigned long long)r->offset, type);
	if (get_varint(&p, end, &len) != 0)
		return fail(r->err, sizeof r->err, "offset %llu: truncated record header (the recording was "
			    "cut short: program killed, or disk full)", (unsigned long long)r->offset);
	if (len >= HAK_TRACE_RECORD_MAX)
		return fail(r->err, sizeof r->err, "offset %llu: record of %llu bytes (at most %u): damaged file",
			    (unsigned long long)r->offset, (unsigned long long)len, HAK_TRACE_RECORD_MAX);
	size_t head = (size_t)(p - (r->buf + r->pos));
	if (fill(r, head + (size_t)len) != 0)
		return fail(r->err, sizeof r->err, "offset %llu: cannot read: %s", (unsigned long long)r->offset,
			    strerror(errno));
	if (r->end - r->pos < head + len)
		return fail(r->err, sizeof r->err,
			    "offset %llu: truncated record (%zu of %llu bytes; the recording was cut short: "
			    "program killed, or disk full)",
			    (unsigned long long)r->offset, r->end - r->pos - head, (unsigned long long)len);
	rec->type = type;
	rec->offset = r->offset;
	rec->payload = r->buf + r->pos + head;
	rec->len = (size_t)len;
	p = rec->payload;
	if (get_varint(&p, rec->payload + rec->len, &rec->pkey) != 0)
		return fail(r->err, sizeof r->err, "offset %llu: record without a process key: damaged file",
			    (unsigned long long)r->offset);
	rec->rest = p;
	rec->rest_len = rec->len - (size_t)(p - rec->payload);
	r->pos += head + (size_t)len;
	r->offset += head + len;
	return 1;
}

bool hak__trace_header_value(const struct hak_trace_reader *r, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	for (const char *line = r->header; *line;) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		if (ll > kl && memcmp(line, key, kl) == 0 && line[kl] == '=') {
			size_t vl = ll - kl - 1;
			if (size) {
				if (vl >= size)
					vl = size - 1;
				memcpy(out, line + kl + 1, vl);
				out[vl] = '\0';
			}
			return true;
		}
		line += ll + (nl != NULL);
	}
	return false;
}

/* ---- Record fields ------------------------------------------------------------------------ */

#define DAMAGED(what) fail(err, errlen, "offset %llu: %s record: %s", (unsigned long long)rec->offset, what, "damaged fields")

int hak__trace_parse_process(const struct hak_trace_record *rec, struct hak_trace_process *out, char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	uint64_t ft;
	out->pkey = rec->pkey;
	if (get_varint(&p, end, &out->pid) || get_varint(&p, end, &out->parent) || get_varint(&p, end, &out->flags) ||
	    get_varint(&p, end, &out->start_ns) || get_varint(&p, end, &ft) || ft > HAK_TRACE_IDX_MAX ||
	    get_varint(&p, end, &out->fork_number) ||
	    get_string(&p, end, &out->program, &out->program_len) ||
	    get_string(&p, end, &out->cmdline, &out->cmdline_len))
		return DAMAGED("PROCESS");
	out->fork_thread = (uint32_t)ft;
	return 0;
}

int hak__trace_parse_thread(const struct hak_trace_record *rec, struct hak_trace_thread *out, char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	uint64_t idx;
	if (get_varint(&p, end, &idx) || idx == 0 || idx > HAK_TRACE_IDX_MAX || get_varint(&p, end, &out->tid) ||
	    get_varint(&p, end, &out->live) || get_varint(&p, end, &out->tick))
		return DAMAGED("THREAD");
	out->idx = (uint32_t)idx;
	return 0;
}

int hak__trace_parse_events(const struct hak_trace_record *rec, uint32_t *idx, const unsigned char **ev, size_t *len,
			    char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	uint64_t i;
	if (get_varint(&p, end, &i) || i == 0 || i > HAK_TRACE_IDX_MAX)
		return DAMAGED("EVENTS");
	*idx = (uint32_t)i;
	*ev = p;
	*len = (size_t)(end - p);
	return 0;
}

int hak__trace_parse_exited(const struct hak_trace_record *rec, uint32_t *idx, char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	uint64_t i;
	if (get_varint(&p, end, &i) || i == 0 || i > HAK_TRACE_IDX_MAX)
		return DAMAGED("EXITED");
	*idx = (uint32_t)i;
	return 0;
}

int hak__trace_parse_clock(const struct hak_trace_record *rec, uint64_t *tick, uint64_t *ns, char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	if (get_varint(&p, end, tick) || get_varint(&p, end, ns))
		return DAMAGED("CLOCK");
	return 0;
}

int hak__trace_parse_end(const struct hak_trace_record *rec, uint64_t counts[HAK_TRACE_COUNT_N], unsigned *present,
			 char *err, size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	uint64_t n;
	memset(counts, 0, HAK_TRACE_COUNT_N * sizeof counts[0]);
	if (get_varint(&p, end, &n) || n > 1024)
		return DAMAGED("END");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v;
		if (get_varint(&p, end, &v))
			return DAMAGED("END");
		if (i < HAK_TRACE_COUNT_N)
			counts[i] = v;
	}
	*present = n < HAK_TRACE_COUNT_N ? (unsigned)n : HAK_TRACE_COUNT_N;
	return 0;
}

int hak__trace_parse_stopped(const struct hak_trace_record *rec, const char **reason, size_t *len, char *err,
			     size_t errlen)
{
	const unsigned char *p = rec->rest, *end = rec->rest + rec->rest_len;
	if (get_string(&p, end, reason, len))
		return DAMAGED("STOPPED");
	return 0;
}

/* ---- Events -------------------------------------------------------------------------------- */

#define BAD(...) fail(err, errlen, __VA_ARGS__)

static int get_size(struct hak_trace_decoder *d, const unsigned char **p, const unsigned char *end, uint64_t *v,
		    char *err, size_t errlen, const char *what)
{
	if (get_varint(p, end, v))
		return BAD("thread %u, event %llu: truncated %s", d->idx, (unsigned long long)d->n, what);
	if (*v >= HAK_TRACE_MAX_SIZE)
		return BAD("thread %u, event %llu: %s of %llu bytes is past the 47-bit address space: damaged trace",
			   d->idx, (unsigned long long)d->n, what, (unsigned long long)*v);
	return 0;
}

static int get_ref(struct hak_trace_decoder *d, const unsigned char **p, const unsigned char *end, uint64_t *id,
		   char *err, size_t errlen)
{
	uint64_t v, seq;
	if (get_varint(p, end, &v))
		return BAD("thread %u, event %llu: truncated block reference", d->idx, (unsigned long long)d->n);
	if (v == 0) {
		*id = 0;
		return 0;
	}
	if (!(v & 1)) {
		uint64_t back = (v >> 1) - 1;
		if (back >= d->seq)
			return BAD("thread %u, event %llu: refers to its block %lld, before its first: damaged trace",
				   d->idx, (unsigned long long)d->n, (long long)d->seq - (long long)back);
		*id = HAK_TRACE_ID(d->idx, d->seq - back);
		return 0;
	}
	uint64_t idx = v >> 1;
	if (idx == 0 || idx > HAK_TRACE_IDX_MAX)
		return BAD("thread %u, event %llu: refers to thread %llu (valid: 1..%u): damaged trace", d->idx,
			   (unsigned long long)d->n, (unsigned long long)idx, HAK_TRACE_IDX_MAX);
	if (get_varint(p, end, &seq))
		return BAD("thread %u, event %llu: truncated block reference", d->idx, (unsigned long long)d->n);
	if (seq == 0 || seq > HAK_TRACE_SEQ_MAX)
		return BAD("thread %u, event %llu: refers to block %llu of thread %llu (valid: 1..%llu): damaged trace",
			   d->idx, (unsigned long long)d->n, (unsigned long long)seq, (unsigned long long)idx,
			   (unsigned long long)HAK_TRACE_SEQ_MAX);
	if (idx == d->idx && seq > d->seq)
		return BAD("thread %u, event %llu: refers to its own block %llu, not made yet: damaged trace", d->idx,
			   (unsigned long long)d->n, (unsigned long long)seq);
	*id = HAK_TRACE_ID(idx, seq);
	return 0;
}

static int make_block(struct hak_trace_decoder *d, struct hak_trace_event *ev, char *err, size_t errlen)
{
	if (d->seq >= HAK_TRACE_SEQ_MAX)
		return BAD("thread %u: more than %llu blocks", d->idx, (unsigned long long)HAK_TRACE_SEQ_MAX);
	ev->id = HAK_TRACE_ID(d->idx, ++d->seq);
	return 0;
}

int hak__trace_decode(struct hak_trace_decoder *d, const unsigned char **p, const unsigned char *end,
		      struct hak_trace_event *ev, char *err, size_t errlen)
{
	const unsigned char *s = *p;
	if (s >= end)
		return BAD("thread %u, event %llu: truncated", d->idx, (unsigned long long)d->n);
	unsigned b = *s++;
	uint64_t dt = b >> 4, v = 0;
	memset(ev, 0, sizeof *ev);
	ev->op = b & 15;
	if (dt == 15) {
		if (get_varint(&s, end, &v) || v > UINT64_MAX - 15)
			return BAD("thread %u, event %llu: truncated tick", d->idx, (unsigned long long)d->n);
		dt = v + 15;
	}
	d->tick += dt;
	ev->tick = d->tick;
	int rc = 0;
	switch (ev->op) {
	case HAK_TOP_MALLOC:
		rc = get_size(d, &s, end, &ev->size, err, errlen, "malloc size");
		break;
	case HAK_TOP_FREE:
		rc = get_ref(d, &s, end, &ev->ref, err, errlen);
		if (!rc && !ev->ref)
			rc = BAD("thread %u, event %llu: free of NULL: damaged trace", d->idx, (unsigned long long)d->n);
		break;
	case HAK_TOP_CALLOC:
		rc = get_size(d, &s, end, &ev->count, err, errlen, "calloc count");
		if (!rc)
			rc = get_size(d, &s, end, &ev->size, err, errlen, "calloc size");
		if (!rc && ev->size && ev->count > (HAK_TRACE_MAX_SIZE - 1) / ev->size)
			rc = BAD("thread %u, event %llu: calloc of %llu x %llu bytes is past the 47-bit address "
				 "space: damaged trace", d->idx, (unsigned long long)d->n,
				 (unsigned long long)ev->count, (unsigned long long)ev->size);
		break;
	case HAK_TOP_REALLOC:
	case HAK_TOP_REALLOC_MOVED:
		rc = get_ref(d, &s, end, &ev->ref, err, errlen);
		if (!rc)
			rc = get_size(d, &s, end, &ev->size, err, errlen, "realloc size");
		break;
	case HAK_TOP_MEMALIGN:
		if (get_varint(&s, end, &v))
			rc = BAD("thread %u, event %llu: truncated alignment", d->idx, (unsigned long long)d->n);
		else if ((v & 7) >= HAK_TALIGN_KINDS || (v >> 3) > 46)
			rc = BAD("thread %u, event %llu: alignment kind %llu, 2^%llu: damaged trace", d->idx,
				 (unsigned long long)d->n, (unsigned long long)(v & 7), (unsigned long long)(v >> 3));
		if (!rc) {
			ev->kind = (unsigned)(v & 7);
			ev->lg_align = (unsigned)(v >> 3);
			rc = get_size(d, &s, end, &ev->size, err, errlen, "memalign size");
		}
		break;
	case HAK_TOP_FREE_SIZED:
		rc = get_ref(d, &s, end, &ev->ref, err, errlen);
		if (!rc && !ev->ref)
			rc = BAD("thread %u, event %llu: free_sized of NULL: damaged trace", d->idx, (unsigned long long)d->n);
		if (!rc)
			rc = get_size(d, &s, end, &ev->size, err, errlen, "free_sized size");
		if (!rc && (get_varint(&s, end, &v) || v > 46))
			rc = BAD("thread %u, event %llu: bad free_aligned_sized alignment", d->idx, (unsigned long long)d->n);
		if (!rc)
			ev->lg_align = (unsigned)v;
		break;
	case HAK_TOP_TRIM:
		rc = get_size(d, &s, end, &ev->size, err, errlen, "malloc_trim pad");
		break;
	case HAK_TOP_THREAD_END:
		break;
	case HAK_TOP_FORK:
		if (get_varint(&s, end, &ev->count))
			rc = BAD("thread %u, event %llu: truncated fork", d->idx, (unsigned long long)d->n);
		break;
	default:
		rc = BAD("thread %u, event %llu: unknown operation %u: damaged trace, or written by a newer hakmem",
			 d->idx, (unsigned long long)d->n, ev->op);
	}
	if (rc)
		return rc;
	switch (ev->op) {
	case HAK_TOP_MALLOC:
	case HAK_TOP_CALLOC:
	case HAK_TOP_REALLOC:
	case HAK_TOP_REALLOC_MOVED:
	case HAK_TOP_MEMALIGN:
		if (make_block(d, ev, err, errlen))
			return -1;
		break;
	}
	d->n++;
	*p = s;
	return 0;
}
