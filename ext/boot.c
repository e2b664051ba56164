/* _fatjit_boot: automatic mode's start-up half, so that FATJIT=auto costs start-up almost nothing.
 *
 * FATJIT=auto imports this module while the interpreter starts (fatjit_autoload.pth, or
 * build/python/sitecustomize.py in the build tree) instead of fatjit. Loading fatjit._fatjit
 * costs ~4.5 ms of dynamic loading (libstdc++, Abseil's shared libraries) plus its package,
 * about half of what an empty program's start-up takes; this module is C that needs nothing but
 * libc and the interpreter. It installs a PEP 523 hook that counts what automatic mode counts
 * (ext/auto_mode.h): fresh calls of function code, and for code with a backward jump its
 * interpreted time, one call per FATJIT_LOOP_TIME_PER_CALL_NS. When a code object reaches the
 * attempt threshold (min of the specialize and JIT thresholds, from the same environment
 * variables), it hands over: it removes its hook, imports fatjit._autoload (which turns automatic
 * mode on and installs fatjit's own hook) and passes the frame to the hook now installed.
 * fatjit's counter starts each code object where this one stopped: it reads calls_counted()
 * through the capsule _fatjit_boot._counts. The program's first use of fatjit's API hands over
 * too (fatjit/_api.py), so that it finds automatic mode on. `python -m fatjit` starts the same
 * counter (start(), from fatjit/__main__.py).
 *
 * Hands over at once instead, without counting, when something needs fatjit from the start: a
 * threshold of 0, FATJIT_AST=1 (its import hook must see every import), FATJIT_STATS or
 * FATJIT_LOG (reports of the whole run), a threshold it cannot read (fatjit reports it), or
 * another PEP 523 hook already installed.
 *
 * Assumes: CPython 3.11; the GIL is held in the hook; the main interpreter (in a sub-interpreter
 * importing this module does nothing: automatic mode belongs to the main one).
 * Why sound: every frame runs in _PyEval_EvalFrameDefault, exactly as without a hook; counting
 * reads the frame and writes only this module's co_extra slot. The hand-over runs an import
 * before the frame starts, as fatjit's own hook runs the specializer there. It waits while an
 * exception is set, while the thread is near the recursion limit (the import runs a few dozen
 * Python frames), while the interpreter finalizes and while fatjit itself is being imported
 * (fatjit_being_imported). An Exception from the import is reported
 * on one line of stderr and the program goes on without fatjit; anything else (a
 * KeyboardInterrupt arriving meanwhile) is raised by the call, as the frame's first
 * instruction would have raised it.
 */
#define PY_SSIZE_T_CLEAN
#ifndef Py_BUILD_CORE_MODULE
#define Py_BUILD_CORE_MODULE 1
#endif
#include <Python.h>
#include <internal/pycore_frame.h>
#include <opcode.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ext/boot.h"
#include "ext/tuning_defaults.h"
#include "specializer/bytecode/backward_jump.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "fatjit supports CPython 3.11 only for now"
#endif

/* The import a hand-over runs needs this many frames of recursion headroom. */
#define HAND_OVER_HEADROOM 200

/* A code object's word in the co_extra slot: bit 0 set once its bytecode was scanned, bit 1 if it
 * has a backward jump, the count (calls, and loop time in calls) above them. 0: never seen. */
#define SCANNED 1u
#define HAS_LOOP 2u
#define COUNT_SHIFT 2

static Py_ssize_t extra_index = -1;
static int armed;               /* the hook is installed and counting */
static int handing_over;        /* an import started by hand_over is under way */
static int64_t threshold;       /* counts at which a code object is hot */
static uint64_t calls_counted;  /* all calls counted, for status() */

static uintptr_t
word_of(PyCodeObject *code)
{
    void *extra = NULL;
    _PyCode_GetExtra((PyObject *)code, extra_index, &extra);
    return (uintptr_t)extra;
}

/* Stores the word; a failure (no memory for the co_extra array) leaves the code uncounted. */
static void
set_word(PyCodeObject *code, uintptr_t word)
{
    if (_PyCode_SetExtra((PyObject *)code, extra_index, (void *)word) < 0) {
        PyErr_Clear();
    }
}

/* A backward jump in the unquickened bytecode (specializer/bytecode/backward_jump.h). */
static int
has_backward_jump(PyCodeObject *code)
{
    PyObject *bytes = PyCode_GetCode(code);
    if (bytes == NULL) {
        PyErr_Clear();
        return 0;
    }
    const uint8_t *units = (const uint8_t *)PyBytes_AS_STRING(bytes);
    Py_ssize_t size = PyBytes_GET_SIZE(bytes);
    int found = 0;
    for (Py_ssize_t i = 0; i + 1 < size && !found; i += 2) {
        found = fatjit_is_backward_jump(units[i]);
    }
    Py_DECREF(bytes);
    return found;
}

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static PyObject *boot_eval(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag);

