from babelclip.data.imagenet import imagenet_classes, imagenet_wnids, openai_templates


def test_standard_order_and_known_classes():
    classes = imagenet_classes()
    assert len(classes) == 1000 and len(set(imagenet_wnids())) == 1000
    # Index 0 is tench, 281 tabby cat, 999 toilet tissue in the standard ImageNet-1k order.
    assert (classes[0].wnid, classes[0].clip_name) == ("n01440764", "tench")
    assert classes[281].wnid == "n02123045" and "tabby" in classes[281].lemmas[0]
    assert classes[999].wnid == "n15075141"
    assert all(c.definition for c in classes)


def test_templates_have_one_slot():
    t = openai_templates()
    assert len(t) == 80 and len(set(t)) == 80
    assert all(s.count("{}") == 1 for s in t)
