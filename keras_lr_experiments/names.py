"""The names the command line accepts, in a module that imports nothing.

The parser validates `--dataset`, `--parts` and `--optimizer(s)` against
these before TensorFlow is imported; the modules that implement them
(`datasets`, `plan`, `optimizers`) take their names from here, so the two
cannot drift apart.
"""

DATASETS = ("digits", "stanford_dogs")
PARTS = ("lr", "optimizers", "fair", "choose")
OPTIMIZERS = ("sgd_annealing", "rmsprop", "adam", "adagrad", "adadelta")
