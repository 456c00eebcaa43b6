"""Tollgate: a self-hostable gateway between developer tools and AI provider APIs."""

__version__ = "0.1.0"
