/* The recorder's per-message fast path in C (optional; analysis/_kernels.c is the other compiled module).
 *
 * whole_frame: is this read exactly one whole data frame, and its unmasked payload (frames.py has the
 * same function in Python, _whole_frame_py, used when this module was not compiled).
 * Tap: a relayed socket's data_received for such a read (relay.py's _Side._receive in C).
 *
 * Why C: the Python version, about a microsecond of CPU per message when timed in a loop, added 20 to 40 µs
 * more to the median round trip than this one through a recorder with 1,000 connections (BENCHMARKS.md,
 * Recorder). tests/record/test_speedups.py checks that both versions agree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static PyObject *TEXT = NULL;
static PyObject *BINARY = NULL;

/* Where the payload of p[0:n] is when p[0:n] is exactly one whole, final text or binary frame within
 * max_size (frames.py's _whole_frame_py is the same check in Python). */
typedef struct {
    Py_ssize_t head; /* payload offset */
    Py_ssize_t len;  /* payload length */
    int op;          /* 1 text, 2 binary */
    int masked;
    int rsv1;
} FrameInfo;

/* 1 and *info filled when p[0:n] is one whole data frame within max_size, else 0 */
static int
whole_frame_info(const unsigned char *p, Py_ssize_t n, Py_ssize_t max_size, FrameInfo *info)
{
    if (n < 2) {
        return 0;
    }
    unsigned char b0 = p[0], b1 = p[1];
    int op = b0 & 0x0F;
    if (!(b0 & 0x80) || (op != 1 && op != 2)) {
        return 0;
    }
    uint64_t length = b1 & 0x7F;
    Py_ssize_t head = 2;
    if (length == 126) {
        if (n < 4) {
            return 0;
        }
        length = ((uint64_t)p[2] << 8) | p[3];
        head = 4;
    }
    else if (length == 127) {
        if (n < 10) {
            return 0;
        }
        length = 0;
        for (int i = 2; i < 10; i++) {
            length = (length << 8) | p[i];
        }
        head = 10;
    }
    int masked = (b1 & 0x80) != 0;
    if (masked) {
        head += 4;
    }
    if (n < head || length != (uint64_t)(n - head) || length > (uint64_t)max_size) {
        return 0;
    }
    info->head = head;
    info->len = (Py_ssize_t)length;
    info->op = op;
    info->masked = masked;
    info->rsv1 = (b0 & 0x40) != 0;
    return 1;
}

/* The unmasked payload of the frame *info* describes (a new bytes object; NULL when memory runs out) */
static PyObject *
frame_payload(const unsigned char *p, const FrameInfo *info)
{
    Py_ssize_t len = info->len;
    if (!info->masked) {
        return PyBytes_FromStringAndSize((const char *)p + info->head, len);
    }
    PyObject *payload = PyBytes_FromStringAndSize(NULL, len);
    if (payload == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(payload);
    const unsigned char *mask = p + info->head - 4, *src = p + info->head;
    unsigned char m8[8];
    uint64_t mask8, word;
    for (int k = 0; k < 8; k++) {
        m8[k] = mask[k & 3];
    }
    memcpy(&mask8, m8, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&word, src + i, 8);
        word ^= mask8;
        memcpy(out + i, &word, 8);
    }
    for (; i < len; i++) {
        out[i] = src[i] ^ mask[i & 3];
    }
    return payload;
}

