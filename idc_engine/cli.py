"""The ``idc`` command line: make-benchmark, import, train, caption, evaluate, augment, references,
calibrate-no-change, demo, pretrain-tiny, pretrain-tiny-photo."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from idc_engine.configargs import add_config_arguments, config_from_arguments


def _quiet_libraries():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # peft asks transformers a deprecated question on every LoRA forward; it is not the user's to fix.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _cmd_make_benchmark(args):
    if args.name == "photo-edits":
        from idc_engine.data.photo_edits import PhotoEditsConfig, generate

        config = config_from_arguments(args, PhotoEditsConfig, prefix="photo")
        manifest = generate(args.out, args.train, args.test, args.validation, config, workers=args.workers)
        print(
            f"wrote {args.train} train, {args.validation} validation and {args.test} test pairs; manifest: {manifest}"
        )
        return
    from idc_engine.data.shapes_change import ShapesChangeConfig, generate

    config = config_from_arguments(args, ShapesChangeConfig)
    manifest = generate(args.out, args.train, args.test, args.validation, config)
    print(f"wrote {args.train} train, {args.validation} validation and {args.test} test pairs; manifest: {manifest}")


def _option_value(text: str):
    """``--option`` values are JSON where they parse (true, 3, null), else plain strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _cmd_import(args):
    from idc_engine.data.importing import read_pairs
    from idc_engine.data.manifest import write_manifest

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option must be KEY=VALUE, got {item!r}")
        options[key.replace("-", "_")] = _option_value(value)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out} already exists; pass --overwrite to replace it")
    result = read_pairs(args.format, args.source, args.images_dir, **options)
    print(result.summary())
    if not result.pairs:
        raise ValueError(f"source {args.source!r}: no usable pairs, nothing written")
    write_manifest(result.pairs, out)
    print(f"wrote {len(result.pairs)} pairs -> {out}")


def _load_model(args, config=None, training=False):
    from idc_engine.model.loading import load_model

    return load_model(
        args.model,
        adapter=getattr(args, "adapter", None),
        device=args.device,
        config=config,
        for_training=training,
        base_model=args.base_model,
    )


def _cmd_train(args):
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.pair import split_pairs
    from idc_engine.model.config import BLIP2IDCConfig, LoraSettings
    from idc_engine.train.augment import AugmentConfig
    from idc_engine.train.config import TrainConfig
    from idc_engine.train.distributed import device_for_rank, is_main_process
    from idc_engine.train.loop import train

    # Under torchrun / accelerate launch each process trains on its own GPU (cuda:LOCAL_RANK).
    args.device = device_for_rank(args.device)
    pairs = read_manifest(args.manifest)
    train_pairs, val_pairs = split_pairs(pairs, "train"), split_pairs(pairs, "validation")
    if not train_pairs:
        raise SystemExit(f"--manifest {args.manifest}: no pairs with split 'train'")
    config = config_from_arguments(
        args,
        TrainConfig,
        lora=config_from_arguments(args, LoraSettings, prefix="lora"),
        augment=config_from_arguments(args, AugmentConfig, prefix="augment"),
    )
    model = _load_model(args, _given_idc_config(args, BLIP2IDCConfig), training=True)
    result = train(model, train_pairs, val_pairs, config, args.out, resume=args.resume, overwrite=args.overwrite)
    if not is_main_process():
        return
    print(f"{result.stopped} after {result.steps} steps; model saved to {result.model_dir}")
    if result.train_report and result.train_report.skipped:
        print(f"skipped training pairs: {result.train_report.summary()}")
    if any(result.unreferenced.values()):
        print(f"left out, no reference captions: {result.unreferenced}")


def _given_idc_config(args, cls):
    """The model's own IDC config with the ``--idc-*`` flags given on top (None when none is): a flag
    changes its field alone, never the encoding, orientation or no-change sentences the weights were
    trained with (the dataclass defaults fill in only for a model that saved no config)."""
    import dataclasses

    from idc_engine.model.base_reference import resolve_spec

    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f"idc_{f.name}", None)
        if value is not None:
            given[f.name] = tuple(value) if isinstance(value, list) else value
    if not given:
        return None
    source = getattr(args, "adapter", None) or (resolve_spec(args.model) if args.model != "tiny-scratch" else None)
    saved = cls.load(source) if source is not None else None
    return dataclasses.replace(saved, **given) if saved is not None else cls(**given)


