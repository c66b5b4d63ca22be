# cython: language_level=3
# A heap per object (issue 15's first-class heaps): every buffer an object
# makes comes from its own DepotHeap, and __dealloc__ destroys the heap,
# everything in it at once.  The declarations come from depot.pxd.
from depot cimport (DEPOT_HEAP_NODE_ANY, DepotHeap, DepotHeap_Destroy,
                    DepotHeap_Free, DepotHeap_Malloc, DepotHeap_New,
                    DepotHeap_Of, DepotHeap_Realloc, DepotHeap_Reset,
                    DepotHeap_Stats, DepotHeapOptions, DepotHeapStats)
from libc.string cimport memcpy


cdef class Document:
    """Many small buffers, all freed with the object (a parser's nodes)."""
    cdef DepotHeap *heap
    cdef list sizes

    def __cinit__(self, bytes name=b"document", size_t limit=0):
        cdef DepotHeapOptions opts
        opts.size = sizeof(opts)
        opts.node = DEPOT_HEAP_NODE_ANY
        opts.limit_bytes = limit
        opts.name = name  # copied by DepotHeap_New
        self.heap = DepotHeap_New(&opts)
        if self.heap == NULL:
            raise MemoryError()
        self.sizes = []

    def stats(self):
        """(blocks in use, name) from DepotHeap_Stats."""
        cdef DepotHeapStats s
        s.size = sizeof(s)
        if DepotHeap_Stats(self.heap, &s) != 0:
            raise OSError("DepotHeap_Stats")
        return s.blocks_in_use, s.name.decode()

    def grow(self, Py_ssize_t addr, size_t n):
        """Resizes a block add() made (its text kept); its new address."""
        cdef void *q = DepotHeap_Realloc(self.heap, <void *>addr, n)
        if q == NULL:
            raise MemoryError()
        return <Py_ssize_t>q

    def drop(self, Py_ssize_t addr):
        DepotHeap_Free(<void *>addr)

    def add(self, bytes text):
        cdef Py_ssize_t n = len(text)
        cdef char *p = <char *>DepotHeap_Malloc(self.heap, n + 1)
        if p == NULL:
            raise MemoryError()
        # memcpy: Cython 0.29 compiles p[:n] = text as an object slice
        # assignment on the pointer (a crash)
        memcpy(p, <const char *>text, n)
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
