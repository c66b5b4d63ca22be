# cython: language_level=3
# Another allocator hook, as an extension might install one: it wraps
# CPython's object domain and counts the frees it forwards.  The test puts
# it in place, then depot.install() over it: the blocks made under the hook
# must come back to it.
cdef extern from "Python.h":
    ctypedef enum PyMemAllocatorDomain:
        PYMEM_DOMAIN_OBJ
    ctypedef struct PyMemAllocatorEx:
        void *ctx
        void *(*malloc)(void *ctx, size_t size) nogil
        void *(*calloc)(void *ctx, size_t nelem, size_t elsize) nogil
        void *(*realloc)(void *ctx, void *ptr, size_t new_size) nogil
        void (*free)(void *ctx, void *ptr) nogil
    void PyMem_GetAllocator(PyMemAllocatorDomain domain,
                            PyMemAllocatorEx *allocator)
    void PyMem_SetAllocator(PyMemAllocatorDomain domain,
                            PyMemAllocatorEx *allocator)

cdef PyMemAllocatorEx prev
cdef size_t frees = 0


cdef void *h_malloc(void *ctx, size_t n) nogil:
    return prev.malloc(prev.ctx, n)


cdef void *h_calloc(void *ctx, size_t nelem, size_t elsize) nogil:
    return prev.calloc(prev.ctx, nelem, elsize)


cdef void *h_realloc(void *ctx, void *p, size_t n) nogil:
    return prev.realloc(prev.ctx, p, n)


cdef void h_free(void *ctx, void *p) nogil:
    global frees
    if p != NULL:
        frees += 1
    prev.free(prev.ctx, p)


def install():
    cdef PyMemAllocatorEx hook
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &prev)
    hook.ctx = NULL
    hook.malloc = h_malloc
    hook.calloc = h_calloc
    hook.realloc = h_realloc
    hook.free = h_free
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hook)


def forwarded_frees():
    return frees
