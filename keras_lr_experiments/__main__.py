"""`python -m keras_lr_experiments ...`: the `keras-lr` command line."""

from keras_lr_experiments.cli import main

raise SystemExit(main())
