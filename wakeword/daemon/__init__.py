"""``wakeword serve``: the engine as a long-running background listener.

A pipeline thread feeds a (recovering) audio source through the engine and
fans each event out to non-blocking sinks: stdout, command hooks and Python
callbacks (:mod:`.hooks`), the JSON-lines event socket (:mod:`.events_socket`).
The sockets (events, Wyoming, control) share one asyncio loop on one named
thread (:mod:`.net`). Every address is loopback or a Unix socket unless the
user passes ``--allow-remote``.
"""
