"""``python -m axiom.bench``: see :mod:`axiom.bench.cli`.

``python -m axiom.bench train``: :mod:`axiom.bench.train`; ``python -m axiom.bench verify``:
:mod:`axiom.bench.verify`; ``python -m axiom.bench serve``: :mod:`axiom.bench.serve`.
"""

import sys

if sys.argv[1:2] == ["train"]:
    from axiom.bench.train import main as train_main

    raise SystemExit(train_main(sys.argv[2:]))
if sys.argv[1:2] == ["verify"]:
    from axiom.bench.verify import main as verify_main

    raise SystemExit(verify_main(sys.argv[2:]))
if sys.argv[1:2] == ["serve"]:
    from axiom.bench.serve import main as serve_main

    raise SystemExit(serve_main(sys.argv[2:]))

from axiom.bench.cli import main

raise SystemExit(main())
