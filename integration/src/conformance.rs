//! One conformance suite, two data planes: the macros that write one `#[tokio::test]` per data
//! plane × xDS variant × store backend for each scenario `async fn name(DataPlane, Variant,
//! Backend)`, named `name::envoy_sotw_sqlite`, `name::minimal_delta_postgres`, ….
//!
//! Which scenarios also run on Postgres: the data plane never sees the store, so Postgres adds
//! only the control plane's Postgres path (NOTIFY-driven watch, restart on the same database)
//! under a real proxy. [`conformance_with_postgres!`] is for the scenarios that exercise that
//! path hardest (`changes::route_change_under_load_drops_nothing`,
//! `resilience::proxy_survives_a_server_restart`); `replicas.rs` runs on Postgres only (two
//! replicas share one database); every other scenario runs on SQLite only
//! ([`conformance!`]). The whole package takes about a minute and a half on this 2-core
//! machine once built, so CI's cold run stays well under 30 minutes. The store itself is
//! proven on both backends by `xds-server/tests/store_conformance.rs`.

/// For each scenario: Envoy and minimal-proxy, ADS SotW and Delta, on SQLite (4 tests).
#[macro_export]
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::conformance_case!($scenario, envoy_sotw_sqlite, Envoy, Sotw, Sqlite);
            $crate::conformance_case!($scenario, envoy_delta_sqlite, Envoy, Delta, Sqlite);
            $crate::conformance_case!($scenario, minimal_sotw_sqlite, Minimal, Sotw, Sqlite);
            $crate::conformance_case!($scenario, minimal_delta_sqlite, Minimal, Delta, Sqlite);
        }
    )*};
}

/// For each scenario: Envoy and minimal-proxy, ADS SotW and Delta, on SQLite and on Postgres
/// (8 tests).
#[macro_export]
macro_rules! conformance_with_postgres {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::conformance_case!($scenario, envoy_sotw_sqlite, Envoy, Sotw, Sqlite);
            $crate::conformance_case!($scenario, envoy_delta_sqlite, Envoy, Delta, Sqlite);
            $crate::conformance_case!($scenario, minimal_sotw_sqlite, Minimal, Sotw, Sqlite);
            $crate::conformance_case!($scenario, minimal_delta_sqlite, Minimal, Delta, Sqlite);
            $crate::conformance_case!($scenario, envoy_sotw_postgres, Envoy, Sotw, Postgres);
            $crate::conformance_case!($scenario, envoy_delta_postgres, Envoy, Delta, Postgres);
            $crate::conformance_case!($scenario, minimal_sotw_postgres, Minimal, Sotw, Postgres);
            $crate::conformance_case!($scenario, minimal_delta_postgres, Minimal, Delta, Postgres);
        }
    )*};
}

/// One test `$test` running `super::$scenario(DataPlane::$plane, Variant::$variant,
/// Backend::$backend)`; for scenarios whose combinations differ from the macros above (e.g.
/// separate per-type streams).
#[macro_export]
macro_rules! conformance_case {
    ($scenario:ident, $test:ident, $plane:ident, $variant:ident, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            super::$scenario(
                $crate::mesh::DataPlane::$plane,
                $crate::mesh::Variant::$variant,
                $crate::mesh::Backend::$backend,
            )
            .await;
        }
    };
}
