# Types for the compiled build of _policy.py (see _proxy.pxd): the proxy
# reads a request's policy and the service's retry budget as C fields.

cimport cython


@cython.final
cdef class Policy:
    cdef public Py_ssize_t attempts
    cdef public double backoff_base
    cdef public double backoff_cap
    cdef public double base_ejection
    cdef public bint breaker
    cdef public double budget_per_s
    cdef public double budget_ratio
    cdef public double connect_timeout
    cdef public Py_ssize_t consecutive_failures
    cdef public bytes line
    cdef public double line_at
    cdef public double max_ejected_ratio
    cdef public double timeout
    cdef public double try_timeout


@cython.final
cdef class RetryBudget:
    cdef public double last
    cdef public double per_s
    cdef public double ratio
    cdef public double tokens
