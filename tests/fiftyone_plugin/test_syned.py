"""Syned from the App: a delegated operation adds tagged variants that point to their originals."""

import fiftyone.operators as foo
import fiftyone.operators.delegated as food
from fiftyone import ViewField as F

from fiftyone_plugin.dataset import MODIFIED


def test_the_operator_adds_variants_tagged_synthetic_once(idc_dataset, tmp_path):
    idc_dataset.persistent = True
    train = idc_dataset.match_tags("train")
    sources = train.select_group_slices(MODIFIED).limit(5).values("pair_id")
    view = idc_dataset.match(F("pair_id").is_in(sources))
    params = {"out_dir": str(tmp_path / "syned"), "variations": 2, "seed": 4}
    queued = foo.execute_operator("@idc/idc/augment_syned", ctx=dict(view=view, params=params), request_delegation=True)
    service = food.DelegatedOperationService()
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    finished = service.get(queued.result["id"])
    assert finished.run_state == "completed", finished.result.error if finished.result else None
    added = finished.result.result["added"]
    assert 8 <= added <= 10
    synthetic = idc_dataset.match_tags("synthetic")
    assert len(synthetic.select_group_slices(MODIFIED)) == added
    assert set(synthetic.select_group_slices(MODIFIED).values("source_pair")) <= set(sources)
    assert set(synthetic.select_group_slices("reference").values("source_pair")) <= set(sources)
    original = sources[0]
    variants = idc_dataset.match(F("source_pair") == original).select_group_slices(MODIFIED)
    assert all(p.startswith(f"{original}--syn") for p in variants.values("pair_id"))

    again = foo.execute_operator("@idc/idc/augment_syned", ctx=dict(view=view, params=params))
    assert again.result["added"] == 0  # resumed: nothing new to add
