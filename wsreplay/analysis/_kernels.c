/* The analyses' passes over every row, in C (optional: without it each analysis runs its numpy version,
 * which sits beside its caller and gives the same results).
 *
 * pair_next: the "next" ACK pairing of latency.py (_pair_next_numpy is the same in numpy).
 * count_refreshes, group_refreshes: the refresh rows grouped by instance or outpost, in time order within
 *   (_rows.py's _refreshes_by_numpy: a radix sort of their codes and gathers of their columns).
 * valid_gaps, run_medians: hello.py's usable gaps between HELLOs and their median per instance (its numpy
 *   versions: masks and gathers of every HELLO, and a loop of np.partition per instance).
 * classify, take_codes: _rows.py's class of each row and _common.categorical's gather of codes with the
 *   categories they use, each in one pass.
 * up_periods: coverage.py's up periods per group (connection ends, running maximum of expiries, gaps)
 *   in one pass instead of a dozen full-length numpy operations.
 * is_sorted, group_cummax: _common.py's time-order check and _group.py's running maximum per group, without
 *   the full-length temporaries of their numpy versions.
 *
 * Why C: each numpy version makes several full-length temporaries (masks, gathers, sorts), and on 17 M rows
 * those cost more than the work; each kernel reads the rows once and writes only into arrays numpy
 * allocated (huge pages). Every kernel releases the GIL; those given a number of parts cut their rows into
 * that many and run one thread each (_native.parts). BENCHMARKS.md (Analysis) has the timings;
 * tests/analysis/test_kernels.py checks each kernel against its numpy version.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <pthread.h>
#endif

/* the most parts (threads) a pass is cut into */
#define MAX_PARTS 16

/* row classes of _rows.py: refreshes are cls <= C_REQ */
#define C_REQ 1
#define C_ACK 2
#define NO_TIME INT64_MAX /* _common.NO_TIME */

/* A C-contiguous 1-d buffer of signed integers of any width, read as int64. */
typedef struct {
    Py_buffer view;
    int width; /* 1, 2, 4, 8 */
} IntArray;

static int
int_array(PyObject *obj, IntArray *a, const char *name, int writable)
{
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &a->view, flags) < 0) {
        return -1;
    }
    const char *f = a->view.format ? a->view.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    a->width = (int)a->view.itemsize;
    int ok = a->view.ndim == 1 && *f != '\0' && strchr("bhilq", *f) != NULL && f[1] == '\0' &&
             (a->width == 1 || a->width == 2 || a->width == 4 || a->width == 8);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a 1-d array of signed integers (format %s)", name, f);
        PyBuffer_Release(&a->view);
        return -1;
    }
    return 0;
}

static inline int64_t
at(const IntArray *a, Py_ssize_t i)
{
    switch (a->width) {
    case 1:
        return ((const int8_t *)a->view.buf)[i];
    case 2:
        return ((const int16_t *)a->view.buf)[i];
    case 4:
        return ((const int32_t *)a->view.buf)[i];
    default:
        return ((const int64_t *)a->view.buf)[i];
    }
}

/* Whether row i is a refresh (cls <= C_REQ) whose key, need and conn are all >= 0; its key in *k. */
static inline int
selected(const uint8_t *c, const IntArray *key, const IntArray *need, const IntArray *conn, Py_ssize_t i,
         int64_t *k)
{
    if (c[i] > C_REQ) {
        return 0;
    }
    *k = at(key, i);
    return *k >= 0 && at(need, i) >= 0 && at(conn, i) >= 0;
}

/* The arrays of count_refreshes and group_refreshes: key, need, cls, conn (one per row). */
typedef struct {
    IntArray key, need, conn;
    Py_buffer cls;
    int got;
} Rows;

static void
release_rows(Rows *r)
{
    if (r->got >= 1) {
        PyBuffer_Release(&r->key.view);
    }
    if (r->got >= 2) {
        PyBuffer_Release(&r->need.view);
    }
    if (r->got >= 3) {
        PyBuffer_Release(&r->cls);
    }
    if (r->got >= 4) {
        PyBuffer_Release(&r->conn.view);
    }
}

static int
get_rows(PyObject *const *args, Rows *r)
{
    r->got = 0;
    if (int_array(args[0], &r->key, "key", 0) < 0) {
        return -1;
    }
    r->got = 1;
    if (int_array(args[1], &r->need, "need", 0) < 0) {
        return -1;
    }
    r->got = 2;
    if (PyObject_GetBuffer(args[2], &r->cls, PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    r->got = 3;
    if (int_array(args[3], &r->conn, "conn", 0) < 0) {
        return -1;
    }
    r->got = 4;
    Py_ssize_t n = r->key.view.shape[0];
    if (r->need.view.shape[0] != n || r->cls.itemsize != 1 || r->cls.len != n || r->conn.view.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "key, need, cls (uint8) and conn must have one item per row");
        return -1;
    }
    return 0;
}

/* The number of parts (threads) a kernel is asked for: 1 to MAX_PARTS, or -1 with an exception. */
static long
get_parts(PyObject *obj)
{
    long parts = PyLong_AsLong(obj);
    if (parts < 1 || parts > MAX_PARTS) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "parts must be 1 to %d", MAX_PARTS);
        }
        return -1;
    }
    return parts;
}

/* Runs job(arg + i * size) for i in 0..parts-1, each part on its own thread but the first (which runs on
 * the calling thread); called without the GIL. Falls back to one after the other without threads. */
typedef void *(*Job)(void *);

static void
run_parts(Job job, char *arg, size_t size, int parts)
{
#ifndef _WIN32
    pthread_t th[MAX_PARTS];
    int started[MAX_PARTS] = {0};
    for (int p = 1; p < parts; p++) {
        started[p] = pthread_create(&th[p], NULL, job, arg + p * size) == 0;
    }
    job(arg);
    for (int p = 1; p < parts; p++) {
        if (started[p]) {
            pthread_join(th[p], NULL);
        }
        else {
            job(arg + p * size);
        }
    }
#else
    for (int p = 0; p < parts; p++) {
        job(arg + p * size);
    }
#endif
}

/* One part of the rows, [lo, hi), for count_refreshes and group_refreshes. */
typedef struct {
    const Rows *rows;
    const int64_t *ts;
    Py_ssize_t lo, hi, n_keys, m;
    int64_t *cnt;  /* count: this part's counts per key; fill: where each key's next row goes */
    int64_t *r, *t, *co;
    uint8_t *h;
    const char *error;
} Part;

