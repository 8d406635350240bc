"""Distillation: small synthetic or selected training sets that stand for the real one."""
