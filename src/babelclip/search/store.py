"""The file table of search indexes: which image files lie under which indexed folder, by content.

One SQLite database (``<cache root>/search/files.sqlite``) for every folder ever indexed:

* ``roots(id, path, generation)`` — the indexed folders (absolute, resolved), each with a counter
  raised whenever its rows change or new vectors of its files are encoded (what a vector
  snapshot, :mod:`.snapshot`, is checked against);
* ``files(root, rel, size, mtime_ns, sha256)`` — one row per image file under a root;
* ``models(key, name, dim, family)`` — the models the folders were indexed with.

Vectors are *not* stored here: they live in the evaluation's embedding cache
(:class:`~babelclip.eval.cache.EmbeddingCache`, one file per model fingerprint) under the key
``sha256:<hex>`` — the same key ``eval`` uses with ``content_hash=True`` — so a moved, renamed or
copied file finds its vector again, and ``eval`` and ``search`` never encode an image twice.

A scan (:func:`FileTable.scan`) compares the folder with its rows: a file whose size and mtime
match its row is unchanged without being read; any other file is hashed (SHA-256 of its bytes)
and its row replaced; rows of files no longer there are deleted. Every change is committed
before any encoding starts, so an interrupted index finds the table current and encodes only
what the cache still lacks.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cache_dir import search_dir
from ..data.images import IMAGE_EXTENSIONS  # the extensions eval's image folders read

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
                                  generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS files (root INTEGER NOT NULL, rel TEXT NOT NULL, size INTEGER NOT NULL,
                                  mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (root, rel));
CREATE INDEX IF NOT EXISTS files_sha ON files (sha256);
CREATE TABLE IF NOT EXISTS models (key TEXT PRIMARY KEY, name TEXT NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS indexed (root INTEGER NOT NULL, model TEXT NOT NULL, PRIMARY KEY (root, model));
"""



def content_key(sha256: str) -> str:
    """The embedding-cache key of a file with this content (``ImageItem.identity(True)``'s form)."""
    return f"sha256:{sha256}"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class ScanStats:
    """What a scan found: files unchanged (size+mtime), new, changed, deleted, unreadable."""

    unchanged: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unreadable: int = 0
    outside: int = 0  # links resolving outside the folder: never indexed (never served)


@dataclass(frozen=True)
class FileRow:
    root: str  # absolute folder
    rel: str  # POSIX path relative to the folder
    sha256: str

    @property
    def path(self) -> str:
        return os.path.join(self.root, *self.rel.split("/"))


