# cython: language_level=3
# The same extension type on a depot.Pool: the memory belongs to the pool,
# resize goes through the pool's Block, and whatever an object leaves
# behind goes when the pool does.  A typed memoryview (double[::1]) would
# hold a view and so block resize(): the type keeps a raw pointer, taken
# again after every resize.
import depot

from libc.stdint cimport uintptr_t


cdef class PoolMemory:
    cdef object block
    cdef double *data
    cdef Py_ssize_t n

    def __cinit__(self, pool, Py_ssize_t number):
        self.block = pool.alloc(number * sizeof(double))
        self.data = <double *><uintptr_t>self.block.address
        self.n = number

    def resize(self, Py_ssize_t new_number):
        self.block.resize(new_number * sizeof(double))  # MemoryError: intact
        self.data = <double *><uintptr_t>self.block.address
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

    def view(self):
        """The block's bytes as a memoryview of doubles, no copy."""
        return memoryview(self.block).cast("d")

    def __dealloc__(self):
        # Give the buffer back now rather than with the pool (a view still
        # held elsewhere keeps it: the pool frees it at its end).
        if self.block is not None:
            try:
                self.block.free()
            except BufferError:
                pass
