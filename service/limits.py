"""The server's request limits: each is a setting, and a refusal names it.

Every limit of ``latent.settings.Settings`` (``max_top_k``, ``max_terms``,
``max_expression_chars``, ``max_steps``, ``max_import_rows``) is checked here with a
message that names both the limit and the setting that changes it, e.g.
``top_k must be between 1 and 1000 (ASSETSEARCH_MAX_TOP_K), got 5000``.
"""

from __future__ import annotations

from latent.errors import InvalidArgument
from latent.settings import Settings


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``max_top_k`` -> ``ASSETSEARCH_MAX_TOP_K``."""
    return (Settings.model_config.get("env_prefix") or "") + field.upper()


def check_range(name: str, value: int, low: int, field: str, settings: Settings) -> None:
    """Refuse ``value`` unless ``low <= value <= settings.<field>``.

    Args:
        name: The request field as the caller knows it ("top_k", "steps").
        value: The value asked for.
        low: The smallest accepted value.
        field: The settings field holding the upper limit.
        settings: The server's settings.

    Raises:
        InvalidArgument: the value is out of range (the message names the setting).
    """
    high = int(getattr(settings, field))
    if not low <= value <= high:
        raise InvalidArgument(
            f"{name} must be between {low} and {high} ({env_name(field)}), got {value}"
        )


def check_at_most(what: str, count: int, field: str, settings: Settings) -> None:
    """Refuse ``count`` items of ``what`` above the limit ``settings.<field>``.

    Raises:
        InvalidArgument: too many (the message names the setting).
    """
    high = int(getattr(settings, field))
    if count > high:
        raise InvalidArgument(f"at most {high} {what} ({env_name(field)}), got {count}")