def _cmd_caption(args):
    from collections import Counter

    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.pair import split_pairs
    from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs

    every = read_manifest(args.manifest)
    pairs = split_pairs(every, args.split)
    if not pairs and every:  # e.g. two imported folders: their pairs are 'unlabeled', the default split is 'test'
        counts = Counter(pair.split for pair in every)
        raise ValueError(
            f"--split {args.split!r}: no pairs of that split in {args.manifest}; it has "
            + ", ".join(f"{n} {split!r}" for split, n in counts.items())
        )
    model = _load_model(args)
    result = caption_idc_pairs(
        model, pairs, config_from_arguments(args, GenerationConfig), skip_bad=args.skip_bad_images
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        for pair in pairs:
            if pair.id in result.captions:
                record = {"id": pair.id, "caption": result.captions[pair.id]}
                record["confidence"] = round(result.confidences[pair.id], 5)
                handle.write(json.dumps(record) + "\n")
    print(f"captioned {len(result.captions)} pairs of split {args.split!r} -> {out}; {result.report.summary()}")


def read_predictions(path) -> dict[str, str]:
    predictions = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                predictions[str(record["id"])] = record["caption"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{number}: expected {{'id': ..., 'caption': ...}}: {exc}") from None
    return predictions


def _cmd_evaluate(args):
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.pair import split_pairs
    from idc_engine.metrics.baselines import BaselineConfig
    from idc_engine.metrics.report import evaluate, format_report

    pairs = read_manifest(args.manifest)
    test_pairs = split_pairs(pairs, args.split)
    predictions = read_predictions(args.predictions)
    train_pairs = split_pairs(pairs, "train") if args.baselines else None
    validation_pairs = split_pairs(pairs, "validation") if args.baselines and args.split != "validation" else None
    report = evaluate(
        test_pairs,
        predictions,
        train_pairs,
        config_from_arguments(args, BaselineConfig, "baseline"),
        validation_pairs=validation_pairs,
    )
    print(format_report(report))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report.to_dict(), indent=2))
        print(f"report -> {args.out}")


def _cmd_calibrate_no_change(args):
    from idc_engine.data.loading import load_pairs
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.pair import split_pairs, with_references
    from idc_engine.inference.no_change import calibrate_no_change

    folder = Path(args.model)
    if not folder.is_dir():
        raise ValueError(f"--model {args.model!r}: not a folder; calibration is saved into the model's own folder")
    pairs = with_references(split_pairs(read_manifest(args.manifest), args.split))[0]
    if not pairs:
        raise ValueError(f"--manifest {args.manifest}: no pairs with references in split {args.split!r}")
    model = _load_model(args)
    if args.no_change_captions:
        model.config.no_change_captions = tuple(args.no_change_captions)
    pairs, images, report = load_pairs(pairs, skip_bad=True)
    prior = {"auto": "auto", "yes": True, "no": False}[args.difference_prior]
    calibration = calibrate_no_change(model, pairs, images, difference_prior=prior)
    model.config.save(folder)
    _record_recalibration(folder, model.config, calibration.to_dict(), args)
    print(json.dumps(calibration.to_dict(), indent=2))
    print(f"no-change decision saved in {folder / 'idc_config.json'}; {report.summary()}")


def _record_recalibration(folder: Path, config, calibration: dict, args):
    """Keep a trained model's ``training.json`` true to its folder: its ``idc_config`` becomes the one
    now saved, and the recalibration is listed after the calibration training made."""
    from datetime import datetime, timezone

    from idc_engine.train.checkpoint import _write_text_atomic
    from idc_engine.train.loop import TRAINING_RECORD

    path = folder / TRAINING_RECORD
    if not path.is_file():
        return
    record = json.loads(path.read_text())
    record["idc_config"] = dict(config.__dict__)
    record.setdefault("recalibrations", []).append(
        {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "manifest": str(args.manifest),
            "split": args.split,
            **calibration,
        }
    )
    _write_text_atomic(path, json.dumps(record, indent=2, default=str))


