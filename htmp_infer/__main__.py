"""``python -m htmp_infer``: the command line."""

import sys

from htmp_infer.cli.app import main

sys.exit(main())
