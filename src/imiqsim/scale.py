"""Large streamed virtual trials: moved to :mod:`imiqsim.trial.streaming` (names kept here)."""

from imiqsim.trial.streaming import (
    CHUNKS_DIR,
    MANIFEST_NAME,
    SUMMARY_NAME,
    TRACE_PERCENTILES,
    TRACES_DIR,
    StreamResult,
    chunk_path,
    read_outcomes,
    run_streaming,
    trace_bands,
    trace_path,
)

__all__ = [
    "CHUNKS_DIR",
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "TRACES_DIR",
    "TRACE_PERCENTILES",
    "StreamResult",
    "chunk_path",
    "read_outcomes",
    "run_streaming",
    "trace_bands",
    "trace_path",
]
