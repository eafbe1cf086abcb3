from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for trying the portal; depends on every other app, nothing depends on it."""

    name = "demo"
