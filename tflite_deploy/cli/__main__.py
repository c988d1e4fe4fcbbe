"""``python -m tflite_deploy.cli`` is the ``tflite-deploy`` command."""

from tflite_deploy.cli.app import main

main()
