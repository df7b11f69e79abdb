//! Access log formats and the writer thread.
