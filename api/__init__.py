"""The admin and enqueue HTTP API (FastAPI): `create_app(settings)` in `api.main`."""
