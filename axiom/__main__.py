"""``python -m axiom``: the ``axiom`` command line (see :mod:`axiom.cli`)."""

import sys

from axiom.cli import main

if __name__ == "__main__":
    sys.exit(main())
