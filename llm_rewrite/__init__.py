"""The verified search: profile kernels, propose rewrites, check and time them, keep winners.

Modules by job: `types` (Kernel, Candidate, Verdict, Stage), `candidates/`
(one module per candidate kind, behind a registry), `settings` (the search's,
the evaluator's and the LLM's settings, each default once), `kernels`
(standalone kernels from an outlined module), `evaluate` (the check cascade),
`worker` and `worker_protocol` (the subprocess that runs candidates, and what
is said to it), `profiling`, `proposers/`, `prompts/`, `answers` (reading an
LLM's answer), `search`, `cache` (SQLite), `compose`, `optimize` (all of it
for one model).
"""
