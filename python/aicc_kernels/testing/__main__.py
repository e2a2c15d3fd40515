"""python -m aicc_kernels.testing --backend NAME: the conformance runner (conformance.py)."""

import sys

from .conformance import main

sys.exit(main())
