"""A caption set of your own (``--captions FILE --images DIR``): retrieval per language under
both protocols. The file is Babel-ImageNet's retrieval format (:mod:`babelclip.data.captions`);
results carry the name given as ``--dataset`` (else the file's name)."""
from __future__ import annotations

from .registry import (
    RETRIEVAL,
    RETRIEVAL_PROTOCOLS,
    Benchmark,
    Inputs,
    Prepared,
    RetrievalTask,
    Source,
)


def _prepare(inputs: Inputs) -> Prepared:
    from ..captions import load_captions
    from ..images import image_folder

    if inputs.captions is None or inputs.images is None:
        raise ValueError("a caption set needs --captions (a caption JSON) and --images (its image folder)")
    name = inputs.name or inputs.captions.stem
    cap = load_captions(inputs.captions, name=name)
    return Prepared(name, image_folder(inputs.images, name=name), [RetrievalTask(cap, RETRIEVAL_PROTOCOLS)])


BENCHMARK = Benchmark(
    name="captions",
    title="A caption set of your own",
    tasks=(RETRIEVAL,),
    languages="those of the file",
    images="--images",
    licence="",
    citation="",
    sources=(Source("local", "--captions FILE --images DIR"),),
    prepare=_prepare,
    protocols=RETRIEVAL_PROTOCOLS,
    listed=False,
)
