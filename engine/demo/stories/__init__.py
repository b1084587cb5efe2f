"""The month at 山水庭苑 that ``sop demo`` plays: one story per matter, one module per procedure.

``STORIES`` lists the stories in the order the modules below register them: the order
breaks ties between steps at the same minute, so it is part of the script (keep it).
"""
from engine.demo.stories import calls  # noqa: F401  (each import registers its stories)
from engine.demo.stories import complaints  # noqa: F401
from engine.demo.stories import repairs  # noqa: F401
from engine.demo.stories import move_in  # noqa: F401
from engine.demo.stories import renovation  # noqa: F401
from engine.demo.stories import meetings  # noqa: F401
from engine.demo.stories import archive  # noqa: F401
from engine.demo.stories import fees  # noqa: F401
from engine.demo.stories.common import STORIES

__all__ = ["STORIES"]
