"""Search methods over a `Problem`; `sglsim.optimizer.search.optimize` picks one by name."""
