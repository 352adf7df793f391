"""The verified search: profile kernels, propose rewrites, check and time them, keep winners.

Modules by job: `types` (Kernel, Candidate, Verdict), `kernels` (extracting
standalone kernels from an outlined module), `worker` (the subprocess that
runs candidates), `equivalence` and `evaluate` (the check cascade),
`profiling`, `proposers/`, `search`, `cache` (SQLite), `compose`.
"""
