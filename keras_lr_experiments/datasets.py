"""The data sets of the reproduction, loaded into memory as NumPy arrays.

- `digits` (default): scikit-learn's 1,797 handwritten digits, 8x8 grey
  pixels scaled to [0, 1], 10 classes; shipped with scikit-learn, so it
  needs no download. A fixed stratified 75/25 split (1,347 train / 450
  validation), the same for every seed.
- `stanford_dogs`: the article's 120 breeds through tensorflow-datasets
  (12,000 train / 8,580 test, the test split used for validation); photos
  resized to `image_size` squared, kept as uint8 (the model rescales).
- an image folder (`--data-dir`): one subfolder per class, as Stanford Dogs
  and similar sets unpack; a fixed 80/20 split.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np

from keras_lr_experiments.errors import UsageError
from keras_lr_experiments.names import DATASETS

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# The split must not move with the training seed: seeds vary the weights
# and the batch order only.
SPLIT_SEED = 1234


@dataclasses.dataclass
class Dataset:
    """Train and validation arrays plus what the model needs to know.

    Attributes:
        name: A string naming the data (used in folder names).
        x_train, y_train, x_val, y_val: NumPy arrays; labels are int32.
        num_classes: An int.
        kind: `"digits"` (8x8 floats) or `"images"` (uint8 RGB photos).
        description: A one-line string for the results.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    kind: str
    description: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def summary(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "train_examples": int(len(self.y_train)),
            "validation_examples": int(len(self.y_val)),
            "input_shape": list(self.input_shape),
            "description": self.description,
        }


def load_dataset(
    name: str = "digits",
    data_dir: str | os.PathLike | None = None,
    image_size: int = 64,
) -> Dataset:
    """Loads a data set by name, or the image folder `data_dir` if given.

    Raises:
        UsageError: for an unknown name, a missing folder or a folder with
            fewer than two classes.
    """
    if data_dir is not None:
        return load_image_folder(data_dir, image_size=image_size)
    if name == "digits":
        return load_digits()
    if name == "stanford_dogs":
        return load_stanford_dogs(image_size=image_size)
    raise UsageError(
        f"Argument `--dataset` must be one of {', '.join(DATASETS)}. "
        f"Received: --dataset={name!r}"
    )


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    # Pixel values are counts 0..16.
    x = (bunch.images / 16.0).astype("float32")
    y = bunch.target.astype("int32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=SPLIT_SEED
    )
    return Dataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        num_classes=10,
        kind="digits",
        description=(
            "scikit-learn handwritten digits, 8x8, 10 classes, "
            f"{len(y_train)} train / {len(y_val)} validation"
        ),
    )


def _to_arrays(dataset, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Materializes a `tf.data` set of (image, label) pairs, resized."""
    import tensorflow as tf

    def resize(image, label):
        image = tf.image.resize(image, (image_size, image_size))
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, tf.cast(label, tf.int32)

    images, labels = [], []
    batches = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    for image_batch, label_batch in batches.batch(256).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        shape = (0, image_size, image_size, 3)
        return np.zeros(shape, "uint8"), np.zeros((0,), "int32")
    return np.concatenate(images), np.concatenate(labels)


def load_stanford_dogs(image_size: int = 64) -> Dataset:
    """The article's data: Stanford Dogs through tensorflow-datasets."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UsageError(
            "--dataset=stanford_dogs needs tensorflow-datasets: "
            'pip install -e ".[dogs]"'
        ) from None
    (train, test), info = tfds.load(
        "stanford_dogs",
        split=["train", "test"],
        as_supervised=True,
        with_info=True,
    )
    x_train, y_train = _to_arrays(train, image_size)
    x_val, y_val = _to_arrays(test, image_size)
    num_classes = int(info.features["label"].num_classes)
    return Dataset(
        name="stanford_dogs",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        num_classes=num_classes,
        kind="images",
        description=(
            f"Stanford Dogs (tensorflow-datasets), {num_classes} breeds, "
            f"resized to {image_size}x{image_size}, {len(y_train)} train / "
            f"{len(y_val)} test used for validation"
        ),
    )


def class_folders(data_dir: Path) -> list[Path]:
    """The subfolders of `data_dir` that hold at least one image."""
    folders = []
    for entry in sorted(data_dir.iterdir()):
        if entry.is_dir() and any(
            item.suffix.lower() in IMAGE_SUFFIXES
            for item in entry.rglob("*")
            if item.is_file()
        ):
            folders.append(entry)
    return folders


def check_image_folder(data_dir: str | os.PathLike) -> list[Path]:
    """The class subfolders of `data_dir`, checked without TensorFlow.

    Raises:
        UsageError: if `data_dir` is not a folder or holds fewer than two
            subfolders with images.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise UsageError(
            "Argument `--data-dir` must be an existing folder with one "
            "subfolder of images per class. Received: "
            f"--data-dir={str(folder)!r} (not a folder)"
        )
    classes = class_folders(folder)
    if len(classes) < 2:
        found = ", ".join(c.name for c in classes) or "none"
        raise UsageError(
            "Argument `--data-dir` must hold at least 2 class subfolders "
            f"with images. Received: --data-dir={str(folder)!r} "
            f"(classes with images: {found})"
        )
    return classes


def load_image_folder(
    data_dir: str | os.PathLike, image_size: int = 64
) -> Dataset:
    """A folder with one subfolder of images per class, split 80/20."""
    folder = Path(data_dir)
    classes = check_image_folder(folder)
    import keras

    train, val = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred",
        label_mode="int",
        class_names=[c.name for c in classes],
        image_size=(image_size, image_size),
        batch_size=None,
        shuffle=True,
        seed=SPLIT_SEED,
        validation_split=0.2,
        subset="both",
        verbose=False,
    )
    x_train, y_train = _to_arrays(train, image_size)
    x_val, y_val = _to_arrays(val, image_size)
    return Dataset(
        name=f"folder_{folder.resolve().name}",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        num_classes=len(classes),
        kind="images",
        description=(
            f"image folder {folder.resolve().name}, {len(classes)} classes, "
            f"resized to {image_size}x{image_size}, {len(y_train)} train / "
            f"{len(y_val)} validation"
        ),
    )
