"""Event sources: what makes the daemon look again, each debounced into workload episodes.

Each source is an asyncio context manager usable alone (``async with S() as src: async for
ev in src``) that yields ``EpisodeEvent``s (``episodes.py``):

- ``cgroups.CgroupSource``: new and removed cgroups (inotify), i.e. container starts/stops
- ``docker_events.DockerEventSource``: a Docker-compatible API's event stream (docker SDK)
- ``proc_connector.ProcConnectorSource``: process trees from the netlink proc connector
- ``udev.UdevSource``: AC power and CPU hotplug (pyudev, kernel uevents)
- ``drift.DriftSource``: lasting shifts in tier-1 metrics (change-point detection)
"""
