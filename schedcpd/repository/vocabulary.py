"""Query expansion: the words users describe symptoms with, mapped to the scheduling terms
policies are described in.

Users say "the game stutters" or "the UI is sluggish"; policies say "wakeup latency" and
"interactive". The embedding model does not bridge that gap on its own (measured: "game
stutters" is closer to a batch policy's "parallel builds" than to the interactive policy).
A short, general vocabulary appended to the query fixes this for the embedding and for the
keyword search alike. It names symptoms and actors only, never a policy; entries must be
phrased for a class of workloads, not for one test query.
"""

from __future__ import annotations

import re

# (pattern over the query, scheduling terms it implies)
EXPANSIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), terms) for pattern, terms in [
        (r"stutter|\blag|jank|choppy|hitch|freez|unresponsive|sluggish|glitch|crackl|"
         r"dropout|jitter|drops? frames|input delay|not snappy",
         "latency-sensitive interactive tasks, wakeup latency"),
        (r"\bgames?\b|gaming|desktop|\bui\b|\bgui\b|mouse|cursor|typing|scrolling|"
         r"compositor|browser tabs?",
         "interactive desktop tasks"),
        (r"\baudio\b|\bsound\b|music|voice call|video call",
         "audio threads that must not wait"),
        (r"straggler|slowest (job|task|test)|long tail|holds? up",
         "one long job among many short ones, makespan"),
        (r"battery|\bfans?\b|energy|power (bill|draw|use)|thermal",
         "save power, pack work on few CPUs"),
        (r"noisy neighbou?r|tenants?|\bpods?\b",
         "containers and cgroups sharing CPU fairly"),
        (r"periodic|real-?time|every \d+ ?ms|frame rate|\bfps\b",
         "deadlines of periodic tasks"),
    ])


def expand_query(query: str) -> str:
    """The query with the scheduling terms its symptoms imply appended (unchanged if none)."""
    extra = [terms for pattern, terms in EXPANSIONS if pattern.search(query)]
    return f"{query} ({'; '.join(extra)})" if extra else query
