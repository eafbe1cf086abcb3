"""Starting the portal does not load the PDF and Factur-X libraries: WeasyPrint (with fontTools
and Pango), the factur-x library (with pypdf) took most of a process's start (manage.py, each
gunicorn worker, each Celery worker). billing.pdf and billing.facturx import them when they
render a PDF or check an XML."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("weasyprint", "fontTools", "facturx", "pypdf", "pydyf")

STARTUP = f"""
import sys
import django
django.setup()
from django.urls import resolve
resolve("/")
import billing.pdf, billing.facturx, billing.tasks, billing.views
loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
assert not loaded, loaded
"""


def test_starting_the_portal_loads_no_pdf_library():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", STARTUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
