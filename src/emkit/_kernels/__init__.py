"""Pure array maths: ndarray in, ndarray out.  No estimators, no dask, no h5py, no logging."""