/* The loops of count_part and fill_part over rows [lo, hi): SELECT(i) sets k and is true for a selected
 * row (cls <= C_REQ, key, need and conn >= 0). Written once per way of reading the codes: typed when key,
 * need and conn have the same width (the usual case), else through at(). */
#define COUNT_LOOP(SELECT)                                                                                  \
    for (Py_ssize_t i = p->lo; i < p->hi; i++) {                                                            \
        int64_t k;                                                                                          \
        if (!(SELECT(i))) {                                                                                 \
            continue;                                                                                       \
        }                                                                                                   \
        if (k >= p->n_keys) {                                                                               \
            p->error = "a key is >= counts.shape[1]";                                                       \
            break;                                                                                          \
        }                                                                                                   \
        p->cnt[k]++;                                                                                        \
        p->m++;                                                                                             \
    }

#define FILL_LOOP(SELECT, CONN)                                                                             \
    for (Py_ssize_t i = p->lo; i < p->hi; i++) {                                                            \
        int64_t k;                                                                                          \
        if (!(SELECT(i))) {                                                                                 \
            continue;                                                                                       \
        }                                                                                                   \
        if (k >= p->n_keys || next[k] >= p->m) { /* writes stay within the outputs; checked after */        \
            p->error = "counts do not match the rows (count them with count_refreshes)";                    \
            break;                                                                                          \
        }                                                                                                   \
        int64_t j = next[k]++;                                                                              \
        p->r[j] = i;                                                                                        \
        p->t[j] = p->ts[i];                                                                                 \
        p->co[j] = (CONN(i));                                                                               \
        p->h[j] = c[i] == 0;                                                                                \
    }

#define SELECT_ANY(i) selected(c, &p->rows->key, &p->rows->need, &p->rows->conn, (i), &k)
#define CONN_ANY(i) at(&p->rows->conn, (i))
#define SELECT_TYPED(i) (c[i] <= C_REQ && (k = kv[i]) >= 0 && nv[i] >= 0 && cv[i] >= 0)
#define CONN_TYPED(i) cv[i]

/* the loop LOOP with typed reads of width T when key, need and conn all have its size */
#define TYPED(T, LOOP)                                                                                      \
    {                                                                                                       \
        const T *kv = p->rows->key.view.buf, *nv = p->rows->need.view.buf, *cv = p->rows->conn.view.buf;    \
        LOOP;                                                                                               \
    }

static int
same_width(const Rows *r)
{
    return r->key.width == r->need.width && r->key.width == r->conn.width ? r->key.width : 0;
}

static void *
count_part(void *arg)
{
    Part *p = arg;
    const uint8_t *c = (const uint8_t *)p->rows->cls.buf;
    memset(p->cnt, 0, sizeof(int64_t) * (size_t)p->n_keys);
    switch (same_width(p->rows)) {
    case 2:
        TYPED(int16_t, COUNT_LOOP(SELECT_TYPED));
        break;
    case 4:
        TYPED(int32_t, COUNT_LOOP(SELECT_TYPED));
        break;
    case 8:
        TYPED(int64_t, COUNT_LOOP(SELECT_TYPED));
        break;
    default:
        COUNT_LOOP(SELECT_ANY);
    }
    return NULL;
}

static void *
fill_part(void *arg)
{
    Part *p = arg;
    const uint8_t *c = (const uint8_t *)p->rows->cls.buf;
    int64_t *next = p->cnt;
    switch (same_width(p->rows)) {
    case 2:
        TYPED(int16_t, FILL_LOOP(SELECT_TYPED, CONN_TYPED));
        break;
    case 4:
        TYPED(int32_t, FILL_LOOP(SELECT_TYPED, CONN_TYPED));
        break;
    case 8:
        TYPED(int64_t, FILL_LOOP(SELECT_TYPED, CONN_TYPED));
        break;
    default:
        FILL_LOOP(SELECT_ANY, CONN_ANY);
    }
    return NULL;
}

/* counts: a C-contiguous int64 array of shape (parts, n_keys), 1 <= parts <= MAX_PARTS. */
static int
counts_array(PyObject *obj, Py_buffer *view, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    char type = f[strspn(f, "<=@")];
    if (view->ndim != 2 || view->itemsize != 8 || type == '\0' || !strchr("lq", type) || view->shape[0] < 1 ||
        view->shape[0] > MAX_PARTS) {
        PyErr_Format(PyExc_ValueError, "counts must be an int64 array of shape (parts, n_keys), parts 1 to %d",
                     MAX_PARTS);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* count_refreshes(key, need, cls, conn, counts) -> m
 *
 * The refresh rows (cls <= C_REQ) whose key, need and conn are all >= 0: the rows are cut into as many
 * consecutive parts as counts has rows, each counted on its own thread, and counts[p, k] is set to the
 * number of such rows of key k in part p. Returns their total. key, need and conn are codes of any signed
 * int width, cls uint8, one per row in time order. */
static PyObject *
count_refreshes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "count_refreshes(key, need, cls, conn, counts)");
        return NULL;
    }
    Rows rows;
    Py_buffer counts;
    if (get_rows(args, &rows) < 0) {
        release_rows(&rows);
        return NULL;
    }
    if (counts_array(args[4], &counts, 1) < 0) {
        release_rows(&rows);
        return NULL;
    }
    int parts = (int)counts.shape[0];
    Py_ssize_t n_keys = counts.shape[1], n = rows.key.view.shape[0], m = 0;
    Part part[MAX_PARTS];
    const char *error = NULL;
    for (int p = 0; p < parts; p++) {
        part[p] = (Part){&rows, NULL, n * p / parts, n * (p + 1) / parts, n_keys, 0,
                         (int64_t *)counts.buf + p * n_keys, NULL, NULL, NULL, NULL, NULL};
    }
    Py_BEGIN_ALLOW_THREADS;
    run_parts(count_part, (char *)part, sizeof(Part), parts);
    Py_END_ALLOW_THREADS;
    for (int p = 0; p < parts; p++) {
        m += part[p].m;
        error = error ? error : part[p].error;
    }
    release_rows(&rows);
    PyBuffer_Release(&counts);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(m);
}

