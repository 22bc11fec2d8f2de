# Types for the compiled build of _stats.py (see _proxy.pxd).

cimport cython


@cython.final
cdef class Counters:
    cdef public Py_ssize_t requests
    cdef public dict errors
    cdef public list hist
