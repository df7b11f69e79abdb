//! Unit tests of the xDS client state machine, rule by rule.
