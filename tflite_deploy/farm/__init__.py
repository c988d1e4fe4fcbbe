"""The device farm: a plan of models × recipes × targets × delegates, run as Dask tasks.

- :mod:`~tflite_deploy.farm.plan`: the plan file (YAML) -> a frozen, validated :class:`Plan`.
- :mod:`~tflite_deploy.farm.cells`: the plan expanded into convert / eval / bench cells with stable ids.
- :mod:`~tflite_deploy.farm.scheduler`: cells run on a Dask cluster (embedded or a lab's), results
  streamed to a callback as they complete, none lost when a worker dies.
- :mod:`~tflite_deploy.farm.security`: TLS between scheduler, workers and client.
- :mod:`~tflite_deploy.farm.leases`: one farm run per phone at a time.

Nothing here imports TensorFlow: conversion runs in the cell executor, in a child process.
"""
