"""Deployment: targets (this kernel, the lab guest), the canary and its circuit breaker."""
