/*
 * xtcp_async._fastcore: the two hot loops in C (netlink walk + gather, protobuf row encoder).
 *
 * Why C: the numpy decoder and encoder cost ~2.5 µs per socket plus a few ms of fixed numpy
 * overhead per call (dozens of small array operations per field); a plain loop over the bytes
 * does the same work in a fraction of that. Everything that decides *what* to decode or encode
 * stays in Python: the layout tables come from netlink/fields.py through configure() at import
 * (xtcp_async/native.py), and the encoder receives its items (one per record field, ascending by
 * field number) from encode/wire.py's item list, so a field added to the table reaches this code
 * without any change here.
 *
 * Memory safety: every read of kernel bytes is bounds-checked against its chunk, message or
 * attribute (reads use memcpy: netlink alignment is not trusted). The tests build this file with
 * -fsanitize=address,undefined and fuzz it (tests/unit/native/).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

/* --- layout, set once by configure() ----------------------------------------------------------- */

#define ATTR_SLOTS 0x4000 /* NLA_TYPE_MASK + 1 */
#define MAX_GROUPS 64
#define MAX_FIELDS 1024

enum { ATTR_UNKNOWN = -2, ATTR_KNOWN_UNDECODED = -1 };

typedef struct {
    int group;   /* -1: the inet_diag_msg header; else index into the attribute groups */
    int offset;
    int size;    /* bytes read (1, 2, 4 or 8), or the byte-field width for raw fields */
    int big_endian;
    int shift, width; /* bits; width 0: the whole integer */
    int wide;    /* 1: the column is uint64, else uint32 */
    int index;   /* row of its matrix (u32 or u64 or raw) */
} FieldSpec;

static int g_configured = 0;
static int16_t g_attr_slot[ATTR_SLOTS];
static int g_n_groups = 0;
static int g_group_size[MAX_GROUPS];
static int g_group_counts_long[MAX_GROUPS]; /* 1: a payload longer than known is a problem */
static int g_cong_group = -1;
static int g_cong_width = 16;
static FieldSpec g_int_fields[MAX_FIELDS];
static int g_n_int = 0;
static FieldSpec g_raw_fields[MAX_FIELDS];
static int g_n_raw = 0;
static int g_n_u32 = 0, g_n_u64 = 0;

/* The gather's program, built by configure() from the field specs: per source (the header, then
 * each attribute group) its integer fields sorted by kind, so the per-row loop for a source that
 * carries all its fields is a few tight loops of plain loads and stores instead of one generic
 * branchy step per field (that step was ~4 ns per field, 0.5 µs per socket). */
enum { K32, K64, K8, K16, KGEN, N_KINDS };
#define MAX_SRC (MAX_GROUPS + 1)
typedef struct {
    int start[N_KINDS], count[N_KINDS]; /* ranges of g_ops (KGEN: indexes into g_int_fields) */
    int need;                           /* bytes a payload needs to carry every field of this source */
} SrcProgram;
typedef struct { int off; int field; } Op; /* field: index into g_int_fields */
static Op g_ops[MAX_FIELDS];
static SrcProgram g_src[MAX_SRC];         /* [0]: the inet_diag_msg header, [g + 1]: group g */

/* Kernel ABI numbers, passed in from netlink/constants.py. */
static long c_hdrlen = 16, c_msglen = 72, c_nla_hdrlen = 4, c_type_mask = 0x3FFF;
static long c_sock_diag = 20, c_done = 3, c_error = 2, c_noop = 1;
static long c_f_request = 1, c_f_dump_intr = 0x10;

/* Problem counters: indexes into the tuple configure() names (netlink/walk.py's kinds). */
enum {
    P_BAD_MESSAGE_LENGTH, P_TRUNCATED_MESSAGE, P_SHORT_INET_DIAG_MSG, P_BAD_ATTRIBUTE_LENGTH,
    P_ATTRIBUTE_OVERRUN, P_UNKNOWN_ATTRIBUTE, P_UNKNOWN_MESSAGE_TYPE, P_TRAILING_BYTES,
    P_REQUEST_MESSAGE, P_FIXED
};

static long dict_long(PyObject *d, const char *key) {
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "configure: constant %s missing", key);
        return -1;
    }
    return PyLong_AsLong(v);
}

static int read_spec(PyObject *t, FieldSpec *f) {
    /* (group, offset, size, big_endian, shift, width, wide, index) */
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8) {
        PyErr_SetString(PyExc_TypeError, "configure: a field spec is an 8-tuple");
        return -1;
    }
    long v[8];
    for (int i = 0; i < 8; i++) {
        v[i] = PyLong_AsLong(PyTuple_GET_ITEM(t, i));
        if (v[i] == -1 && PyErr_Occurred()) return -1;
    }
    f->group = (int)v[0]; f->offset = (int)v[1]; f->size = (int)v[2]; f->big_endian = (int)v[3];
    f->shift = (int)v[4]; f->width = (int)v[5]; f->wide = (int)v[6]; f->index = (int)v[7];
    if (f->group < -1 || f->group >= g_n_groups || f->offset < 0 || f->size <= 0 || f->size > 4096 ||
        f->shift < 0 || f->width < 0 || f->width > 64 || f->index < 0) {
        PyErr_SetString(PyExc_ValueError, "configure: field spec out of range");
        return -1;
    }
    return 0;
}

static int field_kind(const FieldSpec *f) {
    if (f->big_endian || f->width) return KGEN;
    if (f->size == 4 && !f->wide) return K32;
    if (f->size == 8 && f->wide) return K64;
    if (f->size == 1 && !f->wide) return K8;
    if (f->size == 2 && !f->wide) return K16;
    return KGEN;
}

static void build_programs(void) {
    int used = 0;
    for (int s = 0; s <= g_n_groups; s++) {
        SrcProgram *p = &g_src[s];
        p->need = 0;
        for (int k = 0; k < N_KINDS; k++) {
            p->start[k] = used;
            for (int i = 0; i < g_n_int; i++) {
                const FieldSpec *f = &g_int_fields[i];
                if (f->group + 1 != s || field_kind(f) != k) continue;
                g_ops[used].off = f->offset;
                g_ops[used].field = i;
                used++;
                if (f->offset + f->size > p->need) p->need = f->offset + f->size;
            }
            p->count[k] = used - p->start[k];
        }
    }
}