/* group_refreshes(key, need, cls, conn, ts, counts, rows, t, conn_out, hello) -> None
 *
 * The rows count_refreshes counted, grouped by key (a counting sort: key order, time order within): writes
 * per row its index, ts and conn (int64) and whether it is a HELLO (bool), each output with one slot per
 * counted row. ts is int64, one per row; counts as count_refreshes left it (its parts are filled on as
 * many threads). */
static PyObject *
group_refreshes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "group_refreshes(key, need, cls, conn, ts, counts, rows, t, conn_out, hello)");
        return NULL;
    }
    Rows rows;
    Py_buffer counts, hello;
    IntArray arr[4]; /* ts, rows, t, conn_out */
    static const char *names[4] = {"ts", "rows", "t", "conn_out"};
    int got = 0, have_counts = 0, have_hello = 0;
    if (get_rows(args, &rows) < 0) {
        release_rows(&rows);
        return NULL;
    }
    have_counts = counts_array(args[5], &counts, 0) == 0;
    for (; have_counts && got < 4; got++) {
        if (int_array(args[got ? 5 + got : 4], &arr[got], names[got], got >= 1) < 0) {
            break;
        }
    }
    if (got == 4) {
        have_hello = PyObject_GetBuffer(args[9], &hello, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) == 0;
    }
    const char *error = NULL;
    int64_t *next = NULL;
    if (have_hello) {
        int parts = (int)counts.shape[0];
        Py_ssize_t n = rows.key.view.shape[0], n_keys = counts.shape[1], m = arr[1].view.shape[0];
        for (int j = 0; j < 4; j++) {
            if (arr[j].width != 8) {
                error = "ts, rows, t and conn_out must be int64";
            }
        }
        if (!error && (arr[0].view.shape[0] != n || arr[2].view.shape[0] != m || arr[3].view.shape[0] != m ||
                       hello.itemsize != 1 || hello.len != m)) {
            error = "ts must have one item per row, and rows, t, conn_out and hello (bool) one per counted row";
        }
        if (!error) {
            next = (int64_t *)malloc(sizeof(int64_t) * (size_t)(parts * n_keys + 1));
            if (!next) {
                PyErr_NoMemory();
            }
        }
        if (!error && next) {
            const int64_t *cnt = counts.buf;
            Part part[MAX_PARTS];
            Py_BEGIN_ALLOW_THREADS;
            /* key k's rows of part p go after those of all earlier keys, and of key k in earlier parts */
            int64_t pos = 0;
            for (Py_ssize_t k = 0; k < n_keys; k++) {
                for (int p = 0; p < parts; p++) {
                    next[p * n_keys + k] = pos;
                    pos += cnt[p * n_keys + k];
                }
            }
            if (pos != m) {
                error = "the outputs must have one slot per counted row (sum of counts)";
            }
            else {
                for (int p = 0; p < parts; p++) {
                    part[p] = (Part){&rows, arr[0].view.buf, n * p / parts, n * (p + 1) / parts, n_keys, m,
                                     next + p * n_keys, arr[1].view.buf, arr[2].view.buf, arr[3].view.buf,
                                     hello.buf, NULL};
                }
                run_parts(fill_part, (char *)part, sizeof(Part), parts);
                for (int p = 0; p < parts; p++) {
                    error = error ? error : part[p].error;
                }
                /* every key got exactly its count in every part: next[p, k] is where (p, k) ended */
                pos = 0;
                for (Py_ssize_t k = 0; k < n_keys && !error; k++) {
                    for (int p = 0; p < parts; p++) {
                        pos += cnt[p * n_keys + k];
                        if (next[p * n_keys + k] != pos) {
                            error = "counts do not match the rows (count them with count_refreshes)";
                        }
                    }
                }
            }
            Py_END_ALLOW_THREADS;
        }
        free(next);
        PyBuffer_Release(&hello);
    }
    release_rows(&rows);
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&arr[j].view);
    }
    if (have_counts) {
        PyBuffer_Release(&counts);
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* is_sorted(a) -> bool: a (int64) never decreases. */
static PyObject *
is_sorted(PyObject *self, PyObject *arg)
{
    IntArray a;
    if (int_array(arg, &a, "a", 0) < 0) {
        return NULL;
    }
    if (a.width != 8) {
        PyBuffer_Release(&a.view);
        PyErr_SetString(PyExc_TypeError, "a must be int64");
        return NULL;
    }
    const int64_t *v = (const int64_t *)a.view.buf;
    Py_ssize_t n = a.view.shape[0], i = 1;
    Py_BEGIN_ALLOW_THREADS;
    while (i < n && v[i] >= v[i - 1]) {
        i++;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&a.view);
    return PyBool_FromLong(i >= n);
}

/* group_cummax(values, first) -> None: values (int64) becomes its running maximum, restarting where
 * first (bool / uint8) is set (in place: _group.group_cummax's numpy version returns a new array). */
static PyObject *
group_cummax_inplace(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "group_cummax(values, first)");
        return NULL;
    }
    IntArray v;
    Py_buffer first;
    if (int_array(args[0], &v, "values", 1) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &first, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&v.view);
        return NULL;
    }
    Py_ssize_t n = v.view.shape[0];
    const char *error = NULL;
    if (v.width != 8 || first.itemsize != 1 || first.len != n) {
        error = "values must be int64 and first (bool) must have one item per value";
    }
    else {
        int64_t *x = (int64_t *)v.view.buf;
        const uint8_t *f = (const uint8_t *)first.buf;
        Py_BEGIN_ALLOW_THREADS;
        int64_t m = INT64_MIN;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (f[i] || x[i] > m) {
                m = x[i];
            }
            x[i] = m;
        }
        Py_END_ALLOW_THREADS;
    }
    PyBuffer_Release(&v.view);
    PyBuffer_Release(&first);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* valid_gaps(inst, ts, conn, valid, v_pos, v_gap, v_inst) -> m
 *
 * For HELLOs sorted by instance, then time (inst, ts, conn: int64): a gap is usable when the HELLO before
 * it is of the same instance, on the same connection, and earlier (gap > 0). Writes valid (bool, one per
 * HELLO) and, for the m usable ones in order, their position, gap (ns) and instance into the first m
 * slots of v_pos, v_gap, v_inst (int64, one slot per HELLO). hello.py's _valid_gaps_numpy is the same. */
