"""Notifies a user on every connection they have, from a process that is not a server:
a worker, a cron job, a web application on another framework.

``python examples/notifications/notify.py USER TITLE [BODY] [--redis URL] [--prefix P]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from redis.exceptions import RedisError

from eventsock.backends.redis import RedisEmitter


# --8<-- [start:notify]
async def notify(redis_url: str, prefix: str, user: str, title: str, body: str) -> int:
    """Send a notification to ``user``'s room; returns how many server processes got it."""
    async with RedisEmitter(redis_url, prefix=prefix) as emitter:
        notification = {"title": title, "body": body}
        return await emitter.emit("notification", notification, to=f"user:{user}")
        # --8<-- [end:notify]


def main() -> int:
    parser = argparse.ArgumentParser(description="send a notification to a user")
    parser.add_argument("user")
    parser.add_argument("title")
    parser.add_argument("body", nargs="?", default="")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis URL")
    parser.add_argument("--prefix", default="notifications", help="the cluster's channel prefix")
    args = parser.parse_args()
    try:
        reached = asyncio.run(notify(args.redis, args.prefix, args.user, args.title, args.body))
    except (RedisError, OSError) as exc:
        print(f"cannot reach Redis at {args.redis}: {exc}", file=sys.stderr)
        return 1
    if reached == 0:
        # Nothing keeps it: pub/sub delivers only to the servers listening right now.
        print(f"no server is listening on prefix {args.prefix!r}: nobody was notified")
        return 1
    print(f"notified {args.user} through {reached} server process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
