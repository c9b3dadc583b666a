"""Synthetic augmentation (Syned): editors that turn an original image into edited variants.

``ProceduralEditor`` needs no model; ``InstructPix2PixEditor`` runs a local InstructPix2Pix checkpoint
(diffusers, imported on first use); ``edit_shapes_scene`` edits shapes-change scenes by re-rendering.
"""

from idc_engine.synth.editors import CATEGORIES, Editor, EditResult
from idc_engine.synth.ip2p import InstructPix2PixConfig, InstructPix2PixEditor
from idc_engine.synth.procedural import ProceduralConfig, ProceduralEditor, parse_instruction
from idc_engine.synth.shapes import ShapesSceneEdit, edit_shapes_scene, parse_change, scene_background

__all__ = [
    "CATEGORIES",
    "EditResult",
    "Editor",
    "InstructPix2PixConfig",
    "InstructPix2PixEditor",
    "ProceduralConfig",
    "ProceduralEditor",
    "ShapesSceneEdit",
    "edit_shapes_scene",
    "parse_change",
    "parse_instruction",
    "scene_background",
]
