/* Per-connection passes of the analyses in C (optional: the numpy versions are used without it).
 *
 * pair_next: the "next" ACK pairing of latency.py (_pair_next_numpy is the same in numpy).
 * group_refreshes: the refresh rows grouped by instance or outpost, in time order within (coverage.py's
 *   _group_refreshes_numpy: a radix sort of their codes and gathers of their columns).
 *
 * Why C: the numpy version finds each frame's next row on its connection with look-ahead passes and a
 * sort of the rest, about ten full-length temporaries; one backward pass with a slot per connection does
 * it in one read of the rows and no temporary (BENCHMARKS.md, Analysis). The GIL is released during the
 * pass. tests/analysis/test_kernels.py checks that both versions agree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    int ok = a->view.ndim == 1 && strchr("bhilq", *f) != NULL && f[1] == '\0' &&
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

/* pair_next(conn, cls, ts, n_conn, out) -> answered
 *
 * conn: connection code per row (any signed int width; -1 unknown), cls: uint8 row class, ts: int64 ns,
 * all in time order; out: int64, one slot per refresh row of a known connection (in time order), set to
 * the time of the ACK that answers it or NO_TIME. A refresh is answered when the next refresh-or-ACK row
 * of its connection is an ACK. Returns how many were answered. */
static PyObject *
pair_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "pair_next(conn, cls, ts, n_conn, out)");
        return NULL;
    }
    Py_ssize_t n_conn = PyLong_AsSsize_t(args[3]);
    if (n_conn < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n_conn must be >= 0");
        }
        return NULL;
    }
    IntArray conn, ts, out;
    Py_buffer cls;
    if (int_array(args[0], &conn, "conn", 0) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &cls, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&conn.view);
        return NULL;
    }
    if (int_array(args[2], &ts, "ts", 0) < 0) {
        PyBuffer_Release(&conn.view);
        PyBuffer_Release(&cls);
        return NULL;
    }
    if (int_array(args[4], &out, "out", 1) < 0) {
        PyBuffer_Release(&conn.view);
        PyBuffer_Release(&cls);
        PyBuffer_Release(&ts.view);
        return NULL;
    }
    Py_ssize_t n = conn.view.shape[0];
    Py_ssize_t n_out = out.view.shape[0];
    const char *error = NULL;
    if (cls.itemsize != 1 || cls.len != n || ts.width != 8 || ts.view.shape[0] != n || out.width != 8) {
        error = "conn, cls (uint8) and ts (int64) must have one item per row, and out must be int64";
    }
    int64_t *next_ack = NULL;
    if (!error) {
        next_ack = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n_conn ? n_conn : 1));
        if (!next_ack) {
            PyBuffer_Release(&conn.view);
            PyBuffer_Release(&cls);
            PyBuffer_Release(&ts.view);
            PyBuffer_Release(&out.view);
            return PyErr_NoMemory();
        }
    }
    Py_ssize_t answered = 0;
    if (!error) {
        const uint8_t *c = (const uint8_t *)cls.buf;
        const int64_t *t = (const int64_t *)ts.view.buf;
        int64_t *o = (int64_t *)out.view.buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t k = 0; k < n_conn; k++) {
            next_ack[k] = NO_TIME;
        }
        Py_ssize_t slot = n_out;
        /* backward: next_ack[k] is the time of connection k's next row when that row is an ACK */
        for (Py_ssize_t i = n - 1; i >= 0; i--) {
            uint8_t ci = c[i];
            if (ci > C_ACK) {
                continue;
            }
            int64_t k = at(&conn, i);
            if (k < 0) {
                continue;
            }
            if (k >= n_conn) {
                error = "a connection code is >= n_conn";
                break;
            }
            if (ci == C_ACK) {
                next_ack[k] = t[i];
            }
            else {
                if (--slot < 0) {
                    break;
                }
                o[slot] = next_ack[k];
                answered += next_ack[k] != NO_TIME;
                next_ack[k] = NO_TIME;
            }
        }
        if (!error && slot != 0) {
            error = "out must have one slot per refresh row of a known connection";
        }
        Py_END_ALLOW_THREADS;
    }
    free(next_ack);
    PyBuffer_Release(&conn.view);
    PyBuffer_Release(&cls);
    PyBuffer_Release(&ts.view);
    PyBuffer_Release(&out.view);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(answered);
}

/* A new bytearray of n items of size width (uninitialised), or NULL with an exception. */
static PyObject *
new_array(Py_ssize_t n, Py_ssize_t width)
{
    return PyByteArray_FromStringAndSize(NULL, n * width);
}

/* group_refreshes(key, need, cls, conn, ts, n_keys) -> (counts, rows, t, conn, hello)
 *
 * The refresh rows (cls <= C_REQ) whose key, need and conn are all >= 0, grouped by key (a counting sort:
 * key order, time order within): per key its count (int64[n_keys]), and per selected row its index, ts and
 * conn (int64) and whether it is a HELLO (uint8), as bytearrays for numpy.frombuffer. key, need and conn
 * are codes of any signed int width, cls uint8 and ts int64, one per row in time order. */
