-- A webhook may name the CA certificate (PEM) its endpoint's certificate chains to.

ALTER TABLE webhooks ADD COLUMN ca_certificate TEXT;
