"""`python -m keras_lr ...`: the `keras-lr` command line (which starts
faster as `keras-lr` or `python -m keras_lr_experiments`: importing
`keras_lr` imports TensorFlow)."""

from keras_lr_experiments.cli import main

raise SystemExit(main())
