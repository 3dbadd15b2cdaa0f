"""`schedcpctl bench SUITE`: the SchedCP paper's experiments, reproduced in the lab.

For each workload of a suite (``suites``): an optimization episode by the daemon and its
agent (``episodes``: the agent's first choice and its choice after the iterations, and what
the control plane spent), then EEVDF and those choices measured again, interleaved, in one
lab boot (``measure``), and the result as JSON, a Markdown table and PNG charts
(``report``, pure: no lab, no daemon). ``run`` joins them; ``cli`` is the command.
"""
