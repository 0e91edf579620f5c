"""babelclip's build tools: the code that produced files shipped inside the ``babelclip`` package.

A second top-level package of the same distribution, kept apart from the runtime the way
open_clip keeps ``open_clip_train`` apart from ``open_clip``: the tools import the runtime
(to build exactly what it will read), the runtime never imports the tools (a test reads every
import to check it), so inference carries none of the calibration, training or table code and
none of the tools' extra dependencies (scikit-image, clip-benchmark, a UCD, the reference data).

============================  ==========================================  ===================================
command                       writes (under ``src/babelclip/``)           module
============================  ==========================================  ===================================
``int8 --write``              ``models/babel_lite/image_int8.json``,      :mod:`.int8_calibration`,
                              ``image_int8_weights.safetensors``          :mod:`.gptq`
``train-head --out DIR``      a babel-lite directory (the shipped         :mod:`.lite_head`
                              ``head.safetensors`` is seed 0)
``unicode-tables UCD_DIR``    ``_data/unicode_scripts.tsv``,              :mod:`.unicode_tables`
                              ``_data/unihan_zh_variants.tsv``
``language-table [--check]``  ``_data/languages.tsv``                     :mod:`.language_table`
============================  ==========================================  ===================================

Run them as ``babelclip-tools COMMAND`` or ``python -m babelclip_tools COMMAND``.
"""
