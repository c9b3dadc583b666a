import pytest


@pytest.fixture
def idc_dataset(shapes_pairs):
    from fiftyone_plugin.dataset import pairs_to_dataset

    dataset = pairs_to_dataset(shapes_pairs)
    yield dataset
    dataset.delete()
