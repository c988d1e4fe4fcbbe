"""tflite-deploy: from a trained Keras model to a measured TensorFlow Lite model.

The CLI (``tflite-deploy``) is a thin layer over this package. Importing it never imports
TensorFlow; modules that need TensorFlow import it lazily, when called.
"""

__version__ = "0.1.0"
