"""东昌府区公共数据开放平台: the web application and the catalog core."""

from pathlib import Path

# templates/ and static/ sit at the top of the repository (design card layout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
