# Types for the compiled build of _balance.py (see _proxy.pxd): the proxy
# reads and writes these fields per request, and picks a replica, in C.

cimport cython

from lsq.gateway._policy cimport Policy, RetryBudget
from lsq.gateway._stats cimport Counters


@cython.final
cdef class BackendState:
    cdef public Py_ssize_t active
    cdef public bytes base_path
    cdef public Counters counters
    cdef public double ejected_until
    cdef public Py_ssize_t ejections
    cdef public double ewma
    cdef public double ewma_at
    cdef public Py_ssize_t fails
    cdef public object host
    cdef public bytes host_header
    cdef public object id
    cdef public list idle
    cdef public object pid
    cdef public object port
    cdef public bint retired
    cdef public object server_hostname
    cdef public object ssl
    cdef public Py_ssize_t weight
    cdef public Py_ssize_t win_fail
    cdef public Py_ssize_t win_total

    @cython.locals(weight=double)
    cpdef observe(self, double ms, double now)


@cython.final
cdef class ServiceState:
    cdef public list backends
    cdef public int breaker
    cdef public object breaker_cause
    cdef public double breaker_since
    cdef public RetryBudget budget
    cdef public Counters counters
    cdef public bint external
    cdef public tuple faults
    cdef public bint guarded
    cdef public object name
    cdef public Policy policy
    cdef public double probe_at
    cdef public bint probing
    cdef public tuple routes
    cdef public bint weighted

    cpdef Policy policy_for(self, bytes path)

    @cython.locals(backends=list, only=BackendState, first=BackendState,
                   second=BackendState, margin=double)
    cpdef BackendState pick(self, tuple exclude, double now)


@cython.locals(idle=double, ewma=double)
cpdef double _load(BackendState backend, double now)
