"""sched-agent: observation, planning, execution and learning over one episode record.

``loop.Agent`` runs an episode against a ``plane.ControlPlane`` (the daemon); a backend
(``builtin.BuiltinBackend``, or the LLM backends in ``llm/``) makes the roles' decisions.
"""
