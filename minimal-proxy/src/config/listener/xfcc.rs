//! `forward_client_cert_details` and `set_current_client_cert_details` →
//! [`ForwardClientCert`]: what the connection manager does with `x-forwarded-client-cert`.
//! SANITIZE (Envoy's default: strip it) and SANITIZE_SET with the URI SAN, what xds-server
//! generates for an mTLS inbound listener.

use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    ForwardClientCertDetails, SetCurrentClientCertDetails,
};

use crate::config::{
    ForwardClientCert,
    check::{self, Refusal, Result, unknown_enum, unset, unsupported_value},
};

const MODES: &str = "SANITIZE, SANITIZE_SET";

/// The connection manager's XFCC handling.
pub(super) fn forward_client_cert<M: Default + PartialEq>(
    forward_client_cert_details: &i32,
    set_current_client_cert_details: &Option<SetCurrentClientCertDetails>,
    forward_client_cert_matcher: &M,
) -> Result<ForwardClientCert> {
    unset!(forward_client_cert_matcher);
    let mode = ForwardClientCertDetails::try_from(*forward_client_cert_details).map_err(|_| {
        unknown_enum(
            "forward_client_cert_details",
            *forward_client_cert_details,
            MODES,
        )
    })?;
    let details = set_current_client_cert_details.unwrap_or_default();
    match mode {
        ForwardClientCertDetails::Sanitize => {
            // Envoy ignores the details then; so does the proxy.
            Ok(ForwardClientCert::Sanitize)
        }
        ForwardClientCertDetails::SanitizeSet => {
            let uri =
                set_details(&details).map_err(|e| e.under("set_current_client_cert_details"))?;
            Ok(ForwardClientCert::SanitizeSet { uri })
        }
        other => Err(unsupported_value(
            "forward_client_cert_details",
            other.as_str_name(),
            MODES,
        )),
    }
}

/// Only `uri` may be set (the hash and `By` are always there, as in Envoy).
fn set_details(d: &SetCurrentClientCertDetails) -> Result<bool> {
    let SetCurrentClientCertDetails {
        subject,
        cert,
        chain,
        dns,
        uri,
        issuer,
        format,
    } = d;
    unset!(cert, chain, dns, issuer, format);
    check::bool_default("subject", subject, false)
        .map_err(|_| Refusal::new("subject", "is not supported by minimal-proxy; only uri is"))?;
    Ok(*uri)
}
