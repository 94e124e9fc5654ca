"""LightGBM parameters as a training config gives them, checked before anything is trained.

LightGBM refuses a bad value only when a booster is built, deep inside a run and
as a bare ``LightGBMError``, and it merely logs a name it does not know, then
trains without it. :func:`parameter_problems` says every problem of one parameter
mapping at once, when the config is read:

- the name must be one the installed LightGBM knows (its own table,
  :func:`dealscore._compat.lightgbm_parameters`; unchecked where that cannot be read);
- parameters dealscore sets itself are refused with the setting that controls them
  (:data:`SET_BY_DEALSCORE`): a value given here would be overridden in some fits
  and not in others;
- a parameter dealscore ships a default for must have that default's type (the
  models' ``DEFAULT_*_PARAMS`` are the statement of those types);
- every value is then put to LightGBM itself on a tiny dataset, so its own bounds
  apply (``num_leaves`` > 1, ``feature_fraction`` at most 1, ...) without being
  restated here.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import lightgbm as lgb
import numpy as np

from dealscore._compat import lightgbm_parameters
from dealscore.wording import is_kind, kind_text, setting_text

#: LightGBM parameters (main names; their aliases are refused alike) that dealscore sets on every fit, each with
#: what controls it instead. ``{section}`` is the config section (``win`` or ``stage``).
SET_BY_DEALSCORE: dict[str, str] = {
    "objective": "fixed by the model (binary for the win model, multiclass for the stage model)",
    "num_class": "fixed by the model (one class per stage of the taxonomy)",
    "metric": "fixed: boosters are early-stopped and chosen on log loss",
    "seed": "set seed at the top of the config",
    "num_threads": "set num_threads at the top of the config",
    "num_iterations": "set {section}.num_boost_round",
    "early_stopping_round": "set {section}.early_stopping_rounds",
}

PARAMETERS_PAGE = "https://lightgbm.readthedocs.io/en/stable/Parameters.html"

@cache
def _main_names() -> dict[str, str] | None:
    """Every name LightGBM answers to → its main name (None: the table cannot be read)."""
    table = lightgbm_parameters()
    if table is None:
        return None
    return {alias: main for main, names in table.items() for alias in names}


def main_name(name: str) -> str:
    """LightGBM's main name of a parameter given by any of its aliases (``reg_lambda`` → ``lambda_l2``)."""
    names = _main_names()
    return name if names is None else names.get(name, name)


def parameter_problems(params: Mapping[str, Any], where: str, *, defaults: Mapping[str, Any], section: str
                       ) -> list[str]:
    """Every problem of one mapping of LightGBM parameters, each naming ``where.<name>``, the value and the fix.

    ``defaults`` are the model's shipped parameters (their types are the types
    accepted); ``section`` names the config section, for the settings to use instead.
    """
    names = _main_names()
    problems: list[str] = []
    to_probe: dict[str, Any] = {}
    for name, value in params.items():
        key = str(name)
        main = main_name(key)
        if names is not None and key not in names:
            near = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"{where}: {key!r} is not a LightGBM parameter{hint}; see {PARAMETERS_PAGE}")
        elif main in SET_BY_DEALSCORE:
            problems.append(f"{where}.{key}: dealscore sets {main} itself, so it cannot be given here; "
                            f"{SET_BY_DEALSCORE[main].format(section=section)}")
        elif main in defaults and value is not None and not is_kind(value, type(defaults[main])):
            kind = type(defaults[main])
            problems.append(f"{where}.{key}: got {setting_text(value)}; accepts {kind_text(kind)} "
                            f"(the default is {setting_text(defaults[main])})")
        elif not isinstance(value, list | tuple) and main not in NAMES_FEATURES:
            to_probe[key] = value  # per-feature values need the real features: LightGBM checks those when it trains
    if to_probe and _lightgbm_refusal(to_probe, defaults):
        # the mapping as written is refused: name each parameter LightGBM refuses on its own, else the mix
        alone = {key: _lightgbm_refusal({key: value}, defaults) for key, value in to_probe.items()}
        named = [f"{where}.{key}: got {setting_text(to_probe[key])}; {why}" for key, why in alone.items() if why]
        problems.extend(named or [f"{where}: LightGBM refuses these parameters together "
                                  f"({', '.join(to_probe)}): {_lightgbm_refusal(to_probe, defaults)}"])
    return problems


#: Parameters whose values name or index the training data's features or files (``categorical_feature:
#: name:industry``): the tiny probe dataset has none of them, so LightGBM checks these when it trains.
NAMES_FEATURES = frozenset({"categorical_feature", "ignore_column", "weight_column", "group_column", "label_column",
                            "monotone_constraints", "interaction_constraints", "forcedsplits_filename",
                            "forcedbins_filename", "feature_contri", "cegb_penalty_feature_lazy",
                            "cegb_penalty_feature_coupled", "input_model", "output_model", "data", "valid"})

_CHECK = re.compile(r"Check failed: \((\w+)\) (\S+) \(([^)]*)\)")
_WHERE = re.compile(r"\s+at \S+, line \d+\s*\.?\s*$")


def _lightgbm_refusal(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> str | None:
    """What LightGBM says of parameters on a tiny dataset (None: it takes them).

    They go in beside the model's defaults (less those they replace, by any alias), as training would
    merge them, so a clash with a default shows, and a mix the user wrote on purpose (GOSS with bagging
    turned off) is taken as a whole. LightGBM's log is silenced: the message returned is the one that matters.
    """
    replaced = {main_name(k) for k in given}
    params = {k: v for k, v in defaults.items() if main_name(k) not in replaced}
    params.update({"verbose": -1, "num_threads": 1})
    params.update(given)
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    try:
        with _silenced():
            lgb.Booster(params=params, train_set=lgb.Dataset(X, label=y, params=params))
    except Exception as exc:  # LightGBMError, or the Python package's TypeError/ValueError for the value's type
        text = _WHERE.sub("", str(exc).strip())
        check = _CHECK.search(text)
        if check:
            return f"LightGBM requires {check.group(1)} {check.group(2)} {check.group(3)}"
        return f"LightGBM refuses it ({text})"
    return None


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """LightGBM's log silenced: its Python warnings and prints, and the "[Fatal]" line its C++ core writes to
    the process's standard error itself (file descriptor 2) before it raises."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        try:
            if sys.__stderr__ is not None:
                sys.__stderr__.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no descriptor 2 to borrow (an embedding host): the line shows, nothing else
            yield
            return
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)


__all__ = ["PARAMETERS_PAGE", "SET_BY_DEALSCORE", "main_name", "parameter_problems"]
