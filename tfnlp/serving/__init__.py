"""Serving: a TF Serving-compatible server for hosts without the binary, and its client."""
