"""Export a Whisper checkpoint for the torch-free ONNX hand-off backend (:mod:`wakeword.asr.onnx_whisper`).

``wakeword export CHECKPOINT --task automatic-speech-recognition --out DIR``
loads a ``WhisperForConditionalGeneration`` (hub id or ``save_pretrained``
directory), exports it with optimum's ``automatic-speech-recognition-with-past``
task (encoder + merged decoder with key/value cache), quantizes both weights
to int8 with ONNX Runtime's ``quantize_dynamic`` (QInt8, per-channel scales; the
merged decoder's two branches are subgraphs, hence ``EnableSubgraph``), checks greedy decoding
on ONNX against transformers' ``generate`` and writes::

    encoder_model.onnx, decoder_model_merged.onnx            fp32
    encoder_model.int8.onnx, decoder_model_merged.int8.onnx  int8 weights
    tokenizer.json, tokenizer_config.json, config.json, generation_config.json, preprocessor_config.json
    parity.json     tokens and language, ONNX vs generate, per input
    manifest.json   format wakeword-onnx-whisper: files + sha256, special and language token ids, versions

``manifest.json`` is written last. Called through :func:`wakeword.export.command.export`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakeword.errors import ConfigError, ModelError
from wakeword.export import common
from wakeword.export.common import ASR_TASK
from wakeword.manifest import write_manifest

if TYPE_CHECKING:
    from collections.abc import Callable

    from wakeword.export.common import ExportOptions, ExportResult

__all__ = ["ASR_TASK", "export_whisper", "whisper_tokens"]

log = logging.getLogger(__name__)

OPTIMUM_TASK = "automatic-speech-recognition-with-past"
ENCODER, DECODER = "encoder_model", "decoder_model_merged"
SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
)
# Per-tensor int8 weights changed Whisper base's language on a Spanish command and words in three of
# five; per-channel scales kept every language right (models/examples/commands, see the README fragment).
PER_CHANNEL = True
PARITY_MAX_NEW_TOKENS = 64  # parity compares up to this many generated tokens per input


def whisper_tokens(generation_config: Any, config: Any) -> dict[str, Any]:
    """The manifest's ``tokens`` object from a Whisper generation config."""
    lang_to_id = getattr(generation_config, "lang_to_id", None) or {}
    task_to_id = getattr(generation_config, "task_to_id", None) or {}
    no_timestamps = getattr(generation_config, "no_timestamps_token_id", None)
    start = generation_config.decoder_start_token_id or config.decoder_start_token_id
    eos = generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, (list, tuple)) else eos
    if getattr(generation_config, "is_multilingual", bool(lang_to_id)) and not lang_to_id:
        raise ModelError("the checkpoint's generation config is multilingual but has no lang_to_id")
    if no_timestamps is None or "transcribe" not in task_to_id and lang_to_id:
        raise ModelError(
            "the checkpoint's generation config lacks no_timestamps_token_id or task_to_id; "
            "save one with the Whisper generation settings"
        )
    return {
        "start_of_transcript": int(start),
        "end_of_text": int(eos),
        "transcribe": int(task_to_id.get("transcribe", start + 1 if not lang_to_id else -1)),
        "no_timestamps": int(no_timestamps),
        "languages": {token.strip("<|>"): int(i) for token, i in sorted(lang_to_id.items(), key=lambda kv: kv[1])},
        "suppress": [int(t) for t in (generation_config.suppress_tokens or [])],
        "begin_suppress": [int(t) for t in (generation_config.begin_suppress_tokens or [])],
    }


def _load(transformers: Any, source: str, is_local: bool) -> tuple[Any, Any, Any]:
    from wakeword.export.common import load_config, one_line

    config, where = load_config(transformers, source, is_local)
    if getattr(config, "model_type", None) != "whisper":
        raise ModelError(
            f"{source}: model type {getattr(config, 'model_type', None)!r} is not whisper; "
            f"--task {ASR_TASK} exports Whisper checkpoints only"
        )
    try:
        extractor = transformers.WhisperFeatureExtractor.from_pretrained(source)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
        model = transformers.WhisperForConditionalGeneration.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load {where} as a Whisper checkpoint with its tokenizer: {one_line(e)}") from e
    model.eval()
    return extractor, tokenizer, model


@dataclass(frozen=True)
class _Whisper(common.Checkpoint):
    """A loaded Whisper checkpoint."""

    tokenizer: Any
    tokens: dict[str, Any]  # the manifest's special and language token ids


