"""Token ids of Babel-ImageNet prompts: the Rust tokenizer (``hf_ids``) against the word memo.

    python bench/hf_word_memo.py [--families xlmr,nllb] [--langs DE,JA,HI,EL]

For each bench family's tokenizer (``_families.py``: the real XLM-R vocabulary; NLLB's tokenizer
over it with the 202 language tokens), the prompts of the given languages (NLLB templates x
labels, ``../shared/reference``) are tokenised by ``hf_ids`` (transformers' settings on the Rust
backend) and by ``HFWordMemo`` (cold memo), for every argument combination the encoder uses;
prints CPU seconds of each and whether the ids are identical.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _families import model_dir
from _reference import BABEL_IMAGENET


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="xlmr,nllb")
    ap.add_argument("--langs", default="DE,JA,HI,EL")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"),
                    help="where vs_cb_families.py keeps the bench models (built here if missing)")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from babelclip.models.openclip.tokenizer import HFWordMemo, hf_ids

    labels = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((BABEL_IMAGENET / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    texts = [p.replace("{}", lab) for c in args.langs.split(",") for lab in labels[c][1] for p in prompts[c]]
    print(f"{len(texts)} prompts ({args.langs})")
    for family in args.families.split(","):
        hf = AutoTokenizer.from_pretrained(str(model_dir(Path(args.work), family)))
        memo = HFWordMemo.wrap(hf)
        for special, max_length in [(True, 77), (False, None)]:
            t = time.process_time()
            want = hf_ids(hf, texts, add_special_tokens=special, max_length=max_length)
            rust = time.process_time() - t
            memo.memo.clear()
            t = time.process_time()
            got = memo.ids(texts, add_special_tokens=special, max_length=max_length)
            fast = time.process_time() - t
            print(f"  {family:5s} special={special!s:5s} max_length={max_length!s:4s}  Rust {rust:5.2f} s  "
                  f"word memo {fast:5.2f} s ({rust / fast:.1f}x)  identical: {got == want}")


if __name__ == "__main__":
    main()