/* Whether the fatjit package or fatjit._api is being imported (its module is in sys.modules with
 * __spec__._initializing set). A hand-over then would import fatjit._autoload against a package
 * that has not bound its API yet (enable() is fatjit._fatjit's, loaded by fatjit._api): the
 * import fails and automatic mode stays off for good. A call made hot meanwhile (the extension's
 * dynamic loading, ~4.5 ms, counts as loop time of the import machinery's frames, more on a
 * loaded machine) waits for the next hot call instead; fatjit._api hands over itself once its
 * names are bound. Errors are cleared (answering 0). */
static int
fatjit_being_imported(void)
{
    static const char *const names[] = {"fatjit", "fatjit._api"};
    PyObject *modules = PyImport_GetModuleDict();
    int busy = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !busy; ++i) {
        PyObject *module = PyDict_GetItemString(modules, names[i]); /* borrowed */
        if (module == NULL) {
            continue;
        }
        PyObject *spec = PyObject_GetAttrString(module, "__spec__");
        PyObject *initializing = spec != NULL && spec != Py_None
                                     ? PyObject_GetAttrString(spec, "_initializing")
                                     : NULL;
        busy = initializing != NULL && PyObject_IsTrue(initializing) == 1;
        Py_XDECREF(initializing);
        Py_XDECREF(spec);
        PyErr_Clear();
    }
    return busy;
}

/* Removes the hook and imports fatjit._autoload. 0, or -1 with a non-Exception raised by the
 * import (KeyboardInterrupt, SystemExit) set. */
static int
hand_over_now(void)
{
    if (!armed || handing_over || PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;  /* a sub-interpreter's fatjit (hand_over()) leaves the main one's counter be */
    }
    armed = 0;
    handing_over = 1;
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (_PyInterpreterState_GetEvalFrameFunc(interp) == boot_eval) {
        _PyInterpreterState_SetEvalFrameFunc(interp, _PyEval_EvalFrameDefault);
    }
    PyObject *autoload = PyImport_ImportModule("fatjit._autoload");
    handing_over = 0;
    if (autoload != NULL) {
        Py_DECREF(autoload);
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *text = value != NULL ? PyObject_Str(value) : NULL;
    PySys_FormatStderr("fatjit: FATJIT=auto ignored: %s: %s\n", ((PyTypeObject *)type)->tp_name,
                       text != NULL ? PyUnicode_AsUTF8(text) : "?");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return 0;
}

static PyObject *
boot_eval(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag)
{
    PyCodeObject *code = frame->f_code;
    /* Counted: a fresh call of function code. Not a resumed generator, a throw(), a module or
     * class body (no CO_OPTIMIZED). */
    if (throwflag || frame->owner != FRAME_OWNED_BY_THREAD ||
        frame->prev_instr != _PyCode_CODE(code) - 1 || !(code->co_flags & CO_OPTIMIZED)) {
        return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    }
    uintptr_t word = word_of(code);
    if (!(word & SCANNED)) {
        word = SCANNED | (has_backward_jump(code) ? HAS_LOOP : 0);
    }
    word += (uintptr_t)1 << COUNT_SHIFT;
    set_word(code, word);
    ++calls_counted;
    if ((int64_t)(word >> COUNT_SHIFT) >= threshold && !handing_over && !PyErr_Occurred() &&
        tstate->recursion_remaining > HAND_OVER_HEADROOM && !_Py_IsFinalizing() &&
        !fatjit_being_imported()) {
        if (hand_over_now() < 0) {
            return NULL;  /* the call raises what arrived during the import */
        }
        return _PyInterpreterState_GetEvalFrameFunc(tstate->interp)(tstate, frame, throwflag);
    }
    if (!(word & HAS_LOOP)) {
        return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    }
    /* Loop time counts as calls (ext/auto_mode.h, CreditLoopTime), up to the threshold. */
    Py_INCREF(code);
    int64_t start = now_ns();
    PyObject *result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    int64_t credit = (now_ns() - start) / FATJIT_LOOP_TIME_PER_CALL_NS;
    if (credit > 0 && armed) {
        uintptr_t after = word_of(code);
        int64_t count = (int64_t)(after >> COUNT_SHIFT);
        if (count < threshold) {
            count = count + credit < threshold ? count + credit : threshold;
            set_word(code, (after & (SCANNED | HAS_LOOP)) | ((uintptr_t)count << COUNT_SHIFT));
        }
    }
    Py_DECREF(code);
    return result;
}

/* The calls (and loop time in calls) counted for `code` before the hand-over; for fatjit. */
static int64_t
boot_calls_counted(PyObject *code)
{
    return extra_index < 0 || !PyCode_Check(code)
               ? 0
               : (int64_t)(word_of((PyCodeObject *)code) >> COUNT_SHIFT);
}

/* An environment variable's threshold: the value (default when unset), -1 for "off" where
 * allowed, -2 when it is not a number (fatjit reports it). */
static int64_t
threshold_from_environment(const char *variable, int64_t unset, int allow_off)
{
    const char *text = getenv(variable);
    if (text == NULL || *text == '\0') {
        return unset;
    }
    if (allow_off && strcmp(text, "off") == 0) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (*text < '0' || *text > '9' || errno != 0 || *end != '\0' || value > INT32_MAX) {
        return -2;
    }
    return value;
}

/* Whether automatic mode must start at once: see the top of this file. Sets `threshold`. */
static int
needs_fatjit_now(void)
{
    int64_t specialize = threshold_from_environment("FATJIT_SPECIALIZE_THRESHOLD",
                                                    FATJIT_DEFAULT_SPECIALIZE_THRESHOLD, 0);
    int64_t jit = threshold_from_environment("FATJIT_JIT_THRESHOLD", FATJIT_DEFAULT_JIT_THRESHOLD,
                                             1);
    if (specialize == -2 || jit == -2) {
        return 1;
    }
    threshold = jit >= 0 && jit < specialize ? jit : specialize;
    const char *ast = getenv("FATJIT_AST");
    const char *stats = getenv("FATJIT_STATS");
    const char *log = getenv("FATJIT_LOG");
    return threshold == 0 || (ast != NULL && strcmp(ast, "1") == 0) ||
           (stats != NULL && *stats != '\0' && strcmp(stats, "0") != 0) ||
           (log != NULL && *log != '\0') ||
           _PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get()) !=
               _PyEval_EvalFrameDefault;
}