/* configure(constants: dict, groups: tuple[(attr, size, counts_long)], undecoded: tuple[int],
 *           int_fields: tuple[spec], raw_fields: tuple[spec], cong_group: int) */
static PyObject *fc_configure(PyObject *self, PyObject *args) {
    PyObject *consts, *groups, *undecoded, *ints, *raws;
    int cong;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!i", &PyDict_Type, &consts, &PyTuple_Type, &groups,
                          &PyTuple_Type, &undecoded, &PyTuple_Type, &ints, &PyTuple_Type, &raws, &cong))
        return NULL;
    const char *names[] = {"NLMSG_HDRLEN", "INET_DIAG_MSG_LEN", "NLA_HDRLEN", "NLA_TYPE_MASK",
                           "SOCK_DIAG_BY_FAMILY", "NLMSG_DONE", "NLMSG_ERROR", "NLMSG_NOOP",
                           "NLM_F_REQUEST", "NLM_F_DUMP_INTR"};
    long *slots[] = {&c_hdrlen, &c_msglen, &c_nla_hdrlen, &c_type_mask, &c_sock_diag, &c_done,
                     &c_error, &c_noop, &c_f_request, &c_f_dump_intr};
    for (int i = 0; i < 10; i++) {
        long v = dict_long(consts, names[i]);
        if (v == -1 && PyErr_Occurred()) return NULL;
        *slots[i] = v;
    }
    if (c_type_mask <= 0 || c_type_mask >= ATTR_SLOTS || c_hdrlen < 16 || c_msglen < 40 || c_nla_hdrlen != 4) {
        PyErr_SetString(PyExc_ValueError, "configure: unexpected netlink constants");
        return NULL;
    }
    Py_ssize_t ng = PyTuple_GET_SIZE(groups);
    if (ng > MAX_GROUPS || PyTuple_GET_SIZE(ints) > MAX_FIELDS || PyTuple_GET_SIZE(raws) > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "configure: too many groups or fields");
        return NULL;
    }
    for (int i = 0; i < ATTR_SLOTS; i++) g_attr_slot[i] = ATTR_UNKNOWN;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(undecoded); i++) {
        long a = PyLong_AsLong(PyTuple_GET_ITEM(undecoded, i));
        if (a == -1 && PyErr_Occurred()) return NULL;
        if (a < 0 || a >= ATTR_SLOTS) { PyErr_SetString(PyExc_ValueError, "configure: attr type"); return NULL; }
        g_attr_slot[a] = ATTR_KNOWN_UNDECODED;
    }
    g_n_groups = (int)ng;
    for (Py_ssize_t i = 0; i < ng; i++) {
        long attr, size, counts;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(groups, i), "lll", &attr, &size, &counts)) return NULL;
        if (attr <= 0 || attr >= ATTR_SLOTS || size < 0) {
            PyErr_SetString(PyExc_ValueError, "configure: group out of range");
            return NULL;
        }
        g_attr_slot[attr] = (int16_t)i;
        g_group_size[i] = (int)size;
        g_group_counts_long[i] = (int)counts;
    }
    if (cong < -1 || cong >= g_n_groups) { PyErr_SetString(PyExc_ValueError, "configure: cong group"); return NULL; }
    g_cong_group = cong;
    g_cong_width = 16;
    g_n_int = (int)PyTuple_GET_SIZE(ints);
    g_n_u32 = g_n_u64 = 0;
    for (int i = 0; i < g_n_int; i++) {
        if (read_spec(PyTuple_GET_ITEM(ints, i), &g_int_fields[i]) < 0) return NULL;
        FieldSpec *f = &g_int_fields[i];
        if (f->size != 1 && f->size != 2 && f->size != 4 && f->size != 8) {
            PyErr_SetString(PyExc_ValueError, "configure: integer size must be 1, 2, 4 or 8");
            return NULL;
        }
        if (f->wide) { if (f->index + 1 > g_n_u64) g_n_u64 = f->index + 1; }
        else if (f->index + 1 > g_n_u32) g_n_u32 = f->index + 1;
    }
    g_n_raw = (int)PyTuple_GET_SIZE(raws);
    for (int i = 0; i < g_n_raw; i++)
        if (read_spec(PyTuple_GET_ITEM(raws, i), &g_raw_fields[i]) < 0) return NULL;
    build_programs();
    g_configured = 1;
    Py_RETURN_NONE;
}

/* --- the walk ----------------------------------------------------------------------------------- */

static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }

typedef struct {
    /* Per row: message payload (the inet_diag_msg) and chunk; per row and group: payload + length. */
    const unsigned char **msg;
    int64_t *chunk;
    const unsigned char **attr;
    int32_t *alen;
    Py_ssize_t n, cap;
    int64_t problems[P_FIXED];
    int done, interrupted;
    int64_t messages;
    PyObject *errors; /* list of ints */
} Walk;

static int walk_grow(Walk *w) {
    Py_ssize_t cap = w->cap ? w->cap * 2 : 1024;
    size_t G = (size_t)(g_n_groups ? g_n_groups : 1);
    const unsigned char **msg = PyMem_Realloc(w->msg, (size_t)cap * sizeof(*msg));
    if (!msg) return -1;
    w->msg = msg;
    int64_t *chunk = PyMem_Realloc(w->chunk, (size_t)cap * sizeof(*chunk));
    if (!chunk) return -1;
    w->chunk = chunk;
    const unsigned char **attr = PyMem_Realloc(w->attr, (size_t)cap * G * sizeof(*attr));
    if (!attr) return -1;
    w->attr = attr;
    int32_t *alen = PyMem_Realloc(w->alen, (size_t)cap * G * sizeof(*alen));
    if (!alen) return -1;
    w->alen = alen;
    w->cap = cap;
    return 0;
}

static void walk_free(Walk *w) {
    PyMem_Free(w->msg); PyMem_Free(w->chunk); PyMem_Free(w->attr); PyMem_Free(w->alen);
    Py_XDECREF(w->errors);
}

