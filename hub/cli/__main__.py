"""``python -m hub.cli``: the same as the ``beredt`` command."""

from hub.cli.main import main

raise SystemExit(main())
