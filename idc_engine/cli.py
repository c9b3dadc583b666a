"""The ``idc`` command line: make-benchmark, train, caption, evaluate, augment, demo, pretrain-tiny(-photo)."""

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
    idc_config = config_from_arguments(args, BLIP2IDCConfig, prefix="idc") if _any_given(args, "idc_") else None
    model = _load_model(args, idc_config, training=True)
    result = train(model, train_pairs, val_pairs, config, args.out, resume=args.resume, overwrite=args.overwrite)
    if not is_main_process():
        return
    print(f"{result.stopped} after {result.steps} steps; model saved to {result.model_dir}")
    if result.train_report and result.train_report.skipped:
        print(f"skipped training pairs: {result.train_report.summary()}")
    if any(result.unreferenced.values()):
        print(f"left out, no reference captions: {result.unreferenced}")


def _any_given(args, prefix):
    return any(v is not None for k, v in vars(args).items() if k.startswith(prefix))


def _cmd_caption(args):
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.pair import split_pairs
    from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs

    pairs = split_pairs(read_manifest(args.manifest), args.split)
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


def _cmd_augment(args):
    from idc_engine.data.manifest import read_manifest
    from idc_engine.synth.augment import SynedConfig, augment, load_editor, load_variator
    from idc_engine.synth.quality import QualityConfig

    config = config_from_arguments(args, SynedConfig, quality=config_from_arguments(args, QualityConfig, "quality"))
    pairs = read_manifest(args.manifest)
    report = augment(
        pairs,
        args.out,
        config,
        editor=load_editor(args.editor, device=args.device),
        variator=load_variator(args.variator, device=args.device),
        progress=_progress_line("augment"),
    )
    print(f"{report.accepted} of {report.variants} variants of {report.sources} pairs kept")
    print(f"rejected edits: {dict(report.rejected) or 'none'}; rejected captions: {dict(report.caption_rejections)}")
    print(
        f"caption fallbacks {report.caption_fallbacks}; resumed {report.resumed}; skipped {report.skipped_sources[:3]}"
    )
    print(f"-> {Path(args.out) / 'manifest.jsonl'} (sources and variants; variants only: synthetic.jsonl)")


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
    from idc_engine.synth.quality import QualityConfig
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
    caption.add_argument("--split", default="test", choices=["train", "validation", "test"])
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
    syned.set_defaults(func=_cmd_augment)

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
