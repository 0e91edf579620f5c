"""Put on PYTHONPATH of the ``clip_benchmark eval`` processes only (bench/vs_cb_families.py).

CLIP_benchmark 1.6.2's ``accuracy`` ends in ``float()`` of a 1-element array, an error from
NumPy 2.3 on (OFFLINE.md: pin ``numpy<2.3`` in its environment). The project's venv has NumPy
2.4, so this replaces that one function by the same computation ending in ``.item()`` when the
module is first imported; nothing else changes, and the command line stays CLIP_benchmark's own.

With ``BENCH_CB_DATASETS=DIR`` (``--classes K`` runs) CLIP_benchmark's dataset builder reads its
bundled files (``babel_imagenet.json``, the NLLB prompts...) from DIR instead of its own
package folder: the same files, with the labels cut to each language's first K classes.
"""
import importlib.abc
import os
import sys

_ACCURACY = "clip_benchmark.metrics.zeroshot_classification"
_BUILDER = "clip_benchmark.datasets.builder"


def _accuracy(output, target, topk=(1,)):
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum().item() / n for k in topk]


def _patch_accuracy(module):
    module.accuracy = _accuracy


def _patch_builder(module):
    # build_dataset reads its files from os.path.dirname(__file__) at each call
    module.__file__ = os.path.join(os.environ["BENCH_CB_DATASETS"], "builder.py")


class _Patch(importlib.abc.MetaPathFinder):
    def __init__(self, patches):
        self.patches = dict(patches)

    def find_spec(self, name, path, target=None):
        patch = self.patches.pop(name, None)
        if patch is None:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # the module's own spec, without coming back here
        try:
            spec = importlib.util.find_spec(name)
        finally:
            if self.patches:
                sys.meta_path.insert(0, self)
        loader = spec.loader
        orig_exec = loader.exec_module

        def exec_module(module):
            orig_exec(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


_patches = {_ACCURACY: _patch_accuracy}
if os.environ.get("BENCH_CB_DATASETS"):
    _patches[_BUILDER] = _patch_builder
sys.meta_path.insert(0, _Patch(_patches))