def walk_images(root: Path) -> Iterator[tuple[str, Path]]:
    """``(relative POSIX path, path)`` of every image file under ``root``, sorted; hidden files
    and folders are left out, linked folders are not followed (:meth:`FileTable.scan` also drops
    linked files whose target lies outside: the server must never reach them)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            p = Path(dirpath) / name
            yield p.relative_to(root).as_posix(), p


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path``'s real location (links resolved) lies inside ``root``'s."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


class FileTable:
    """The file table (module docstring); ``store_dir=None`` keeps it under the cache root."""

    def __init__(self, store_dir: str | os.PathLike | None = None, timeout: float = 60.0):
        d = Path(store_dir) if store_dir is not None else search_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.path = d / "files.sqlite"
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        if "generation" not in {row[1] for row in self._db.execute("PRAGMA table_info(roots)")}:
            self._db.execute("ALTER TABLE roots ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")  # older tables

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FileTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- roots and models --------------------------------------------------------------------
    def roots(self) -> list[str]:
        return [r for (r,) in self._db.execute("SELECT path FROM roots ORDER BY path")]

    def root_id(self, root: str | os.PathLike, create: bool = False) -> int | None:
        path = str(Path(root).resolve())
        row = self._db.execute("SELECT id FROM roots WHERE path = ?", (path,)).fetchone()
        if row is None and create:
            return self._db.execute("INSERT INTO roots (path) VALUES (?)", (path,)).lastrowid
        return None if row is None else int(row[0])

    def generations(self, roots: Iterable[str]) -> dict[str, int]:
        """The change counter of each given root (resolved paths; 0 for one never indexed)."""
        paths = [str(Path(r).resolve()) for r in roots]
        q = f"SELECT path, generation FROM roots WHERE path IN ({','.join('?' * len(paths))})"
        known = dict(self._db.execute(q, paths).fetchall()) if paths else {}
        return {p: int(known.get(p, 0)) for p in paths}

    def touch(self, root_id: int) -> None:
        """Raise ``root_id``'s change counter: vector snapshots of it are stale from now on."""
        self._db.execute("UPDATE roots SET generation = generation + 1 WHERE id = ?", (root_id,))

    def note_model(self, root_id: int, key: str, name: str, dim: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?)", (key, name, dim))
        self._db.execute("INSERT OR IGNORE INTO indexed VALUES (?, ?)", (root_id, key))

    def recorded_model(self, root_id: int, name: str) -> tuple[str, int] | None:
        """``(fingerprint key, dim)`` the folder was last indexed with under model name ``name``."""
        row = self._db.execute("SELECT m.key, m.dim FROM models m JOIN indexed i ON i.model = m.key "
                               "WHERE i.root = ? AND m.name = ? ORDER BY m.rowid DESC", (root_id, name)).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def forget_model(self, name: str, keep_key: str) -> None:
        """Drop the records of ``name`` under any fingerprint but ``keep_key`` (its weights changed)."""
        stale = [k for (k,) in self._db.execute("SELECT key FROM models WHERE name = ? AND key != ?", (name, keep_key))]
        for k in stale:
            self._db.execute("DELETE FROM indexed WHERE model = ?", (k,))
            self._db.execute("DELETE FROM models WHERE key = ?", (k,))

    def models_of(self, roots: Iterable[str]) -> list[tuple[str, str, int]]:
        """``(fingerprint key, model name, dim)`` of the models every given root was indexed with."""
        ids = [self.root_id(r) for r in roots]
        if not ids or None in ids:
            return []
        sets = [{k for (k,) in self._db.execute("SELECT model FROM indexed WHERE root = ?", (i,))} for i in ids]
        common = set.intersection(*sets)
        rows = self._db.execute("SELECT key, name, dim FROM models").fetchall()
        return [(k, n, int(d)) for k, n, d in rows if k in common]

    # -- files -------------------------------------------------------------------------------
    def files(self, roots: Iterable[str] | None = None) -> list[FileRow]:
        """Every file row under ``roots`` (all roots when ``None``), sorted by folder and path."""
        q = "SELECT r.path, f.rel, f.sha256 FROM files f JOIN roots r ON r.id = f.root"
        rows = [FileRow(*row) for row in self._db.execute(q + " ORDER BY r.path, f.rel")]
        if roots is None:
            return rows
        wanted = {str(Path(r).resolve()) for r in roots}
        return [r for r in rows if r.root in wanted]

    def rows_with(self, sha256s: Iterable[str], roots: Iterable[str]) -> list[FileRow]:
        """The rows under ``roots`` whose content is one of ``sha256s``, sorted by folder and path."""
        shas, wanted = list(dict.fromkeys(sha256s)), {str(Path(r).resolve()) for r in roots}
        if not shas:
            return []
        q = ("SELECT r.path, f.rel, f.sha256 FROM files f JOIN roots r ON r.id = f.root "
             f"WHERE f.sha256 IN ({','.join('?' * len(shas))}) ORDER BY r.path, f.rel")
        return [FileRow(*row) for row in self._db.execute(q, shas) if row[0] in wanted]

    def has_file(self, root: str, rel: str) -> bool:
        """Whether ``rel`` is a row of the indexed folder ``root``."""
        q = "SELECT 1 FROM files f JOIN roots r ON r.id = f.root WHERE r.path = ? AND f.rel = ?"
        return self._db.execute(q, (str(Path(root).resolve()), rel)).fetchone() is not None

    def scan(self, root: str | os.PathLike, *, quiet: bool = True) -> ScanStats:
        """Bring the rows of ``root`` up to date with the folder (see module docstring)."""
        from tqdm.auto import tqdm

        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{str(root)!r} does not exist or is not a folder; give a folder of images")
        rid = self.root_id(root, create=True)
        known = {rel: (size, mtime) for rel, size, mtime in
                 self._db.execute("SELECT rel, size, mtime_ns FROM files WHERE root = ?", (rid,))}
        stats, seen, updates = ScanStats(), set(), []
        for rel, p in tqdm(list(walk_images(root)), desc="scan", unit="file", disable=quiet):
            if not is_inside(p, root):
                stats.outside += 1
                continue
            try:
                st = p.stat()
                if known.get(rel) == (st.st_size, st.st_mtime_ns):
                    stats.unchanged += 1
                    seen.add(rel)
                    continue
                digest = sha256_file(p)
            except OSError as e:
                stats.unreadable += 1
                log.warning("cannot read %s (%s): skipped", p, e)
                continue
            seen.add(rel)
            if rel in known:
                stats.changed += 1
            else:
                stats.new += 1
            updates.append((rid, rel, st.st_size, st.st_mtime_ns, digest))
            if len(updates) >= 500:  # commit as we go: a killed scan keeps what it hashed
                self._upsert(updates)
                updates = []
        self._upsert(updates)
        gone = [rel for rel in known if rel not in seen]
        stats.deleted = len(gone)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("DELETE FROM files WHERE root = ? AND rel = ?", [(rid, r) for r in gone])
        if gone:
            self.touch(rid)
        self._db.execute("COMMIT")
        return stats

    def _upsert(self, rows: list[tuple]) -> None:
        if rows:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
            self.touch(rows[0][0])
            self._db.execute("COMMIT")
