"""A vendor training backend as an outside nemo-rl plugin: it runs the `dtensor` backend's
workers but is its own class, found through the `nemo_rl.training_backends` entry point.

It implements `nemo_rl.protocols.TrainingBackend` and not the optional `InlineModuleSource`, so
a colocated run refits generation from `export_weights()` after every update. `calls` counts
what the trainer asked of it.
"""

from __future__ import annotations

from collections import Counter

from nemo_rl_dtensor import DTensorTrainingBackend


class VendorBackend:
    """Delegates every `TrainingBackend` method to a `DTensorTrainingBackend`, counting calls."""

    calls: Counter = Counter()

    def __init__(self) -> None:
        self._inner = DTensorTrainingBackend()

    def _call(self, method, *args, **kwargs):
        VendorBackend.calls[method] += 1
        return getattr(self._inner, method)(*args, **kwargs)

    def setup(self, config, cluster):
        return self._call("setup", config, cluster)

    def train_step(self, batch, loss_fn):
        return self._call("train_step", batch, loss_fn)

    def get_logprobs(self, batch, reference=False):
        return self._call("get_logprobs", batch, reference)

    def save_checkpoint(self, path):
        return self._call("save_checkpoint", path)

    def load_checkpoint(self, path):
        return self._call("load_checkpoint", path)

    def export_weights(self):
        return self._call("export_weights")

    def offload(self):
        return self._call("offload")

    def onload(self):
        return self._call("onload")

    def shutdown(self):
        return self._call("shutdown")
