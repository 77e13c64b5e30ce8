"""Pieces the exporter and the responder share: duration strings, structured logs, configuration errors."""
