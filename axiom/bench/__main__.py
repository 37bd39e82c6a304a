"""``python -m axiom.bench``: see :mod:`axiom.bench.cli`; ``python -m axiom.bench train``: :mod:`axiom.bench.train`."""

import sys

if sys.argv[1:2] == ["train"]:
    from axiom.bench.train import main as train_main

    raise SystemExit(train_main(sys.argv[2:]))

from axiom.bench.cli import main

raise SystemExit(main())
