"""Quality control (质控) of monitoring readings, after the U.S. IOOS QARTOD manuals.

Pure, vectorised tests over numpy arrays return QARTOD flags (1 good, 2 not evaluated, 3 suspect,
4 fail, 9 missing); :func:`run_qc` runs the tests a :class:`QcConfig` enables, with stored history as
context for streaming batches; :func:`run_qc_many` does the same for many channels in one pass (the
ingestion path); :func:`pack_flags` keeps every test's flag in one int32 for storage.
"""

from geowarn.monitoring.qc.checks import flat_line_test, gross_range_test, rate_of_change_test, spike_test
from geowarn.monitoring.qc.config import (
    FlatLineConfig,
    GrossRangeConfig,
    QcConfig,
    RateOfChangeConfig,
    SpikeConfig,
    TimeGapConfig,
    TimestampConfig,
    default_settings,
    qc_config_for,
)
from geowarn.monitoring.qc.flags import TEST_ORDER, QcFlag, aggregate, pack_flags, unpack_flags
from geowarn.monitoring.qc.many import QcHistories, QcManyResult, apply_revisions_many, run_qc_many
from geowarn.monitoring.qc.run import FlagRevision, QcHistory, QcResult, apply_revisions, run_qc
from geowarn.monitoring.qc.timing import (
    as_epoch_seconds,
    duplicate_and_order_test,
    time_gap_test,
    timestamp_test,
)

__all__ = [
    "TEST_ORDER",
    "FlagRevision",
    "FlatLineConfig",
    "GrossRangeConfig",
    "QcConfig",
    "QcFlag",
    "QcHistories",
    "QcHistory",
    "QcManyResult",
    "QcResult",
    "RateOfChangeConfig",
    "SpikeConfig",
    "TimeGapConfig",
    "TimestampConfig",
    "aggregate",
    "apply_revisions",
    "apply_revisions_many",
    "as_epoch_seconds",
    "default_settings",
    "duplicate_and_order_test",
    "flat_line_test",
    "gross_range_test",
    "pack_flags",
    "qc_config_for",
    "rate_of_change_test",
    "run_qc",
    "run_qc_many",
    "spike_test",
    "time_gap_test",
    "timestamp_test",
    "unpack_flags",
]