static PyObject *
valid_gaps(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[6] = {"inst", "ts", "conn", "v_pos", "v_gap", "v_inst"};
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "valid_gaps(inst, ts, conn, valid, v_pos, v_gap, v_inst)");
        return NULL;
    }
    IntArray arr[6];
    Py_buffer valid;
    int got = 0, have_valid = 0;
    for (; got < 6; got++) {
        PyObject *obj = args[got < 3 ? got : got + 1];
        if (int_array(obj, &arr[got], names[got], got >= 3) < 0) {
            break;
        }
    }
    if (got == 6) {
        have_valid = PyObject_GetBuffer(args[3], &valid, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) == 0;
    }
    const char *error = NULL;
    Py_ssize_t m = 0;
    if (have_valid) {
        Py_ssize_t n = arr[0].view.shape[0];
        for (int j = 0; j < 6; j++) {
            if (arr[j].width != 8 || arr[j].view.shape[0] != n) {
                error = "inst, ts, conn, v_pos, v_gap and v_inst must be int64 with one item per HELLO";
            }
        }
        if (valid.itemsize != 1 || valid.len != n) {
            error = "valid must be bool with one item per HELLO";
        }
        if (!error) {
            const int64_t *inst = arr[0].view.buf, *ts = arr[1].view.buf, *conn = arr[2].view.buf;
            int64_t *pos = arr[3].view.buf, *gap = arr[4].view.buf, *vi = arr[5].view.buf;
            uint8_t *ok = valid.buf;
            Py_BEGIN_ALLOW_THREADS;
            if (n) {
                ok[0] = 0;
            }
            for (Py_ssize_t i = 1; i < n; i++) {
                int64_t g = ts[i] - ts[i - 1];
                int v = inst[i] == inst[i - 1] && conn[i] == conn[i - 1] && g > 0;
                ok[i] = (uint8_t)v;
                if (v) {
                    pos[m] = i;
                    gap[m] = g;
                    vi[m] = inst[i];
                    m++;
                }
            }
            Py_END_ALLOW_THREADS;
        }
        PyBuffer_Release(&valid);
    }
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&arr[j].view);
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSsize_t(m);
}

typedef struct {
    const IntArray *code; /* event, direction, name */
    const uint8_t *tab;
    Py_ssize_t ne, nd, nn, lo, hi;
    uint8_t *out;
    const char *error;
} ClassifyPart;

static void *
classify_part(void *arg)
{
    ClassifyPart *p = arg;
    const Py_ssize_t ne = p->ne, nd = p->nd, nn = p->nn;
    const uint8_t *tab = p->tab;
    uint8_t *o = p->out;
    const IntArray *code = p->code;
    if (code[0].width == 1 && code[1].width == 1 && code[2].width == 1) {
        /* the usual case (a few categories each): typed reads, no dispatch per row */
        const int8_t *ev = code[0].view.buf, *dv = code[1].view.buf, *nv = code[2].view.buf;
        for (Py_ssize_t i = p->lo; i < p->hi; i++) {
            int64_t e = (int64_t)ev[i] + 1, d = (int64_t)dv[i] + 1, m = (int64_t)nv[i] + 1;
            if (e < 0 || e >= ne || d < 0 || d >= nd || m < 0 || m >= nn) {
                p->error = "a code is outside the table";
                break;
            }
            o[i] = tab[(e * nd + d) * nn + m];
        }
    }
    else {
        for (Py_ssize_t i = p->lo; i < p->hi; i++) {
            int64_t e = at(&code[0], i) + 1, d = at(&code[1], i) + 1, m = at(&code[2], i) + 1;
            if (e < 0 || e >= ne || d < 0 || d >= nd || m < 0 || m >= nn) {
                p->error = "a code is outside the table";
                break;
            }
            o[i] = tab[(e * nd + d) * nn + m];
        }
    }
    return NULL;
}

/* classify(event, direction, name, table, out, parts) -> None
 *
 * out[i] = table[event[i] + 1, direction[i] + 1, name[i] + 1]: the class of each row from its three codes
 * (-1 for null; any signed int width), table a C-contiguous uint8 array of 3 dimensions (_rows.py's
 * _classify builds it; its numpy version computes the flat index in int16 temporaries). The rows are cut
 * into parts (1 to MAX_PARTS), each on its own thread. */
static PyObject *
classify(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[3] = {"event", "direction", "name"};
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "classify(event, direction, name, table, out, parts)");
        return NULL;
    }
    long parts = get_parts(args[5]);
    if (parts < 0) {
        return NULL;
    }
    IntArray code[3];
    Py_buffer table, out;
    int got = 0, have_table = 0, have_out = 0;
    for (; got < 3; got++) {
        if (int_array(args[got], &code[got], names[got], 0) < 0) {
            break;
        }
    }
    if (got == 3) {
        have_table = PyObject_GetBuffer(args[3], &table, PyBUF_C_CONTIGUOUS | PyBUF_ND) == 0;
    }
    if (have_table) {
        have_out = PyObject_GetBuffer(args[4], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) == 0;
    }
    const char *error = NULL;
    if (have_out) {
        Py_ssize_t n = code[0].view.shape[0];
        if (code[1].view.shape[0] != n || code[2].view.shape[0] != n || out.itemsize != 1 || out.len != n) {
            error = "event, direction, name and out (uint8) must have one item per row";
        }
        else if (table.ndim != 3 || table.itemsize != 1) {
            error = "table must be a 3-d uint8 array";
        }
        else {
            ClassifyPart part[MAX_PARTS];
            for (long p = 0; p < parts; p++) {
                part[p] = (ClassifyPart){code, table.buf, table.shape[0], table.shape[1], table.shape[2],
                                         n * p / parts, n * (p + 1) / parts, out.buf, NULL};
            }
            Py_BEGIN_ALLOW_THREADS;
            run_parts(classify_part, (char *)part, sizeof(ClassifyPart), (int)parts);
            Py_END_ALLOW_THREADS;
            for (long p = 0; p < parts; p++) {
                error = error ? error : part[p].error;
            }
        }
        PyBuffer_Release(&out);
    }
    if (have_table) {
        PyBuffer_Release(&table);
    }
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&code[j].view);
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

