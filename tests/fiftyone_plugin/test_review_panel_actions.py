"""The review panel's modal actions, driven in-process through the panel operator with the request the
App sends (panel state, the clicked button's params): what a conflict does to what the reviewer typed,
and which version an action claims the reviewer saw."""

import fiftyone.operators as foo
import pytest
from fiftyone.operators.executor import ExecutionContext, Executor

from fiftyone_plugin.dataset import MODIFIED, PAIR_ID
from fiftyone_plugin.review import edit, review_record

PLUGIN = "@idc/idc"


@pytest.fixture
def pair(idc_dataset):
    modified = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(1)
    sample_id, pair_id = modified.values("id")[0], modified.values(PAIR_ID)[0]
    idc_dataset.select_group_slices(MODIFIED).set_values(
        "idc_caption", ["the model's caption"] * len(idc_dataset.select_group_slices(MODIFIED))
    )
    return idc_dataset, sample_id, pair_id


def _ctx(dataset, sample_id, state, params=None):
    request = {
        "dataset_name": dataset.name,
        "current_sample": sample_id,
        "params": {"panel_id": "idc-review-test", "panel_state": state, **(params or {})},
    }
    # FiftyOne's own Executor records what the panel asks the App to do (notifications, state patches).
    return ExecutionContext(request_params=request, operator_uri=f"{PLUGIN}/idc_review", executor=Executor())


def _shown(dataset, sample_id):
    """The panel's state once it has shown the pair to ann."""
    panel = foo.get_operator(f"{PLUGIN}/idc_review")
    state = {"reviewer": "ann"}
    panel._load(_ctx(dataset, sample_id, state))
    return panel, state


def test_a_click_drawn_on_an_older_version_is_refused_even_after_the_panel_refreshed(pair):
    dataset, sample_id, pair_id = pair
    panel, state = _shown(dataset, sample_id)
    seen = state["pair"]["version"]
    edit(dataset, pair_id, "bob's caption", "idc_caption", reviewer="bob")  # bob, elsewhere, meanwhile
    panel._load(_ctx(dataset, sample_id, state))  # the panel refreshes before ann's click arrives
    assert state["pair"]["version"] != seen
    key = state["pair"]["key"]
    state[f"caption_{key}"] = "ann's caption"
    panel.on_save_edit(_ctx(dataset, sample_id, state, {"pair_id": pair_id, "version": seen}))
    record = review_record(dataset, pair_id)
    assert record["caption"] == "bob's caption"  # ann's words never replaced bob's unseen
    assert [
        a["reviewer"]
        for a in dataset.select_group_slices(MODIFIED).match({PAIR_ID: pair_id}).first()["idc_review_history"]
    ] == ["bob"]


def test_a_refused_action_keeps_what_the_reviewer_typed(pair):
    dataset, sample_id, pair_id = pair
    panel, state = _shown(dataset, sample_id)
    seen, key = state["pair"]["version"], state["pair"]["key"]
    state[f"caption_{key}"] = "ann's long correction"
    edit(dataset, pair_id, "bob's caption", "idc_caption", reviewer="bob")
    panel.on_save_edit(_ctx(dataset, sample_id, state, {"pair_id": pair_id, "version": seen}))
    assert review_record(dataset, pair_id)["caption"] == "bob's caption"
    assert state[f"caption_{key}"] == "ann's long correction"  # not wiped by the refusal
    assert state["pair"]["version"] != seen  # the pair is shown as it is now
    # Having read bob's edit, ann saves hers: it lands, on this pair.
    panel.on_save_edit(_ctx(dataset, sample_id, state, {"pair_id": pair_id, "version": state["pair"]["version"]}))
    assert review_record(dataset, pair_id)["caption"] == "ann's long correction"


def test_undo_on_a_blind_pair_withdraws_the_reviewers_own_vote_there_not_the_pair_accepted_before(pair):
    """Ann accepted pair A (Accept moved her on), then reviewed pair B blind (3 reviewers); Bob reviewed B
    blind after her. Her Undo on B takes back her vote on B: it must not reach back to A."""
    from fiftyone_plugin.review import OVERLAP_FIELD, accept, ensure_review_fields

    dataset, sample_id, pair_id = pair
    modified = dataset.select_group_slices(MODIFIED)
    other = next(p for p in modified.values(PAIR_ID) if p != pair_id)
    ensure_review_fields(dataset)
    dataset._sample_collection.update_one({PAIR_ID: pair_id, "group.name": MODIFIED}, {"$set": {OVERLAP_FIELD: 3}})
    accept(dataset, other, "idc_caption", reviewer="ann")
    panel, state = _shown(dataset, sample_id)
    state["previous_pair"] = other  # what the panel keeps after Accept moved on from A
    edit(dataset, pair_id, "ann's blind words", "idc_caption", reviewer="ann")
    edit(dataset, pair_id, "bob's blind words", "idc_caption", reviewer="bob")
    panel._load(_ctx(dataset, sample_id, state))
    panel.on_undo(_ctx(dataset, sample_id, state, {"pair_id": pair_id, "version": state["pair"]["version"]}))
    assert review_record(dataset, other)["status"] == "accepted"  # A untouched
    assert [v["reviewer"] for v in review_record(dataset, pair_id)["votes"]] == ["bob"]  # ann's vote withdrawn


def test_the_panel_shows_a_blind_reviewer_their_own_decision_and_nobody_elses(pair):
    from fiftyone_plugin.review import flag
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, sample_id, pair_id = pair
    set_overlap(dataset, share=1.0, reviewers=2)
    flag(dataset, pair_id, "the circle is cut off", "idc_caption", reviewer="ann")
    panel, state = _shown(dataset, sample_id)  # ann's panel
    assert "yours: flagged" in state["summary"], state["summary"]
    bob = {"reviewer": "bob"}
    panel._load(_ctx(dataset, sample_id, bob))
    assert "blind review by 2 reviewers, 1 in" in bob["summary"] and "flagged" not in bob["summary"], bob["summary"]
    assert "cut off" not in str(bob)
