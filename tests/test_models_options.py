"""Family options: one dataclass per family, validated, saved and loaded the same way
(babelclip.models.options), and create_model handing them to the family."""
import json

import pytest

from babelclip.models.options import FamilyOptions, OptionsError


def _option_classes():
    from babelclip.models.babel_lite.model import BabelLiteOptions
    from babelclip.models.hf import HFOptions
    from babelclip.models.mclip import MCLIPOptions
    from babelclip.models.openclip import OpenClipOptions
    from babelclip.models.sentence_transformers import STOptions

    return [OpenClipOptions, HFOptions, MCLIPOptions, STOptions, BabelLiteOptions]


@pytest.mark.parametrize("cls", _option_classes(), ids=lambda c: c.__name__)
def test_unknown_option_names_the_key_and_every_allowed_one(cls):
    with pytest.raises(OptionsError) as err:
        cls.from_kwargs({"colour": "red", "verify": True, "pretrained": True} if cls.family == "babel-lite"
                        else {"colour": "red", "pretrained": True})
    msg = str(err.value)
    assert "colour" in msg and cls.family in msg
    assert all(name in msg for name in cls.names())  # allowed: every field, with its type and default
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("cls", _option_classes(), ids=lambda c: c.__name__)
def test_options_round_trip_through_json(cls):
    opts = cls.from_kwargs({})
    back = cls.from_dict(json.loads(json.dumps(opts.as_dict())))
    assert back == opts and set(opts.as_dict()) == set(cls.names())


def test_shared_options_are_declared_once():
    """pretrained/seed (random weights) and revision (hub) come from the shared bases."""
    from babelclip.models.options import HubOptions, WeightsOptions

    oc, hf, mclip, st, lite = _option_classes()
    assert all(issubclass(c, WeightsOptions) for c in (oc, hf, mclip, st))
    assert all(issubclass(c, HubOptions) for c in (hf, mclip, st))
    assert not issubclass(lite, WeightsOptions)
    assert set(hf.names()) < set(mclip.names())  # an hf: name may resolve to M-CLIP with its options


@pytest.mark.parametrize(("cls_index", "opts", "needle"), [
    (0, {"pretrained": "False"}, "pretrained must be True or False"),
    (0, {"trim": 1}, "trim must be True or False"),
    (1, {"seed": True}, "seed must be int"),
    (1, {"max_length": "16"}, "max_length must be int or None"),
    (2, {"image_opts": ["pretrained"]}, r"image_opts must be dict\[str, Any\] or None"),
    (3, {"revision": 3}, "revision must be str or None"),
    (4, {"representation": "log"}, "unknown representation 'log'"),
    (4, {"image_precision": "int4"}, "unknown image_precision 'int4'"),
])
def test_invalid_values_are_named(cls_index, opts, needle):
    cls = _option_classes()[cls_index]
    with pytest.raises(OptionsError, match=needle):
        cls.from_kwargs(opts)


def test_from_dict_refuses_what_from_kwargs_refuses():
    cls = _option_classes()[1]
    with pytest.raises(OptionsError, match="unknown hf option"):
        cls.from_dict({"pretrained": False, "max_lenght": 8})


def test_base_rejects_any_key():
    with pytest.raises(OptionsError, match=r"unknown model option\(s\) \['x'\]"):
        FamilyOptions.from_kwargs({"x": 1})


def test_create_model_hands_options_to_the_family(tmp_path):
    from _tiny_hf import tiny_clip_dir

    from babelclip import create_model

    path = str(tiny_clip_dir(tmp_path, "clip"))
    enc = create_model(path, pretrained=False, seed=3, max_length=8)
    assert enc.options.as_dict() == {"pretrained": False, "seed": 3, "revision": None, "max_length": 8}
    assert enc.max_length == 8
    with pytest.raises(OptionsError, match=r"unknown hf option\(s\) \['image_model'\]"):
        create_model(path, image_model="x")
