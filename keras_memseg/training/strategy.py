"""`tf.distribute` strategy selection for the trainer (TensorFlow only)."""

import json
import os

import tensorflow as tf


def _tf_config():
    try:
        return json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error


def _num_workers(tf_config):
    cluster = tf_config.get("cluster", {})
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))


def make_strategy(kind="auto", tpu=""):
    """Returns a `tf.distribute.Strategy`.

    Args:
        kind: "auto" (TPU if `tpu` is set, else MultiWorkerMirrored if TF_CONFIG
            names more than one worker, else Mirrored if more than one GPU, else
            the default one-device strategy), or one of "default", "mirrored",
            "multi_worker", "tpu".
        tpu: TPU name or address for `TPUClusterResolver` ("local" on a TPU VM).

    Create it before any other TensorFlow op (MultiWorkerMirroredStrategy
    requires it).
    """
    if kind == "auto":
        if tpu:
            kind = "tpu"
        elif _num_workers(_tf_config()) > 1:
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {kind!r}")


def worker_info():
    """(task_type, task_id, is_chief) from TF_CONFIG; ("", 0, True) without it."""
    task = _tf_config().get("task", {})
    task_type, task_id = task.get("type", ""), int(task.get("index", 0))
    cluster = _tf_config().get("cluster", {})
    is_chief = task_type in ("", "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster
    )
    return task_type, task_id, is_chief
