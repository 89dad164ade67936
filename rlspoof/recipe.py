"""Recipes: YAML files whose keys are the fields of config dataclasses, and the field checks
those configs share.

TRL's convention, which we follow: a training config subclasses ``transformers.TrainingArguments``
(so accelerate, DeepSpeed, mixed precision, checkpointing and ``report_to`` are the library's),
fields are ``field(default, metadata={"help": ...})`` and ``__post_init__`` validates. A recipe is
flat YAML; ``TrlParser`` reads it as defaults and ``--set key=value`` pairs override them. We add
what TRL lacks: an unknown key is an error that names the key and the closest valid one, and
fields that hold YAML structure (a mapping, a list of mappings, which argparse cannot spell)
take the recipe's value as it is, never as text parsed again.

Each config lives beside what consumes it: ``ModelArguments`` in ``rlspoof.models.arguments``,
``DataArguments`` in ``rlspoof.data.arguments``, each trainer's config beside its trainer
(``rlspoof.trainers.sft_config``, ``grpo_config``, ``hybrid_config``, ``posttrain_config``,
``mldg_config``, ``pretrain_config``).
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from dataclasses import fields
from pathlib import Path

import yaml

from rlspoof.errors import ConfigError, RlspoofError


def one_of(name: str, value, valid) -> None:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, valid))}; got {value!r}")


def check_positive(name: str, value) -> None:
    """``value`` is a finite number > 0 (``nan <= 0`` is False, so a plain check lets NaN in)."""
    if not 0 < value < math.inf:
        raise ConfigError(f"{name} must be positive, got {value}")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: ``line 2, column 5: expected ',' or ']'``
    (the CLI promises one line per error; the line and column are all a user needs)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + str(getattr(exc, "problem", None) or exc).splitlines()[0]


def yaml_value(text: str, what: str):
    """``text`` parsed as YAML; a parse error is a ConfigError naming ``what`` (the field)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML ({yaml_problem(exc)}): {text!r}") from None


def check_training_args(args) -> None:
    """Checks every training config shares (fine-tuning and pre-training), before
    ``TrainingArguments`` reads them.

    ``max_steps: 0`` would silently train one step at learning rate 0 and a negative value
    other than -1 (the library's "unset: train ``num_train_epochs``") is a typo, so both are
    errors. Without an accelerator, pinned memory does nothing but make torch warn on every
    run, so it is switched off there.
    """
    if args.max_steps == 0 or args.max_steps < -1:
        raise ConfigError(f"max_steps must be a positive number of optimizer steps, or -1 to train "
                          f"num_train_epochs epochs; got {args.max_steps}")
    if args.max_steps == -1 and not args.num_train_epochs > 0:
        raise ConfigError(f"num_train_epochs must be > 0 (or set max_steps), got {args.num_train_epochs}")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(args, name)}")
    import torch

    if args.use_cpu or not torch.accelerator.is_available():
        args.dataloader_pin_memory = False


def check_output_dir(output_dir: str | Path, saved: str | Path, *, start: str | Path | None = None,
                     resuming: bool = False, overwrite: bool = False) -> None:
    """Refuse a run that would overwrite what the user has: the starting checkpoint (an
    ``output_dir`` equal to, inside or around ``model_name_or_path``: checkpoints and the final
    weights would land on it), or the model a finished run saved (``saved``, relative to
    ``output_dir``) unless the run resumes or ``overwrite_output_dir`` says to replace it."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file, not a folder")
    if start is not None and Path(start).exists():  # a hub id is not on this disk
        a, b = out.resolve(), Path(start).resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            where = "is" if a == b else "is inside" if a.is_relative_to(b) else "contains"
            raise ConfigError(f"output_dir {out} {where} model_name_or_path {start}: training would "
                              "overwrite the checkpoint it starts from; choose another output_dir")
    done = out / saved
    if done.exists() and not resuming and not overwrite:
        raise ConfigError(
            f"output_dir {out} holds a finished run ({done}); training again would replace it. "
            "Choose another output_dir, set resume_from_checkpoint to continue it, or set "
            "overwrite_output_dir: true (--overwrite) to replace it")


# --- loading ---------------------------------------------------------------------------------


def _valid_keys(dataclass_types) -> dict[str, type]:
    keys = {}
    for dc in dataclass_types:
        for f in fields(dc):
            if f.init:
                keys[f.name] = dc
    return keys


def check_keys(keys, dataclass_types, where: str) -> None:
    valid = _valid_keys(dataclass_types)
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _annotation(owner, key: str) -> list[str]:
    """A field's declared type as its ``|`` parts, e.g. ``["str", "None"]``. The class annotation
    is read because HfArgumentParser rewrites ``field.type`` in place (``str | None`` -> ``str``)."""
    for klass in owner.__mro__:
        annotations = inspect.get_annotations(klass)
        if key in annotations:
            return [part.strip() for part in str(annotations[key]).split("|")]
    return []


def _is_list_field(key: str, dataclass_types) -> bool:
    """A field that takes several values (``nargs``): every declared type but None is a list."""
    owner = _valid_keys(dataclass_types).get(key)
    kinds = [k for k in _annotation(owner, key) if k != "None"] if owner else []
    return bool(kinds) and all(k.startswith("list[") for k in kinds)


def _is_nullable(owner, key: str) -> bool:
    return any(k == "None" or "Optional" in k or "Any" in k for k in _annotation(owner, key))


def _is_structured(owner, key: str) -> bool:
    """A field that holds YAML structure argparse cannot spell (a mapping, a list of mappings):
    ``load_recipe`` gives it the recipe's (or ``--set``'s) value as it is."""
    return any(k.startswith(("dict", "list[dict")) for k in _annotation(owner, key))


def _split_overrides(items: list[str]) -> list[tuple[str, str, object]]:
    """``(key, text, YAML value)`` of each ``--set key=value``; a malformed item or value is a
    ConfigError naming it."""
    pairs = []
    for item in items:
        key, sep, value = str(item).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        pairs.append((key, value, yaml_value(value, f"--set {key}")))
    return pairs


def _parser_args(pairs: list[tuple[str, str, object]], dataclass_types) -> list[str]:
    args = []
    valid = _valid_keys(dataclass_types)
    for key, value, parsed in pairs:
        if parsed is None or (key in valid and _is_structured(valid[key], key)):
            continue
        if isinstance(parsed, list) and _is_list_field(key, dataclass_types):
            args += [f"--{key}", *(str(v) for v in parsed)]
        else:  # a quoted string loses its quotes, as in YAML; one token: it may start with "-"
            args.append(f"--{key}={parsed if isinstance(parsed, str) else value}")
    return args


def parse_overrides(items: list[str], dataclass_types=()) -> list[str]:
    """``["lr=1e-4", "w=[1,4]"]`` -> ``["--lr", "1e-4", "--w", "1", "4"]`` for the argument parser.

    A value is read as YAML, as it would be in the recipe: a list spreads into the values of a
    list field (``class_weights=[1,4]``); anything else is passed as written (a string as YAML
    reads it: ``'"@run"'`` is ``@run``), for the field's type to convert. ``key=null`` (or
    ``key=``) and structured fields (``augment=[{name: noise}]``) are left out here:
    ``load_recipe`` sets them itself, since the argument parser has no spelling for None, a
    mapping or a list of mappings.
    """
    return _parser_args(_split_overrides(items), dataclass_types)


def read_recipe(path: str | Path) -> dict:
    """A recipe file's mapping of keys, or a ConfigError naming the file (and the line of a
    YAML error): a missing file, a folder, bytes that are not UTF-8, or YAML that is a list or
    a scalar rather than a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', None) or yaml_problem(exc)})") from None
    if recipe is None:
        return {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping of config keys (key: value lines), "
                          f"got a {type(recipe).__name__}")
    return recipe


