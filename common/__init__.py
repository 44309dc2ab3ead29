"""Infrastructure below every layer: output folders and parallel jobs (standard library only).

``golden``, ``hw``, ``sim`` and the command line all import ``helu.common`` the way they import
``golden/fixed.py``; it imports none of them, names no command and words no error as a CLI flag
(the command line adds its own wording).
"""
