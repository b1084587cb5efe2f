"""The HTTP API (FastAPI): ``create_app(engine)``; served by ``sop serve``."""
from engine.api.app import create_app

__all__ = ["create_app"]
