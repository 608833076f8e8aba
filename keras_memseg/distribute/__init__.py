"""Cross-replica reductions, dispatched on the Keras backend.

Layers call these functions and stay backend-agnostic:

- TensorFlow: inside a `tf.distribute` replica context (MirroredStrategy,
  MultiWorkerMirroredStrategy, TPUStrategy) they all-reduce across replicas;
  everywhere else they are the identity. The TensorFlow code lives in
  `keras_memseg.distribute.tf_replica`.
- JAX: under `keras.distribution.DataParallel` a jitted step sees the global
  (sharded) batch, so reductions over the batch are already global: identity.
- PyTorch: single process: identity.
"""

import keras


def _tf():
    from keras_memseg.distribute import tf_replica

    return tf_replica


def cross_replica_sum(x):
    """Sums `x` over replicas (identity outside a TF replica context)."""
    if keras.backend.backend() == "tensorflow":
        return _tf().all_reduce(x, "sum")
    return x


def cross_replica_mean(x):
    """Averages `x` over replicas (identity outside a TF replica context)."""
    if keras.backend.backend() == "tensorflow":
        return _tf().all_reduce(x, "mean")
    return x


def num_replicas_in_sync():
    """The number of synchronous replicas the current step runs on."""
    if keras.backend.backend() == "tensorflow":
        return _tf().num_replicas_in_sync()
    return 1


def is_multi_worker():
    """True under TensorFlow's MultiWorkerMirroredStrategy."""
    return keras.backend.backend() == "tensorflow" and _tf().is_multi_worker()


def reducible_logs(logs):
    """A TF train step's logs, shaped so that Keras can reduce them on every strategy."""
    if keras.backend.backend() != "tensorflow":
        return logs
    return _tf().reducible_logs(logs)