def export_whisper(
    model: str,
    out: Path,
    options: ExportOptions,
    source: str,
    is_local: bool,
    progress: Callable[[str], None] | None,
) -> ExportResult:
    """The ``automatic-speech-recognition`` branch of :func:`wakeword.export.command.export`."""
    if options.window_samples is not None:
        raise ConfigError("--window-ms applies to audio classifiers, not to automatic-speech-recognition")
    if is_local:
        model_type = common.peek_model_type(Path(source))
        if model_type != "whisper":
            raise ModelError(
                f"{source}: model type {model_type!r} is not whisper; "
                f"--task {ASR_TASK} exports Whisper checkpoints only"
            )

    stages = common.Stages(5 if options.quantize == "int8" else 4, progress)
    stages(f"loading {model} with transformers")
    stack = common.import_export_stack()
    torch, transformers = stack["torch"], stack["transformers"]
    whisper = _load_whisper(transformers, model, source, is_local)
    with common.staging_dir(out) as staging:
        with common.quiet_export_chatter(), common.transformers_errors_only(transformers):
            models = _export_onnx(whisper, stack, staging, options, stages)
        _save_tokenizer(whisper, staging)

        names = sorted(p.name for p in staging.iterdir() if p.is_file())
        manifest = _manifest(whisper, models, options, common.file_records(staging, names))
        write_manifest(staging / "manifest.json", manifest)  # lets the runtime read the staging dir for parity

        stages("checking greedy decoding on ONNX against transformers' generate")
        with common.transformers_errors_only(transformers):
            parity = _parity(whisper.hf_model, staging, models, options, whisper.features, torch)
        write_manifest(staging / "parity.json", parity)
        names.append("parity.json")
        manifest["files"].update(common.file_records(staging, ["parity.json"]))
        manifest["parity"] = {k: v for k, v in parity.items() if k != "per_input"}

        stages("writing manifest.json")
        common.install(staging, out, names, manifest)
    sizes = {n: (out / n).stat().st_size for n in names if n.endswith(".onnx") or n.endswith(".onnx_data")}
    stages.done(", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in sizes.items()))
    return common.ExportResult(out_dir=out, manifest=manifest, parity=parity, files=sizes)


def _load_whisper(transformers: Any, model: str, source: str, is_local: bool) -> _Whisper:
    from wakeword.export import classifier as ex

    with common.transformers_errors_only(transformers):
        extractor, tokenizer, hf_model = _load(transformers, source, is_local)
    config = hf_model.config
    features = ex.feature_options(ex.SUPPORTED_MODEL_TYPES["whisper"], extractor, config, model)
    common.check_sample_rate(features, model)
    tokens = whisper_tokens(hf_model.generation_config, config)
    n_params = sum(p.numel() for p in hf_model.parameters())
    return _Whisper(model, is_local, hf_model, extractor, features, n_params, tokenizer, tokens)


def _export_onnx(
    whisper: _Whisper, stack: dict[str, Any], staging: Path, options: ExportOptions, stages: common.Stages
) -> dict[str, dict[str, str]]:
    """The encoder and the merged decoder, fp32 and unless ``--quantize none`` int8, in ``staging``: the
    manifest's ``models`` (precision -> part -> file name)."""
    stages(f"exporting encoder + merged decoder with past to ONNX with optimum ({whisper.n_params:,} parameters)")
    exported = common.export_with_optimum(stack, whisper, staging, OPTIMUM_TASK, options.opset)
    models: dict[str, dict[str, str]] = {"fp32": {}}
    for part in (ENCODER, DECODER):
        names = [p.name for p in exported.iterdir() if p.name.startswith(part + ".onnx")]
        if not names:
            raise ModelError(f"optimum wrote no {part}.onnx for {whisper.model}")
        for name in names:
            shutil.move(str(exported / name), staging / name)
        models["fp32"][part.split("_")[0]] = part + ".onnx"
    if options.quantize == "int8":
        stages("quantizing encoder and merged decoder weights to int8 (quantize_dynamic, QInt8)")
        models["int8"] = {}
        for part in (ENCODER, DECODER):
            src, dst = staging / f"{part}.onnx", staging / f"{part}.int8.onnx"
            common.quantize_int8(
                stack,
                src,
                dst,
                options,
                PER_CHANNEL,
                f"onnxruntime could not quantize {src.name} (try --quantize none)",
                use_external_data_format=src.stat().st_size > common.PROTOBUF_LIMIT,
                extra_options={"EnableSubgraph": True},
            )
            models["int8"][part.split("_")[0]] = dst.name
    return models


def _save_tokenizer(whisper: _Whisper, staging: Path) -> None:
    """The tokenizer and the configs the runtime reads (:data:`SIDE_FILES`), beside the ONNX files."""
    hf_model = whisper.hf_model
    whisper.tokenizer.save_pretrained(staging / "tokenizer")
    whisper.extractor.save_pretrained(staging / "tokenizer")
    hf_model.config.save_pretrained(staging / "tokenizer")
    hf_model.generation_config.save_pretrained(staging / "tokenizer")
    for name in SIDE_FILES:
        if (staging / "tokenizer" / name).is_file():
            shutil.move(str(staging / "tokenizer" / name), staging / name)
    if not (staging / "tokenizer.json").is_file():
        raise ModelError(f"{whisper.model}: its tokenizer has no fast tokenizer.json (needed without transformers)")


def _manifest(
    whisper: _Whisper, models: dict[str, dict[str, str]], options: ExportOptions, files: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    from wakeword.features import feature_options_to_dict

    config = whisper.hf_model.config
    return {
        "format": "wakeword-onnx-whisper",
        "format_version": 1,
        "source": common.source_record(whisper.model, whisper.is_local, config),
        "task": ASR_TASK,
        "optimum_task": OPTIMUM_TASK,
        "architecture": type(whisper.hf_model).__name__,
        "model_type": "whisper",
        "parameters": int(whisper.n_params),
        "sampling_rate": whisper.features.sample_rate,
        "features": feature_options_to_dict(whisper.features),
        "models": models,
        "tokenizer": "tokenizer.json",
        "tokens": whisper.tokens,
        "max_target_positions": int(config.max_target_positions),
        "decoding": "greedy, temperature 0, <|notimestamps|>; language ID from the language-token "
        "softmax at the first step",
        "quantization": common.quantization_record(
            models, options, PER_CHANNEL, extra_options={"EnableSubgraph": True}
        ),
        "files": files,
        **common.provenance(),
    }


def _parity(
    hf_model: Any, model_dir: Path, models: dict[str, dict[str, str]], options: ExportOptions, features: Any, torch: Any
) -> dict[str, Any]:
    """Tokens and language of ONNX greedy decoding vs ``generate`` (greedy), first
    :data:`PARITY_MAX_NEW_TOKENS` generated tokens, on speech clips and random audio."""
    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber
    from wakeword.export.common import parity_inputs
    from wakeword.features import WhisperLogMel

    ours = {
        p: OnnxWhisperTranscriber(
            model_dir,
            compute_type="float32" if p == "fp32" else "int8",
            threads=1,
            max_new_tokens=PARITY_MAX_NEW_TOKENS,
            verify=False,
        )
        for p in models
    }
    extract = WhisperLogMel(features)
    rows = []
    for name, kind, audio in parity_inputs(options, 30 * features.sample_rate):
        reference, language = generate_reference(hf_model, extract(audio), torch, PARITY_MAX_NEW_TOKENS)
        row: dict[str, Any] = {
            "input": name,
            "kind": kind,
            "generate_language": language,
            "generate_tokens": len(reference),
        }
        for precision, transcriber in ours.items():
            ids, code, probability = transcriber.generate(audio)
            row[f"{precision}_language"] = code
            row[f"{precision}_language_probability"] = round(probability, 4)
            row[f"{precision}_tokens_equal"] = ids == reference
            row[f"{precision}_common_prefix"] = next(
                (i for i, (a, b) in enumerate(zip(ids, reference)) if a != b), min(len(ids), len(reference))
            )
            row[f"{precision}_text"] = transcriber.decode(ids)
        rows.append(row)
    summary = {"inputs": len(rows), "max_new_tokens": PARITY_MAX_NEW_TOKENS}
    for precision in ours:
        summary[f"{precision}_tokens_equal"] = sum(r[f"{precision}_tokens_equal"] for r in rows) / len(rows)
        summary[f"{precision}_language_equal"] = sum(
            r[f"{precision}_language"] == r["generate_language"] for r in rows
        ) / len(rows)
        log.info(
            "parity %s: tokens equal on %.0f%% of inputs, language on %.0f%%",
            precision,
            100 * summary[f"{precision}_tokens_equal"],
            100 * summary[f"{precision}_language_equal"],
        )
    return {**summary, "per_input": rows}


def generate_reference(
    hf_model: Any, features: Any, torch: Any, max_new_tokens: int | None = None, language: str | None = None
) -> tuple[list[int], str]:
    """transformers' greedy ``generate`` on log-mel ``features``: ``(tokens from <|startoftranscript|>
    on without the final <|endoftext|>, language code)``."""
    gen = hf_model.generation_config
    kwargs: dict[str, Any] = {"do_sample": False, "num_beams": 1, "return_timestamps": False}
    if getattr(gen, "lang_to_id", None):
        kwargs["task"] = "transcribe"
        if language is not None:
            kwargs["language"] = language
    if max_new_tokens is not None:
        kwargs["max_new_tokens"] = max_new_tokens
    with torch.no_grad():
        inputs = torch.from_numpy(features)
        generated = hf_model.generate(inputs, **kwargs)[0].tolist()  # the tokens after the prompt
        if getattr(gen, "lang_to_id", None):
            lang_id = gen.lang_to_id[f"<|{language}|>"] if language else int(hf_model.detect_language(inputs)[0])
            prompt = [gen.decoder_start_token_id, lang_id, gen.task_to_id["transcribe"], gen.no_timestamps_token_id]
        else:
            lang_id, prompt = None, [gen.decoder_start_token_id, gen.no_timestamps_token_id]
    eos = gen.eos_token_id
    if generated and generated[-1] == eos:
        generated = generated[:-1]
    lang_by_id = {i: t.strip("<|>") for t, i in (getattr(gen, "lang_to_id", None) or {}).items()}
    return prompt + generated, lang_by_id.get(lang_id, "en")
