"""``python -m axiom.bench``: see :mod:`axiom.bench.cli`."""

from axiom.bench.cli import main

raise SystemExit(main())
