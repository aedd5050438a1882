"""HTTP plumbing every router shares: body caps, authentication before the body, security headers.

Generic ASGI/FastAPI pieces with no domain logic; app.py installs them.
"""
