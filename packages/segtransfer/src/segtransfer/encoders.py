"""The encoder a fine-tuning starts from, and where it came from (for the report's cost axis).

Three sources, named by one string (``tools/finetune_seg.py --encoder``):

- a pre-training run directory: ``encoder.eqx`` + ``encoder.json`` (`vitcore.load_pretrained`) and the run's
  ``summary.json`` (`runloop.PretrainSummary`: method, model, dataset, steps, total_flops, kg_co2e) for provenance;
- a timm-format checkpoint file: ``.safetensors`` (needs the ``safetensors`` package) or ``.npz`` (numpy; keys are
  timm's names, or timm's names under a ``param/`` prefix as in vitcore's test fixture), loaded with
  `vitcore.from_timm` for a given preset, the classifier ``head.*`` dropped, with the input normalisation of its
  ``config.json`` (timm's ``pretrained_cfg``) or one given explicitly: never assumed (`timm_normalisation`);
- ``"scratch"``: a random initialisation of a preset (the study's from-scratch baseline; pre-training FLOPs 0).

Example::

    encoder, info = load_encoder("runs/mae-vit-test", image_size=64)
    encoder, info = load_encoder("scratch", model="vit-test", key=jr.key(0), image_size=64)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import vitcore
from jaxtyping import PRNGKeyArray
from runloop import PretrainSummary
from vitcore import ENCODER_CONFIG_FILE as CONFIG_FILE

from .records import EncoderInfo

__all__ = ["TIMM_CONFIG_FILE", "check_provenance", "encoder_identity", "encoder_kind",
           "load_encoder", "load_timm_state_dict", "timm_normalisation"]

_TIMM_SUFFIXES = (".safetensors", ".npz")
TIMM_CONFIG_FILE = "config.json"  # what timm / the Hugging Face hub ship beside the weights (``pretrained_cfg``)


def encoder_kind(spec: str) -> str:
    """"scratch", "run" (a directory with encoder.json) or "timm" (a .safetensors/.npz file); ValueError
    otherwise, naming the valid forms."""
    if spec == "scratch":
        return "scratch"
    path = Path(spec)
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise ValueError(
                f"encoder={spec!r} is a directory without {CONFIG_FILE}; expected a "
                "pre-training run directory (encoder.eqx + encoder.json + summary.json)"
            )
        return "run"
    if path.suffix in _TIMM_SUFFIXES:
        if not path.is_file():
            raise ValueError(f"encoder={spec!r}: file not found")
        return "timm"
    raise ValueError(
        f"encoder={spec!r}: expected 'scratch', a pre-training run directory, or a timm checkpoint file "
        f"ending in {' or '.join(_TIMM_SUFFIXES)}"
    )


def encoder_identity(spec: str) -> str | None:
    """A fingerprint of the encoder's files (sha256 of a run's ``encoder.json`` + ``encoder.eqx``, or of a timm
    file and the ``config.json`` beside it when there is one); None for ``"scratch"``. A run records it when it
    starts, so a resume can tell that the folder or file at the same path now holds another encoder."""
    kind = encoder_kind(spec)
    if kind == "scratch":
        return None
    path = Path(spec)
    files = ([path / CONFIG_FILE, path / vitcore.ENCODER_WEIGHTS_FILE] if kind == "run"
             else [path, *[p for p in (path.parent / TIMM_CONFIG_FILE,) if p.is_file()]])
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0".encode())
        try:
            with open(file, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
        except OSError as error:
            raise ValueError(f"encoder={spec!r}: cannot read {file} ({_short(error)})") from None
    return f"sha256:{digest.hexdigest()}"


def check_provenance(spec: str, *, allow_unknown_flops: bool = False,
                     allow_flag: str = "allow_unknown_flops=True") -> None:
    """A run directory without ``summary.json`` (an encoder saved by hand, a run that never finished) has no
    recorded method, model or pre-training FLOPs, so a result from it cannot sit on the FLOP axis: ValueError
    unless ``allow_unknown_flops`` (the report then leaves the point off the FLOP axis and the front, with a
    warning naming it). ``allow_flag``: how the caller's users spell that option (for the message)."""
    if allow_unknown_flops or encoder_kind(spec) != "run" or (Path(spec) / "summary.json").is_file():
        return
    raise ValueError(
        f"encoder={spec!r} has no summary.json, so its method, model and pre-training FLOPs are unknown; fine-tune "
        f"a finished pre-training run, or pass {allow_flag} to fine-tune it anyway (the report then leaves it off "
        "the FLOP axis)"
    )


