"""The recipe probe's runs: which short teacher trainings the workflow's ``probe`` target runs.

A probe *setting* is a set of overrides of the config's ``training`` section, e.g. ``{"lr": 1e-4}``
or ``{"lr": 5e-4, "warmup_fraction": 0.1}``. Each setting trains the teacher architecture
(``model.teacher``) for the probe's own ``token_budget`` in its own run folder, named after its
values (:func:`setting_name`), so adding a setting trains only that one::

    from babyteach.probe import probe_runs
    runs = probe_runs([{"lr": 1e-4}, {"lr": 5e-4}], config["training"], token_budget=4_000_000,
                      block_size=128)
    runs["lr-0.0001"]   # config["training"] with lr 1e-4 and the probe's budget, cadence keys left out

Settings are validated here, at workflow start-up, with errors naming ``probe.settings[i].<key>``.
This module imports neither torch nor pandas: the workflow calls it on every ``snakemake`` call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from babyteach.errors import InputError
from babyteach.train_config import CADENCE_KEYS, TrainConfig

#: ``training`` keys a probe setting may not set, and why: the run length and the dev-loss
#: yardstick must be the same for every setting, and the cadence comes from the probe section.
FIXED_KEYS: dict[str, str] = {
    "epochs": "every probe run trains probe.token_budget tokens",
    "token_budget": "set probe.token_budget instead",
    "dev_blocks": "every setting is measured on the same dev blocks (training.dev_blocks)",
    **{key: "a logging cadence (probe.eval_every sets the dev-loss points)" for key in CADENCE_KEYS},
}

#: The folder name of the empty setting ``{}``: the training section as configured.
BASE_NAME = "base"

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+")


def _value_text(value: Any) -> str:
    """A value as it appears in a folder name: the shortest exact float (``repr``), YAML spellings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def setting_name(overrides: Mapping[str, Any]) -> str:
    """The run folder name of a setting: ``key-value`` pairs in key order joined by ``_``
    (``lr-0.0005_warmup_fraction-0.1``), or :data:`BASE_NAME` for no overrides.

    Derived from the values, not the position in the list, so reordering or adding settings
    leaves the other runs' folders (and finished trainings) in place.
    """
    if not overrides:
        return BASE_NAME
    return "_".join(f"{key}-{_value_text(overrides[key])}" for key in sorted(overrides))


def settable_keys(training: Mapping[str, Any]) -> list[str]:
    """The ``training`` keys a probe setting may override: every key but :data:`FIXED_KEYS`."""
    return sorted(key for key in training if key not in FIXED_KEYS)


def probe_training(training: Mapping[str, Any], overrides: Mapping[str, Any], token_budget: int) -> dict[str, Any]:
    """The training values of one probe run: ``training`` with ``overrides`` applied, the probe's
    token budget instead of epochs, and no cadence keys (the job passes those untracked)."""
    values = {key: value for key, value in training.items() if key not in CADENCE_KEYS}
    return {**values, **overrides, "epochs": None, "token_budget": token_budget}


def _check_setting(
    index: int, overrides: Any, training: Mapping[str, Any], token_budget: int, block_size: int
) -> tuple[str, dict[str, Any]]:
    """One setting's run name and training values; InputError naming ``probe.settings[index].<key>`` if it
    is bad."""
    where = f"probe.settings[{index}]"
    if not isinstance(overrides, Mapping):
        raise InputError(
            f"{where}: must be a mapping of training keys to values, e.g. {{lr: 0.0001}}; got {overrides!r}"
        )
    valid = settable_keys(training)
    for key in overrides:
        if key in FIXED_KEYS:
            raise InputError(f"{where}.{key}: a probe setting cannot set {key!r} ({FIXED_KEYS[key]})")
        if key not in training:
            raise InputError(f"{where}.{key}: not a training key; a setting overrides some of: {', '.join(valid)}")
    values = probe_training(training, overrides, token_budget)
    try:
        checked = TrainConfig(**values, block_size=block_size)
    except InputError as error:  # "training.<key>: must be …": name the setting's key instead
        message = str(error)
        match = re.match(r"training\.(\w+)", message)
        if match and match.group(1) in overrides:
            raise InputError(f"{where}.{message.removeprefix('training.')}") from None
        raise InputError(f"{where}: {message}") from None
    # the values as TrainConfig reads them: a number written as text ("1e-3") names and trains as 0.001
    overrides = {key: getattr(checked, key) for key in overrides}
    values = probe_training(training, overrides, token_budget)
    name = setting_name(overrides)
    if not _NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"{where}: the values {dict(overrides)!r} do not make a folder name ({name!r}); use "
            "numbers, booleans or plain words"
        )
    return name, values


def probe_runs(
    settings: Sequence[Any], training: Mapping[str, Any], token_budget: int, block_size: int
) -> dict[str, dict[str, Any]]:
    """Run name (:func:`setting_name`) → training values (:func:`probe_training`) of every setting,
    in the configured order.

    ``training`` is the config's full ``training`` section (schema defaults filled in). Raises
    InputError naming ``probe.settings[i].<key>`` for a key that is not a training key, one the
    probe fixes (:data:`FIXED_KEYS`) or a bad value, and naming both settings when two train the
    same run.
    """
    if not settings:
        raise InputError("probe.settings: give at least one setting, e.g. [{lr: 0.0001}, {lr: 0.0005}]")
    runs: dict[str, dict[str, Any]] = {}
    first_index: dict[str, int] = {}
    for index, overrides in enumerate(settings):
        name, values = _check_setting(index, overrides, training, token_budget, block_size)
        same = next((other for other, seen in runs.items() if seen == values), None)
        if same is not None:
            raise InputError(
                f"probe.settings[{index}]: trains the same run as probe.settings[{first_index[same]}] "
                f"({same}); remove one"
            )
        runs[name], first_index[name] = values, index
    return runs
