"""Settings: defaults, overridden by PORTAL_* environment variables, overridden by create_app(config).

Everything defaults to the instance folder (PORTAL_INSTANCE, default ./instance): the SQLite
database, the search index and the data files, so a first run needs nothing else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import cast


def _default_instance() -> Path:
    return Path(os.environ.get("PORTAL_INSTANCE", "instance")).resolve()


@dataclass
class Settings:
    instance_path: Path = field(default_factory=_default_instance)
    database_url: str = ""  # default: sqlite:///<instance>/portal.db
    # files_path and index_path: None means the default below; __post_init__ always leaves a Path.
    files_path: Path = cast(Path, None)  # default: <instance>/files
    # Data files on an object store instead: an fsspec URL such as s3://bucket/prefix (needs
    # the `s3` extra). Empty: the local folder files_path. See docs/deploy.md.
    files_url: str = ""
    # Keyword arguments for that file system, as JSON (PORTAL_FILES_OPTIONS), e.g.
    # {"endpoint_url": "https://oss.example.cn"} for s3fs; credentials may instead come from
    # the standard AWS_* environment variables, which s3fs (botocore) reads itself.
    files_options: dict = field(default_factory=dict)
    index_path: Path = cast(Path, None)  # default: <instance>/index (the Whoosh backend's folder)
    # The search engine: "whoosh" (an index folder; nothing else to run) or "postgres"
    # (full-text search in the portal's PostgreSQL database, shared by every machine).
    search_backend: str = "whoosh"
    # PostgreSQL connections each process keeps (and may add under load): a node holds up to
    # workers × (pool + overflow); every node's together must stay below the server's
    # max_connections (100 by default). docs/deploy.md, "More than one machine".
    db_pool_size: int = 5
    db_max_overflow: int = 10
    secret_key: str = ""  # default: a random key kept in <instance>/secret_key
    # Working days a provider has to decide a conditional-data application (Zhoucun Art. 13).
    consent_working_days: int = 10
    # Conversion: rows of a Parquet row group are flushed when this many bytes are buffered.
    # 40 MiB: harvest/convert.DEFAULT_ROW_GROUP_BYTES, chosen to keep a harvest's peak memory under
    # 300 MB (docs/benchmarks.md); tests/test_layers.py keeps the two equal.
    parquet_row_group_bytes: int = 40 * 1024 * 1024
    http_timeout: float = 60.0
    smtp_url: str = ""  # smtp://user:pass@host:587?starttls; empty: mail stays in the outbox
    redis_url: str = (
        ""  # rate limits and the page cache; empty: limits in memory (one process), no page cache
    )
    # Anonymous readers' pages and API answers kept in Redis (portal/page_cache.py), dropped at
    # once when the catalog changes; this many seconds at most (download counts age this much).
    page_cache_seconds: int = 60
    # Rendered parts of pages kept in each web process (portal/fragments.py), for the readers
    # the page cache does not serve (signed in, long-tail URLs, no Redis); 0 turns it off.
    fragment_cache_bytes: int = 64 * 1024 * 1024
    # Decoded filter and sort columns of data files kept in each web process for the data API
    # and previews (portal/catalog/rows.py, ChunkCache); 0 turns it off.
    data_api_cache_bytes: int = 64 * 1024 * 1024
    https: bool = False  # behind HTTPS: cookies get the Secure flag
    # Behind nginx: the portal authorizes a download and nginx sends the file from an
    # `internal` location with this prefix (X-Accel-Redirect); empty: the portal sends it.
    x_accel_prefix: str = ""
    # Proxies in front that set X-Forwarded-For/-Proto/-Host (1 behind nginx): the client's
    # address (rate limits, audit) and https links come from them. 0: trust no such header.
    proxies: int = 0
    # Calls per client address to the data API (Flask-Limiter syntax).
    data_api_rate: str = "600 per minute"
    # Calls a day per API token (Beijing days), unless the bureau gives a token its own quota.
    api_daily_quota: int = 10000
    # A web process without Redis adds its counted downloads and API calls to the table this often.
    counter_flush_seconds: int = 60
    # The job queue (portal/worker.py): "" = Redis when redis_url is set, else SQLite in the
    # instance folder; "sqlite", "redis", or "inline" (jobs run in the committing process).
    queue: str = ""
    # A running job's worker renews its lease while it works; a lease that runs out means the
    # worker died, and the job is run again. Failed attempts wait 1, 4, 16 … × job_retry_seconds.
    job_lease_seconds: int = 900  # above a data file's download limit (600 s), renewed per entry
    job_retry_seconds: int = 30
    # The largest data file a department may upload in the console (sent in 32 MiB chunks), and
    # where the parts are kept while it arrives: empty = inside the files folder's scratch (or
    # the instance, with an object store); with several nodes and an object store, a folder
    # every node shares (portal/catalog/uploads.py).
    upload_max_mb: int = 2048
    uploads_path: str = ""
    base_url: str = "http://127.0.0.1:5000"  # for links in mail sent outside a request (portal remind)
    # Unified sign-in (OpenID Connect, portal/views/identity.py): the province's identity platform
    # (爱山东 / 山东省统一身份认证). Empty issuer: off, and the login page shows no button. The
    # provider is found by discovery (<issuer>/.well-known/openid-configuration); the portal's
    # callback to register with it is <base>/login/oidc/callback.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_name: str = "爱山东 / 统一身份认证"  # the provider's name on the buttons
    oidc_level_claim: str = "real_name_level"  # the ID token claim with the real-name level ("acr" if absent)
    # The bureau's requirement: applications for these purposes need a linked identity with at
    # least this real-name level (0: none required).
    oidc_required_level: int = 0
    oidc_level_purposes: str = "research,commercial"
    # The dataset page's chart and map previews (portal/preview_charts.py); PORTAL_PREVIEWS=0 turns
    # them off (benchmarks/render_previews.py compares the two).
    previews: bool = True
    # Map tiles under the map preview's points: a slippy-map URL template with {z}/{x}/{y}
    # (web-mercator), e.g. 天地图's
    # https://t0.tianditu.gov.cn/vec_w/wmts?...&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=<key>.
    # Empty: only the offline base shipped in static/geo/ (schematic street boundaries).
    map_tiles: str = ""

    def __post_init__(self) -> None:
        self.instance_path = Path(self.instance_path).resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_path / 'portal.db'}"
        self.files_path = Path(self.files_path or self.instance_path / "files").resolve()
        self.index_path = Path(self.index_path or self.instance_path / "index").resolve()
        if self.search_backend not in ("whoosh", "postgres"):
            raise ValueError(f"PORTAL_SEARCH_BACKEND must be whoosh or postgres, not {self.search_backend!r}")
        if self.search_backend == "postgres" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "PORTAL_SEARCH_BACKEND=postgres needs a PostgreSQL database (PORTAL_DATABASE_URL)"
            )
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("PORTAL_OIDC_ISSUER needs PORTAL_OIDC_CLIENT_ID (and PORTAL_OIDC_CLIENT_SECRET)")
        if self.oidc_required_level and not self.oidc_issuer:
            raise ValueError("PORTAL_OIDC_REQUIRED_LEVEL needs unified sign-in (PORTAL_OIDC_ISSUER)")
        if isinstance(self.files_options, str):
            try:
                self.files_options = json.loads(self.files_options or "{}")
            except json.JSONDecodeError as exc:
                raise ValueError(f"PORTAL_FILES_OPTIONS is not JSON: {exc}") from exc
        if not isinstance(self.files_options, dict):
            raise ValueError(
                'PORTAL_FILES_OPTIONS must be a JSON object, e.g. {"endpoint_url": "https://..."}'
            )

    @classmethod
    def load(cls, overrides: dict | None = None) -> Settings:
        """Defaults < PORTAL_<NAME> environment variables < explicit overrides."""
        values: dict = {}
        for f in fields(cls):
            env = os.environ.get(f"PORTAL_{f.name.upper()}")
            if f.name == "instance_path":
                env = os.environ.get("PORTAL_INSTANCE")
            if env is not None and env != "":
                if f.type in ("bool", bool):
                    values[f.name] = env.lower() in ("1", "true", "yes", "on")
                else:
                    values[f.name] = (
                        int(env)
                        if f.type in ("int", int)
                        else (float(env) if f.type in ("float", float) else env)
                    )
        for key, value in (overrides or {}).items():
            key = key.lower()
            if key == "instance":
                key = "instance_path"
            if key in {f.name for f in fields(cls)}:
                values[key] = value
        return cls(**values)

    def ensure_dirs(self) -> None:
        local_files = () if self.files_url else (self.files_path,)  # an object store needs no files folder
        for path in (self.instance_path, *local_files, self.index_path):
            path.mkdir(parents=True, exist_ok=True)

    def load_secret_key(self) -> str:
        """A stable secret per instance: generated once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        key_file = self.instance_path / "secret_key"
        if not key_file.exists():
            self.ensure_dirs()
            key_file.write_text(os.urandom(32).hex())
            key_file.chmod(0o600)
        self.secret_key = key_file.read_text().strip()
        return self.secret_key
