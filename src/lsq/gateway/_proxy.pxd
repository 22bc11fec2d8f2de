# Types for the compiled build of _proxy.py (Cython's "augmenting .pxd").
#
# _proxy.py stays plain Python and runs as it is; when the build compiles it,
# these declarations make its three classes C extension types (attributes in
# a C struct, methods called directly) and give the hot functions C-typed
# locals. Keep every attribute here in step with the .py: an attribute missing
# here is an AttributeError in the compiled build only, and tests/gateway/
# test_compiled.py compares the two.

cimport cython

from lsq.gateway._balance cimport BackendState, ServiceState
from lsq.gateway._policy cimport Policy, RetryBudget
from lsq.gateway._stats cimport Counters


cdef class Upstream


# Not final: the worker's Context derives from it.
cdef class ContextBase:
    cdef public object loop
    cdef public object clock
    cdef public double now
    cdef public bint policies
    cdef public dict services
    cdef public object access
    cdef public object spans
    cdef public set conns


@cython.final
cdef class Request:
    cdef public BackendState backend
    cdef public Upstream upstream
    cdef public ServiceState service
    cdef public Policy policy
    cdef public tuple tried
    cdef public tuple faults
    cdef public object shape
    cdef public list replay
    cdef public Py_ssize_t replay_size
    cdef public Py_ssize_t pending_size
    cdef public double t0
    cdef public double try_at
    cdef public double deadline
    cdef public Py_ssize_t retries
    cdef public int status
    cdef public Py_ssize_t bytes_out
    cdef public bint body_done
    cdef public bint started
    cdef public bint sent100
    cdef public bint finished
    cdef public object error
    cdef public object trace
    cdef public list tunnel_rest
    cdef public bint slot
    cdef public bint upgrade
    cdef public bint expect
    cdef public bint chunked
    cdef public bint keep_alive
    cdef public bint http10
    cdef public bint idem
    cdef public bint probe
    cdef public bint hang
    cdef public bint waiting
    cdef public bint fast
    cdef public bytes method
    cdef public bytes head
    cdef public bytes url
    cdef public bytes lower
    cdef public list headers
    cdef public list pending


@cython.final
cdef class ClientConn:
    cdef public ContextBase ctx
    cdef public object fixed
    cdef public object check
    cdef public object parser
    cdef public bint careful
    cdef public bytes buf
    cdef public object body_left
    cdef public object transport
    cdef public Request parsing
    cdef public Request active
    cdef public object queue
    cdef public Upstream tunnel
    cdef public bint upgrading
    cdef public int paused
    cdef public bint out_paused
    cdef public bint closed
    cdef public object head_at
    cdef public Py_ssize_t head_size
    cdef public double last
    cdef public bytes peer
    cdef public bytes forwarded
    cdef public object tail_host
    cdef public bytes tail
    cdef public object ending_line
    cdef public bytes ending
    cdef public bint trusted
    cdef public object source
    cdef public object bad

    @cython.locals(pos=Py_ssize_t, size=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t,
                   req=Request, buf=bytes, rest=bytes, head=bytes, chunk=bytes)
    cpdef _frame(self, bytes data)

    @cython.locals(raw="const char *", size=Py_ssize_t,
                   line_end=Py_ssize_t, sp=Py_ssize_t, at=Py_ssize_t, url=bytes,
                   lower=bytes, length=Py_ssize_t, kept=int, keep=bint, connection=bint,
                   idem=bint, fields=list,
                   traced=bint, incoming=double, now=double, req=Request,
                   method=bytes, path=bytes, name=bytes, value=bytes,
                   service=ServiceState, policy=Policy, ctx=ContextBase)
    cpdef bint _fast_head(self, bytes head) except? -1

    cpdef _start(self, Request req)
    @cython.locals(service=ServiceState)
    cpdef _dispatch(self, Request req)

    @cython.locals(service=ServiceState, backend=BackendState, budget=RetryBudget,
                   ctx=ContextBase)
    cpdef _try(self, Request req)

    @cython.locals(replayable=bint, upstream=Upstream)
    cpdef _send_to(self, Request req, BackendState backend)

    cpdef _attach(self, Request req, Upstream upstream, bint reused)
    @cython.locals(services=dict, ctx=ContextBase)
    cpdef bytes _resolve(self, Request req, host, bytes url)

    cpdef _send(self, Request req, bytes data)

    @cython.locals(ms=double, bucket=Py_ssize_t, service=ServiceState, backend=BackendState,
                   ctx=ContextBase)
    cpdef _account(self, Request req, int status, bint aborted=*)

    @cython.locals(backend=BackendState)
    cpdef response_done(self, Request req, Upstream upstream, bint reuse)

    @cython.locals(before=int)
    cpdef _set_pause(self, int flag, bint on)


