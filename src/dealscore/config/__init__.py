"""Shipped YAML defaults: stage taxonomy, playbook, example import mappings."""
