# cython: language_level=3
# A heap per object (issue 15's first-class heaps): every buffer an object
# makes comes from its own DepotHeap, and __dealloc__ destroys the heap,
# everything in it at once.  Written against the DepotHeap API, which is
# not in <depot/depot.h> yet: its test target (//tests:python_cython_heap_test)
# is tagged manual until the heaps land.  INTEGRATION: move these
# declarations into depot.pxd's heap section and cimport them from depot.
cdef extern from "depot/depot.h" nogil:
    ctypedef struct DepotHeap:
        pass
    ctypedef struct DepotHeapOptions:
        pass
    DepotHeap *DepotHeap_New(const DepotHeapOptions *opts)
    void *DepotHeap_Malloc(DepotHeap *h, size_t size)
    void *DepotHeap_Realloc(DepotHeap *h, void *p, size_t size)
    void DepotHeap_Free(void *p)
    DepotHeap *DepotHeap_Of(const void *p)
    void DepotHeap_Reset(DepotHeap *h)
    void DepotHeap_Destroy(DepotHeap *h)


cdef class Document:
    """Many small buffers, all freed with the object (a parser's nodes)."""
    cdef DepotHeap *heap
    cdef list sizes

    def __cinit__(self):
        self.heap = DepotHeap_New(NULL)
        if self.heap == NULL:
            raise MemoryError()
        self.sizes = []

    def add(self, bytes text):
        cdef Py_ssize_t n = len(text)
        cdef char *p = <char *>DepotHeap_Malloc(self.heap, n + 1)
        if p == NULL:
            raise MemoryError()
        p[:n] = text
        p[n] = 0
        if DepotHeap_Of(p) != self.heap:
            raise AssertionError("a block of another heap")
        self.sizes.append(n)
        return <Py_ssize_t>p

    def clear(self):
        DepotHeap_Reset(self.heap)  # every buffer at once; the heap stays
        self.sizes = []

    def __dealloc__(self):
        if self.heap != NULL:
            DepotHeap_Destroy(self.heap)
