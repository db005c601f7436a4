"""SQLAlchemy 2.0 typed models, one module per domain. Alembic migrations make the tables."""
from .accounts import ApiToken, AuditEvent, OutboxMessage, User, UserKind
from .base import Base, as_utc, utcnow
from .catalog import (
    OPEN_CLASS_LABELS,
    PUBLIC_CLASSES,
    AppendOnlyError,
    ClassificationEvent,
    Dataset,
    DatasetStatus,
    DataTable,
    Department,
    Distribution,
    DownloadEvent,
    OpenClass,
    RestrictionRequest,
)
from .deployment import Deployment
from .feedback import DataRequest, ErrorReport, Rating, ShowcaseItem
from .forms import FormSubmission
from .harvest import HarvestJob, HarvestJobEntry, HarvestSource
from .licensing import (
    Agreement,
    Application,
    ApplicationEvent,
    ApplicationItem,
    AppStatus,
    CalendarDay,
    Grant,
    LicensedDownload,
    Purpose,
    UsageReport,
)
from .search import SearchSynonym
from .tenders import (
    Bid,
    Evaluator,
    Objection,
    Score,
    Tender,
    TenderDataset,
    TenderEvent,
    TenderQuestion,
    TenderStatus,
)

__all__ = [
    "Deployment", "FormSubmission",
    "SearchSynonym",
    "DataRequest", "ErrorReport", "Rating", "ShowcaseItem",
    "Bid", "Evaluator", "Objection", "Score", "Tender", "TenderDataset", "TenderEvent", "TenderQuestion",
    "TenderStatus",
    "Agreement", "Application", "ApplicationEvent", "ApplicationItem", "AppStatus", "Grant", "LicensedDownload",
    "Purpose", "UsageReport", "CalendarDay",
    "ApiToken", "AuditEvent", "OutboxMessage", "User", "UserKind",
    "Base", "as_utc", "utcnow", "OPEN_CLASS_LABELS", "PUBLIC_CLASSES", "AppendOnlyError", "ClassificationEvent", "DataTable",
    "Dataset", "DatasetStatus", "Department", "Distribution", "DownloadEvent", "OpenClass", "RestrictionRequest", "HarvestJob",
    "HarvestJobEntry", "HarvestSource",
]