typedef struct {
    const IntArray *codes;
    const int64_t *idx; /* NULL: every code in order */
    void *out;          /* NULL: mark only */
    uint8_t *used;
    Py_ssize_t lo, hi, n_cat;
    int all_known;
    const char *error;
} TakePart;

static void *
take_part(void *arg)
{
    TakePart *p = arg;
    const Py_ssize_t n = p->codes->view.shape[0], n_cat = p->n_cat;
    const int64_t *ix = p->idx;
    uint8_t *u = p->used;
#define TAKE(T)                                                                                             \
    {                                                                                                       \
        const T *src = (const T *)p->codes->view.buf;                                                       \
        T *dst = (T *)p->out;                                                                               \
        for (Py_ssize_t j = p->lo; j < p->hi; j++) {                                                        \
            int64_t i = ix ? ix[j] : j;                                                                     \
            if (i < 0 || i >= n) {                                                                          \
                p->error = "an index is outside codes";                                                     \
                break;                                                                                      \
            }                                                                                               \
            T c = src[i];                                                                                   \
            if (dst) {                                                                                      \
                dst[j] = c;                                                                                 \
            }                                                                                               \
            if (c >= 0 && (Py_ssize_t)c < n_cat) {                                                          \
                u[c] = 1;                                                                                   \
            }                                                                                               \
            else if (c < 0) {                                                                               \
                p->all_known = 0;                                                                           \
            }                                                                                               \
            else {                                                                                          \
                p->error = "a code is >= len(used)";                                                        \
                break;                                                                                      \
            }                                                                                               \
        }                                                                                                   \
    }
    switch (p->codes->width) {
    case 1:
        TAKE(int8_t);
        break;
    case 2:
        TAKE(int16_t);
        break;
    case 4:
        TAKE(int32_t);
        break;
    default:
        TAKE(int64_t);
    }
#undef TAKE
    return NULL;
}

/* take_codes(codes, idx, out, used, parts) -> all_known
 *
 * out[j] = codes[idx[j]] (codes and out of the same signed int width; idx int64 positions), and
 * used[c] = 1 for every code c >= 0 taken (used: bool, one per category, zeroed by the caller). Returns
 * whether no taken code was -1. idx None: every code, in order; out None: only mark the codes used. One
 * pass for what _common.categorical does in a gather, a null check and a bincount, cut into parts
 * (1 to MAX_PARTS) each on its own thread with its own marks. */
static PyObject *
take_codes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "take_codes(codes, idx, out, used, parts)");
        return NULL;
    }
    long parts = get_parts(args[4]);
    if (parts < 0) {
        return NULL;
    }
    IntArray codes, idx, out;
    Py_buffer used;
    int have_idx = args[1] != Py_None, have_out = args[2] != Py_None;
    if (int_array(args[0], &codes, "codes", 0) < 0) {
        return NULL;
    }
    if (have_idx && int_array(args[1], &idx, "idx", 0) < 0) {
        PyBuffer_Release(&codes.view);
        return NULL;
    }
    if (have_out && int_array(args[2], &out, "out", 1) < 0) {
        PyBuffer_Release(&codes.view);
        if (have_idx) {
            PyBuffer_Release(&idx.view);
        }
        return NULL;
    }
    if (PyObject_GetBuffer(args[3], &used, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&codes.view);
        if (have_idx) {
            PyBuffer_Release(&idx.view);
        }
        if (have_out) {
            PyBuffer_Release(&out.view);
        }
        return NULL;
    }
    const char *error = NULL;
    int all_known = 1;
    Py_ssize_t m = have_idx ? idx.view.shape[0] : codes.view.shape[0], n_cat = used.len;
    if ((have_idx && idx.width != 8) || (have_out && (out.width != codes.width || out.view.shape[0] != m)) ||
        used.itemsize != 1) {
        error = "idx must be int64, out of the codes' dtype with one item per idx, used bool";
    }
    uint8_t *marks = NULL; /* the parts after the first mark their own copy, merged after */
    if (!error && parts > 1) {
        marks = (uint8_t *)calloc((size_t)(parts - 1) * (size_t)(n_cat ? n_cat : 1), 1);
        if (!marks) {
            PyErr_NoMemory();
        }
    }
    if (!error && (parts == 1 || marks)) {
        TakePart part[MAX_PARTS];
        for (long p = 0; p < parts; p++) {
            part[p] = (TakePart){&codes, have_idx ? idx.view.buf : NULL, have_out ? out.view.buf : NULL,
                                 p ? marks + (p - 1) * n_cat : used.buf, m * p / parts, m * (p + 1) / parts,
                                 n_cat, 1, NULL};
        }
        Py_BEGIN_ALLOW_THREADS;
        run_parts(take_part, (char *)part, sizeof(TakePart), (int)parts);
        uint8_t *u = used.buf;
        for (long p = 0; p < parts; p++) {
            error = error ? error : part[p].error;
            all_known &= part[p].all_known;
            for (Py_ssize_t c = 0; p && c < n_cat; c++) {
                u[c] |= part[p].used[c];
            }
        }
        Py_END_ALLOW_THREADS;
    }
    free(marks);
    PyBuffer_Release(&codes.view);
    if (have_idx) {
        PyBuffer_Release(&idx.view);
    }
    if (have_out) {
        PyBuffer_Release(&out.view);
    }
    PyBuffer_Release(&used);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(all_known);
}

static inline void
swap64(int64_t *a, int64_t *b)
{
    int64_t t = *a;
    *a = *b;
    *b = t;
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Rearranges v[0:n] so that v[k] is the value a sort would put there, with nothing larger before it and
 * nothing smaller after it (quickselect, Hoare partition around a median of three; falls back to a sort
 * when the ranges stop shrinking, so it is never quadratic). */
static void
select_k(int64_t *v, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t lo = 0, hi = n - 1;
    int budget = 64;
    while (hi > lo) {
        if (hi - lo < 16 || --budget == 0) {
            qsort(v + lo, (size_t)(hi - lo + 1), sizeof(int64_t), cmp64);
            return;
        }
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) {
            swap64(&v[mid], &v[lo]);
        }
        if (v[hi] < v[lo]) {
            swap64(&v[hi], &v[lo]);
        }
        if (v[hi] < v[mid]) {
            swap64(&v[hi], &v[mid]);
        }
        int64_t pivot = v[mid];
        Py_ssize_t i = lo - 1, j = hi + 1;
        for (;;) {
            do {
                i++;
            } while (v[i] < pivot);
            do {
                j--;
            } while (v[j] > pivot);
            if (i >= j) {
                break;
            }
            swap64(&v[i], &v[j]);
        }
        /* v[lo..j] <= pivot <= v[j+1..hi] */
        if (k <= j) {
            hi = j;
        }
        else {
            lo = j + 1;
        }
    }
}

