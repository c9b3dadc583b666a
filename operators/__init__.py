"""The idc FiftyOne plugin: operators over the idc engine (see fiftyone.yml).

FiftyOne executes this file as the plugin's entry point. The plugin's own packages
(``fiftyone_plugin``, ``idc_engine``) are imported from the installed ``idc`` distribution, or, for a
plugin folder that was only downloaded, from the folder itself.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import fiftyone_plugin  # noqa: F401
except ImportError:
    sys.path.insert(0, _ROOT)

from .apply import ApplyBLIP2IDC  # noqa: E402
from .evaluate import EvaluateIDCCaptions  # noqa: E402
from .heatmaps import ComputeIDCHeatmaps  # noqa: E402
from .import_dataset import ImportIDCDataset  # noqa: E402
from .instruction_references import AddInstructionReferences  # noqa: E402
from .retrain import RetrainOnReviewed  # noqa: E402
from .review_panel import IDCReviewPanel  # noqa: E402
from .sharded_jobs import (  # noqa: E402
    AugmentSynedShards,
    CaptionIDCShards,
    ComputeIDCHeatmapsShards,
    ReapIDCShards,
    RunIDCShard,
)
from .syned import AugmentSyned  # noqa: E402
from .train import TrainBLIP2IDC  # noqa: E402

OPERATORS = (
    ImportIDCDataset,
    TrainBLIP2IDC,
    ApplyBLIP2IDC,
    EvaluateIDCCaptions,
    ComputeIDCHeatmaps,
    RetrainOnReviewed,
    AugmentSyned,
    AddInstructionReferences,
    CaptionIDCShards,
    ComputeIDCHeatmapsShards,
    AugmentSynedShards,
    RunIDCShard,
    ReapIDCShards,
)


PANELS = (IDCReviewPanel,)


def register(p):
    for operator in OPERATORS + PANELS:
        p.register(operator)
