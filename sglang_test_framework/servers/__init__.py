"""Launching and stopping SGLang servers, simulated servers and the SGLang router."""

from .manager import ServerManager, kill_all_processes
from .process import ManagedProcess
from .server import ProcessExit, RouterHandle, SGLangServer

__all__ = ["ManagedProcess", "ProcessExit", "RouterHandle", "SGLangServer", "ServerManager", "kill_all_processes"]