/* whole_frame(data, max_size) -> (opcode, payload, compressed) | None */
static PyObject *
whole_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "whole_frame(data, max_size) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t max_size = PyLong_AsSsize_t(args[1]);
    if (max_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)view.buf;
    FrameInfo info;
    PyObject *result = NULL;
    if (!whole_frame_info(p, view.len, max_size, &info)) {
        result = Py_None;
        Py_INCREF(result);
    }
    else {
        PyObject *payload = frame_payload(p, &info);
        if (payload != NULL) {
            result = PyTuple_Pack(3, info.op == 1 ? TEXT : BINARY, payload, info.rsv1 ? Py_True : Py_False);
            Py_DECREF(payload);
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------------------
 * Tap: a relayed socket's data_received, for the read that is one whole message (relay.py's _Side).
 *
 * tap = Tap(relay, parser, log, put, direction, stats, dst, now_ns, anchors)
 * tap(data): when the relay is not stopping or ended, the parser is between messages and *data* is one
 * whole data frame: take the time, write *data* to dst, then queue the entry (log, ts, seq, direction,
 * opcode, payload, compressed) with put and count it. Anything else: relay._on_data(direction, data).
 * The Python _Side._receive does exactly this; uvloop calls a Tap with no Python frame at all.
 * now_ns None: the time is anchors[0] + (CLOCK_MONOTONIC - anchors[1]), as WallClock.now_ns computes it.
 */

typedef struct {
    PyObject_HEAD
    PyObject *relay;
    PyObject *parser;
    PyObject *log;
    PyObject *put;
    PyObject *direction;
    PyObject *stats;
    PyObject *is_closing;
    PyObject *write;
    PyObject *on_data;
    PyObject *now_ns; /* None: the anchors below (a WallClock) */
    Py_ssize_t max_size;
    long long anchor_wall;
    long long anchor_mono;
} Tap;

static PyObject *s_stopping, *s__ended, *s_clean, *s_seq, *s_frames, *s_bytes, *s_max_size, *s_is_closing,
    *s_write, *s__on_data;

static int
Tap_traverse(Tap *self, visitproc visit, void *arg)
{
    Py_VISIT(self->relay);
    Py_VISIT(self->parser);
    Py_VISIT(self->log);
    Py_VISIT(self->put);
    Py_VISIT(self->direction);
    Py_VISIT(self->stats);
    Py_VISIT(self->is_closing);
    Py_VISIT(self->write);
    Py_VISIT(self->on_data);
    Py_VISIT(self->now_ns);
    return 0;
}

static int
Tap_clear(Tap *self)
{
    Py_CLEAR(self->relay);
    Py_CLEAR(self->parser);
    Py_CLEAR(self->log);
    Py_CLEAR(self->put);
    Py_CLEAR(self->direction);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->is_closing);
    Py_CLEAR(self->write);
    Py_CLEAR(self->on_data);
    Py_CLEAR(self->now_ns);
    return 0;
}

static void
Tap_dealloc(Tap *self)
{
    PyObject_GC_UnTrack(self);
    Tap_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Tap_init(Tap *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"relay", "parser", "log", "put", "direction", "stats", "dst", "now_ns", "anchors",
                             NULL};
    PyObject *relay, *parser, *log, *put, *direction, *stats, *dst, *now_ns;
    long long anchor_wall = 0, anchor_mono = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOUOOO(LL)", kwlist, &relay, &parser, &log, &put, &direction,
                                     &stats, &dst, &now_ns, &anchor_wall, &anchor_mono)) {
        return -1;
    }
    PyObject *max_size = PyObject_GetAttr(parser, s_max_size);
    if (max_size == NULL) {
        return -1;
    }
    self->max_size = PyLong_AsSsize_t(max_size);
    Py_DECREF(max_size);
    if (self->max_size == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *is_closing = PyObject_GetAttr(dst, s_is_closing);
    PyObject *write = is_closing ? PyObject_GetAttr(dst, s_write) : NULL;
    PyObject *on_data = write ? PyObject_GetAttr(relay, s__on_data) : NULL;
    if (on_data == NULL) {
        Py_XDECREF(is_closing);
        Py_XDECREF(write);
        return -1;
    }
    Tap_clear(self);
    Py_INCREF(relay);
    self->relay = relay;
    Py_INCREF(parser);
    self->parser = parser;
    Py_INCREF(log);
    self->log = log;
    Py_INCREF(put);
    self->put = put;
    Py_INCREF(direction);
    self->direction = direction;
    Py_INCREF(stats);
    self->stats = stats;
    self->is_closing = is_closing;
    self->write = write;
    self->on_data = on_data;
    Py_INCREF(now_ns);
    self->now_ns = now_ns;
    self->anchor_wall = anchor_wall;
    self->anchor_mono = anchor_mono;
    return 0;
}

/* obj.name += inc, for an int attribute */
static int
add_to(PyObject *obj, PyObject *name, Py_ssize_t inc)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    PyObject *step = PyLong_FromSsize_t(inc);
    PyObject *sum = step ? PyNumber_Add(value, step) : NULL;
    Py_DECREF(value);
    Py_XDECREF(step);
    if (sum == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return rc;
}

