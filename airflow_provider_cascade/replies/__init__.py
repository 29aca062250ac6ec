"""Recipients' replies: received from SMSBAT's callbacks, stored once, opt-outs applied.

``payload`` reads a callback, ``keywords`` decides what a reply asks, ``settings`` reads a
connection's reply extras, ``store`` writes to the user's database, ``receiver`` is the
FastAPI route (in the API server's plugin and in ``cascade-replies``, ``cli``).
"""
