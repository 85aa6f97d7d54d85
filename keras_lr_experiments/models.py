"""The network for each data set: small enough for a CPU, the same for
every optimizer and learning rate of a comparison.

- digits: a multilayer perceptron, 64 inputs -> 64 ReLU -> 10 softmax
  (4,810 weights). About 5 s for 20 epochs on one CPU core.
- images (Stanford Dogs, image folders): a small CNN on the resized photos:
  rescale to [0, 1], three blocks of 3x3 convolution + ReLU + 2x2 max
  pooling (32, 64, 128 filters), global average pooling, dropout 0.3 and
  a softmax over the classes. No pretrained weights: the article trained
  its network itself, and a download must never be needed.
"""

import keras

MODELS = {"digits": "mlp", "images": "small_cnn"}


def build_model(kind: str, input_shape, num_classes: int) -> keras.Model:
    """A fresh, uncompiled model; call `keras.utils.set_random_seed` first.

    Args:
        kind: `"digits"` or `"images"` (a `Dataset.kind`).
        input_shape: A tuple, the shape of one example.
        num_classes: An int, the number of classes.
    """
    if kind == "digits":
        return keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(num_classes, activation="softmax"),
            ],
            name="mlp",
        )
    if kind == "images":
        layers = [keras.Input(input_shape), keras.layers.Rescaling(1 / 255)]
        for filters in (32, 64, 128):
            layers.append(
                keras.layers.Conv2D(
                    filters, 3, padding="same", activation="relu"
                )
            )
            layers.append(keras.layers.MaxPooling2D())
        layers += [
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
        return keras.Sequential(layers, name="small_cnn")
    raise ValueError(
        f"Argument `kind` must be one of {', '.join(MODELS)}. "
        f"Received: kind={kind!r}"
    )


def compile_model(model: keras.Model, optimizer) -> None:
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
