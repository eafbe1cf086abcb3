"""gunicorn's settings for the web process: the Dockerfile's CMD and docker-compose's web command
load this file with `-c config/gunicorn.py` (options on the command line still win over it).

One file for every gunicorn setting, so each concern adds its own section here rather than to
the command lines. gunicorn reads the module-level names that are settings
(https://docs.gunicorn.org/en/stable/settings.html) and ignores the others.
"""

import gunicorn.http.wsgi

# No Server header.
#
# gunicorn writes "Server: gunicorn" into every response itself, before the application's
# headers, and has no setting to leave it out (benoitc/gunicorn#825); blanking
# gunicorn.SERVER only sends an empty "Server:". Naming the server tells a scanner what to try,
# so the response's default headers are taken without that line. This replaces a method of
# gunicorn's HTTP/1.1 Response (the sync and gthread workers); the master loads this file before
# it forks the workers, so they all inherit it. tests/core/test_security_exports_and_headers.py runs
# a real gunicorn with this file and fails if a new gunicorn brings the header back.
_default_headers = gunicorn.http.wsgi.Response.default_headers


def _default_headers_without_server_unsafe_patch(
    self: gunicorn.http.wsgi.Response,
) -> list[str]:
    return [header for header in _default_headers(self) if not header.lower().startswith("server:")]


gunicorn.http.wsgi.Response.default_headers = _default_headers_without_server_unsafe_patch


# No one-time token in the access or error log.
#
# The access log writes each request line and referrer, and the error log "Error handling
# request <uri>": /join/<token>/, /invitation/<token>/ and /billing/card-consent/<token>/ would
# put live links in the logs. This logger redacts them (config/log_redaction.py, which Django's
# LOGGING uses too). tests/core/test_tokens_at_rest.py runs a real gunicorn with the Dockerfile's
# command line and fails if a token reaches the access log.
logger_class = "config.log_redaction.TokenRedactingGunicornLogger"

# The application is loaded once, in the master, before it forks the workers: each worker starts
# at once instead of importing Django and the project again (about 1.4 s of CPU each), and they
# share those pages of memory until written. Nothing opens a connection or starts a thread at
# import (apps' ready() only connects signals), so no socket is shared across the fork; Django
# and the caches connect in each worker on its first request.
preload_app = True