typedef struct {
    const int64_t *values, *starts;
    Py_ssize_t n, runs, lo, hi; /* this part's runs: [lo, hi) */
    double *out;
    int64_t *scratch; /* as long as the longest run */
} MedianPart;

static void *
median_part(void *arg)
{
    MedianPart *p = arg;
    for (Py_ssize_t r = p->lo; r < p->hi; r++) {
        int64_t a = p->starts[r], b = r + 1 < p->runs ? p->starts[r + 1] : p->n;
        Py_ssize_t len = (Py_ssize_t)(b - a), k = len / 2;
        if (len == 0) {
            p->out[r] = Py_NAN;
            continue;
        }
        int64_t *w = p->scratch;
        memcpy(w, p->values + a, sizeof(int64_t) * (size_t)len);
        select_k(w, len, k);
        if (len % 2) {
            p->out[r] = (double)w[k];
        }
        else {
            int64_t below = w[0]; /* the largest of w[0:k], all <= w[k] */
            for (Py_ssize_t i = 1; i < k; i++) {
                if (w[i] > below) {
                    below = w[i];
                }
            }
            p->out[r] = ((double)below + (double)w[k]) / 2;
        }
    }
    return NULL;
}

/* run_medians(values, starts, out, parts) -> None
 *
 * The median of each run of values (int64): run r is values[starts[r]:starts[r + 1]] (the last one ends
 * at the end of values). Writes it to out[r] (float64; NaN for an empty run): the middle value, or the
 * mean of the two middle values as float64 (what np.median and hello.py's numpy loop give). The runs are
 * cut into parts (1 to MAX_PARTS) of about as many values each, one thread each. */
static PyObject *
run_medians(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "run_medians(values, starts, out, parts)");
        return NULL;
    }
    long parts = get_parts(args[3]);
    if (parts < 0) {
        return NULL;
    }
    IntArray values, starts;
    Py_buffer out;
    if (int_array(args[0], &values, "values", 0) < 0) {
        return NULL;
    }
    if (int_array(args[1], &starts, "starts", 0) < 0) {
        PyBuffer_Release(&values.view);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&values.view);
        PyBuffer_Release(&starts.view);
        return NULL;
    }
    const char *error = NULL;
    Py_ssize_t n = values.view.shape[0], runs = starts.view.shape[0];
    if (values.width != 8 || starts.width != 8 || out.itemsize != 8 || !out.format || out.format[0] != 'd' ||
        out.len != runs * 8) {
        error = "values and starts must be int64, and out float64 with one item per start";
    }
    /* the longest run (each part's scratch buffer: a copy of all values would cost fresh pages) */
    Py_ssize_t longest = 0;
    const int64_t *st = starts.view.buf;
    for (Py_ssize_t r = 0; !error && r < runs; r++) {
        int64_t a = st[r], b = r + 1 < runs ? st[r + 1] : n;
        if (a < 0 || b < a || b > n) {
            error = "starts must be increasing positions within values";
        }
        else if (b - a > longest) {
            longest = (Py_ssize_t)(b - a);
        }
    }
    int64_t *scratch = NULL;
    if (!error) {
        scratch = (int64_t *)malloc(sizeof(int64_t) * (size_t)(longest ? longest : 1) * (size_t)parts);
        if (!scratch) {
            PyErr_NoMemory();
        }
    }
    if (scratch) {
        MedianPart part[MAX_PARTS];
        Py_ssize_t r = 0;
        for (long p = 0; p < parts; p++) {
            /* this part ends at the first run starting at or after its share of the values */
            Py_ssize_t lo = r, until = n * (p + 1) / parts;
            while (r < runs && (p == parts - 1 || st[r] < until)) {
                r++;
            }
            part[p] = (MedianPart){values.view.buf, st, n, runs, lo, r, out.buf, scratch + p * longest};
        }
        Py_BEGIN_ALLOW_THREADS;
        run_parts(median_part, (char *)part, sizeof(MedianPart), (int)parts);
        Py_END_ALLOW_THREADS;
    }
    free(scratch);
    PyBuffer_Release(&values.view);
    PyBuffer_Release(&starts.view);
    PyBuffer_Release(&out);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* One part of the rows, [lo, hi), for pair_next: its frames go to slots [s0, s1). */
typedef struct {
    const IntArray *conn;
    const uint8_t *cls;
    const int64_t *ts;
    Py_ssize_t lo, hi, s0, s1, n_conn, answered, acks;
    int64_t *next_ack; /* per connection: its next row's time if an ACK, NO_TIME, or PENDING (none yet) */
    int64_t *pending;  /* per connection: the slot of its last frame in the part, if that had no next row */
    int64_t *ack, *pos, *sent;
    double *latency;
    const char *error;
} PairPart;

#define PENDING INT64_MIN

static void *
pair_part(void *arg)
{
    PairPart *p = arg;
    const uint8_t *c = p->cls;
    const int64_t *t = p->ts;
    for (Py_ssize_t k = 0; k < p->n_conn; k++) {
        p->next_ack[k] = PENDING;
        p->pending[k] = -1;
    }
    Py_ssize_t slot = p->s1;
    /* backward: next_ack[k] is the time of connection k's next row when that row is an ACK */
    for (Py_ssize_t i = p->hi - 1; i >= p->lo; i--) {
        uint8_t ci = c[i];
        if (ci > C_ACK) {
            continue;
        }
        int64_t k = at(p->conn, i);
        if (k < 0) {
            continue;
        }
        if (k >= p->n_conn) {
            p->error = "a connection code is >= n_conn";
            return NULL;
        }
        if (ci == C_ACK) {
            p->next_ack[k] = t[i];
            p->acks++;
            continue;
        }
        if (--slot < p->s0) {
            p->error = "the outputs must have one slot per refresh row of a known connection";
            return NULL;
        }
        int64_t a = p->next_ack[k];
        p->pos[slot] = i;
        p->sent[slot] = t[i];
        if (a == PENDING) { /* its next row is in a later part: settled after */
            p->pending[k] = slot;
            a = NO_TIME;
        }
        p->ack[slot] = a;
        if (a != NO_TIME) {
            p->latency[slot] = (double)(a - t[i]) / 1e9; /* int64 first, as latency.py */
            p->answered++;
        }
        else {
            p->latency[slot] = Py_NAN;
        }
        p->next_ack[k] = NO_TIME;
    }
    if (slot != p->s0) {
        p->error = "the outputs must have one slot per refresh row of a known connection";
    }
    return NULL;
}