/* One chunk, exactly as netlink/walk.py's walk_chunk does it (the specification). */
static int walk_chunk(const unsigned char *buf, size_t end, int64_t chunk_index, Walk *w) {
    size_t off = 0;
    const size_t hdr = (size_t)c_hdrlen, ml = (size_t)c_msglen;
    const size_t G = (size_t)g_n_groups;
    while (off + hdr <= end) {
        const unsigned char *m = buf + off;
        uint32_t nl_len = rd32(m);
        uint16_t nl_type = rd16(m + 4), nl_flags = rd16(m + 6);
        if (nl_len < hdr) { w->problems[P_BAD_MESSAGE_LENGTH]++; return 0; }
        if (off + nl_len > end) { w->problems[P_TRUNCATED_MESSAGE]++; return 0; }
        w->messages++;
        /* The attribute walk below is a chain of dependent loads (each header gives the next
         * one's offset); with the dump cold in cache each step waited on memory (~30% of the
         * decode). Ask for the lines of the message after next while this one is walked. */
        if (off + 2 * (size_t)nl_len + 64 <= end) {
            const unsigned char *ahead = m + 2 * (size_t)nl_len;
            for (size_t k = 0; k < nl_len; k += 64) __builtin_prefetch(ahead + k);
        }
        if (nl_flags & c_f_dump_intr) w->interrupted = 1;
        if (nl_flags & c_f_request) {
            w->problems[P_REQUEST_MESSAGE]++;
        } else if (nl_type == c_sock_diag) {
            if (nl_len < hdr + ml) {
                w->problems[P_SHORT_INET_DIAG_MSG]++;
            } else {
                if (w->n == w->cap && walk_grow(w) < 0) { PyErr_NoMemory(); return -1; }
                Py_ssize_t row = w->n++;
                w->msg[row] = m + hdr;
                w->chunk[row] = chunk_index;
                const unsigned char **ap = w->attr + (size_t)row * G;
                int32_t *lp = w->alen + (size_t)row * G;
                for (size_t g = 0; g < G; g++) { ap[g] = NULL; lp[g] = 0; }
                size_t a = hdr + ml;
                const size_t mend = nl_len;
                while (a + 4 <= mend) {
                    uint16_t a_len = rd16(m + a), a_type = rd16(m + a + 2);
                    if (a_len < 4) { w->problems[P_BAD_ATTRIBUTE_LENGTH]++; break; }
                    if (a + a_len > mend) { w->problems[P_ATTRIBUTE_OVERRUN]++; break; }
                    int slot = g_attr_slot[a_type & c_type_mask];
                    if (slot >= 0) {
                        /* A repeated attribute: the last one wins, as in the kernel's nla_parse. */
                        ap[slot] = m + a + 4;
                        lp[slot] = (int32_t)a_len - 4;
                    } else if (slot == ATTR_UNKNOWN) {
                        w->problems[P_UNKNOWN_ATTRIBUTE]++;
                    }
                    a += ((size_t)a_len + 3) & ~(size_t)3;
                }
            }
        } else if (nl_type == c_done) {
            w->done = 1;
        } else if (nl_type == c_error) {
            int64_t err = 0;
            if (nl_len >= hdr + 4) {
                int32_t e;
                memcpy(&e, m + hdr, 4);
                err = -(int64_t)e;
            }
            if (err) {
                PyObject *v = PyLong_FromLongLong(err);
                if (!v || PyList_Append(w->errors, v) < 0) { Py_XDECREF(v); return -1; }
                Py_DECREF(v);
            }
        } else if (nl_type != c_noop) {
            w->problems[P_UNKNOWN_MESSAGE_TYPE]++;
        }
        off += ((size_t)nl_len + 3) & ~(size_t)3;
    }
    if (off < end) w->problems[P_TRAILING_BYTES]++;
    return 0;
}

/* --- the gather --------------------------------------------------------------------------------- */

typedef struct { Py_buffer b; int held; } Buf;

static int get_buf(PyObject *o, Buf *out, Py_ssize_t need, const char *what) {
    if (PyObject_GetBuffer(o, &out->b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    out->held = 1;
    if (out->b.len < need) {
        PyErr_Format(PyExc_ValueError, "decode: %s buffer holds %zd bytes, %zd needed", what, out->b.len, need);
        return -1;
    }
    return 0;
}

static void rel_buf(Buf *b) { if (b->held) { PyBuffer_Release(&b->b); b->held = 0; } }

static inline uint64_t read_int(const unsigned char *p, int size, int big_endian) {
    uint64_t v = 0;
    switch (size) {
    case 1: v = p[0]; break;
    case 2: { uint16_t x; memcpy(&x, p, 2); v = big_endian ? (uint16_t)((x >> 8) | (x << 8)) : x; break; }
    case 4: { uint32_t x; memcpy(&x, p, 4); v = big_endian ? __builtin_bswap32(x) : x; break; }
    default: { uint64_t x; memcpy(&x, p, 8); v = big_endian ? __builtin_bswap64(x) : x; break; }
    }
    return v;
}

/* One integer field of one row, read only if the payload carries all of it (else 0). */
static inline void gather_one(const FieldSpec *f, const unsigned char *base, int32_t have, void *dst, Py_ssize_t r) {
    uint64_t v = 0;
    if (base != NULL && have >= f->offset + f->size) {
        v = read_int(base + f->offset, f->size, f->big_endian);
        if (f->width) v = (v >> f->shift) & (f->width >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << f->width) - 1));
    }
    if (f->wide) ((uint64_t *)dst)[r] = v;
    else ((uint32_t *)dst)[r] = (uint32_t)v;
}

/* decode(chunks: sequence of bytes-like, alloc: callable(n) -> (u32, u64, lengths, raws, cong, row_chunk))
 *   -> (n, problems: tuple[int], too_long: tuple[int] per group, done, interrupted, messages, errors) */
