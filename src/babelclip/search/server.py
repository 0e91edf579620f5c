"""``babelclip serve``: a small web page and JSON API over a :class:`~.query.Searcher`.

Starlette through FastAPI (routing, query validation) and uvicorn (the server), both maintained
and standard; the page is one static HTML file with a few lines of plain JavaScript.

Routes:

* ``GET /`` — the page: search box, language picker, result grid; clicking an image searches
  for similar ones;
* ``GET /api/languages`` — ``[{tag, name}]`` the model handles (``declared``: whether the model
  declares them; when not, every language of the table), and the default;
* ``GET /api/search?q=&lang=&k=`` — ``{hits: [{folder, rel, score, thumb}]}``;
* ``GET /api/similar?folder=&rel=&k=`` — images like an indexed one;
* ``GET /thumb/{folder}/{rel}`` — a thumbnail of an indexed file.

Files are named by the position of their indexed folder and their path relative to it; a
thumbnail is served only when that path is a row of the folder's file table *and* its real
location (links resolved) lies inside the folder (:meth:`Searcher.resolve`), so ``../``, its
URL-encoded forms and links pointing out all get 404. Binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import io
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..languages import Language, all_languages, get_language
from ..models.base import capabilities

if TYPE_CHECKING:  # pragma: no cover
    from .query import Hit, Searcher

log = logging.getLogger(__name__)

THUMB_PX = 256


def model_languages(encoder: Any) -> tuple[list[Language], bool]:
    """``(languages, declared)``: the languages offered in the picker, by name — those the model
    declares (``EncoderCapabilities.languages``: the family knows, from its tokenizer and
    training data), or every language of the table when it declares none (``declared`` False:
    the page says that any language may be tried, without a promise)."""
    declared = capabilities(encoder).languages
    langs = [get_language(c) for c in declared] if declared is not None else list(all_languages())
    return sorted(dict.fromkeys(langs), key=lambda lang: lang.name), declared is not None


def _thumbnail(path: str) -> bytes:
    from ..data.images import ImageItem, load_image

    im = load_image(ImageItem("thumb", path))
    im.thumbnail((THUMB_PX, THUMB_PX))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def create_app(searcher: Searcher, default_lang: str = "en"):
    """The FastAPI application over ``searcher``."""
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse, Response

    from ..languages import UnknownLanguageError

    app = FastAPI(title="babelclip search", docs_url=None, redoc_url=None)
    folders = list(searcher.folders)
    langs, declared = model_languages(searcher.encoder)
    default = get_language(default_lang).tag
    if default not in {lang.tag for lang in langs}:
        langs = sorted([*langs, get_language(default)], key=lambda lang: lang.name)
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    def hit_json(h: Hit) -> dict[str, Any]:
        i = folders.index(h.folder)
        return {"folder": i, "rel": h.rel, "score": h.score, "thumb": f"/thumb/{i}/{h.rel}"}

    def folder_path(i: int | str) -> str:
        """The indexed folder at position ``i``; anything else is a 404 (never a 422 that names it)."""
        if not str(i).isdigit() or int(i) >= len(folders):
            raise HTTPException(404, "no such indexed folder")
        return folders[int(i)]

    @app.get("/", response_class=HTMLResponse)
    def index_page() -> str:
        return page

    @app.get("/api/languages")
    def languages() -> dict[str, Any]:
        return {"default": default, "model": searcher.model_name, "declared": declared,
                "languages": [{"tag": lang.tag, "name": lang.name} for lang in langs]}

    @app.get("/api/search")
    def search(q: str = Query(..., min_length=1), lang: str = default, k: int = Query(20, ge=1, le=500)):
        try:
            hits = searcher.text(q, lang, k)
        except UnknownLanguageError as e:
            raise HTTPException(400, str(e)) from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        return {"query": q, "lang": get_language(lang).tag, "hits": [hit_json(h) for h in hits]}

    @app.get("/api/similar")
    def similar(folder: str, rel: str, k: int = Query(20, ge=1, le=500)):
        try:
            hits = searcher.similar(folder_path(folder), rel, k)
        except PermissionError:
            raise HTTPException(404, "not an indexed image") from None
        return {"folder": int(folder), "rel": rel, "hits": [hit_json(h) for h in hits]}

    @app.get("/thumb/{folder}/{rel:path}")
    def thumb(folder: str, rel: str):
        try:
            path = searcher.resolve(folder_path(folder), rel)
        except PermissionError:
            raise HTTPException(404, "not an indexed image") from None
        try:
            data = _thumbnail(str(path))
        except Exception:  # noqa: BLE001 - undecodable now: the page shows a broken image, not a 500
            raise HTTPException(404, "image cannot be decoded") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return app


def serve(searcher: Searcher, host: str = "127.0.0.1", port: int = 8000, default_lang: str = "en") -> None:
    """Run the server until interrupted."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: the indexed images are visible to every machine that can reach it", host)
    uvicorn.run(create_app(searcher, default_lang), host=host, port=port, log_level="warning")
