//! `typed_extension_protocol_options` → [`UpstreamProtocol`]: only Envoy's
//! `HttpProtocolOptions` with an explicit HTTP/1.1 or HTTP/2 config whose options are all at
//! their defaults. Also the default-only checks of `Http1ProtocolOptions` and
//! `Http2ProtocolOptions`, which the HTTP connection manager shares.

use std::collections::HashMap;

use envoy_types::pb::{
    envoy::{
        config::core::v3::{Http1ProtocolOptions, Http2ProtocolOptions},
        extensions::upstreams::http::v3::{
            HttpProtocolOptions,
            http_protocol_options::{
                ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
            },
        },
    },
    google::protobuf::Any,
};
use prost::Name;

use crate::config::{
    UpstreamProtocol,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// The protocol the cluster speaks upstream; HTTP/1.1 when no options are given (Envoy's
/// default).
pub(super) fn upstream_protocol(options: &HashMap<String, Any>) -> Result<UpstreamProtocol> {
    let key = HttpProtocolOptions::full_name();
    // Sorted, so that the refusal is the same on every run.
    let mut names: Vec<&String> = options.keys().collect();
    names.sort();
    if let Some(other) = names.iter().find(|n| ***n != key) {
        return Err(check::unsupported_value(
            format!("typed_extension_protocol_options[\"{other}\"]"),
            other,
            &key,
        ));
    }
    let Some(any) = options.get(&key) else {
        return Ok(UpstreamProtocol::Http1);
    };
    let field = format!("typed_extension_protocol_options[\"{key}\"]");
    let decoded: HttpProtocolOptions = check::decode(&field, any)?;
    http_protocol_options(&decoded).map_err(|r| r.under(&field))
}

fn http_protocol_options(o: &HttpProtocolOptions) -> Result<UpstreamProtocol> {
    let HttpProtocolOptions {
        common_http_protocol_options,
        upstream_http_protocol_options,
        http_filters,
        header_validation_config,
        outlier_detection,
        request_mirror_policies,
        hash_policy,
        retry_policy,
        upstream_protocol_options,
    } = o;
    unset!(
        common_http_protocol_options,
        upstream_http_protocol_options,
        http_filters,
        header_validation_config,
        outlier_detection,
        request_mirror_policies,
        hash_policy,
        retry_policy,
    );
    match upstream_protocol_options {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config,
        })) => {
            let under = |r: Refusal| r.under("explicit_http_config");
            match protocol_config {
                Some(ProtocolConfig::HttpProtocolOptions(h1)) => {
                    http1_defaults(h1).map_err(|r| under(r.under("http_protocol_options")))?;
                    Ok(UpstreamProtocol::Http1)
                }
                Some(ProtocolConfig::Http2ProtocolOptions(h2)) => {
                    http2_defaults(h2).map_err(|r| under(r.under("http2_protocol_options")))?;
                    Ok(UpstreamProtocol::Http2)
                }
                Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                    Err(under(not_supported("http3_protocol_options")))
                }
                None => Err(under(required("http_protocol_options"))),
            }
        }
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)) => {
            Err(not_supported("use_downstream_protocol_config"))
        }
        Some(UpstreamProtocolOptions::AutoConfig(_)) => Err(not_supported("auto_config")),
        None => Err(required("explicit_http_config")),
    }
}

/// HTTP/1.1 options: all at their defaults.
#[allow(deprecated)] // Deprecated fields are named to be refused.
pub(in crate::config) fn http1_defaults(o: &Http1ProtocolOptions) -> Result<()> {
    let Http1ProtocolOptions {
        allow_absolute_url,
        accept_http_10,
        default_host_for_http_10,
        header_key_format,
        enable_trailers,
        allow_chunked_length,
        override_stream_error_on_invalid_http_message,
        send_fully_qualified_url,
        use_balsa_parser,
        allow_custom_methods,
        ignore_http_11_upgrade,
    } = o;
    unset!(
        allow_absolute_url,
        accept_http_10,
        default_host_for_http_10,
        header_key_format,
        enable_trailers,
        allow_chunked_length,
        override_stream_error_on_invalid_http_message,
        send_fully_qualified_url,
        use_balsa_parser,
        allow_custom_methods,
        ignore_http_11_upgrade,
    );
    Ok(())
}

/// HTTP/2 options: all at their defaults.
#[allow(deprecated)] // Deprecated fields are named to be refused.
pub(in crate::config) fn http2_defaults(o: &Http2ProtocolOptions) -> Result<()> {
    let Http2ProtocolOptions {
        hpack_table_size,
        max_concurrent_streams,
        initial_stream_window_size,
        initial_connection_window_size,
        allow_connect,
        allow_metadata,
        max_outbound_frames,
        max_outbound_control_frames,
        max_consecutive_inbound_frames_with_empty_payload,
        max_inbound_priority_frames_per_stream,
        max_inbound_window_update_frames_per_data_frame_sent,
        stream_error_on_invalid_http_messaging,
        override_stream_error_on_invalid_http_message,
        custom_settings_parameters,
        connection_keepalive,
        use_oghttp2_codec,
        max_metadata_size,
        enable_huffman_encoding,
        max_header_field_size_kb,
        disallow_obs_text,
        stream_reset_burst,
        stream_reset_rate,
    } = o;
    unset!(
        hpack_table_size,
        max_concurrent_streams,
        initial_stream_window_size,
        initial_connection_window_size,
        allow_connect,
        allow_metadata,
        max_outbound_frames,
        max_outbound_control_frames,
        max_consecutive_inbound_frames_with_empty_payload,
        max_inbound_priority_frames_per_stream,
        max_inbound_window_update_frames_per_data_frame_sent,
        stream_error_on_invalid_http_messaging,
        override_stream_error_on_invalid_http_message,
        custom_settings_parameters,
        connection_keepalive,
        use_oghttp2_codec,
        max_metadata_size,
        enable_huffman_encoding,
        max_header_field_size_kb,
        disallow_obs_text,
        stream_reset_burst,
        stream_reset_rate,
    );
    Ok(())
}