def _where_in_recipe(path: Path, message: str, set_keys=()) -> str:
    """``recipe.yaml:16: max_steps: invalid int value: 'ten'``: argparse's complaint about a key,
    pointed at the recipe line that set it (or at --set when the recipe does not)."""
    match = re.match(r"argument --(\w+)(?:/--[\w-]+)?: (.*)", message)
    if not match:
        return f"{path}: {message}"
    key, problem = match.groups()
    if key in set_keys:
        return f"--set {key}: {problem}"
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if re.match(rf"{key}\s*:", line):
            return f"{path}:{number}: {key}: {problem}"
    return f"--set {key}: {problem}"


def load_recipe(path: str | Path, dataclass_types, overrides: list[str] | None = None):
    """Parse a YAML recipe (plus ``key=value`` overrides) into instances of ``dataclass_types``.

    Uses TRL's ``TrlParser`` (YAML values become parser defaults, command-line values win), after
    checking every key so a typo is an error that suggests the right name. Structured fields
    (``_is_structured``) bypass the parser and reach their dataclass as the YAML value itself.
    """
    from trl import TrlParser

    path = Path(path)
    recipe = read_recipe(path)
    check_keys(recipe, dataclass_types, str(path))
    pairs = _split_overrides(overrides or [])
    args = _parser_args(pairs, dataclass_types)
    set_keys = [key for key, _, _ in pairs]
    check_keys(set_keys, dataclass_types, "--set")
    valid = _valid_keys(dataclass_types)
    for key, _, parsed in pairs:  # null (the recipe's value becomes None) and structured values
        if parsed is None or _is_structured(valid[key], key):
            recipe[key] = parsed

    def refuse(message: str):  # argparse would print a 150-line usage and exit
        raise ConfigError(_where_in_recipe(path, message, set_keys))

    for key, value in recipe.items():
        if value is None and not _is_nullable(valid[key], key):
            refuse(f"argument --{key}: cannot be null (give a value, or leave the key out)")
    structured = {key: recipe.pop(key) for key in list(recipe) if _is_structured(valid[key], key)}
    parser = TrlParser(dataclass_types)
    parser.error = refuse
    parser.set_defaults_with_config(**recipe)
    try:
        namespace = parser.parse_args(args=args)
        values = {**vars(namespace), **structured}
        return tuple(dtype(**{f.name: values[f.name] for f in fields(dtype) if f.init})
                     for dtype in dataclass_types)
    except RlspoofError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_resolved(configs, output_dir: str | Path) -> Path:
    """Write every resolved field to ``output_dir/recipe.resolved.yaml`` next to the checkpoint."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {}
    for cfg in configs:
        data = cfg.to_dict() if hasattr(cfg, "to_dict") else {f.name: getattr(cfg, f.name) for f in fields(cfg)}
        resolved.update({k: v for k, v in data.items() if not k.startswith("_")})
    path = out / "recipe.resolved.yaml"
    path.write_text(yaml.safe_dump(_plain(resolved), sort_keys=True))
    return path


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
