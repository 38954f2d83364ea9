"""Upper bounds on user input, far above any real deployment.

They turn a mistyped huge number into a one-line error before it can overflow
numpy's 64-bit integers or allocate memory without limit.
"""

MAX_TOKENS = 2**31 - 1
"""Largest token count of any setting or trace row. The sum of two such counts still fits in int64."""
MAX_REQUESTS = 100_000_000
"""Largest number of requests, sessions, groups or clients of a workload."""
MAX_SERVERS = 100_000
"""Largest number of servers in a pool or of aggregated replicas."""
MAX_PARALLEL = 1024
"""Largest size of one parallel dimension (TP, DP, EP, PP)."""
MAX_CV = 1000.0
"""Largest coefficient of variation of a length or arrival distribution."""
MAX_GPUS = 100_000
"""Largest GPU budget of an optimizer plan."""
