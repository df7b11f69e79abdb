//! The HTTP client of xds-server's REST API: one method per kind of call, and one error enum
//! that tells "the server refused" (with its JSON error) from "the server cannot be reached".

use std::{fmt, time::Duration};

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::kind::Kind;

/// How long one request may take before meshctl gives up on the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An empty query string.
pub const NO_QUERY: [(&str, &str); 0] = [];
/// The page size meshctl asks for when it lists (the server's largest).
const PAGE: u32 = 1000;

/// A client of one server. Holds the bearer token, so it is neither `Debug` nor printed.
pub struct Client {
    http: reqwest::Client,
    /// For streams that last as long as the user watches (the tap): no overall timeout.
    streaming: reqwest::Client,
    /// The server's base URL, without a trailing `/`, as shown in messages.
    base: String,
    token: Option<String>,
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("'{url}' is not a usable server URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach the server at {url}: {reason}. Is xds-server running there? Check \
         --server (or MESHCTL_SERVER, or `server:` in the config file)"
    )]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Refused(ServerError),
    #[error("the server at {url} answered {what} unexpectedly: {reason}")]
    BadResponse {
        url: String,
        what: String,
        reason: String,
    },
}

/// The server's JSON error (`{"error": {"code", "message", "field", "referrers"}}`) and its
/// HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// For `referenced`: `kind/name` of each object still using the target.
    pub referrers: Vec<String>,
}

