"""The numba training kernels: each a pure function of arrays. Only this package imports numba."""
