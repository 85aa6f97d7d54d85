"""The rate controller's saved variables, and where the optimizer holds
them: a small layer on the optimizer, so that `model.save`,
`save_weights` and keras_lr's `BackupAndRestore` write and read it with
the optimizer's own variables."""

import keras

from keras_lr import _backend

# The optimizer attribute holding the saved variables. Keras' saving walks
# an optimizer's own (non-Keras) attributes, so the layer is saved at
# `optimizer/keras_lr_rate_controller` in `.keras` and `.weights.h5` files.
STATE_ATTRIBUTE = "keras_lr_rate_controller"


class ControllerVariables(keras.layers.Layer):
    """The controller's saved variables (today: the schedule multiplier).

    A layer only so that Keras' saving writes and reads it; it is never
    called. A file written before the controller existed loads into it
    without error (the multiplier stays as it is).
    """

    def __init__(self, multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = self.add_weight(
            shape=(),
            dtype=_backend.float64(),
            initializer=keras.initializers.Constant(float(multiplier)),
            trainable=False,
            aggregation="only_first_replica",
            name="multiplier",
        )

    def load_own_variables(self, store):
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)
