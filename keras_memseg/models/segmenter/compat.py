"""Configs of models saved by older keras_memseg versions, migrated on load."""

import warnings

# Constructor arguments of keras_memseg < 0.2 that are training policy now.
POLICY_ARGS = (
    "memory_momentum",
    "loss_weights",
    "weight_decay",
    "memory_loss",
    "memory_loss_start_step",
)


def migrate_config(cls, config):
    """A copy of a saved `config` that `cls` (a Segmenter) accepts today.

    keras_memseg < 0.2 named `ignore_class` `ignore_index` and kept the training
    policy in the constructor: the policy keys are dropped with a UserWarning
    (`compile()` sets the policy now).

    Example:
    >>> migrate_config(object, {"num_classes": 3, "ignore_index": 255})
    {'num_classes': 3, 'ignore_class': 255}
    """
    config = dict(config)
    if "ignore_index" in config:
        config["ignore_class"] = config.pop("ignore_index")
    dropped = [key for key in POLICY_ARGS if key in config]
    for key in dropped:
        config.pop(key)
    if dropped:
        warnings.warn(
            f"{cls.__name__}: ignoring {dropped} of a model saved by an older "
            "keras_memseg: training policy is set by compile() now",
            UserWarning,
            stacklevel=3,
        )
    return config
