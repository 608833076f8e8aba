"""The non-local attention block of MCIBI: the reference's `SelfAttentionBlock`
(`ssseg/modules/models/segmentors/base/selfattention.py` in SegmentationBLWX/sssegmentation)."""

import keras
from keras import ops

from keras_memseg.layers.conv_bn_act import ConvBNAct


@keras.saving.register_keras_serializable(package="keras_memseg")
class SelfAttentionBlock(keras.layers.Layer):
    """Pixel queries attend over a key/value feature map.

    `q = phi_q(query)` and `k = phi_k(key_value)` are two conv1x1-BN-act layers each,
    `v = phi_v(key_value)` one, `A = softmax(q k^T / sqrt(transform_channels))`,
    and the output is `phi_o(A v)` (conv1x1-BN-act to `out_channels`).

    Args:
        transform_channels: width of q, k and v (256 in the paper).
        out_channels: output width (512 in the paper).
        activation: `"relu"` or `"leaky_relu"`.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).

    Call: `block(query, key_value)` with `query` (B, h, w, Cq) and `key_value`
    (B, h', w', Ckv) returns (B, h, w, out_channels).

    Example:
    >>> import numpy as np
    >>> block = SelfAttentionBlock(transform_channels=4, out_channels=6)
    >>> x = np.random.rand(2, 3, 3, 5).astype("float32")
    >>> tuple(block(x, x).shape)
    (2, 3, 3, 6)
    """

    def __init__(
        self,
        transform_channels=256,
        out_channels=512,
        activation="relu",
        sync_batchnorm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.transform_channels = int(transform_channels)
        self.out_channels = int(out_channels)
        self.activation = activation
        self.sync_batchnorm = bool(sync_batchnorm)
        t = self.transform_channels
        kw = {
            "activation": activation,
            "sync_batchnorm": self.sync_batchnorm,
            "dtype": self.dtype_policy,
        }
        self.query_project = [ConvBNAct(t, 1, name=f"query_{i}", **kw) for i in range(2)]
        self.key_project = [ConvBNAct(t, 1, name=f"key_{i}", **kw) for i in range(2)]
        self.value_project = ConvBNAct(t, 1, name="value", **kw)
        self.out_project = ConvBNAct(self.out_channels, 1, name="out", **kw)

    def build(self, query_shape, key_value_shape=None):
        key_value_shape = query_shape if key_value_shape is None else key_value_shape
        t = self.transform_channels
        self.query_project[0].build(query_shape)
        self.query_project[1].build(tuple(query_shape[:-1]) + (t,))
        self.key_project[0].build(key_value_shape)
        self.key_project[1].build(tuple(key_value_shape[:-1]) + (t,))
        self.value_project.build(key_value_shape)
        self.out_project.build(tuple(query_shape[:-1]) + (t,))
        self.built = True

    def call(self, query, key_value, training=None):
        q = query
        for layer in self.query_project:
            q = layer(q, training=training)
        k = key_value
        for layer in self.key_project:
            k = layer(k, training=training)
        v = self.value_project(key_value, training=training)
        shape = ops.shape(q)
        b, h, w = shape[0], shape[1], shape[2]
        t = self.transform_channels
        q = ops.reshape(q, (b, -1, t))  # (B, hw, t)
        k = ops.reshape(k, (b, -1, t))  # (B, h'w', t)
        v = ops.reshape(v, (b, -1, t))
        scores = ops.einsum("bqt,bkt->bqk", q, k) * (t**-0.5)
        attn = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        context = ops.einsum("bqk,bkt->bqt", ops.cast(attn, v.dtype), v)
        context = ops.reshape(context, (b, h, w, t))
        return self.out_project(context, training=training)

    def compute_output_shape(self, query_shape, key_value_shape=None):
        return tuple(query_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "transform_channels": self.transform_channels,
                "out_channels": self.out_channels,
                "activation": self.activation,
                "sync_batchnorm": self.sync_batchnorm,
            }
        )
        return config