Normalisation = tuple[tuple[float, ...], tuple[float, ...]]


def _mean_std(mean: object, std: object, where: str) -> Normalisation:
    try:
        pair = tuple(float(v) for v in mean), tuple(float(v) for v in std)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: mean={mean!r}, std={std!r}: expected lists of numbers") from None
    if len(pair[0]) != 3 or len(pair[1]) != 3 or not all(np.isfinite(pair[0])) or not all(
            v > 0 and np.isfinite(v) for v in pair[1]):
        raise ValueError(f"{where}: mean={list(pair[0])}, std={list(pair[1])}: expected 3 finite means and 3 "
                         "positive standard deviations (one per RGB channel, for [0, 1] pixels)")
    return pair


def timm_normalisation(path: str | Path, *, mean: object = None, std: object = None,
                       flags: str = "mean=/std=") -> Normalisation:
    """The input normalisation a timm weights file was trained with, never assumed: ``mean``/``std`` when given
    (both); else the ``config.json`` beside the file as timm and the Hugging Face hub ship it (its
    ``pretrained_cfg`` with ``mean``/``std``, or those keys at its top level); else ``mean``/``std`` arrays
    stored in an ``.npz`` beside its parameters (as ``tools/make_timm_fixture.py`` writes). ValueError naming
    ``flags`` (how the caller's users pass them, e.g. ``"--mean/--std"``) when none of these says."""
    path = Path(path)
    if (mean is None) != (std is None):
        raise ValueError(f"{flags}: give both the mean and the std, or neither")
    if mean is not None:
        return _mean_std(mean, std, flags)
    config_path = path.parent / TIMM_CONFIG_FILE
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{config_path} is not a valid timm config ({_short(error)})") from None
        cfg = config.get("pretrained_cfg", config) if isinstance(config, dict) else None
        if isinstance(cfg, dict) and "mean" in cfg and "std" in cfg:
            return _mean_std(cfg["mean"], cfg["std"], str(config_path))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "mean" in data.files and "std" in data.files:
                return _mean_std(data["mean"].tolist(), data["std"].tolist(), str(path))
    raise ValueError(
        f"encoder={str(path)!r}: its input normalisation is unknown (no {TIMM_CONFIG_FILE} with timm's "
        f"pretrained_cfg mean/std beside it); pass {flags} (e.g. ImageNet's 0.485 0.456 0.406 / 0.229 0.224 "
        "0.225, or 0.5 0.5 0.5 / 0.5 0.5 0.5 for timm's augreg ViTs)")


