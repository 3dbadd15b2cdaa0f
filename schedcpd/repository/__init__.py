"""The Policy Repository: policies with provenance and status, search by meaning and keyword,
measured history, promotion with evidence, and JSON bundles. ``Repository`` is the API."""

from schedcpd.repository.bundle import BundleError, ImportReport
from schedcpd.repository.records import (
    Antipattern,
    HistoryRecord,
    Host,
    Measurement,
    PolicyRecord,
    Profile,
    ProfileLike,
    Recommendation,
    RepositoryError,
    SearchFilters,
    SearchHit,
    StatusChange,
    Trend,
)
from schedcpd.repository.repo import Repository

__all__ = [
    "Antipattern", "BundleError", "HistoryRecord", "Host", "ImportReport", "Measurement",
    "PolicyRecord", "Profile", "ProfileLike", "Recommendation", "Repository",
    "RepositoryError", "SearchFilters", "SearchHit", "StatusChange", "Trend",
]
