"""``python -m contest.cli``: the same as the ``quiz`` command."""

from contest.cli.main import main

raise SystemExit(main())
