"""Eval stage: scoring through lm-eval (hf, vLLM, API models), the lm-eval hook, score moves."""
