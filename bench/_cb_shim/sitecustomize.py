"""Put on PYTHONPATH of the ``clip_benchmark eval`` processes only (bench/vs_cb_families.py).

CLIP_benchmark 1.6.2's ``accuracy`` ends in ``float()`` of a 1-element array, an error from
NumPy 2.3 on (OFFLINE.md: pin ``numpy<2.3`` in its environment). The project's venv has NumPy
2.4, so this replaces that one function by the same computation ending in ``.item()`` when the
module is first imported; nothing else changes, and the command line stays CLIP_benchmark's own.
"""
import importlib.abc
import sys

_TARGET = "clip_benchmark.metrics.zeroshot_classification"


def _accuracy(output, target, topk=(1,)):
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum().item() / n for k in topk]


class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = spec.loader
        orig_exec = loader.exec_module

        def exec_module(module):
            orig_exec(module)
            module.accuracy = _accuracy

        loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Patch())