/* pair_next(conn, cls, ts, n_conn, part_frames, ack, pos, sent, latency) -> (answered, acks)
 *
 * conn: connection code per row (any signed int width; -1 unknown), cls: uint8 row class, ts: int64 ns,
 * all in time order. For each refresh row of a known connection, in time order (one slot each in the
 * outputs): pos its row (int64), sent its ts (int64), ack the time of the ACK that answers it or NO_TIME
 * (int64), latency (float64) (ack - sent) / 1e9 or NaN. A refresh is answered when the next refresh-or-ACK
 * row of its connection is an ACK. The rows are cut into len(part_frames) parts as count_refreshes cuts
 * them, part p holding part_frames[p] refresh rows of a known connection; each part is paired backward on
 * its own thread, and the last frame of a connection in a part is settled from the parts after it.
 * Returns how many were answered, and the ACK rows of known connection. */
static PyObject *
pair_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[5] = {"ts", "ack", "pos", "sent", "part_frames"};
    static const int where[5] = {2, 5, 6, 7, 4};
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "pair_next(conn, cls, ts, n_conn, part_frames, ack, pos, sent, latency)");
        return NULL;
    }
    Py_ssize_t n_conn = PyLong_AsSsize_t(args[3]);
    if (n_conn < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n_conn must be >= 0");
        }
        return NULL;
    }
    IntArray conn, arr[5]; /* ts, ack, pos, sent, part_frames */
    Py_buffer cls, lat;
    int got = 0, have_cls = 0, have_lat = 0;
    if (int_array(args[0], &conn, "conn", 0) < 0) {
        return NULL;
    }
    have_cls = PyObject_GetBuffer(args[1], &cls, PyBUF_C_CONTIGUOUS) == 0;
    for (; have_cls && got < 5; got++) {
        if (int_array(args[where[got]], &arr[got], names[got], got >= 1 && got <= 3) < 0) {
            break;
        }
    }
    if (got == 5) {
        have_lat = PyObject_GetBuffer(args[8], &lat, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) == 0;
    }
    const char *error = NULL;
    Py_ssize_t answered = 0, acks = 0;
    int64_t *work = NULL;
    if (have_lat) {
        Py_ssize_t n = conn.view.shape[0], m = arr[1].view.shape[0], parts = arr[4].view.shape[0];
        const int64_t *frames = arr[4].view.buf;
        Py_ssize_t total = 0;
        for (Py_ssize_t p = 0; arr[4].width == 8 && p < parts; p++) {
            total += frames[p] >= 0 ? frames[p] : m + 1;
        }
        if (cls.itemsize != 1 || cls.len != n || arr[0].width != 8 || arr[0].view.shape[0] != n) {
            error = "conn, cls (uint8) and ts (int64) must have one item per row";
        }
        else if (arr[1].width != 8 || arr[2].width != 8 || arr[3].width != 8 || arr[2].view.shape[0] != m ||
                 arr[3].view.shape[0] != m || lat.itemsize != 8 || !lat.format || lat.format[0] != 'd' ||
                 lat.len != m * 8) {
            error = "ack, pos, sent (int64) and latency (float64) must have one item per refresh row";
        }
        else if (arr[4].width != 8 || parts < 1 || parts > MAX_PARTS || total != m) {
            error = "part_frames must be int64, 1 to 16 parts, adding up to the refresh rows";
        }
        if (!error) {
            work = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n_conn ? n_conn : 1) * (size_t)(2 * parts + 1));
            if (!work) {
                PyErr_NoMemory();
            }
        }
        if (!error && work) {
            PairPart part[MAX_PARTS];
            Py_ssize_t s0 = 0;
            for (Py_ssize_t p = 0; p < parts; p++) {
                part[p] = (PairPart){&conn, cls.buf, arr[0].view.buf, n * p / parts, n * (p + 1) / parts, s0,
                                     s0 + frames[p], n_conn, 0, 0, work + 2 * p * n_conn, work + (2 * p + 1) * n_conn,
                                     arr[1].view.buf, arr[2].view.buf, arr[3].view.buf, lat.buf, NULL};
                s0 += frames[p];
            }
            Py_BEGIN_ALLOW_THREADS;
            run_parts(pair_part, (char *)part, sizeof(PairPart), (int)parts);
            for (Py_ssize_t p = 0; p < parts; p++) {
                error = error ? error : part[p].error;
                answered += part[p].answered;
                acks += part[p].acks;
            }
            /* settle each part's pending frames from the parts after it: state[k] is connection k's first
             * row after the part (an ACK's time, or NO_TIME for a frame or no row at all) */
            int64_t *state = work + 2 * parts * n_conn, *ack = arr[1].view.buf, *sent = arr[3].view.buf;
            double *latency = lat.buf;
            for (Py_ssize_t k = 0; !error && k < n_conn; k++) {
                state[k] = NO_TIME;
            }
            for (Py_ssize_t p = parts - 1; !error && p >= 0; p--) {
                for (Py_ssize_t k = 0; k < n_conn; k++) {
                    int64_t slot = part[p].pending[k];
                    if (slot >= 0 && state[k] != NO_TIME) {
                        ack[slot] = state[k];
                        latency[slot] = (double)(state[k] - sent[slot]) / 1e9;
                        answered++;
                    }
                    if (part[p].next_ack[k] != PENDING) {
                        state[k] = part[p].next_ack[k];
                    }
                }
            }
            Py_END_ALLOW_THREADS;
        }
        free(work);
        PyBuffer_Release(&lat);
    }
    PyBuffer_Release(&conn.view);
    if (have_cls) {
        PyBuffer_Release(&cls);
    }
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&arr[j].view);
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return Py_BuildValue("nn", answered, acks);
}