impl ServerError {
    /// Reads the error shape; a body that is not one still yields the status and its text.
    fn from_body(status: StatusCode, body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or_default();
        let error = &parsed["error"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        let referrers = error["referrers"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|r| {
                        // The server names kinds by collection; meshctl prints `route/web`.
                        let kind = r["kind"].as_str().unwrap_or("?");
                        let kind = kind
                            .parse::<Kind>()
                            .map_or_else(|_| kind.to_string(), |k| k.as_str().to_string());
                        format!("{kind}/{}", r["name"].as_str().unwrap_or("?"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: status.as_u16(),
            code: text(&error["code"]).unwrap_or_else(|| "http_error".into()),
            message: text(&error["message"]).unwrap_or_else(|| {
                let trimmed = body.trim();
                if trimmed.is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("no message")
                        .to_string()
                } else {
                    trimmed.chars().take(500).collect()
                }
            }),
            field: text(&error["field"]),
            referrers,
        }
    }
}

impl fmt::Display for ServerError {
    /// `422 invalid_field (field rules[0].destinations[0].service): service 'x' does not exist`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.referrers.is_empty() {
            write!(f, " [used by {}]", self.referrers.join(", "))?;
        }
        Ok(())
    }
}

/// A successful write: whether it created the object, and the object as the server returned it.
#[derive(Debug, Clone)]
pub struct Written {
    pub created: bool,
    pub object: Value,
}

impl Client {
    /// A client of `server` (`http://host:port`), sending `token` as a bearer token when given.
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: server.to_string(),
            reason: reason.to_string(),
        };
        let url =
            Url::parse(server).map_err(|e| bad(&format!("{e} (write it as http://host:port)")))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "this meshctl speaks plain HTTP only (it was built without TLS); reach the \
                     admin API over http://, e.g. through a tunnel",
                ));
            }
            other => return Err(bad(&format!("scheme '{other}' is not http"))),
        }
        if url.host_str().is_none() {
            return Err(bad("it names no host"));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            http,
            streaming,
            base: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The server's base URL, for messages.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// Sends one request; a non-2xx answer becomes [`ClientError::Refused`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &(impl serde::Serialize + ?Sized),
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), ClientError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            Ok((status, text))
        } else {
            Err(ClientError::Refused(ServerError::from_body(status, &text)))
        }
    }

    /// `GET path` whose body is a stream read as it comes (server-sent events); a non-2xx
    /// answer becomes [`ClientError::Refused`].
    pub async fn stream(
        &self,
        path: &str,
        query: &(impl serde::Serialize + ?Sized),
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self
            .streaming
            .get(format!("{}{path}", self.base))
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.map_err(|e| self.transport(e))?;
        Err(ClientError::Refused(ServerError::from_body(status, &text)))
    }

    /// A stream that broke while it was read: the server went away.
    pub fn broken(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: format!("the stream broke: {e}"),
        }
    }

    /// Connection-level failures are "unreachable"; the rest are odd answers.
    fn transport(&self, e: reqwest::Error) -> ClientError {
        // The error's own text ends in its cause; keep the innermost for a short message.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            reason = inner.to_string();
            source = inner.source();
        }
        if e.is_connect() || e.is_timeout() || e.is_request() {
            ClientError::Unreachable {
                url: self.base.clone(),
                reason,
            }
        } else {
            ClientError::BadResponse {
                url: self.base.clone(),
                what: "a request".into(),
                reason,
            }
        }
    }

    fn parse_json(&self, path: &str, text: &str) -> Result<Value, ClientError> {
        serde_json::from_str(text).map_err(|e| ClientError::BadResponse {
            url: self.base.clone(),
            what: format!("GET {path}"),
            reason: format!("not JSON: {e}"),
        })
    }

    /// `GET path` as JSON.
    pub async fn get(
        &self,
        path: &str,
        query: &(impl serde::Serialize + ?Sized),
    ) -> Result<Value, ClientError> {
        let (_, text) = self.send(Method::GET, path, query, None).await?;
        self.parse_json(path, &text)
    }

    /// `GET path` as text (the bootstrap is YAML).
    pub async fn get_text(
        &self,
        path: &str,
        query: &(impl serde::Serialize + ?Sized),
    ) -> Result<String, ClientError> {
        Ok(self.send(Method::GET, path, query, None).await?.1)
    }

    /// `GET path`, or `None` on 404.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, ClientError> {
        match self.get(path, &NO_QUERY).await {
            Ok(v) => Ok(Some(v)),
            Err(ClientError::Refused(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object of a collection, following `next_page_token`; `selector` filters by labels.
    pub async fn list(
        &self,
        collection: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ClientError> {
        let path = format!("/api/v1/{collection}");
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("limit", PAGE.to_string())];
            if let Some(s) = selector {
                query.push(("selector", s.to_string()));
            }
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let page = self.get(&path, &query).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_page_token"].as_str() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(items),
            }
        }
    }

    /// `PUT path` with `body`; `dry_run` asks the server to check and answer without writing.
    pub async fn put(
        &self,
        path: &str,
        body: &Value,
        dry_run: bool,
    ) -> Result<Written, ClientError> {
        let query = if dry_run {
            vec![("dry_run", "true".to_string())]
        } else {
            Vec::new()
        };
        let (status, text) = self.send(Method::PUT, path, &query, Some(body)).await?;
        Ok(Written {
            created: status == StatusCode::CREATED,
            object: self.parse_json(path, &text)?,
        })
    }

    /// `POST path` with `body`, answered with JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let (_, text) = self.send(Method::POST, path, &NO_QUERY, Some(body)).await?;
        self.parse_json(path, &text)
    }

    /// `DELETE path`, only at `version` when given.
    pub async fn delete(&self, path: &str, version: Option<i64>) -> Result<(), ClientError> {
        let query: Vec<(&str, String)> = version
            .map(|v| ("version", v.to_string()))
            .into_iter()
            .collect();
        self.send(Method::DELETE, path, &query, None).await?;
        Ok(())
    }

    /// Clears a service's endpoints (they have no DELETE: they are replaced as a whole).
    pub async fn clear_endpoints(&self, path: &str) -> Result<(), ClientError> {
        self.put(path, &json!({ "endpoints": [] }), false).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_show_status_code_field_and_referrers() {
        let body = r#"{"error":{"code":"referenced","message":"service 'web' is still used","referrers":[{"kind":"routes","name":"web"}]}}"#;
        let e = ServerError::from_body(StatusCode::CONFLICT, body);
        assert_eq!(
            e.to_string(),
            "409 referenced: service 'web' is still used [used by route/web]"
        );
        let body =
            r#"{"error":{"code":"invalid_field","message":"must be 1..=65535","field":"port"}}"#;
        let e = ServerError::from_body(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            e.to_string(),
            "422 invalid_field (field port): must be 1..=65535"
        );
    }

    #[test]
    fn a_body_that_is_not_the_error_shape_still_says_something() {
        let e = ServerError::from_body(StatusCode::BAD_GATEWAY, "");
        assert_eq!(e.to_string(), "502 http_error: Bad Gateway");
        let e = ServerError::from_body(StatusCode::BAD_REQUEST, "plain text\n");
        assert_eq!(e.message, "plain text");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(Client::new("http://127.0.0.1:9090/", None).is_ok());
        for bad in ["127.0.0.1:9090", "https://x:1", "ftp://x", "not a url"] {
            let e = Client::new(bad, None).err().unwrap();
            assert!(matches!(e, ClientError::BadUrl { .. }), "{bad}: {e}");
        }
    }
}