def load_timm_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """timm parameter name -> numpy array from a ``.safetensors`` or ``.npz`` file.

    In an ``.npz`` whose keys include ``param/...`` only those are read (prefix removed; other arrays, e.g. stored
    reference outputs, are ignored); otherwise every array is a parameter.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        if importlib.util.find_spec("safetensors") is None:
            raise ValueError(
                f"encoder={str(path)!r} is a .safetensors file but the safetensors package is not installed; "
                "pip install 'safetensors>=0.4,<1' (or pip install segtransfer[timm]) or convert it to .npz"
            )
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as error:  # noqa: BLE001  (safetensors' own error type: say which file, briefly)
            raise ValueError(f"{path} is not a valid .safetensors file ({_short(error)})") from error
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                names = list(data.files)
                if any(n.startswith("param/") for n in names):
                    return {n.removeprefix("param/"): data[n] for n in names if n.startswith("param/")}
                return {n: data[n] for n in names}
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
            # numpy says "allow_pickle" for any file that is not an .npz archive: not the problem here
            reason = "not a zip archive of arrays" if "pickle" in str(error) else _short(error)
            raise ValueError(f"{path} is not a valid .npz weights file ({reason})") from error
    raise ValueError(f"path={str(path)!r}: expected a .safetensors or .npz file")


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


def _summary(directory: Path) -> PretrainSummary | None:
    path = directory / "summary.json"
    if not path.is_file():
        return None  # an encoder saved by hand: provenance unknown, reported as nulls
    return PretrainSummary.read(path)  # ValueError naming the file when it is not a valid summary


def load_encoder(
    spec: str,
    *,
    model: str | None = None,
    key: PRNGKeyArray | None = None,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    normalisation_flags: str = "mean=/std=",
) -> tuple[vitcore.AbstractBackbone, EncoderInfo]:
    """A headless vitcore backbone (a run's: ViT or NFNet; timm files: ViT) and its `EncoderInfo` from ``spec``
    (see the module docstring).

    ``model``: the preset, needed for timm files and scratch; for a run it must match the run's model if given.
    ``key``: initialisation key, needed for scratch only. ``image_size``: a scratch encoder is built at this size;
    loaded encoders keep theirs (`segtransfer.create_segmenter` interpolates position embeddings). ``mean`` /
    ``std``: a timm file's input normalisation when its files do not say (`timm_normalisation`; an error naming
    ``normalisation_flags`` when unknown); a run directory records its own, and scratch uses the preset's.
    """
    kind = encoder_kind(spec)
    if (mean is not None or std is not None) and kind != "timm":
        raise ValueError(f"{normalisation_flags}: only a timm weights file takes a normalisation; encoder {spec!r} "
                         "has its own (a run records it, scratch uses its preset's)")
    if kind in ("timm", "scratch") and model not in vitcore.PRESETS:
        raise ValueError(f"model={model!r}: encoder {spec!r} needs a preset, one of {sorted(vitcore.PRESETS)}")
    if kind == "scratch":
        if key is None:
            raise ValueError("key=None: a scratch encoder needs an initialisation key")
        overrides = {} if image_size is None else {"image_size": image_size}
        encoder = vitcore.create(model, key=key, num_classes=0, **overrides)
        return encoder, EncoderInfo(kind="scratch", model=model, pretrain_flops=0.0, pretrain_steps=0)
    if kind == "timm":
        state = {k: v for k, v in load_timm_state_dict(spec).items() if not k.startswith("head.")}
        try:
            normalisation, unknown = timm_normalisation(spec, mean=mean, std=std, flags=normalisation_flags), None
        except ValueError as error:  # reported after the weights' own check: a foreign file is named as such
            normalisation, unknown = None, error
        try:
            given = {} if normalisation is None else {"mean": normalisation[0], "std": normalisation[1]}
            encoder = vitcore.from_timm(model, state, num_classes=0, **given)
        except (KeyError, ValueError) as error:  # a missing key, a wrong shape, an unused key: another model
            reason = error.args[0] if error.args else error
            raise ValueError(f"{spec} is not a valid timm checkpoint of {model} ({reason})") from error
        if unknown is not None:
            raise unknown
        return encoder, EncoderInfo(kind="timm", path=str(Path(spec).resolve()), model=model)
    directory = Path(spec)
    encoder = vitcore.load_pretrained(directory).without_head()
    summary = _summary(directory)
    run_model = None if summary is None else summary.model
    if model is not None and run_model is not None and model != run_model:
        raise ValueError(f"model={model!r} but the run {spec!r} pre-trained {run_model!r}; drop --model")
    if summary is None:
        return encoder, EncoderInfo(kind="run", path=str(directory.resolve()), model=model)
    info = EncoderInfo(kind="run", path=str(directory.resolve()), method=summary.method, model=run_model or model,
                       pretrain_dataset=summary.dataset, pretrain_steps=summary.steps,
                       pretrain_flops=summary.total_flops, pretrain_kg_co2e=summary.kg_co2e)
    return encoder, info
