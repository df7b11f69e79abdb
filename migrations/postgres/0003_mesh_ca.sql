-- The built-in mesh CA (issue 9): one row, written once by whichever replica starts first
-- (INSERT ... ON CONFLICT DO NOTHING, then every replica reads the row back).
CREATE TABLE mesh_ca (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    certificate_pem TEXT    NOT NULL,
    private_key     TEXT    NOT NULL,  -- PEM, or sealed ('chacha20poly1305:v1:...') when key_sealed
    key_sealed      BOOLEAN NOT NULL,
    created_at      TEXT    NOT NULL
);
