"""Hooks around Keras 3.15 bugs under TensorFlow's MultiWorkerMirroredStrategy.

tests/training/test_trainer.py runs two local workers through both:
1. `fit()` first reduces a whole (x, y) batch with `strategy.reduce` to build the
   model symbolically, which the collective strategy rejects ("Attempt to convert a
   value (PerReplica...) to a Tensor"). A built model with a built optimizer has
   nothing to build, so that step is skipped then (`_maybe_symbolic_build`).
2. It reduces the step's logs with `strategy.reduce("MEAN", v, axis=0)`, which
   rejects scalars: `distribute.reducible_logs` gives them a leading axis (applied
   by `Segmenter.train_step`).
"""


class MultiWorkerWorkarounds:
    """Mixin of `Segmenter`: hook 1 above."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built and self.optimizer is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
