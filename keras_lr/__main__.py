"""`python -m keras_lr ...`: the `keras-lr` command line."""

import sys

from keras_lr.cli import main

sys.exit(main())
