"""A tiny deterministic encoder for search tests: an image is its mean colour, a text the colour
it names (in English, German or Japanese), so which image a query must find first is known
without any model. Counts images encoded, so tests can assert incremental indexing."""
from __future__ import annotations

import numpy as np

from babelclip.languages import get_language
from babelclip.models.base import Capabilities, Fingerprint, l2_normalize

COLOURS = {"red": (255, 0, 0), "green": (0, 160, 0), "blue": (0, 0, 255), "yellow": (255, 220, 0)}
WORDS = {
    "en": {"red": "red", "green": "green", "blue": "blue", "yellow": "yellow"},
    "de": {"rot": "red", "grün": "green", "blau": "blue", "gelb": "yellow"},
    "ja": {"赤": "red", "緑": "green", "青": "blue", "黄色": "yellow"},
}


class ColourEncoder(Capabilities):
    dim = 4
    text_context = 8  # tokens: words + 2, so a long query is "truncated" (declared: EncoderCapabilities)
    languages = ("en", "de", "ja")  # the languages of WORDS (declared: EncoderCapabilities)

    def __init__(self, name: str = "colour", weights: str = "colour-v1"):
        self.fingerprint = Fingerprint("test", name, weights, "mean-rgb")
        self.images_encoded = 0
        self.fail_after: int | None = None  # raise after this many images (an interrupted run)

    def encode_images(self, images, batch_size: int = 64) -> np.ndarray:
        out = []
        for im in images:
            if self.fail_after is not None and self.images_encoded >= self.fail_after:
                raise KeyboardInterrupt("simulated interruption")
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0) / 255.0
            out.append([*rgb, 0.05])
            self.images_encoded += 1
        return l2_normalize(np.asarray(out, np.float32).reshape(-1, 4))

    def encode_texts(self, texts, lang: str, batch_size: int = 256) -> np.ndarray:
        words = WORDS.get(get_language(lang).tag, {})
        out = []
        for t in texts:
            colour = next((c for w, c in words.items() if w in t.lower()), None)
            rgb = np.asarray(COLOURS[colour], np.float32) / 255.0 if colour else np.zeros(3, np.float32)
            out.append([*rgb, 0.05])
        return l2_normalize(np.asarray(out, np.float32))

    def count_tokens(self, text: str, lang: str) -> int:
        return len(["<s>", *text.split()[: self.text_context - 2], "</s>"])


def write_images(folder, names_colours: dict[str, str]) -> None:
    """Solid-colour PNGs (with a little noise so every file's content differs)."""
    from PIL import Image

    rng = np.random.default_rng(len(names_colours))
    for name, colour in names_colours.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        px = np.clip(np.asarray(COLOURS[colour], np.float32) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
        Image.fromarray(px.astype(np.uint8)).save(path)
