"""tf.distribute glue: the only TensorFlow-specific code the layers reach."""

import tensorflow as tf

_REDUCE_OPS = {"sum": tf.distribute.ReduceOp.SUM, "mean": tf.distribute.ReduceOp.MEAN}


def all_reduce(x, op):
    """All-reduces `x` in a replica context; identity elsewhere.

    Under a default (no-op) strategy or in a cross-replica context there is
    nothing to reduce, so `x` is returned unchanged.
    """
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return x
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_reduce(_REDUCE_OPS[op], x)


def num_replicas_in_sync():
    if not tf.distribute.has_strategy():
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync


def is_multi_worker():
    """True inside a MultiWorkerMirroredStrategy (collective all-reduce) scope or step."""
    return tf.distribute.has_strategy() and isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    )


def reducible_logs(logs):
    """`logs` with a leading axis of 1 under MultiWorkerMirroredStrategy.

    Keras 3.15 reduces the logs of a multi-worker step with
    `strategy.reduce("MEAN", value, axis=0)`, which rejects scalars.
    """
    if not is_multi_worker():
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}