/* Starts counting (installs the hook): 1, or 0 when fatjit is needed now (needs_fatjit_now, or
 * no co_extra slot left), or outside the main interpreter. */
static int
start_counting(void)
{
    if (armed) {
        return 1;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main() || needs_fatjit_now()) {
        return 0;
    }
    if (extra_index < 0) {
        extra_index = _PyEval_RequestCodeExtraIndex(NULL);
        if (extra_index < 0) {
            return 0;
        }
    }
    armed = 1;
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), boot_eval);
    return 1;
}

static PyObject *
start(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(start_counting());
}

static PyObject *
hand_over(PyObject *module, PyObject *unused)
{
    if (hand_over_now() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
status(PyObject *module, PyObject *unused)
{
    return Py_BuildValue("{s:O,s:L,s:K}", "counting", armed ? Py_True : Py_False, "threshold",
                         (long long)threshold, "calls_counted",
                         (unsigned long long)calls_counted);
}

static PyMethodDef boot_methods[] = {
    {"hand_over", hand_over, METH_NOARGS,
     "hand_over()\n--\n\nTurn automatic mode on now (import fatjit._autoload), if this module "
     "is still counting."},
    {"start", start, METH_NOARGS,
     "start()\n--\n\nCount calls until a function gets hot, then turn automatic mode on (python "
     "-m fatjit). False, counting nothing, when automatic mode is needed from the start (a "
     "threshold of 0 or malformed, FATJIT_AST, FATJIT_STATS, FATJIT_LOG) or outside the main "
     "interpreter: then the caller turns it on itself."},
    {"status", status, METH_NOARGS,
     "status()\n--\n\n{'counting': bool, 'threshold': int, 'calls_counted': int}."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef boot_module = {
    PyModuleDef_HEAD_INIT, "_fatjit_boot",
    "FATJIT=auto's start-up counter: fatjit loads when a function gets hot (ext/boot.c).", -1,
    boot_methods,
};

static FatjitBootCounts counts_api = {boot_calls_counted};

PyMODINIT_FUNC
PyInit__fatjit_boot(void)
{
    PyObject *module = PyModule_Create(&boot_module);
    if (module == NULL) {
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(&counts_api, FATJIT_BOOT_COUNTS_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_counts", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main() ||
        getenv("FATJIT") == NULL || strcmp(getenv("FATJIT"), "auto") != 0) {
        return module;
    }
    if (!start_counting()) {
        armed = 1;  /* so that hand_over_now hands over */
        if (hand_over_now() < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
