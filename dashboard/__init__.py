"""Dash UI: the app shell, one module per page, ids, messages, figure builders and assets.

Never writes SQL: every figure's data comes from ``layers``; signing in, sessions, the
security headers and the API are ``web``'s, on whose server the pages are put.
"""
