"""Benchmarks as data: one module per benchmark, found by the registry (see
:mod:`babelclip.data.benchmarks.registry` for the interface a new benchmark follows)."""
from __future__ import annotations

from .registry import (
    CLASSIFICATION,
    KEYWORD_RETRIEVAL,
    RETRIEVAL,
    RETRIEVAL_PROTOCOLS,
    Benchmark,
    ClassificationTask,
    Inputs,
    KeywordRetrievalTask,
    Prepared,
    RetrievalTask,
    Source,
    all_benchmarks,
    find_benchmark,
    get_benchmark,
)

__all__ = [
    "CLASSIFICATION", "KEYWORD_RETRIEVAL", "RETRIEVAL", "RETRIEVAL_PROTOCOLS", "Benchmark", "ClassificationTask",
    "Inputs", "KeywordRetrievalTask",
    "Prepared", "RetrievalTask", "Source", "all_benchmarks", "find_benchmark", "get_benchmark",
]
