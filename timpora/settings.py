"""Timpora's settings, built once at an edge (the CLI, the service, the closed loop) and passed down.

Every setting is declared once: the service's part (paths, the tracking store,
`serving`, `drift`, `dataset`) in `serving.settings.ServiceSettings`; training and the
simulated world here. Sources, precedence and the home folder: see
`serving.settings`. `timpora settings` prints the values in force.
"""

from __future__ import annotations

from pydantic import Field, ValidationError

from serving.settings import ServiceSettings, SettingsError, describe_error
from simulator.world import WorldConfig
from training.settings import TrainingSettings


class Settings(ServiceSettings):
    """Everything: the service's settings plus training and the simulated world."""

    training: TrainingSettings = Field(default_factory=TrainingSettings)
    simulation: WorldConfig = Field(default_factory=WorldConfig)


def load_settings() -> Settings:
    """Settings from the environment and files; SettingsError names each bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(f"invalid settings: {describe_error(error)}") from None
