"""The Execution Verifier: nothing reaches a kernel unless it passed here.

Stages, in order, each returning a StageVerdict (see verdict.py):
static (static.py: build with -Wall -Werror, object and source checks), kernel (kernel.py:
the lab kernel's own verifier), dynamic (dynamic.py: correctness and performance in the
lab), then a signed deployment token (token.py). pipeline.verify runs them.
"""