static PyObject *
now(Tap *self)
{
    if (self->now_ns != Py_None) {
        return PyObject_CallNoArgs(self->now_ns);
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long mono = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    return PyLong_FromLongLong(self->anchor_wall + (mono - self->anchor_mono));
}

/* bool(obj.name): 1 or 0; -1 on error */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* 1: handled, 0: not a fast-path read, -1: error */
static int
tap_whole(Tap *self, PyObject *data)
{
    int stopping = attr_true(self->relay, s_stopping);
    if (stopping) {
        return stopping < 0 ? -1 : 0;
    }
    int ended = attr_true(self->relay, s__ended);
    if (ended) {
        return ended < 0 ? -1 : 0;
    }
    int clean = attr_true(self->parser, s_clean);
    if (clean <= 0) {
        return clean;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    const unsigned char *p = (const unsigned char *)view.buf;
    FrameInfo info;
    if (!whole_frame_info(p, view.len, self->max_size, &info)) {
        PyBuffer_Release(&view);
        return 0;
    }
    /* The time first, then the bytes to the other side, then the entry: building the entry overlaps the
     * next hop instead of delaying it. Nothing else runs in between (no await, no other callback). */
    int rc = -1;
    PyObject *entry = NULL, *ts = NULL, *seq = NULL, *res = NULL, *payload = NULL;
    ts = now(self);
    if (ts == NULL) {
        goto out;
    }
    res = PyObject_CallNoArgs(self->is_closing);
    if (res == NULL) {
        goto out;
    }
    int closing = PyObject_IsTrue(res);
    Py_CLEAR(res);
    if (closing < 0) {
        goto out;
    }
    if (!closing) {
        res = PyObject_CallOneArg(self->write, data);
        if (res == NULL) {
            goto out;
        }
        Py_CLEAR(res);
    }
    payload = frame_payload(p, &info);
    if (payload == NULL) {
        goto out;
    }
    seq = PyObject_GetAttr(self->log, s_seq);
    if (seq == NULL) {
        goto out;
    }
    entry = PyTuple_Pack(7, self->log, ts, seq, self->direction, info.op == 1 ? TEXT : BINARY, payload,
                         info.rsv1 ? Py_True : Py_False);
    if (entry == NULL) {
        goto out;
    }
    res = PyObject_CallOneArg(self->put, entry);
    if (res == NULL) {
        goto out;
    }
    if (add_to(self->log, s_seq, 1) < 0 || add_to(self->stats, s_frames, 1) < 0 ||
        add_to(self->stats, s_bytes, info.len) < 0) {
        goto out;
    }
    rc = 1;
out:
    Py_XDECREF(res);
    Py_XDECREF(entry);
    Py_XDECREF(seq);
    Py_XDECREF(payload);
    Py_XDECREF(ts);
    PyBuffer_Release(&view);
    return rc;
}

static PyObject *
Tap_call(Tap *self, PyObject *args, PyObject *kwds)
{
    PyObject *data;
    if (!PyArg_ParseTuple(args, "O:Tap", &data)) {
        return NULL;
    }
    if (self->relay == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tap called before __init__");
        return NULL;
    }
    int handled = tap_whole(self, data);
    if (handled < 0) {
        return NULL;
    }
    if (handled) {
        Py_RETURN_NONE;
    }
    PyObject *fargs[2] = {self->direction, data};
    return PyObject_Vectorcall(self->on_data, fargs, 2, NULL);
}

static PyTypeObject TapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wsreplay.record._speedups.Tap",
    .tp_basicsize = sizeof(Tap),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A relayed socket's data_received: the whole-message fast path in C (see relay.py's _Side).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tap_init,
    .tp_dealloc = (destructor)Tap_dealloc,
    .tp_traverse = (traverseproc)Tap_traverse,
    .tp_clear = (inquiry)Tap_clear,
    .tp_call = (ternaryfunc)Tap_call,
};

static PyMethodDef methods[] = {
    {"whole_frame", (PyCFunction)(void (*)(void))whole_frame, METH_FASTCALL,
     "whole_frame(data, max_size) -> (opcode, payload, compressed) or None: data as one whole, final text or "
     "binary frame within max_size, its payload unmasked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wsreplay.record._speedups", "The recorder's per-message fast path in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    TEXT = PyUnicode_InternFromString("text");
    BINARY = PyUnicode_InternFromString("binary");
    if (TEXT == NULL || BINARY == NULL) {
        return NULL;
    }
#define INTERN(var, text)                                                                                    \
    if ((var = PyUnicode_InternFromString(text)) == NULL) {                                                  \
        return NULL;                                                                                         \
    }
    INTERN(s_stopping, "stopping");
    INTERN(s__ended, "_ended");
    INTERN(s_clean, "clean");
    INTERN(s_seq, "seq");
    INTERN(s_frames, "frames");
    INTERN(s_bytes, "bytes");
    INTERN(s_max_size, "max_size");
    INTERN(s_is_closing, "is_closing");
    INTERN(s_write, "write");
    INTERN(s__on_data, "_on_data");
    if (PyType_Ready(&TapType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&TapType);
    if (PyModule_AddObject(m, "Tap", (PyObject *)&TapType) < 0) {
        Py_DECREF(&TapType);
        Py_DECREF(m);
        return NULL;
    }
    PyObject *all = Py_BuildValue("[ss]", "Tap", "whole_frame");
    if (all == NULL || PyModule_AddObject(m, "__all__", all) < 0) {
        Py_XDECREF(all);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
