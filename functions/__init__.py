"""Trigger blueprints: decorators and a few lines each; the work is in autoheal.handlers."""
