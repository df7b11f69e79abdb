-- Proxy tokens (issue 9): what a proxy presents on the xDS port. Only the SHA-256 of the
-- secret is kept; revoking deletes the row.
CREATE TABLE proxy_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,  -- hex
    node_id       TEXT NOT NULL,
    node_cluster  TEXT NOT NULL,
    description   TEXT,
    created_at    TEXT NOT NULL
);
