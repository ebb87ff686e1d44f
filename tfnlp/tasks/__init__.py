"""Task modules: preprocessing, tf.data, metrics and serving signature for one kind of task."""
