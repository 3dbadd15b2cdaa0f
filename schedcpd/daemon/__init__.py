"""`schedcpd`, the daemon: configuration, the episode and proposal state, signals."""