def _cmd_augment(args):
    from idc_engine.data.manifest import read_manifest
    from idc_engine.synth.augment import SynedConfig, augment, load_editor, load_variator
    from idc_engine.synth.ip2p import InstructPix2PixConfig
    from idc_engine.synth.quality import QualityConfig

    config = config_from_arguments(args, SynedConfig, quality=config_from_arguments(args, QualityConfig, "quality"))
    pairs = read_manifest(args.manifest)
    editor = load_editor(args.editor, args.device, config_from_arguments(args, InstructPix2PixConfig, "ip2p"))
    report = augment(
        pairs,
        args.out,
        config,
        editor=editor,
        variator=load_variator(args.variator, device=args.device),
        progress=_progress_line("augment"),
        image_progress=_image_progress_line() if args.editor != "procedural" else None,
    )
    print(f"{report.accepted} of {report.variants} variants of {report.sources} pairs kept")
    print(f"rejected edits: {dict(report.rejected) or 'none'}; rejected captions: {dict(report.caption_rejections)}")
    print(
        f"caption fallbacks {report.caption_fallbacks}; resumed {report.resumed}; skipped {report.skipped_sources[:3]}"
    )
    asked = getattr(editor, "name", args.editor)
    others = {name: n for name, n in report.editors.items() if name != asked}
    if others:
        made = ", ".join(f"{n} by {name}" for name, n in sorted(others.items()))
        why = " (shapes-change pairs are re-rendered by the shapes-scene editor)" if "shapes-scene" in others else ""
        print(f"note: --editor {args.editor} ({asked}) did not make every variant: {made}{why}")
    print(f"variants by editor: {dict(report.editors)}")
    print(f"-> {Path(args.out) / 'manifest.jsonl'} (sources and variants; variants only: synthetic.jsonl)")


def _image_progress_line():
    """Each edited batch with its rate and an estimate of what is left: a diffusion editor on a CPU is slow."""

    def report(done, total, seconds):
        rate = seconds / max(done, 1)
        left = rate * (total - done)
        print(
            f"edit: image {done}/{total}, {rate:.1f} s per image, about {_duration(left)} left",
            file=sys.stderr,
            flush=True,
        )

    return report


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cmd_references(args):
    from dataclasses import asdict

    from idc_engine.data.manifest import read_manifest, write_manifest
    from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig
    from idc_engine.synth.references import ReferenceConfig, add_instruction_references

    config = config_from_arguments(args, ReferenceConfig)
    device = {"device": args.device} if args.device else {}
    llm = config_from_arguments(args, LLMVariatorConfig, "llm", model_path=args.variator, mode="instructions", **device)
    pairs, report = add_instruction_references(
        read_manifest(args.manifest), LLMVariator(llm), config, progress=_progress_line("references")
    )
    out = Path(args.out)
    write_manifest(pairs, out)
    report_path = out.with_name(out.stem + ".report.json")
    from idc_engine.provenance import provenance

    record = provenance(config=asdict(config), seed=config.seed, variator=llm.to_dict(), report=report.to_dict())
    report_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"{report.pairs} {config.split} pairs: {report.kept} of {report.asked} variations kept, {report.short} short")
    print(f"rejected lines by reason: {dict(report.rejected) or 'none'}; {report.generate_calls} generate calls")
    if report.without_instruction:
        missing = report.without_instruction
        print(f"no instruction nor caption: {len(missing)} pairs, e.g. {missing[:3]}")
    print(f"-> {out} (references: the instruction and its variations); report: {report_path}")


