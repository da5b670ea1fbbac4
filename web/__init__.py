"""HTTP without Dash: who is asking (sign-in, sessions, tokens), what a request from another
site may do, the security headers, the read API's routes (OGC API – Features, the
dashboard's data API, tiles, exports, the OpenAPI document) and serving under gunicorn.

``web`` builds on ``layers`` and the plumbing; it never imports ``dash`` or ``dashboard``,
so the API can be served alone (:func:`web.app.create_api_app`).
"""
