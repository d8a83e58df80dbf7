"""A local, faithful HTTPS emulator of Azure Resource Manager (Microsoft.Compute scale sets) for the
real azure-mgmt-compute SDK. See emulator/README.md."""

from .clock import Clock
from .replay import Exchange
from .service import Emulator

__all__ = ["Clock", "Emulator", "Exchange"]
