/* trace_format.h: the allocation trace file (HAKMEM_TRACE, `hakmem record`, `hakmem replay`).
 * Owns the layout, the varint and event encoders the recorder inlines into its hooks, and the
 * streaming reader and event decoder the replayer, the tools and the tests use. Nothing here
 * calls malloc or knows the allocator: it links into a unit test or a fuzzer alone.
 *
 * File (all integers little-endian; "varint" is unsigned LEB128, at most 10 bytes):
 *   header   "HAKTRACE", u32 format version, u32 text length, text: `key=value` lines
 *            (program, cmdline, time, hakmem, pid, tick, tick_resolution_ns) written once by the
 *            process that created the file
 *   records  u8 type, varint payload length (< HAK_TRACE_RECORD_MAX), payload; every process
 *            of a recording (the program, its fork children, the programs it executes) appends
 *            whole records with O_APPEND writes, so records of processes never interleave
 *   PROCESS  pkey, pid, parent pkey (0: none), flags, start time (realtime ns), fork thread and
 *            fork number (which thread of the parent forked, and its FORK event's number; fork
 *            children only), program, cmdline (NUL-separated)
 *   THREAD   pkey, thread index (1.., per process), kernel tid, traced threads live then (itself
 *            included; the replayer keeps about as many running), tick its events start from
 *   EVENTS   pkey, thread index, then that thread's events, whole ones, in order
 *   CLOCK    pkey, tick, CLOCK_MONOTONIC ns: converts the events' ticks to time (--timed)
 *   END      pkey, count of fields, the recorder's counts (enum hak_trace_count)
 *   STOPPED  pkey, reason: recording stopped early (a write failed); what precedes is valid
 *   EXITED   pkey, thread index: the thread ended; all its EVENTS precede it (a replayer starts
 *            a thread once the threads that exited before it was announced are done)
 *   (strings are a varint length and bytes)
 *
 * Event: one byte, operation in the low nibble and the tick delta since the thread's previous
 * event in the high nibble (15: a varint holding delta - 15 follows), then the operation's
 * arguments as varints. Ticks are CLOCK_MONOTONIC_COARSE nanoseconds (a few ms resolution).
 * Blocks are named, never by address: the n-th block a thread makes (malloc, calloc, realloc,
 * memalign) is (thread index, n), packed into an id as index << 40 | n. A realloc always
 * consumes its old block and makes a new one, so each block is made once and consumed once and
 * a replayer only has to wait for a block to exist. A reference ("ref") to a block is a varint:
 * 0 for NULL, 2 * (d + 1) for the thread's own block made d blocks before its latest one, or
 * 2 * index + 1 followed by the block number for another thread's block. */
#ifndef HAK_TRACE_FORMAT_H
#define HAK_TRACE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef HAK_HIDDEN
#define HAK_HIDDEN __attribute__((visibility("hidden")))
#endif

#define HAK_TRACE_MAGIC "HAKTRACE"
#define HAK_TRACE_VERSION 1u
#define HAK_TRACE_HEADER_MAX (64u << 10)     /* header text */
#define HAK_TRACE_RECORD_MAX (16u << 20)     /* one record's payload */
#define HAK_TRACE_MAX_SIZE ((uint64_t)1 << 47) /* a block size past the address space is damage */
#define HAK_TRACE_IDX_BITS 24                /* threads per process */
#define HAK_TRACE_SEQ_BITS 40                /* blocks per thread */
#define HAK_TRACE_IDX_MAX (((uint32_t)1 << HAK_TRACE_IDX_BITS) - 1)
#define HAK_TRACE_SEQ_MAX (((uint64_t)1 << HAK_TRACE_SEQ_BITS) - 1)
#define HAK_TRACE_ID(idx, seq) (((uint64_t)(idx) << HAK_TRACE_SEQ_BITS) | (uint64_t)(seq))
#define HAK_TRACE_ID_IDX(id) ((uint32_t)((id) >> HAK_TRACE_SEQ_BITS))
#define HAK_TRACE_ID_SEQ(id) ((id) & HAK_TRACE_SEQ_MAX)
#define HAK_TRACE_EVENT_MAX 48 /* bytes one event may take: op, tick varint, three varints */

enum hak_trace_record_type {
	HAK_TREC_PROCESS = 1,
	HAK_TREC_THREAD = 2,
	HAK_TREC_EVENTS = 3,
	HAK_TREC_CLOCK = 4,
	HAK_TREC_END = 5,
	HAK_TREC_STOPPED = 6,
	HAK_TREC_EXITED = 7,
};

