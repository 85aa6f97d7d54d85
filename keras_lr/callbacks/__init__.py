"""Keras callbacks for `model.fit`."""
