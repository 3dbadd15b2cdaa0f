"""Ask polkit whether a D-Bus caller may perform one of schedcpd's actions.

The third way to be allowed a mutating method, after root and the `schedcp` group: the
actions are in ``dbus/org.schedcp.policy``, and a site's rules (``/etc/polkit-1/rules.d``)
can grant them. A caller that set ALLOW_INTERACTIVE_AUTHORIZATION on its message may be
asked for a password by its session's polkit agent; any other is answered at once.
Where no polkit runs on the bus, the answer is no.
"""

from __future__ import annotations

import asyncio
import logging

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

log = logging.getLogger("schedcpd.polkit")

AUTHORITY = ("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
             "org.freedesktop.PolicyKit1.Authority")
ALLOW_USER_INTERACTION = 0x1  # CheckAuthorizationFlags
# An interactive check waits for a person at a password prompt; polkit itself gives up
# on an unanswered agent, this only bounds a polkitd that stopped answering.
INTERACTIVE_TIMEOUT_S = 300.0
TIMEOUT_S = 25.0


async def is_authorized(bus: MessageBus, sender: str, action_id: str,
                        interactive: bool) -> bool:
    """polkit's verdict on ``sender`` (a unique bus name) performing ``action_id``."""
    dest, path, iface = AUTHORITY
    subject = ("system-bus-name", {"name": Variant("s", sender)})
    msg = Message(destination=dest, path=path, interface=iface, member="CheckAuthorization",
                  signature="(sa{sv})sa{ss}us",
                  body=[subject, action_id, {}, ALLOW_USER_INTERACTION if interactive else 0,
                        ""])
    try:
        async with asyncio.timeout(INTERACTIVE_TIMEOUT_S if interactive else TIMEOUT_S):
            reply = await bus.call(msg)
    except TimeoutError:
        log.warning("polkit did not answer for %s (%s): refused", action_id, sender)
        return False
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        # No polkit on this bus (ServiceUnknown), or it refused the question itself.
        err = reply.error_name if reply is not None else "no reply"
        log.debug("polkit check for %s (%s) failed: %s", action_id, sender, err)
        return False
    authorized, _challenge, _details = reply.body[0]
    return bool(authorized)

