"""Fitting the efficiency constants of the cost laws to measured kernel timings.

`kernels` turns tables of measured kernel latencies into arrays and predicts
each row with the simulator's own laws (`sglsim.costs.laws` and `forward`),
evaluated element-wise by `ArrayOps`. `fit` adjusts named `Efficiency`
constants by least squares on log latency. Reading the measurement files
(Parquet) is left to `bench/calibrate.py`, so this package needs only NumPy
and SciPy.
"""
