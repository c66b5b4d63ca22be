# cython: language_level=3
# The tutorial's second idiom on Depot: an extension type that allocates in
# __cinit__, resizes in a method and frees in __dealloc__.
from depot cimport DepotMem_Free, DepotMem_Malloc, DepotMem_Resize


cdef class SomeMemory:
    cdef double *data
    cdef Py_ssize_t n

    def __cinit__(self, Py_ssize_t number):
        # allocate some memory (uninitialised, may contain arbitrary data)
        self.data = <double *>DepotMem_Malloc(number * sizeof(double))
        if not self.data:
            raise MemoryError()
        self.n = number

    def resize(self, Py_ssize_t new_number):
        # Allocates new_number * sizeof(double) bytes, preserving the
        # current content and making a best-effort to re-use the original
        # data location.  On failure self.data is untouched.
        mem = <double *>DepotMem_Resize(self.data, new_number, sizeof(double))
        if not mem:
            raise MemoryError()
        self.data = mem
        self.n = new_number

    def fill(self, double v):
        cdef Py_ssize_t i
        for i in range(self.n):
            self.data[i] = v

    def total(self):
        cdef Py_ssize_t i
        cdef double s = 0
        for i in range(self.n):
            s += self.data[i]
        return s

    def __dealloc__(self):
        DepotMem_Free(self.data)  # no-op if self.data is NULL
