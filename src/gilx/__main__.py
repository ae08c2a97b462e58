"""``python -m gilx``: the same as the ``gilx`` command."""

from gilx.cli import main

raise SystemExit(main())
