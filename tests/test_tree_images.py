"""Image spans: a node stands for an image by its placeholder; requests carry the path's images in order."""

from __future__ import annotations

import json

import pytest

from retrosearch.backends import ScriptedBackend
from retrosearch.engine import Engine
from retrosearch.tree import SearchTree
from retrosearch.types import Generate, ImagePart

PLACEHOLDER = "<image>"


class Recording(ScriptedBackend):
    def __init__(self):
        super().__init__(lambda p, c: " It is red.")
        self.requests = []

    def generate(self, requests):
        self.requests.extend(requests)
        return super().generate(requests)


def image_tree(tmp_path, backend):
    q = tmp_path / "question.png"
    q.write_bytes(b"not decoded by the tree")
    tree = SearchTree("User: ", tokenizer=backend)
    img = tree.add(tree.root, ImagePart(PLACEHOLDER, path=str(q)), "prompt")
    ask = tree.add(img, " What colour is it?\n", "prompt")
    return tree, ask


def test_a_request_carries_the_paths_images_in_order(tmp_path):
    backend = Recording()
    tree, ask = image_tree(tmp_path, backend)
    crop = ImagePart(PLACEHOLDER, image=object())  # an in-memory image (a PIL image in real use)

    def prog():
        (first,) = yield Generate(ask)
        seen = tree.add_environment(first, crop)
        (second,) = yield Generate(seen)
        return seen

    (seen,) = Engine(backend).run([prog()])
    first, second = backend.requests
    assert [im.path for im in first.images] == [str(tmp_path / "question.png")]
    assert [im.path for im in second.images] == [str(tmp_path / "question.png"), None]
    assert second.images[1] is crop
    # The placeholder is the text the model reads for the image, and its ids are in the path's ids.
    assert second.prompt == "User: <image> What colour is it?\n It is red.<image>"
    assert second.prompt_ids == tuple(tree.token_ids(seen))


def test_json_keeps_an_image_span_by_reference(tmp_path):
    tree, ask = image_tree(tmp_path, ScriptedBackend(lambda p, c: ""))
    d = json.loads(tree.to_json())
    assert d["nodes"][1]["image"] == {"placeholder": PLACEHOLDER, "path": str(tmp_path / "question.png")}
    assert "image" not in d["nodes"][0]  # text spans read as before
    back = SearchTree.from_json(json.dumps(d))
    img = back.nodes[1].image
    assert (
        img == ImagePart(PLACEHOLDER, path=str(tmp_path / "question.png"))
        and back.nodes[1].text == PLACEHOLDER
    )
    assert back.to_dict() == d and back.nodes[2].image is None
    path = tmp_path / "tree.json"
    tree.to_json(path)
    assert SearchTree.from_json(path).to_dict() == d


def test_image_spans_are_checked(tmp_path):
    tree, ask = image_tree(tmp_path, ScriptedBackend(lambda p, c: ""))
    with pytest.raises(ValueError, match="placeholder"):
        tree.add(ask, "<img>", "prompt", image=ImagePart(PLACEHOLDER, path="x.png"))
    with pytest.raises(TypeError, match="ImagePart"):
        tree.add(ask, "x", "prompt", image="x.png")
    with pytest.raises(ValueError, match="image or a path"):
        ImagePart(PLACEHOLDER)
    with pytest.raises(ValueError, match="image span"):
        tree.split(tree.nodes[1], 2)
    tree.add_environment(ask, ImagePart(PLACEHOLDER, image=object()))
    with pytest.raises(ValueError, match="in-memory image"):
        tree.to_json()
    assert tree.to_networkx().nodes[1]["image"].path.endswith("question.png")
