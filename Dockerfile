# syntax=docker/dockerfile:1
# One image for every Django process in docker-compose.yml: web (gunicorn), worker, beat and the
# one-off migrate. The build stage has the tools (uv, gettext); the runtime stage does not.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:$PATH"
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first, so this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --python /usr/local/bin/python3
COPY . .
RUN python manage.py compilemessages --ignore=.venv
# Static files are collected into the image, so every web container is identical and needs no
# shared volume. Production settings refuse to load without their secrets: these throwaway values
# exist only for this command (none of them is stored in the image or used to connect anywhere).
RUN DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_SECRET_KEY=collectstatic-only-throwaway-key-0123456789abcdefghijklmnopqrstuvwxyz \
    DJANGO_ALLOWED_HOSTS=localhost PORTAL_URL=http://localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    REDIS_URL=redis://localhost:6379/0 \
    GOOGLE_CLIENT_ID=collectstatic.apps.googleusercontent.com \
    GOOGLE_CLIENT_SECRET=collectstatic \
    EMAIL_HOST=localhost \
    VENDOR_NAME=collectstatic VENDOR_ADDRESS=collectstatic VENDOR_COUNTRY=IE \
    VENDOR_VAT_ID=collectstatic VENDOR_EMAIL=collectstatic@example.com \
    VENDOR_BANK_IBAN=collectstatic VENDOR_BANK_BIC=collectstatic \
    python manage.py collectstatic --noinput

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:$PATH" \
    WEB_CONCURRENCY=3
# WeasyPrint's libraries (Pango, HarfBuzz with subsetting) and a font for invoices.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin portal
WORKDIR /app
COPY --from=build /app /app
# Uploaded and generated files when USE_S3 is off (a volume in docker-compose.yml).
RUN mkdir -p /app/media && chown portal /app/media
USER portal
EXPOSE 8000
# gunicorn reads its worker count from WEB_CONCURRENCY, its other settings from config/gunicorn.py.
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