static PyObject *fc_decode(PyObject *self, PyObject *args) {
    PyObject *chunks_in, *alloc;
    if (!PyArg_ParseTuple(args, "OO", &chunks_in, &alloc)) return NULL;
    if (!g_configured) { PyErr_SetString(PyExc_RuntimeError, "_fastcore.configure() was not called"); return NULL; }
    PyObject *chunks = PySequence_Fast(chunks_in, "decode: chunks must be a sequence");
    if (!chunks) return NULL;
    Py_ssize_t nch = PySequence_Fast_GET_SIZE(chunks);
    Py_buffer *views = PyMem_Calloc((size_t)(nch ? nch : 1), sizeof(Py_buffer));
    Walk w;
    memset(&w, 0, sizeof w);
    PyObject *result = NULL, *allocated = NULL;
    Buf bu32 = {0}, bu64 = {0}, blen = {0}, bcong = {0}, brow = {0};
    Buf braw[MAX_FIELDS];
    memset(braw, 0, sizeof braw);
    Py_ssize_t held = 0;
    if (!views) { PyErr_NoMemory(); goto out; }
    w.errors = PyList_New(0);
    if (!w.errors) goto out;
    for (; held < nch; held++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(chunks, held), &views[held], PyBUF_SIMPLE) < 0) goto out;
    }
    for (Py_ssize_t i = 0; i < nch; i++)
        if (walk_chunk(views[i].buf, (size_t)views[i].len, i, &w) < 0) goto out;

    const Py_ssize_t n = w.n;
    const size_t G = (size_t)g_n_groups;
    allocated = PyObject_CallFunction(alloc, "n", n);
    if (!allocated) goto out;
    if (!PyTuple_Check(allocated) || PyTuple_GET_SIZE(allocated) != 6) {
        PyErr_SetString(PyExc_TypeError, "decode: alloc must return a 6-tuple");
        goto out;
    }
    if (get_buf(PyTuple_GET_ITEM(allocated, 0), &bu32, (Py_ssize_t)g_n_u32 * n * 4, "u32") < 0 ||
        get_buf(PyTuple_GET_ITEM(allocated, 1), &bu64, (Py_ssize_t)g_n_u64 * n * 8, "u64") < 0 ||
        get_buf(PyTuple_GET_ITEM(allocated, 2), &blen, (Py_ssize_t)G * n * 4, "lengths") < 0 ||
        get_buf(PyTuple_GET_ITEM(allocated, 4), &bcong, n * g_cong_width, "congestion") < 0 ||
        get_buf(PyTuple_GET_ITEM(allocated, 5), &brow, n * 8, "row_chunk") < 0)
        goto out;
    PyObject *raws = PyTuple_GET_ITEM(allocated, 3);
    if (!PyTuple_Check(raws) || PyTuple_GET_SIZE(raws) != g_n_raw) {
        PyErr_SetString(PyExc_TypeError, "decode: one raw buffer per raw field");
        goto out;
    }
    for (int i = 0; i < g_n_raw; i++)
        if (get_buf(PyTuple_GET_ITEM(raws, i), &braw[i], n * g_raw_fields[i].size, "raw") < 0) goto out;

    uint32_t *u32 = bu32.b.buf;
    uint64_t *u64 = bu64.b.buf;
    int32_t *lens = blen.b.buf;
    unsigned char *cong = bcong.b.buf;
    int64_t *rowc = brow.b.buf;
    int64_t too_long[MAX_GROUPS];
    memset(too_long, 0, sizeof too_long);
    /* Each op's column (its row of the u32 or u64 matrix), in g_ops order. */
    void *dst[MAX_FIELDS];
    for (int j = 0; j < g_n_int; j++) {
        const FieldSpec *f = &g_int_fields[g_ops[j].field];
        dst[j] = f->wide ? (void *)(u64 + (size_t)f->index * (size_t)n) : (void *)(u32 + (size_t)f->index * (size_t)n);
    }

    for (Py_ssize_t r = 0; r < n; r++) {
        const unsigned char **ap = w.attr + (size_t)r * G;
        const int32_t *lp = w.alen + (size_t)r * G;
        /* Each row writes one value into each of ~100 columns: more store streams than the
         * hardware prefetcher follows, and each new line of a column was a miss (the columns'
         * memory is cold). Every 16 rows, ask for each column's line 64 rows ahead, for writing. */
        if ((r & 15) == 0 && r + 64 < n) {
            for (int j = 0; j < g_n_int; j++)
                __builtin_prefetch((const unsigned char *)dst[j] + (size_t)(r + 64) * (g_int_fields[g_ops[j].field].wide ? 8 : 4), 1);
            for (size_t g = 0; g < G; g++) __builtin_prefetch(lens + g * (size_t)n + (size_t)r + 64, 1);
        }
        rowc[r] = w.chunk[r];
        for (size_t g = 0; g < G; g++) {
            lens[g * (size_t)n + (size_t)r] = lp[g];
            if (lp[g] > g_group_size[g] && g_group_counts_long[g]) too_long[g]++;
        }
        for (int src = 0; src <= (int)G; src++) {
            const SrcProgram *p = &g_src[src];
            const unsigned char *base;
            int32_t have;
            if (src == 0) { base = w.msg[r]; have = (int32_t)c_msglen; }
            else { base = ap[src - 1]; have = lp[src - 1]; }
            if (base != NULL && have >= p->need) {
                /* Every field of this source is inside its payload: no per-field checks. */
                int j = p->start[K32], e = j + p->count[K32];
                for (; j < e; j++) ((uint32_t *)dst[j])[r] = rd32(base + g_ops[j].off);
                for (e = j + p->count[K64]; j < e; j++) { uint64_t v; memcpy(&v, base + g_ops[j].off, 8); ((uint64_t *)dst[j])[r] = v; }
                for (e = j + p->count[K8]; j < e; j++) ((uint32_t *)dst[j])[r] = base[g_ops[j].off];
                for (e = j + p->count[K16]; j < e; j++) ((uint32_t *)dst[j])[r] = rd16(base + g_ops[j].off);
                for (e = j + p->count[KGEN]; j < e; j++) gather_one(&g_int_fields[g_ops[j].field], base, have, dst[j], r);
            } else {
                /* A source the row lacks (or carries shorter than known): each field checked. */
                int j = p->start[K32], e = j + p->count[K32] + p->count[K64] + p->count[K8] + p->count[K16] + p->count[KGEN];
                for (; j < e; j++) gather_one(&g_int_fields[g_ops[j].field], base, have, dst[j], r);
            }
        }
        for (int i = 0; i < g_n_raw; i++) {
            const FieldSpec *f = &g_raw_fields[i];
            unsigned char *dst = (unsigned char *)braw[i].b.buf + (size_t)r * (size_t)f->size;
            const unsigned char *base;
            int32_t have;
            if (f->group < 0) { base = w.msg[r]; have = (int32_t)c_msglen; }
            else { base = ap[f->group]; have = lp[f->group]; }
            if (base != NULL && have >= f->offset + f->size) memcpy(dst, base + f->offset, (size_t)f->size);
            else memset(dst, 0, (size_t)f->size);
        }
        if (g_cong_group >= 0) {
            unsigned char *dst = cong + (size_t)r * (size_t)g_cong_width;
            memset(dst, 0, (size_t)g_cong_width);
            const unsigned char *src = ap[g_cong_group];
            int32_t cl = lp[g_cong_group];
            if (src != NULL) {
                /* The name up to its first NUL, at most 16 bytes (numpy's 'S16' keeps no more). */
                for (int32_t k = 0; k < cl && k < g_cong_width && src[k]; k++) dst[k] = src[k];
            }
        }
    }

    PyObject *probs = PyTuple_New(P_FIXED);
    PyObject *longs = PyTuple_New((Py_ssize_t)G);
    if (!probs || !longs) { Py_XDECREF(probs); Py_XDECREF(longs); goto out; }
    for (int i = 0; i < P_FIXED; i++) PyTuple_SET_ITEM(probs, i, PyLong_FromLongLong(w.problems[i]));
    for (size_t g = 0; g < G; g++) PyTuple_SET_ITEM(longs, (Py_ssize_t)g, PyLong_FromLongLong(too_long[g]));
    result = Py_BuildValue("nNNiiLO", n, probs, longs, w.done, w.interrupted, (long long)w.messages, w.errors);

