"""``python -m eventsock``: the command line."""

from .cli import main

raise SystemExit(main())
