"""The loop users come for, through the plugin's operators: two folders of images nobody has
described -> captions -> review -> retrain on the reviewed pairs -> the two models compared."""

import shutil

import fiftyone as fo
import fiftyone.operators as foo

from fiftyone_plugin.dataset import MODIFIED
from fiftyone_plugin.review import edit

PLUGIN = "@idc/idc"


def test_import_caption_review_retrain_compare(shapes_pairs, tiny_dir, tmp_path):
    originals, edited = tmp_path / "originals", tmp_path / "edited"
    originals.mkdir()
    edited.mkdir()
    truth = {}
    for pair in [p for p in shapes_pairs if p.split == "train"][:20]:
        shutil.copy(pair.reference, originals / f"{pair.id}.png")
        shutil.copy(pair.modified, edited / f"{pair.id}.png")
        truth[pair.id] = pair.captions[0]

    imported = foo.execute_operator(
        f"{PLUGIN}/import_idc_dataset",
        ctx=dict(
            params={"format": "image-folders", "source": str(originals), "images_dir": str(edited), "name": "loop"}
        ),
    )
    assert imported.result["pairs"] == 20, imported.error
    dataset = fo.load_dataset("loop")
    try:
        captioned = foo.execute_operator(
            f"{PLUGIN}/apply_blip2idc",
            ctx=dict(dataset=dataset, params={"model": str(tiny_dir), "label_field": "idc_caption", "batch_size": 10}),
        )
        assert captioned.result["captioned"] == 20, captioned.error
        for pair_id in dataset.select_group_slices(MODIFIED).values("pair_id"):
            edit(dataset, pair_id, truth[pair_id], source_field="idc_caption")  # the reviewer's corrections

        retrained = foo.execute_operator(
            f"{PLUGIN}/retrain_blip2idc_on_reviewed",
            ctx=dict(
                dataset=dataset,
                params={"caption_field": "idc_caption", "out_dir": str(tmp_path / "retrain"), "max_steps": 6},
            ),
        )
        result = retrained.result
        assert result is not None, retrained.error
        # Imported from folders, the pairs are "unlabeled", not "test": reviewed, they can be trained on.
        assert result["test_split_left_out_of_training"] == 0
        held = result["held_out_edited"]["pairs"]
        assert result["trained_on"] + result["validation"] + held == 20 and held > 0
        assert result["model_dir"].startswith(str(tmp_path / "retrain"))
        rows = {row["category"]: row for row in result["held_out_edited"]["rows"]}
        before, after = result["held_out_edited"]["eval_keys"]
        assert set(rows["all"]) >= {before, after, "delta"}
        assert dataset.has_evaluation(before) and dataset.has_evaluation(after)
        assert result["held_out_accepted"]["pairs"] == 0 and result["test_references"]["pairs"] == 0
    finally:
        dataset.delete()
