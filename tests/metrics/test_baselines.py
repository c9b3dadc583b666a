from PIL import Image

from idc_engine.metrics.baselines import BaselineConfig, mean_sentence, nearest_neighbour


def test_mean_sentence_is_the_consensus_caption():
    train = [["a dog appeared", "a dog was added"]] * 5 + [["the cat left"]] * 2 + [["the dog was added"]]
    assert mean_sentence(train, BaselineConfig()) in ("a dog was added", "a dog appeared")


def test_nearest_neighbour_returns_the_closest_pairs_caption():
    red, blue, green = (Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green"))
    train = [(red, blue), (red, red), (green, green)]
    captions = [["turned blue"], ["no change"], ["all green"]]
    queries = [(red, blue), (green, green), (red, red)]
    assert nearest_neighbour(train, captions, queries) == ["turned blue", "all green", "no change"]
