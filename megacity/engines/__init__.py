"""Engines: one interface, two forms — in-process (local) or HTTP (remote node)."""
