"""Kubernetes helpers that are not constructs: quantities, restricted pod security, object walking."""
