"""Icons, style sheets and sample data carried by the wheel (read via importlib.resources)."""
