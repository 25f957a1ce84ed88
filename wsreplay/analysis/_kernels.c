/* Per-connection passes of the analyses in C (optional: the numpy versions are used without it).
 *
 * pair_next: the "next" ACK pairing of latency.py (_pair_next_numpy is the same in numpy).
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

static PyMethodDef methods[] = {
    {"pair_next", (PyCFunction)(void (*)(void))pair_next, METH_FASTCALL,
     "pair_next(conn, cls, ts, n_conn, out) -> answered: the ACK time of each refresh row (see latency.py)."},
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
