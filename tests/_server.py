"""The app server the browser and HTTP tests start: bench/appserver.py (one copy for tests and benchmarks)."""

from bench.appserver import ROOT, AppServer, free_port

__all__ = ["ROOT", "AppServer", "free_port"]
