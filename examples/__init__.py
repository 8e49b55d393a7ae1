"""Worked examples of checking your own implementation (README: "Checking your own implementation")."""