static PyObject *
group_refreshes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "group_refreshes(key, need, cls, conn, ts, n_keys)");
        return NULL;
    }
    Py_ssize_t n_keys = PyLong_AsSsize_t(args[5]);
    if (n_keys < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n_keys must be >= 0");
        }
        return NULL;
    }
    IntArray key, need, conn, ts;
    Py_buffer cls;
    int got = 0;
    if (int_array(args[0], &key, "key", 0) == 0) {
        got = 1;
        if (int_array(args[1], &need, "need", 0) == 0) {
            got = 2;
            if (PyObject_GetBuffer(args[2], &cls, PyBUF_C_CONTIGUOUS) == 0) {
                got = 3;
                if (int_array(args[3], &conn, "conn", 0) == 0) {
                    got = 4;
                    if (int_array(args[4], &ts, "ts", 0) == 0) {
                        got = 5;
                    }
                }
            }
        }
    }
    PyObject *counts = NULL, *rows = NULL, *t_out = NULL, *c_out = NULL, *h_out = NULL, *result = NULL;
    const char *error = NULL;
    if (got < 5) {
        goto done;
    }
    Py_ssize_t n = key.view.shape[0];
    if (need.view.shape[0] != n || cls.itemsize != 1 || cls.len != n || conn.view.shape[0] != n ||
        ts.width != 8 || ts.view.shape[0] != n) {
        error = "key, need, conn, cls (uint8) and ts (int64) must have one item per row";
        goto done;
    }
    counts = new_array(n_keys, 8);
    if (!counts) {
        goto done;
    }
    int64_t *cnt = (int64_t *)PyByteArray_AS_STRING(counts);
    const uint8_t *c = (const uint8_t *)cls.buf;
    Py_ssize_t m = 0;
    Py_BEGIN_ALLOW_THREADS;
    memset(cnt, 0, sizeof(int64_t) * (size_t)n_keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (c[i] > C_REQ) {
            continue;
        }
        int64_t k = at(&key, i);
        if (k < 0 || at(&need, i) < 0 || at(&conn, i) < 0) {
            continue;
        }
        if (k >= n_keys) {
            error = "a key is >= n_keys";
            break;
        }
        cnt[k]++;
        m++;
    }
    Py_END_ALLOW_THREADS;
    if (error) {
        goto done;
    }
    rows = new_array(m, 8);
    t_out = new_array(m, 8);
    c_out = new_array(m, 8);
    h_out = new_array(m, 1);
    int64_t *next = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n_keys ? n_keys : 1));
    if (!rows || !t_out || !c_out || !h_out || !next) {
        free(next);
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto done;
    }
    int64_t *r = (int64_t *)PyByteArray_AS_STRING(rows);
    int64_t *t = (int64_t *)PyByteArray_AS_STRING(t_out);
    int64_t *co = (int64_t *)PyByteArray_AS_STRING(c_out);
    uint8_t *h = (uint8_t *)PyByteArray_AS_STRING(h_out);
    const int64_t *tsv = (const int64_t *)ts.view.buf;
    Py_BEGIN_ALLOW_THREADS;
    int64_t pos = 0;
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        next[k] = pos;
        pos += cnt[k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (c[i] > C_REQ) {
            continue;
        }
        int64_t k = at(&key, i);
        int64_t cc = at(&conn, i);
        if (k < 0 || at(&need, i) < 0 || cc < 0) {
            continue;
        }
        int64_t j = next[k]++;
        r[j] = i;
        t[j] = tsv[i];
        co[j] = cc;
        h[j] = c[i] == 0;
    }
    Py_END_ALLOW_THREADS;
    free(next);
    result = PyTuple_Pack(5, counts, rows, t_out, c_out, h_out);
done:
    if (got >= 1) {
        PyBuffer_Release(&key.view);
    }
    if (got >= 2) {
        PyBuffer_Release(&need.view);
    }
    if (got >= 3) {
        PyBuffer_Release(&cls);
    }
    if (got >= 4) {
        PyBuffer_Release(&conn.view);
    }
    if (got >= 5) {
        PyBuffer_Release(&ts.view);
    }
    Py_XDECREF(counts);
    Py_XDECREF(rows);
    Py_XDECREF(t_out);
    Py_XDECREF(c_out);
    Py_XDECREF(h_out);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"pair_next", (PyCFunction)(void (*)(void))pair_next, METH_FASTCALL,
     "pair_next(conn, cls, ts, n_conn, out) -> answered: the ACK time of each refresh row (see latency.py)."},
    {"group_refreshes", (PyCFunction)(void (*)(void))group_refreshes, METH_FASTCALL,
     "group_refreshes(key, need, cls, conn, ts, n_keys) -> (counts, rows, t, conn, hello): refreshes by key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wsreplay.analysis._kernels", "Per-connection passes of the analyses in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
