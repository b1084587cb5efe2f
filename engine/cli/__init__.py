"""The ``sop`` command line, one topic module per group of commands.

``cli.py`` at the top keeps the ``main`` click group and registers every module's
``COMMANDS``, as ``engine/api/app.py`` includes its routers. What all of them share lives
here once: the context object and its accessor (``context.py``), the JSON-or-text emitter
and the table (``output.py``), the mapping of the engine's refusals to one line and exit 1
(``errors.py``) and the parsing of arguments (``parsing.py``). No module here imports
``cli.py``; the modules call the engine and format, nothing else.
"""
