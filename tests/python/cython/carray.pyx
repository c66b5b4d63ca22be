# cython: language_level=3
# The Cython tutorial's first idiom ("Memory Allocation"), on Depot: a
# function allocates a C array, uses it, and frees it in try/finally.
import random

from depot cimport DepotMem_Free, DepotMem_Malloc, DepotMem_New


def random_noise(int number=1):
    cdef int i
    # allocate number * sizeof(double) bytes of memory
    cdef double *my_array = <double *>DepotMem_Malloc(number * sizeof(double))
    if not my_array:
        raise MemoryError()
    try:
        ran = random.normalvariate
        for i in range(number):
            my_array[i] = ran(0, 1)
        # ... let's just assume we do some more heavy C calculations here ...
        return [x for x in my_array[:number]]
    finally:
        # return the previously allocated memory to the system
        DepotMem_Free(my_array)


def squares(Py_ssize_t n):
    """The typed-macro form: DepotMem_New(n, sizeof(T)) checks n * size."""
    cdef long *a = <long *>DepotMem_New(n, sizeof(long))
    cdef Py_ssize_t i
    if not a:
        raise MemoryError()
    try:
        for i in range(n):
            a[i] = i * i
        return sum(a[i] for i in range(n))
    finally:
        DepotMem_Free(a)