@cython.final
cdef class Upstream:
    cdef public ContextBase ctx
    cdef public BackendState backend
    cdef public object transport
    cdef public object parser
    cdef public ClientConn client
    cdef public Request req
    cdef public ClientConn tunnel
    cdef public bint closed
    cdef public bint paused
    cdef public bint reused
    cdef public bint got
    cdef public bint info
    cdef public int mode
    cdef public bytes buf
    cdef public object body_left
    cdef public bint reuse
    cdef public bytes reason
    cdef public list headers
    cdef public list out
    cdef public double idle_since
    cdef public object throttle
    cdef public object check

    @cython.locals(raw="const char *", d1=int, d2=int, d3=int,
                   end=Py_ssize_t, got=Py_ssize_t, size=Py_ssize_t, status=int, req=Request,
                   buf=bytes, head=bytes, lower=bytes, length=bytes, body=bytes,
                   name=bytes, value=bytes, kept=int, reuse=bint, connection=bint,
                   fields=list, check=object)
    cpdef _fast_head(self, ClientConn client, bytes data)

    @cython.locals(size=Py_ssize_t, req=Request)
    cpdef _fast_body(self, ClientConn client, bytes data, left)

    @cython.locals(backend=BackendState)
    cpdef _head_ok(self, Request req, int status)


@cython.locals(p="const unsigned char *", n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t,
               k=Py_ssize_t, c=int, wanted=bint, found=list, names=tuple, candidate=bytes)
cpdef list _scan_fields(bytes head, bint response)

@cython.locals(q="const unsigned char *", m=Py_ssize_t, t=Py_ssize_t, c=int)
cdef inline bint _is_name(const unsigned char *p, Py_ssize_t i, Py_ssize_t k, bytes name,
                          bint prefix) noexcept

@cython.locals(p="const char *")
cpdef bytes _chop(bytes data, Py_ssize_t n)

@cython.locals(p="const unsigned char *", n=Py_ssize_t, i=Py_ssize_t, d=int, size=Py_ssize_t)
cpdef Py_ssize_t _length(bytes value)

cpdef int _keeps(bytes value) except? -2

@cython.locals(p="const unsigned char *", i=Py_ssize_t)
cpdef Py_ssize_t _find_byte(bytes data, int byte, Py_ssize_t start, Py_ssize_t stop) noexcept

@cython.locals(lo=Py_ssize_t, hi=Py_ssize_t, mid=Py_ssize_t, bound=double)
cpdef Py_ssize_t _bucket(double ms)

cdef tuple _BOUNDS
cdef tuple _REQUEST_NAMES
cdef tuple _RESPONSE_NAMES

@cython.locals(at=Py_ssize_t, stop=Py_ssize_t)
cpdef tuple _cut_line(bytes head, bytes lower, bytes name)

cpdef _free_slot(Request req)

cpdef _count(Counters counters, Py_ssize_t bucket, int status, bint aborted)

@cython.locals(idle=list, upstream=Upstream)
cpdef Upstream _take_idle(BackendState backend, bint probe)
