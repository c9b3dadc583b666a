"""Synthetic augmentation (Syned) and the paper's test references.

Editors turn an original image into edited variants: ``ProceduralEditor`` needs no model;
``InstructPix2PixEditor`` runs a local InstructPix2Pix checkpoint (diffusers, imported on first use);
``edit_shapes_scene`` edits shapes-change scenes by re-rendering. The rest, module by module: ``augment``
(the run: edit, caption, filter, resume), ``quality`` (which edits to keep), ``variators`` (the interface of
caption writers), ``templates`` (captions by rule), ``llm_variator`` (captions or instruction variations by a
local LLM), ``guardrails`` and ``meaning`` (what an LLM line may not do), ``morphology`` (word forms),
``references`` (each test pair's instruction and 4 LLM variations, as the paper evaluates Emu Edit).
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
