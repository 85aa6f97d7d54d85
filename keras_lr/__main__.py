"""`python -m keras_lr`: says where the `keras-lr` command line is.

The command line belongs to the reproduction app, `keras_lr_experiments`,
a package of its own that this library does not import or ship.
"""

import sys

print(
    "keras_lr is a library without a command line of its own. The "
    "keras-lr command (also python -m keras_lr_experiments) comes with "
    'the reproduction app: pip install -e ".[repro]" in the repository.',
    file=sys.stderr,
)
raise SystemExit(2)