out:
    rel_buf(&bu32); rel_buf(&bu64); rel_buf(&blen); rel_buf(&bcong); rel_buf(&brow);
    for (int i = 0; i < g_n_raw; i++) rel_buf(&braw[i]);
    Py_XDECREF(allocated);
    if (views) {
        for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
        PyMem_Free(views);
    }
    walk_free(&w);
    Py_DECREF(chunks);
    return result;
}

/* --- the protobuf row encoder ------------------------------------------------------------------- */

enum { IT_CONST = 0, IT_VARINT = 1, IT_TABLE = 2, IT_RAW = 3, IT_VARINT_IF = 4,
       /* JSON text: a key and a decimal (unsigned, or signed int64), and an address as text. */
       IT_DEC = 5, IT_SDEC = 6, IT_ADDR = 7 };

/* What the row loop runs: the item kinds split by column width, so that each case is straight-line
 * code and consecutive items of one op (most of a record) run in an inner loop without a switch. */
enum { OP_CONST, OP_VARINT4, OP_VARINT8, OP_TABLE, OP_RAW, OP_DEC4, OP_DEC8, OP_SDEC, OP_ADDR };

/* The presence test of an item without lengths: ALWAYS_LEN[0] >= 0 holds for every row (step 0). */
static const int32_t ALWAYS_LEN[1] = {0};

typedef struct {
    int kind;
    int op;
    int run;                                /* on a run's first item: how many items of ``op`` follow */
    Py_ssize_t lens_step;                   /* 1, or 0 with lens = ALWAYS_LEN */
    const unsigned char *tag; Py_ssize_t tag_len;
    uint64_t tag_word;                      /* the tag's bytes, zero-padded: one 8-byte store */
    unsigned char key32[32];                /* a JSON key up to 32 bytes, zero-padded: two 16-byte stores */
    const unsigned char *data; int width;   /* varint column (4 or 8 bytes), raw column (width bytes) */
    const int64_t *codes;                   /* table */
    const int32_t *lens; int32_t end;       /* the row carries the field when lens[r] >= end (NULL: always) */
    const unsigned char *fam; int fam_width; long af_inet; /* addr: the family column picks inet or inet6 */
    const unsigned char **entries; Py_ssize_t *entry_len; Py_ssize_t n_entries;
    Py_ssize_t max_len;
} Item;

static inline unsigned char *put_varint(unsigned char *p, uint64_t v) {
    while (v >= 0x80) { *p++ = (unsigned char)(v | 0x80); v >>= 7; }
    *p++ = (unsigned char)v;
    return p;
}

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static const uint64_t POW10[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull, 10000000000000000000ull};

/* The number of decimal digits of v (1 for 0): bits × log10(2) (1233 / 4096), then one compare.
 * v | 1 has as many digits as v for v >= 1 (a power of ten minus one is odd) and one for 0. */
static inline int udec_len(uint64_t v) {
    v |= 1;
    int t = ((64 - __builtin_clzll(v)) * 1233) >> 12;
    return t + (v >= POW10[t]);
}

/* v in decimal, written backwards two digits at a time straight into place (its length is known
 * first, so there is no scratch buffer to copy out). */
