"""A tour of eventsock in one process: a server and two clients on 127.0.0.1.

Shows an event, an ack (a call that returns a value), a room broadcast and a binary
payload, then disconnects and shuts down. Run it with ``python examples/demo.py``, or
``eventsock demo``: the code lives in ``eventsock/_demo.py`` so that the installed
command line can run it too.
"""

from __future__ import annotations

import asyncio

from eventsock._demo import main

if __name__ == "__main__":
    asyncio.run(main())
