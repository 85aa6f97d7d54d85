"""The reproduction's data loaders, against the raw data they wrap."""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits as sklearn_digits

from keras_lr_experiments import datasets
from keras_lr_experiments.errors import UsageError

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _sorted_rows(array):
    flat = np.asarray(array, dtype="float64").reshape(len(array), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_digits_is_a_fixed_stratified_split_of_the_raw_data():
    data = datasets.load_digits()
    raw = sklearn_digits()
    assert data.x_train.shape == (1347, 8, 8)
    assert data.x_val.shape == (450, 8, 8)
    assert data.x_train.dtype == np.float32
    assert data.num_classes == 10 and data.kind == "digits"
    # Train and validation together are exactly the raw images over 16.
    both = np.concatenate([data.x_train, data.x_val])
    np.testing.assert_array_equal(
        _sorted_rows(both), _sorted_rows(raw.images / 16.0)
    )
    # Stratified: each class's validation share is 25% of it, +-1 image.
    for label in range(10):
        total = int(np.sum(raw.target == label))
        in_val = int(np.sum(data.y_val == label))
        assert abs(in_val - total * 0.25) <= 1
    again = datasets.load_digits()
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_val, data.y_val)


def _image_folder(root, classes, per_class=5, size=(12, 10)):
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for k in range(per_class):
            color = COLORS[index % len(COLORS)]
            Image.new("RGB", size, color).save(folder / f"img{k}.png")
    return root


def test_image_folder_loads_labels_and_resized_pixels(tmp_path):
    root = _image_folder(tmp_path / "pets", ["a_cat", "b_dog", "c_fox"])
    data = datasets.load_dataset(data_dir=root, image_size=8)
    assert data.num_classes == 3 and data.kind == "images"
    assert data.name == "folder_pets"
    assert len(data.y_train) == 12 and len(data.y_val) == 3
    assert data.x_train.shape == (12, 8, 8, 3)
    assert data.x_train.dtype == np.uint8
    # Solid-colour images stay solid when resized; the colour gives the
    # class (subfolders sorted by name).
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        for image, label in zip(x, y):
            expected = np.broadcast_to(COLORS[label], image.shape)
            np.testing.assert_array_equal(image, expected)
    counts = np.bincount(np.concatenate([data.y_train, data.y_val]))
    np.testing.assert_array_equal(counts, [5, 5, 5])


def test_image_folder_needs_two_classes_with_images(tmp_path):
    root = _image_folder(tmp_path / "one", ["only"])
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(UsageError, match="at least 2 class subfolders") as e:
        datasets.load_dataset(data_dir=root)
    assert "classes with images: only" in str(e.value)


def test_missing_folder_and_unknown_name_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="--data-dir=.*not a folder"):
        datasets.load_dataset(data_dir=tmp_path / "nowhere")
    with pytest.raises(UsageError, match="--dataset='mnist'"):
        datasets.load_dataset("mnist")


def test_stanford_dogs_through_tfds_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        data = datasets.load_dataset("stanford_dogs", image_size=16)
    assert data.name == "stanford_dogs"
    assert data.num_classes == 120
    assert data.x_train.shape == (6, 16, 16, 3)
    assert data.x_val.shape == (6, 16, 16, 3)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32
    assert np.all((data.y_train >= 0) & (data.y_train < 120))