def _progress_line(what):
    def report(done, total):
        if done == total or done % max(1, total // 10) == 0:
            print(f"{what}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def _cmd_demo(args):
    from idc_engine.demo import DemoConfig, run_demo

    run_demo(config_from_arguments(args, DemoConfig), args.out)
    if args.photos:
        from idc_engine.demo_photos import PhotoDemoConfig, run_photo_demo

        run_photo_demo(config_from_arguments(args, PhotoDemoConfig, prefix="photos"), Path(args.out) / "photos")


def _cmd_pretrain_tiny(args):
    from idc_engine.pretrain import PretrainConfig, pretrain_tiny

    pretrain_tiny(config_from_arguments(args, PretrainConfig), args.out)


def _cmd_pretrain_tiny_photo(args):
    from idc_engine.pretrain import PhotoPretrainConfig, pretrain_tiny_photo

    config = config_from_arguments(args, PhotoPretrainConfig)
    pretrain_tiny_photo(config, args.out, work_dir=args.work_dir, resume=args.resume)


def build_parser() -> argparse.ArgumentParser:
    from idc_engine.data.photo_edits import PhotoEditsConfig
    from idc_engine.data.shapes_change import ShapesChangeConfig
    from idc_engine.demo import DemoConfig
    from idc_engine.demo_photos import PhotoDemoConfig
    from idc_engine.inference.caption import GenerationConfig
    from idc_engine.metrics.baselines import BaselineConfig
    from idc_engine.model.config import BLIP2IDCConfig, LoraSettings
    from idc_engine.pretrain import PhotoPretrainConfig, PretrainConfig
    from idc_engine.synth.augment import SynedConfig
    from idc_engine.synth.ip2p import InstructPix2PixConfig
    from idc_engine.synth.llm_variator import LLMVariatorConfig
    from idc_engine.synth.quality import QualityConfig
    from idc_engine.synth.references import ReferenceConfig
    from idc_engine.train.augment import AugmentConfig
    from idc_engine.train.config import TrainConfig

    parser = argparse.ArgumentParser(prog="idc", description="Image Difference Captioning with BLIP2IDC")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("make-benchmark", help="write a procedural benchmark (PNGs and a manifest)")
    bench.add_argument("name", choices=["shapes-change", "photo-edits"])
    bench.add_argument("--out", required=True, help="output folder")
    bench.add_argument("--train", type=int, required=True, help="training pairs")
    bench.add_argument("--test", type=int, required=True, help="test pairs")
    bench.add_argument("--validation", type=int, default=0, help="validation pairs")
    add_config_arguments(bench, ShapesChangeConfig)
    add_config_arguments(bench, PhotoEditsConfig, prefix="photo")
    bench.add_argument("--workers", type=int, default=1, help="photo-edits: processes that make pairs")
    bench.set_defaults(func=_cmd_make_benchmark)

    from idc_engine.data.importing import IMPORT_FORMATS

    importer = commands.add_parser(
        "import", help="read a public IDC format (or two folders of images) into a JSONL manifest"
    )
    importer.add_argument("format", choices=IMPORT_FORMATS)
    importer.add_argument(
        "source",
        help="the annotation file or folder; a manifest; the shapes-change output folder; "
        "for image-folders, the folder of originals",
    )
    importer.add_argument(
        "--images-dir", default=None, help="folder of the images (for image-folders: of the edited images)"
    )
    importer.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a format's own option, repeatable (e.g. split=train, check_images=false); values are read as JSON",
    )
    importer.add_argument("--out", required=True, help="manifest to write (image paths relative to it)")
    importer.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    importer.set_defaults(func=_cmd_import)

    model_help = "model folder or hub id, an adapter folder, 'tiny' (the embedded pretrained preset) or 'tiny-scratch'"
    base_help = "base model of an adapter --model made on another machine (folder, hub id or 'tiny')"

    train = commands.add_parser("train", help="fine-tune BLIP2IDC on a manifest's train split")
    train.add_argument("--manifest", required=True, help="JSONL manifest (train and validation splits are used)")
    train.add_argument("--out", required=True, help="run folder: checkpoints/ and model/")
    train.add_argument("--model", default="tiny", help=model_help)
    train.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    train.add_argument("--base-model", default=None, help=base_help)
    train.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    train.add_argument(
        "--overwrite", action="store_true", help="replace the checkpoints and model of an earlier run in --out"
    )
    add_config_arguments(train, TrainConfig)
    add_config_arguments(train, LoraSettings, prefix="lora")
    add_config_arguments(train, AugmentConfig, prefix="augment")
    add_config_arguments(train, BLIP2IDCConfig, prefix="idc")
    train.set_defaults(func=_cmd_train)

    caption = commands.add_parser("caption", help="caption a manifest split with a model")
    caption.add_argument("--manifest", required=True)
    caption.add_argument("--model", default="tiny", help=model_help)
    caption.add_argument("--adapter", default=None, help="LoRA adapter folder to apply on --model")
    caption.add_argument("--split", default="test", choices=["train", "validation", "test", "unlabeled"])
    caption.add_argument("--out", required=True, help="predictions JSONL: {'id': ..., 'caption': ...} per line")
    caption.add_argument("--device", default=None)
    caption.add_argument("--base-model", default=None, help=base_help)
    caption.add_argument("--skip-bad-images", action="store_true", help="skip and count unreadable pairs")
    add_config_arguments(caption, GenerationConfig)
    caption.set_defaults(func=_cmd_caption)

    evaluate = commands.add_parser("evaluate", help="score predictions (BLEU, METEOR, ROUGE-L, CIDEr-D)")
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--predictions", required=True, help="predictions JSONL written by `idc caption`")
    evaluate.add_argument("--split", default="test", choices=["validation", "test"])
    evaluate.add_argument(
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the mean-sentence and nearest-neighbour baselines",
    )
    evaluate.add_argument("--out", default=None, help="write the full report as JSON")
    add_config_arguments(evaluate, BaselineConfig, prefix="baseline")
    evaluate.set_defaults(func=_cmd_evaluate)

    syned = commands.add_parser("augment", help="Syned: edited variants of a manifest's pairs, with captions")
    syned.add_argument("--manifest", required=True, help="JSONL manifest; its train split is augmented")
    syned.add_argument("--out", required=True, help="folder: images/, synthetic.jsonl, manifest.jsonl, report.json")
    syned.add_argument(
        "--editor", default="procedural", help="'procedural' (offline) or a local InstructPix2Pix checkpoint folder"
    )
    syned.add_argument("--variator", default="template", help="'template' (offline) or a local causal-LM folder")
    syned.add_argument("--device", default=None, help="cuda or cpu for the editor and variator models")
    add_config_arguments(syned, SynedConfig)
    add_config_arguments(syned, QualityConfig, prefix="quality")
    add_config_arguments(syned, InstructPix2PixConfig, prefix="ip2p", skip=("device",))
    syned.set_defaults(func=_cmd_augment)

    refs = commands.add_parser(
        "references", help="the paper's test references: each pair's instruction and 4 LLM variations of it"
    )
    refs.add_argument("--manifest", required=True, help="JSONL manifest; the pairs of --split get the references")
    refs.add_argument("--variator", required=True, help="local causal-LM folder (the paper: Llama-2-7b-chat)")
    refs.add_argument("--out", required=True, help="manifest to write (a report .report.json beside it)")
    refs.add_argument("--device", default=None, help="cuda or cpu for the LLM")
    add_config_arguments(refs, ReferenceConfig)
    add_config_arguments(refs, LLMVariatorConfig, prefix="llm", skip=("model_path", "mode", "device"))
    refs.set_defaults(func=_cmd_references)

    calibrate = commands.add_parser(
        "calibrate-no-change",
        help="calibrate a model's 'no change' decision on validation pairs and save it in the model's folder",
    )
    calibrate.add_argument("--model", required=True, help="checkpoint or adapter folder (its idc_config.json)")
    calibrate.add_argument("--manifest", required=True)
    calibrate.add_argument("--split", default="validation", choices=["train", "validation"])
    calibrate.add_argument("--no-change-captions", nargs="+", default=None, help="set the model's no-change sentences")
    calibrate.add_argument(
        "--difference-prior", default="auto", choices=["auto", "yes", "no"], help="combine with the pixel prior"
    )
    calibrate.add_argument("--device", default=None)
    calibrate.add_argument("--base-model", default=None, help="the base of an adapter made on another machine")
    calibrate.set_defaults(func=_cmd_calibrate_no_change)

    demo = commands.add_parser("demo", help="benchmark, adapt the tiny model, caption, evaluate: end to end on CPU")
    demo.add_argument("--out", default="runs/demo", help="demo folder")
    add_config_arguments(demo, DemoConfig)
    demo.add_argument(
        "--photos",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="then caption held-out photographs with 'tiny-photo' (no training; under <out>/photos)",
    )
    add_config_arguments(demo, PhotoDemoConfig, prefix="photos")
    demo.set_defaults(func=_cmd_demo)

    pretrain = commands.add_parser("pretrain-tiny", help="reproduce the embedded tiny checkpoint from scratch")
    pretrain.add_argument("--out", required=True, help="folder for the pretrained checkpoint")
    add_config_arguments(pretrain, PretrainConfig)
    pretrain.set_defaults(func=_cmd_pretrain_tiny)

    photo = commands.add_parser("pretrain-tiny-photo", help="reproduce the embedded tiny-photo checkpoint from scratch")
    photo.add_argument("--out", required=True, help="folder for the pretrained checkpoint")
    photo.add_argument("--work-dir", default=None, help="keeps the pairs and checkpoints (default: a temporary folder)")
    photo.add_argument("--resume", action="store_true", help="continue the run in --work-dir from its last checkpoint")
    add_config_arguments(photo, PhotoPretrainConfig)
    photo.set_defaults(func=_cmd_pretrain_tiny_photo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        from idc_engine.errors import IDCError

        if isinstance(exc, (IDCError, ValueError, FileNotFoundError)):
            print(f"idc {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