enum hak_trace_op {
	HAK_TOP_MALLOC = 1,        /* size */
	HAK_TOP_FREE = 2,          /* ref */
	HAK_TOP_CALLOC = 3,        /* nmemb, size */
	HAK_TOP_REALLOC = 4,       /* ref, size: the block stayed where it was */
	HAK_TOP_REALLOC_MOVED = 5, /* ref, size: it moved (or ref was NULL) */
	HAK_TOP_MEMALIGN = 6,      /* kind | lg(align) << 3, size */
	HAK_TOP_FREE_SIZED = 7,    /* ref, size, lg(align) (0: free_sized) */
	HAK_TOP_TRIM = 8,          /* pad: malloc_trim */
	HAK_TOP_THREAD_END = 9,    /* the thread exited */
	HAK_TOP_FORK = 10,         /* number: the process forked here, its n-th fork */
	HAK_TOP_COUNT = 11,
};

/* Which function made an aligned block (HAK_TOP_MEMALIGN). */
enum hak_trace_align_kind {
	HAK_TALIGN_MEMALIGN = 0,
	HAK_TALIGN_ALIGNED_ALLOC = 1,
	HAK_TALIGN_POSIX_MEMALIGN = 2,
	HAK_TALIGN_VALLOC = 3,
	HAK_TALIGN_PVALLOC = 4,
	HAK_TALIGN_KINDS = 5,
};

/* PROCESS flags. */
#define HAK_TPROC_FORKED 1u /* a fork child: its blocks from before the fork are not traced */
#define HAK_TPROC_EXECED 2u /* started by a traced process (exec), parent pkey names it */

/* The recorder's counts in END, in this order (a reader takes the fields it knows). */
enum hak_trace_count {
	HAK_TRACE_COUNT_MALLOC, HAK_TRACE_COUNT_FREE, HAK_TRACE_COUNT_CALLOC, HAK_TRACE_COUNT_REALLOC,
	HAK_TRACE_COUNT_REALLOC_MOVED, HAK_TRACE_COUNT_MEMALIGN, HAK_TRACE_COUNT_FREE_SIZED, HAK_TRACE_COUNT_TRIM,
	HAK_TRACE_COUNT_THREAD_END, HAK_TRACE_COUNT_FORK,
	HAK_TRACE_COUNT_THREADS,        /* threads that made events */
	HAK_TRACE_COUNT_UNTRACED_FREES, /* frees of blocks made before recording started (not recorded) */
	HAK_TRACE_COUNT_FAILED,         /* allocations that failed (not recorded) */
	HAK_TRACE_COUNT_N,
};

HAK_HIDDEN const char *hak__trace_op_name(unsigned op); /* "malloc", ...; "?" for others */

/* ---- Encoding (inline: the recorder's hooks use these) ------------------------------------- */

