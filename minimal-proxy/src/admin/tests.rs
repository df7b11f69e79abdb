//! Admin API tests: each page rendered from a known engine state, in Envoy's shape.
