"""Exporters agentdb ships where the packaged ones fall short."""