static inline unsigned char *hak__trace_put_varint(unsigned char *w, uint64_t v)
{
	/* One and two bytes without the loop: nearly every value the hooks write. */
	if (v < 0x80) {
		w[0] = (unsigned char)v;
		return w + 1;
	}
	if (v < 0x4000) {
		w[0] = (unsigned char)(v | 0x80);
		w[1] = (unsigned char)(v >> 7);
		return w + 2;
	}
	while (v >= 0x80) {
		*w++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*w++ = (unsigned char)v;
	return w;
}

static inline unsigned hak__trace_varint_len(uint64_t v)
{
	unsigned n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* The event byte and its tick delta. */
static inline unsigned char *hak__trace_put_op(unsigned char *w, unsigned op, uint64_t dt)
{
	if (dt < 15) {
		*w++ = (unsigned char)(op | (unsigned)dt << 4);
		return w;
	}
	*w++ = (unsigned char)(op | 0xF0);
	return hak__trace_put_varint(w, dt - 15);
}

/* A reference to block `id` from thread `idx` whose latest block is number `seq`; id 0 is NULL. */
static inline unsigned char *hak__trace_put_ref(unsigned char *w, uint32_t idx, uint64_t seq, uint64_t id)
{
	if (!id)
		return hak__trace_put_varint(w, 0);
	if (HAK_TRACE_ID_IDX(id) == idx && HAK_TRACE_ID_SEQ(id) <= seq)
		return hak__trace_put_varint(w, (seq - HAK_TRACE_ID_SEQ(id) + 1) << 1);
	w = hak__trace_put_varint(w, (uint64_t)HAK_TRACE_ID_IDX(id) << 1 | 1);
	return hak__trace_put_varint(w, HAK_TRACE_ID_SEQ(id));
}

static inline unsigned char *hak__trace_put_string(unsigned char *w, const char *s, size_t len)
{
	w = hak__trace_put_varint(w, len);
	for (size_t i = 0; i < len; i++)
		*w++ = (unsigned char)s[i];
	return w;
}

/* The file header with `text` into out (HAK_TRACE_HEADER_MAX + 16 bytes suffice); its length. */
HAK_HIDDEN size_t hak__trace_header(unsigned char *out, const char *text, size_t len);

/* ---- Reading ---------------------------------------------------------------------------- */

/* Where the reader's bytes come from: returns bytes read, 0 at the end, -1 with errno. */
typedef ssize_t (*hak_trace_read_fn)(void *ctx, void *buf, size_t n);

struct hak_trace_reader {
	hak_trace_read_fn read;
	void *ctx;
	unsigned char *buf;     /* the caller's buffer: HAK_TRACE_READ_BUF bytes */
	size_t cap, pos, end;   /* bytes buf[pos..end) are read and not yet handed out */
	uint64_t offset;        /* file offset of buf[pos] */
	bool eof;               /* the source said 0 */
	uint32_t version;       /* of the file */
	char header[HAK_TRACE_HEADER_MAX + 1]; /* its text, NUL-terminated */
	char err[320];          /* why the last call failed: one line, no "hakmem: " prefix */
};
#define HAK_TRACE_READ_BUF (HAK_TRACE_RECORD_MAX + 64)

struct hak_trace_record {
	unsigned type;               /* enum hak_trace_record_type */
	uint64_t offset;             /* of its type byte in the file */
	const unsigned char *payload; /* valid until the next hak__trace_next */
	size_t len;
	uint64_t pkey;               /* every record type starts with it */
	const unsigned char *rest;   /* the payload after pkey */
	size_t rest_len;
};

/* Reads and checks the header. 0, or an errno value with r->err set (EINVAL: not a trace;
 * EPROTO: another format version). buf holds HAK_TRACE_READ_BUF bytes. */
HAK_HIDDEN int hak__trace_open(struct hak_trace_reader *r, hak_trace_read_fn read, void *ctx, void *buf);
/* The next record: 1, 0 at the end of the file, or -1 with r->err set (truncated, damaged). */
HAK_HIDDEN int hak__trace_next(struct hak_trace_reader *r, struct hak_trace_record *rec);
/* A hak_trace_read_fn for a file descriptor (ctx points at the int). */
HAK_HIDDEN ssize_t hak__trace_read_fd(void *ctx, void *buf, size_t n);
/* The value of `key` in the header text into out (NUL-terminated); false when absent. */
HAK_HIDDEN bool hak__trace_header_value(const struct hak_trace_reader *r, const char *key, char *out, size_t size);

struct hak_trace_process {
	uint64_t pkey, pid, parent, flags, start_ns;
	uint32_t fork_thread;
	uint64_t fork_number;
	const char *program; size_t program_len;
	const char *cmdline; size_t cmdline_len; /* NUL-separated arguments */
};
struct hak_trace_thread {
	uint32_t idx;
	uint64_t tid, live, tick;
};
/* Field parsers: 0, or -1 with err (size errlen) set. */
HAK_HIDDEN int hak__trace_parse_process(const struct hak_trace_record *rec, struct hak_trace_process *out, char *err, size_t errlen);
HAK_HIDDEN int hak__trace_parse_thread(const struct hak_trace_record *rec, struct hak_trace_thread *out, char *err, size_t errlen);
/* EXITED: the thread index. */
HAK_HIDDEN int hak__trace_parse_exited(const struct hak_trace_record *rec, uint32_t *idx, char *err, size_t errlen);
/* EVENTS: the thread index and its event bytes. */
HAK_HIDDEN int hak__trace_parse_events(const struct hak_trace_record *rec, uint32_t *idx, const unsigned char **ev, size_t *len, char *err, size_t errlen);
HAK_HIDDEN int hak__trace_parse_clock(const struct hak_trace_record *rec, uint64_t *tick, uint64_t *ns, char *err, size_t errlen);
/* END: counts[i] for the fields present, the others 0; *present = how many the record had. */
HAK_HIDDEN int hak__trace_parse_end(const struct hak_trace_record *rec, uint64_t counts[HAK_TRACE_COUNT_N], unsigned *present, char *err, size_t errlen);
HAK_HIDDEN int hak__trace_parse_stopped(const struct hak_trace_record *rec, const char **reason, size_t *len, char *err, size_t errlen);

/* ---- Decoding a thread's events --------------------------------------------------------- */

struct hak_trace_decoder {
	uint32_t idx;   /* the thread's index */
	uint64_t seq;   /* blocks it made so far */
	uint64_t tick;  /* of its latest event */
	uint64_t n;     /* events decoded so far (for messages) */
};

struct hak_trace_event {
	unsigned op;        /* enum hak_trace_op */
	uint64_t tick;
	uint64_t id;        /* the block it makes, 0 for none */
	uint64_t ref;       /* the block it consumes, 0 for none (or NULL) */
	uint64_t size;      /* malloc, calloc (element size), realloc, memalign, free_sized; trim pad */
	uint64_t count;     /* calloc's nmemb; fork's number */
	unsigned kind;      /* memalign: enum hak_trace_align_kind */
	unsigned lg_align;  /* memalign, free_sized */
};

/* Decodes the event at *p (end: the end of the thread's bytes in this record) and advances *p.
 * 0, or -1 with err set: truncated event, unknown operation, a size past HAK_TRACE_MAX_SIZE, a
 * reference to a block the thread never made, too many blocks. */
HAK_HIDDEN int hak__trace_decode(struct hak_trace_decoder *d, const unsigned char **p, const unsigned char *end,
				 struct hak_trace_event *ev, char *err, size_t errlen);

#endif