/* up_periods(g, t, conn, e, conn_end, observed, by_conn, first, cm, gap) -> gaps
 *
 * The up periods of refreshes grouped by g (instance or outpost; time order within), in one pass
 * (coverage.py's _up_periods_numpy is the same in numpy). g, t, conn, e and cm are int64, one per refresh;
 * conn_end int64 per connection code; by_conn, first and gap bool, one per refresh. For each refresh:
 * by_conn, whether its connection ended before its state expired (conn_end[conn] <= e), and then
 * (observed) e becomes max(conn_end, t), in place; first, whether it starts its group; cm, the running
 * maximum of e in its group; gap, whether it came after everything before it in its group expired
 * (t > the previous cm). Returns how many gaps. */
static PyObject *
up_periods(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[6] = {"g", "t", "conn", "e", "conn_end", "cm"};
    static const int where[6] = {0, 1, 2, 3, 4, 8};
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "up_periods(g, t, conn, e, conn_end, observed, by_conn, first, cm, gap)");
        return NULL;
    }
    int observed = PyObject_IsTrue(args[5]);
    if (observed < 0) {
        return NULL;
    }
    IntArray arr[6];
    Py_buffer flag[3]; /* by_conn, first, gap */
    int got = 0, flags = 0;
    for (; got < 6; got++) {
        if (int_array(args[where[got]], &arr[got], names[got], got == 3 || got == 5) < 0) {
            break;
        }
    }
    for (; got == 6 && flags < 3; flags++) {
        if (PyObject_GetBuffer(args[flags < 2 ? 6 + flags : 9], &flag[flags], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) <
            0) {
            break;
        }
    }
    const char *error = NULL;
    Py_ssize_t gaps = 0;
    if (flags == 3) {
        Py_ssize_t n = arr[0].view.shape[0], n_conn = arr[4].view.shape[0];
        for (int j = 0; j < 6; j++) {
            if (arr[j].width != 8 || (j != 4 && arr[j].view.shape[0] != n)) {
                error = "g, t, conn, e, cm (one per refresh) and conn_end must be int64";
            }
        }
        for (int j = 0; j < 3; j++) {
            if (flag[j].itemsize != 1 || flag[j].len != n) {
                error = "by_conn, first and gap must be bool, one per refresh";
            }
        }
        if (!error) {
            const int64_t *g = arr[0].view.buf, *t = arr[1].view.buf, *conn = arr[2].view.buf;
            const int64_t *conn_end = arr[4].view.buf;
            int64_t *e = arr[3].view.buf, *cm = arr[5].view.buf;
            uint8_t *by_conn = flag[0].buf, *first = flag[1].buf, *gap = flag[2].buf;
            Py_BEGIN_ALLOW_THREADS;
            int64_t m = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                int64_t c = conn[i];
                if (c < 0 || c >= n_conn) {
                    error = "a connection code is outside conn_end";
                    break;
                }
                int64_t ce = conn_end[c], ei = e[i];
                uint8_t bc = ce <= ei;
                if (observed && bc) {
                    ei = ce > t[i] ? ce : t[i];
                    e[i] = ei;
                }
                by_conn[i] = bc;
                uint8_t f = i == 0 || g[i] != g[i - 1];
                first[i] = f;
                uint8_t gp = !f && t[i] > m;
                gap[i] = gp;
                gaps += gp;
                m = f || ei > m ? ei : m;
                cm[i] = m;
            }
            Py_END_ALLOW_THREADS;
        }
    }
    for (int j = 0; j < flags; j++) {
        PyBuffer_Release(&flag[j]);
    }
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&arr[j].view);
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSsize_t(gaps);
}

static PyMethodDef methods[] = {
    {"pair_next", (PyCFunction)(void (*)(void))pair_next, METH_FASTCALL,
     "pair_next(conn, cls, ts, n_conn, part_frames, ack, pos, sent, latency) -> (answered, acks): see latency.py."},
    {"count_refreshes", (PyCFunction)(void (*)(void))count_refreshes, METH_FASTCALL,
     "count_refreshes(key, need, cls, conn, counts) -> m: refresh rows per key."},
    {"group_refreshes", (PyCFunction)(void (*)(void))group_refreshes, METH_FASTCALL,
     "group_refreshes(key, need, cls, conn, ts, counts, rows, t, conn_out, hello) -> None: refreshes by key."},
    {"valid_gaps", (PyCFunction)(void (*)(void))valid_gaps, METH_FASTCALL,
     "valid_gaps(inst, ts, conn, valid, v_pos, v_gap, v_inst) -> m: the usable HELLO gaps (see hello.py)."},
    {"classify", (PyCFunction)(void (*)(void))classify, METH_FASTCALL,
     "classify(event, direction, name, table, out, parts) -> None: the class of each row (see _rows.py)."},
    {"take_codes", (PyCFunction)(void (*)(void))take_codes, METH_FASTCALL,
     "take_codes(codes, idx, out, used, parts) -> all_known: gather codes, mark the categories used."},
    {"run_medians", (PyCFunction)(void (*)(void))run_medians, METH_FASTCALL,
     "run_medians(values, starts, out, parts) -> None: the median of each run of int64 values."},
    {"up_periods", (PyCFunction)(void (*)(void))up_periods, METH_FASTCALL,
     "up_periods(g, t, conn, e, conn_end, observed, by_conn, first, cm, gap) -> gaps: see coverage.py."},
    {"is_sorted", is_sorted, METH_O, "is_sorted(a) -> bool: the int64 array a never decreases."},
    {"group_cummax", (PyCFunction)(void (*)(void))group_cummax_inplace, METH_FASTCALL,
     "group_cummax(values, first) -> None: running maximum of int64 values in place, restarting at first."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wsreplay.analysis._kernels", "Per-connection passes of the analyses in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    /* every function of the methods table */
    PyObject *all = PyList_New(0);
    for (PyMethodDef *d = methods; all != NULL && d->ml_name != NULL; d++) {
        PyObject *name = PyUnicode_FromString(d->ml_name);
        if (name == NULL || PyList_Append(all, name) < 0) {
            Py_XDECREF(name);
            Py_CLEAR(all);
            break;
        }
        Py_DECREF(name);
    }
    if (all == NULL || PyModule_AddObject(m, "__all__", all) < 0) {
        Py_XDECREF(all);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
