"""rlm-instrument bootstrap, imported by ``site`` because the CLI put this directory first on
PYTHONPATH. It sets up telemetry, takes this directory off ``sys.path`` (and, through the
environment restore, off PYTHONPATH for grandchildren), then chains to the ``sitecustomize``
that would have run without us.
"""

import importlib
import os
import sys


def _bootstrap() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        from rlm_toolkit.auto._child import bootstrap
    except ImportError as exc:
        sys.stderr.write(
            f"rlm-instrument: {sys.executable} cannot import rlm_toolkit ({exc}); "
            "run the app with the Python where rlm-toolkit is installed\n"
        )
    else:
        bootstrap()
    ours = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")  # the next one on sys.path, if any
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_bootstrap()
