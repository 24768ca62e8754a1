"""Patroni configuration rendering: pure functions from typed inputs to the YAML Patroni reads."""
