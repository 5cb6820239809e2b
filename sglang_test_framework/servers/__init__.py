"""Launching and stopping SGLang servers, simulated servers and the SGLang router."""

from .manager import ServerManager
from .process import ManagedProcess
from .server import RouterHandle, SGLangServer

__all__ = ["ManagedProcess", "RouterHandle", "SGLangServer", "ServerManager"]
