"""Grid factors of a run, for ``--by``: the value a run takes on ``model``, ``protocol``, ``constitution``, ...

A factor is read from the run's stored configuration (the cell it fills), from the metadata of its starting file,
or from the experiment it belongs to:

- ``model``, ``protocol`` and every run setting (``seed``, ``temperature``, ``max_tokens``, ``templates``, ...:
  :class:`~stability.vocabulary.RunSettings`): the run's configuration;
- ``constitution``: the starting file, relative to the library folder when it lies in one (``(blank)`` without);
- ``condition``: from the starting file's metadata (``contradictory`` when it lists clashes; ``unlabelled``
  without metadata);
- ``experiment``: the experiment id (``(none)`` for a run outside every experiment);
- any protocol option by name (``max_steps``, ``declines_to_stop``, ...), also written ``options.NAME``: the run's
  value, else the protocol's default.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from stability.analysis.consistency import condition_of
from stability.analysis.corpus import Corpus, RunChain
from stability.errors import StabilityError
from stability.vocabulary.settings import defaults as settings_defaults

#: a run's settings (:mod:`stability.vocabulary.settings`) with their defaults: a run's config leaves the later ones
#: out at their defaults, and runs stored before a setting existed had its default
CONFIG_DEFAULTS: dict[str, Any] = settings_defaults()
CONFIG_FACTORS = ("model", "protocol", *CONFIG_DEFAULTS)
BUILT_IN = (*CONFIG_FACTORS, "constitution", "condition", "experiment")


def parse_by(value: str | None) -> list[str]:
    """``model,temperature`` -> ["model", "temperature"] (empty for None)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@functools.lru_cache(maxsize=4096)  # a grid names each starting file in many cells
def constitution_name(path: str | None) -> str:
    if not path:
        return "(blank)"
    parts = PurePath(path).parts
    if "constitutions" in parts:
        index = len(parts) - 1 - parts[::-1].index("constitutions")
        return "/".join(parts[index + 1:])
    return PurePath(path).name


def _option_defaults(protocol: str) -> dict[str, Any]:
    from stability.protocols import protocol_class

    try:
        return protocol_class(protocol).Options().model_dump(mode="json")
    except Exception:  # an unregistered protocol, or options that cannot be built without values
        return {}


def factor_value(chain: RunChain, factor: str, corpus: Corpus, experiments: Mapping[str, str]) -> Any:
    config = chain.config
    if factor == "model":
        return config.get("model", chain.model)
    if factor == "protocol":
        return config.get("protocol", chain.protocol)
    if factor in CONFIG_FACTORS:
        return config.get(factor, CONFIG_DEFAULTS.get(factor))
    if factor == "constitution":
        return constitution_name(config.get("constitution"))
    if factor == "condition":
        return condition_of(corpus.metadata.get(chain.start)) or "unlabelled"
    if factor == "experiment":
        return experiments.get(chain.run_id, "(none)")
    name = factor.removeprefix("options.")
    options = config.get("options") or {}
    if name in options:
        return options[name]
    return _option_defaults(chain.protocol).get(name)


def check_factors(factors: list[str], corpus: Corpus) -> None:
    """A factor that is neither built in nor an option of any analysed run is a one-line error."""
    known = set(BUILT_IN)
    for chain in corpus.runs:
        known |= set(chain.config.get("options") or {}) | set(_option_defaults(chain.protocol))
    for factor in factors:
        if factor not in known and factor.removeprefix("options.") not in known:
            raise StabilityError(f"--by {factor!r}: not a factor of these runs; known are {', '.join(sorted(known))}")


def group_key(chain: RunChain, factors: list[str], corpus: Corpus, experiments: Mapping[str, str]) -> dict[str, Any]:
    return {factor: factor_value(chain, factor, corpus, experiments) for factor in factors}


def key_text(key: Mapping[str, Any]) -> str:
    """A key as one short label: ``model=a, temperature=0.7`` (``all runs`` for the empty key)."""
    if not key:
        return "all runs"
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in key.items())
