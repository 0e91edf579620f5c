"""Family options: one frozen dataclass per model family, validated, saved and loaded one way.

``create_model(name, **options)`` hands the keyword arguments after ``device``/``dtype`` to the
family, which reads them with ``XOptions.from_kwargs(options)``: an unknown key, or a value of
the wrong type, raises :class:`OptionsError` naming it and every allowed key with its type and
default. ``as_dict()`` gives the JSON form a saved record keeps; ``from_dict`` reads it back
through the same checks (as sentence-transformers modules save their ``config_keys``), so a load
can never pick up a silent default or a misspelt key.

``protocol_options(protocol)`` gives the overrides a named evaluation protocol applies
(:data:`PROTOCOLS`; ``create_model(name, protocol="paper")``): each family declares its own in
``PROTOCOL_OPTIONS``, so the protocol's choices live beside the options they set
(docs/protocols.md says which reference code each reproduces).

The options several families share are declared once, in :class:`WeightsOptions` (random
weights for offline tests) and :class:`HubOptions` (a hub revision).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Self

#: Named evaluation protocols: ``default`` (babelclip's choices) and ``paper`` (the Babel-ImageNet
#: reference evaluation code's, where they differ: docs/protocols.md).
PROTOCOLS = ("default", "paper")


class OptionsError(TypeError, ValueError):
    """A family option that is unknown or invalid. Both a ``TypeError`` (as Python reports an
    unexpected keyword argument) and a ``ValueError`` (a bad value), so callers catch either."""


#: Annotation names (``from __future__ import annotations`` keeps them as text) → accepted types.
_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "None": (type(None),),
    "dict": (dict,),
}


def _accepts(annotation: str, value: Any) -> bool:
    """Whether ``value`` fits an annotation such as ``"int | None"`` or ``"dict[str, Any] | None"``."""
    for part in annotation.split("|"):
        kinds = _TYPES[part.strip().split("[", 1)[0]]
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return True  # True is an int to Python, never to an int option
    return False


@dataclass(frozen=True)
class FamilyOptions:
    """Base of every family's options (see the module docstring). Subclasses add fields with
    defaults and may override :meth:`validate` for checks of values beyond their types."""

    family: ClassVar[str] = "model"  # how messages name the family
    #: protocol name -> option overrides it applies (only protocols that change something)
    PROTOCOL_OPTIONS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @classmethod
    def protocol_options(cls, protocol: str) -> dict[str, Any]:
        """The options ``protocol`` sets for this family ({} where it changes nothing)."""
        if protocol not in PROTOCOLS:
            raise OptionsError(f"unknown evaluation protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        return dict(cls.PROTOCOL_OPTIONS.get(protocol, {}))

    @classmethod
    def allowed(cls) -> str:
        """Every option with its type and default, as error messages list them."""
        return ", ".join(
            f"{f.name}: {f.type} = {f.default!r}" if f.default is not MISSING else f"{f.name}: {f.type}"
            for f in fields(cls)
        )

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_kwargs(cls, opts: Mapping[str, Any]) -> Self:
        """The options named in ``opts`` (the rest at their defaults), checked."""
        unknown = sorted(set(opts) - set(cls.names()))
        if unknown:
            raise OptionsError(f"unknown {cls.family} option(s) {unknown}; allowed: {cls.allowed()}")
        for f in fields(cls):
            if f.name in opts and not _accepts(str(f.type), opts[f.name]):
                raise OptionsError(
                    f"{cls.family} option {f.name} must be {cls._describe(str(f.type))}, got {opts[f.name]!r}"
                )
        options = cls(**opts)
        options.validate()
        return options

    @staticmethod
    def _describe(annotation: str) -> str:
        if annotation.strip() == "bool":
            return "True or False"
        return " or ".join(p.strip() for p in annotation.split("|"))

    def validate(self) -> None:
        """Checks of values beyond their types; raise :class:`OptionsError`."""

    def as_dict(self) -> dict[str, Any]:
        """Every option by name (JSON-serialisable), as a saved record keeps them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Options read back from :meth:`as_dict`'s form, through the same checks."""
        return cls.from_kwargs(dict(data))


@dataclass(frozen=True)
class WeightsOptions(FamilyOptions):
    """Options of every family that loads published weights."""

    pretrained: bool = True  # False: random weights of the architecture (offline tests)
    seed: int = 0  # seeds the random weights when pretrained=False


@dataclass(frozen=True)
class HubOptions(WeightsOptions):
    """Options of the families that read Hugging Face hub repositories."""

    revision: str | None = None  # a hub branch, tag or commit (also accepted as NAME@REVISION)


@dataclass(frozen=True)
class TextNormalizationOptions(FamilyOptions):
    """The protocol option of the families whose reference scoring uses raw text embeddings
    (M-CLIP, sentence-transformers: Babel-ImageNet's evaluation code scores their single-prompt
    runs on unnormalised text embeddings, docs/protocols.md). Off by default."""

    normalize_text: bool = True  # False: encode_texts returns the tower's raw rows (text_normalized False)

    PROTOCOL_OPTIONS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"paper": {"normalize_text": False}}


def normalization_extra(normalize_text: bool) -> tuple[tuple[str, str], ...]:
    """What ``normalize_text`` adds to a fingerprint's ``extra``: nothing at the default (so the
    caches of default runs stay valid), a mark where raw text embeddings are returned."""
    return () if normalize_text else (("normalize_text", "false"),)