static inline unsigned char *put_udec(unsigned char *p, uint64_t v) {
    /* The length by compares for the common short values: predicted branches, so the next item's
     * position does not wait on clz and a table load (see the row loop); udec_len above that. */
    int len = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6
            : udec_len(v);
    unsigned char *end = p + len, *w = end;
    while (v >= ((uint64_t)1 << 32)) {  /* 64-bit divisions only for the digits above 2^32 */
        w -= 2;
        memcpy(w, DIGIT_PAIRS + 2 * (v % 100), 2);
        v /= 100;
    }
    uint32_t u = (uint32_t)v;
    while (u >= 100) {
        w -= 2;
        memcpy(w, DIGIT_PAIRS + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) memcpy(w - 2, DIGIT_PAIRS + 2 * u, 2);
    else w[-1] = (unsigned char)('0' + u);
    return end;
}

static inline unsigned char *put_sdec(unsigned char *p, int64_t v) {
    if (v < 0) { *p++ = '-'; return put_udec(p, (uint64_t)0 - (uint64_t)v); }
    return put_udec(p, (uint64_t)v);
}

/* Each octet 0..255 as its digits and a '.', in 4 bytes, and how many of them count: an IPv4
 * address is four 4-byte stores (inet_ntop formats it with sprintf, ~2% of the service's CPU). */
static uint32_t OCTET_TEXT[256];
static unsigned char OCTET_LEN[256];

static void init_octets(void) {
    for (int o = 0; o < 256; o++) {
        char t[8];
        int k = 0;
        if (o >= 100) t[k++] = (char)('0' + o / 100);
        if (o >= 10) t[k++] = (char)('0' + o / 10 % 10);
        t[k++] = (char)('0' + o % 10);
        t[k++] = '.';
        while (k < 4) t[k++] = 0;
        memcpy(&OCTET_TEXT[o], t, 4);
        OCTET_LEN[o] = (unsigned char)(o >= 100 ? 4 : o >= 10 ? 3 : 2);
    }
}

/* "a.b.c.d" with its quotes, as inet_ntop(AF_INET) writes the text. Stores up to 4 bytes past the
 * end (slack). */
static inline unsigned char *put_ipv4_quoted(unsigned char *q, const unsigned char *a) {
    *q++ = '"';
    for (int k = 0; k < 4; k++) {
        memcpy(q, &OCTET_TEXT[a[k]], 4);
        q += OCTET_LEN[a[k]];
    }
    q[-1] = '"';  /* over the last octet's '.' */
    return q;
}

static inline uint64_t read_col(const unsigned char *data, int width, Py_ssize_t r) {
    if (width == 8) { uint64_t v; memcpy(&v, data + 8 * (size_t)r, 8); return v; }
    uint32_t v32; memcpy(&v32, data + 4 * (size_t)r, 4); return v32;
}

/* encode(items: sequence, n: int, row_tag: bytes, offsets: writable int64[n + 1]) -> bytes
 *
 * items, ascending by field number: (0, raw) constant bytes in every row; (1, tag, column, width)
 * a varint column, omitted where 0 (proto3); (4, tag, column, width, lengths int32[n], end) the
 * same, also omitted where lengths[r] < end; (2, codes int64[n], entries tuple[bytes]) one of a
 * few encoded byte strings per row; (3, tag, column, width) a bytes field of ``width`` bytes per
 * row. JSON text items: (5, key, column, width, lengths int32[n] | None, end) the key then the
 * unsigned decimal, left out where lengths[r] < end; (6, key, column int64[n]) a signed decimal;
 * (7, key, column uint8[n, 16], family column, family width, AF_INET) the key, then the address
 * as inet_ntop writes it between quotes. A non-empty row_tag frames every record as a length-delimited field with that tag
 * (ProtobufList's Envelope ``row``). */
static PyObject *fc_encode(PyObject *self, PyObject *args) {
    PyObject *items_in, *offs_obj;
    Py_ssize_t n;
    const char *row_tag;
    Py_ssize_t row_tag_len;
    if (!PyArg_ParseTuple(args, "Ony#O", &items_in, &n, &row_tag, &row_tag_len, &offs_obj)) return NULL;
    if (n < 0) { PyErr_SetString(PyExc_ValueError, "encode: n < 0"); return NULL; }
    PyObject *items = PySequence_Fast(items_in, "encode: items must be a sequence");
    if (!items) return NULL;
    Py_ssize_t ni = PySequence_Fast_GET_SIZE(items);
    Item *it = PyMem_Calloc((size_t)(ni ? ni : 1), sizeof(Item));
    Py_buffer *bufs = PyMem_Calloc((size_t)(3 * ni + 1), sizeof(Py_buffer));
    int *held = PyMem_Calloc((size_t)(3 * ni + 1), sizeof(int));
    Buf boffs = {0};
    PyObject *out = NULL;
    if (!it || !bufs || !held) { PyErr_NoMemory(); goto done; }
    if (get_buf(offs_obj, &boffs, (n + 1) * 8, "offsets") < 0) goto done;
    Py_ssize_t max_row = 0;
    for (Py_ssize_t i = 0; i < ni; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(items, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 2) { PyErr_SetString(PyExc_TypeError, "encode: bad item"); goto done; }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
        Item *x = &it[i];
        x->kind = (int)kind;
        if (kind == IT_CONST) {
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 1), &bufs[3 * i], PyBUF_SIMPLE) < 0) goto done;
            held[3 * i] = 1;
            x->data = bufs[3 * i].buf;
            x->max_len = bufs[3 * i].len;
        } else if (kind == IT_VARINT || kind == IT_RAW || kind == IT_VARINT_IF || kind == IT_DEC ||
                   kind == IT_SDEC || kind == IT_ADDR) {
            Py_ssize_t want = kind == IT_VARINT_IF || kind == IT_DEC || kind == IT_ADDR ? 6 : 4;
            if (PyTuple_GET_SIZE(t) != want) {
                PyErr_SetString(PyExc_TypeError, "encode: bad column item");
                goto done;
            }
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 1), &bufs[3 * i], PyBUF_SIMPLE) < 0) goto done;
            held[3 * i] = 1;
            x->tag = bufs[3 * i].buf;
            x->tag_len = bufs[3 * i].len;
            if (x->tag_len < 1 || (x->tag_len > 8 && kind < IT_DEC)) {
                PyErr_SetString(PyExc_ValueError, "encode: a tag is 1 to 8 bytes");
                goto done;
            }
            x->tag_word = 0;
            memcpy(&x->tag_word, x->tag, (size_t)(x->tag_len < 8 ? x->tag_len : 8));
            memset(x->key32, 0, sizeof x->key32);
            memcpy(x->key32, x->tag, (size_t)(x->tag_len < 32 ? x->tag_len : 32));
            long width = PyLong_AsLong(PyTuple_GET_ITEM(t, 3));
            if (width == -1 && PyErr_Occurred()) goto done;
            int raw_kind = kind == IT_RAW || kind == IT_ADDR;
            if ((!raw_kind && width != 4 && width != 8) || (kind == IT_SDEC && width != 8) ||
                (raw_kind && (width <= 0 || width > 0x7F)) || (kind == IT_ADDR && width != 16)) {
                PyErr_SetString(PyExc_ValueError, "encode: column width");
                goto done;
            }
            x->width = (int)width;
            x->lens = ALWAYS_LEN;
            x->lens_step = 0;
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 2), &bufs[3 * i + 1], PyBUF_C_CONTIGUOUS) < 0) goto done;
            held[3 * i + 1] = 1;
            if (bufs[3 * i + 1].len < n * width) { PyErr_SetString(PyExc_ValueError, "encode: column too short"); goto done; }
            x->data = bufs[3 * i + 1].buf;
            /* The most a row can take: a varint of 32 bits is 5 bytes, of 64 bits 10; a decimal 10 or
             * 20 digits (a signed one 19 and '-'); an address 45 characters (INET6_ADDRSTRLEN
             * counts its NUL) and quotes. A tight bound keeps the fresh buffer small. */
            x->max_len = x->tag_len + (kind == IT_RAW ? 1 + width : kind == IT_ADDR ? INET6_ADDRSTRLEN + 1
                                       : kind >= IT_DEC ? (width == 4 ? 10 : 20) : (width == 4 ? 5 : 10));
            if (kind == IT_ADDR) {
                if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 4), &bufs[3 * i + 2], PyBUF_C_CONTIGUOUS) < 0) goto done;
                held[3 * i + 2] = 1;
                long fw = PyLong_AsLong(PyTuple_GET_ITEM(t, 5));
                if (fw == -1 && PyErr_Occurred()) goto done;
                if ((fw != 4 && fw != 8) || bufs[3 * i + 2].len < n * fw) {
                    PyErr_SetString(PyExc_ValueError, "encode: family column");
                    goto done;
                }
                x->fam = bufs[3 * i + 2].buf;
                x->fam_width = (int)fw;
                x->af_inet = AF_INET;
            } else if ((kind == IT_VARINT_IF || kind == IT_DEC) && PyTuple_GET_ITEM(t, 4) != Py_None) {
                if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 4), &bufs[3 * i + 2], PyBUF_C_CONTIGUOUS) < 0) goto done;
                held[3 * i + 2] = 1;
                if (bufs[3 * i + 2].len < n * 4 || bufs[3 * i + 2].itemsize != 4) {
                    PyErr_SetString(PyExc_ValueError, "encode: lengths must be int32, one per row");
                    goto done;
                }
                x->lens = bufs[3 * i + 2].buf;
                x->lens_step = 1;
                long end = PyLong_AsLong(PyTuple_GET_ITEM(t, 5));
                if (end == -1 && PyErr_Occurred()) goto done;
                x->end = (int32_t)end;
            }
        } else if (kind == IT_TABLE) {
            if (PyTuple_GET_SIZE(t) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(t, 2))) {
                PyErr_SetString(PyExc_TypeError, "encode: bad table item");
                goto done;
            }
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 1), &bufs[3 * i], PyBUF_C_CONTIGUOUS) < 0) goto done;
            held[3 * i] = 1;
            if (bufs[3 * i].len < n * 8) { PyErr_SetString(PyExc_ValueError, "encode: codes too short"); goto done; }
            x->codes = bufs[3 * i].buf;
            PyObject *entries = PyTuple_GET_ITEM(t, 2);
            x->n_entries = PyTuple_GET_SIZE(entries);
            x->entries = PyMem_Calloc((size_t)(x->n_entries ? x->n_entries : 1), sizeof(*x->entries));
            x->entry_len = PyMem_Calloc((size_t)(x->n_entries ? x->n_entries : 1), sizeof(*x->entry_len));
            if (!x->entries || !x->entry_len) { PyErr_NoMemory(); goto done; }
            for (Py_ssize_t k = 0; k < x->n_entries; k++) {
                PyObject *e = PyTuple_GET_ITEM(entries, k); /* held by the tuple, itself held by items */
                if (!PyBytes_Check(e)) { PyErr_SetString(PyExc_TypeError, "encode: table entries are bytes"); goto done; }
                x->entries[k] = (const unsigned char *)PyBytes_AS_STRING(e);
                x->entry_len[k] = PyBytes_GET_SIZE(e);
                if (x->entry_len[k] > x->max_len) x->max_len = x->entry_len[k];
            }
        } else {
            PyErr_SetString(PyExc_ValueError, "encode: unknown item kind");
            goto done;
        }
        max_row += x->max_len;
        x->op = kind == IT_CONST ? OP_CONST : kind == IT_TABLE ? OP_TABLE : kind == IT_RAW ? OP_RAW
              : kind == IT_SDEC ? OP_SDEC : kind == IT_ADDR ? OP_ADDR
              : kind == IT_DEC ? (x->width == 8 ? OP_DEC8 : OP_DEC4) : (x->width == 8 ? OP_VARINT8 : OP_VARINT4);
    }
    /* Runs: the varint and decimal ops loop over their consecutive items; the others run one by one. */
    for (Py_ssize_t i = ni - 1; i >= 0; i--) {
        int looped = it[i].op == OP_VARINT4 || it[i].op == OP_VARINT8 || it[i].op == OP_DEC4 || it[i].op == OP_DEC8;
        it[i].run = looped && i + 1 < ni && it[i + 1].op == it[i].op ? it[i + 1].run + 1 : 1;
    }
    /* Record plus its frame (tag + 10-byte varint), per row; the bytes are shrunk to fit at the end. */
    Py_ssize_t frame = row_tag_len ? row_tag_len + 10 : 0;
    if (n && (max_row + frame) > PY_SSIZE_T_MAX / n) { PyErr_NoMemory(); goto done; }
    /* Slack: fixed-size stores (8-byte tags, 32-byte keys, 16-byte digits) at the very end may
     * reach past the last row's bytes. */
    Py_ssize_t cap = n * (max_row + frame) + 64;
    out = PyBytes_FromStringAndSize(NULL, cap);
    if (!out) goto done;
    unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *p = base;
    int64_t *offs = boffs.b.buf;
    offs[0] = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        /* A row reads one value from each of ~100 columns: more streams than the hardware
         * prefetcher follows, so each column's line 64 rows ahead is asked for every 8 rows (a
         * 64-bit column starts a new line every 8 rows; every 16 left half of them unfetched:
         * protobuf 0.39 -> 0.36 us/row; 32 or 128 rows ahead measured no better). */
        if ((r & 7) == 0 && r + 64 < n) {
            for (Py_ssize_t i = 0; i < ni; i++) {
                const Item *x = &it[i];
                if (x->kind == IT_VARINT || x->kind == IT_VARINT_IF || x->kind == IT_DEC || x->kind == IT_SDEC)
                    __builtin_prefetch(x->data + (size_t)x->width * (size_t)(r + 64));
                if (x->lens_step) __builtin_prefetch(x->lens + r + 64);
            }
        }
        /* The record goes after room for the longest frame; when the frame is shorter it moves down. */
        unsigned char *rec = p + frame;
        unsigned char *q = rec;
        for (Py_ssize_t i = 0; i < ni; i += it[i].run) {
            const Item *x = &it[i];
            switch (x->op) {
            case OP_CONST:
                memcpy(q, x->data, (size_t)x->max_len);
                q += x->max_len;
                break;
            /* Varints and decimals. Proto3 omits zero varints; a decimal is left out only where
             * the row lacks the field. These are branches on purpose: a branch-free form (write
             * always, advance q by a conditional move; a varint's length from clz and its bytes
             * in one 8-byte store) measured slower (protobuf 0.44 -> 0.73 us/row) because every
             * item's q then waits for the previous item's length computation, a serial chain of
             * ~120 items per row, while predicted branches let the stores run ahead. */
            case OP_VARINT4:
                for (const Item *y = x, *z = x + x->run; y < z; y++) {
                    uint32_t v32;
                    memcpy(&v32, y->data + 4 * (size_t)r, 4);
                    int keep = (v32 != 0) & (y->lens[r * y->lens_step] >= y->end);
                    if (!keep) continue;
                    memcpy(q, &y->tag_word, 8);  /* 8 bytes stored, tag_len kept */
                    q = put_varint(q + y->tag_len, v32);
                }
                break;
            case OP_VARINT8:
                for (const Item *y = x, *z = x + x->run; y < z; y++) {
                    uint64_t v;
                    memcpy(&v, y->data + 8 * (size_t)r, 8);
                    int keep = (v != 0) & (y->lens[r * y->lens_step] >= y->end);
                    if (!keep) continue;
                    memcpy(q, &y->tag_word, 8);  /* 8 bytes stored, tag_len kept */
                    q = put_varint(q + y->tag_len, v);
                }
                break;
            case OP_DEC4:
            case OP_DEC8:
                for (const Item *y = x, *z = x + x->run; y < z; y++) {
                    uint64_t v;
                    if (x->op == OP_DEC8) memcpy(&v, y->data + 8 * (size_t)r, 8);
                    else { uint32_t v32; memcpy(&v32, y->data + 4 * (size_t)r, 4); v = v32; }
                    if (y->lens[r * y->lens_step] < y->end) continue;
                    if (y->tag_len <= 32) memcpy(q, y->key32, 32);
                    else memcpy(q, y->tag, (size_t)y->tag_len);
                    q = put_udec(q + y->tag_len, v);
                }
                break;
            case OP_SDEC: {
                int64_t v;
                memcpy(&v, x->data + 8 * (size_t)r, 8);
                memcpy(q, x->tag, (size_t)x->tag_len);
                q = put_sdec(q + x->tag_len, v);
                break;
            }
            case OP_ADDR: {
                memcpy(q, x->tag, (size_t)x->tag_len);
                q += x->tag_len;
                const unsigned char *a = x->data + 16 * (size_t)r;
                if (read_col(x->fam, x->fam_width, r) == (uint64_t)x->af_inet) {
                    q = put_ipv4_quoted(q, a);
                    break;
                }
                char text[INET6_ADDRSTRLEN + 1];
                if (inet_ntop(AF_INET6, a, text, sizeof text) == NULL) text[0] = 0;
                size_t tl = strlen(text);
                *q++ = '"';
                memcpy(q, text, tl);
                q += tl;
                *q++ = '"';
                break;
            }
            case OP_TABLE: {
                int64_t code = x->codes[r];
                if (code < 0 || code >= x->n_entries) {
                    PyErr_SetString(PyExc_IndexError, "encode: table code out of range");
                    Py_CLEAR(out);
                    goto done;
                }
                memcpy(q, x->entries[code], (size_t)x->entry_len[code]);
                q += x->entry_len[code];
                break;
            }
            default: /* OP_RAW */
                memcpy(q, &x->tag_word, 8);
                q += x->tag_len;
                *q++ = (unsigned char)x->width;
                memcpy(q, x->data + (size_t)x->width * (size_t)r, (size_t)x->width);
                q += x->width;
                break;
            }
        }
        Py_ssize_t rec_len = q - rec;
        if (frame) {
            memcpy(p, row_tag, (size_t)row_tag_len);
            unsigned char *h = put_varint(p + row_tag_len, (uint64_t)rec_len);
            memmove(h, rec, (size_t)rec_len);
            p = h + rec_len;
        } else {
            p = q;
        }
        offs[r + 1] = p - base;
    }
    if (_PyBytes_Resize(&out, p - base) < 0) out = NULL;

done:
    if (it) {
        for (Py_ssize_t i = 0; i < ni; i++) { PyMem_Free(it[i].entries); PyMem_Free(it[i].entry_len); }
    }
    if (bufs && held) {
        for (Py_ssize_t i = 0; i < 3 * ni + 1; i++) if (held[i]) PyBuffer_Release(&bufs[i]);
    }
    PyMem_Free(it); PyMem_Free(bufs); PyMem_Free(held);
    rel_buf(&boffs);
    Py_DECREF(items);
    return out;
}

static PyMethodDef methods[] = {
    {"configure", fc_configure, METH_VARARGS, "Set the layout tables (from netlink/fields.py)."},
    {"decode", fc_decode, METH_VARARGS, "Walk netlink chunks and gather every field into columns."},
    {"encode", fc_encode, METH_VARARGS, "Encode rows of items as protobuf wire bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcore", "xtcp_async's compiled hot path.", -1, methods};

PyMODINIT_FUNC PyInit__fastcore(void) {
    init_octets();
    return PyModule_Create(&module);
}
